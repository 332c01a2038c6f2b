"""Gift certificates over real HTTP: a printed batch, check, hold, redeem, refund, balance,
blocking, expiry and history, with exact money; the invariant checker covers them."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from contracts.operations import GiftCardInfoRequest
from gateway.cli import app as cli
from gateway.config import DEMO_CONFIG, load_config
from gateway.ledger.giftcard_batches import luhn_valid
from gateway.ledger.service import LoyaltyService
from gateway.store.db import Database
from tests.conftest import Gateway, json_of
from tests.support import OPERATOR, SITE, TILL, key


def post(gw: Gateway, path: str, body: dict[str, Any] | None, headers: dict[str, str], status: int = 200) -> Any:
    response = gw.http.post(path, json=body, headers={**headers, **key()})
    assert response.status_code == status, response.text
    return json_of(response)


def gift(gw: Gateway, number: str) -> Any:
    response = gw.http.get(f"/api/v1/gift-cards/{number}", headers=TILL)
    assert response.status_code == 200, response.text
    return response.json()


def money_snapshot(gw: Gateway) -> tuple[int, ...]:
    with gw.service.db.read() as session:
        row = session.execute(
            text(
                "SELECT (SELECT count(*) FROM gift_card_entries), (SELECT coalesce(sum(amount_kopecks), 0)"
                " FROM gift_card_entries), (SELECT count(*) FROM gift_card_holds),"
                " (SELECT count(*) FROM gift_card_refunds), (SELECT count(*) FROM gift_cards)"
            )
        ).one()
    return tuple(int(x) for x in row)


def test_a_certificates_life_with_exact_money(gateway: Gateway) -> None:
    batch = post(gateway, "/api/v1/gift-cards/batches", {"count": 3, "amount": "1000.00"}, OPERATOR)
    numbers = [c["number"] for c in batch["cards"]]
    assert batch["count"] == 3 and len(set(numbers)) == 3
    assert all(len(n) == 16 and n.startswith("29") and luhn_valid(n) for n in numbers)
    number = numbers[0]

    card = gift(gateway, number)
    assert (card["nominal"], card["balance"], card["available"], card["blocked"]) == (
        "1000.00",
        "1000.00",
        "1000.00",
        False,
    )

    held = post(gateway, f"/api/v1/gift-cards/{number}/holds", {"amount": "600.00"}, TILL)
    assert (held["held"], held["balance"], held["available"]) == ("600.00", "1000.00", "400.00")
    redeemed = post(
        gateway,
        f"/api/v1/gift-cards/{number}/redeem",
        {"amount": "450.25", "hold_id": held["hold_id"], "receipt_id": "R-1"},
        TILL,
    )
    assert (redeemed["redeemed"], redeemed["balance"], redeemed["available"]) == ("450.25", "549.75", "549.75")

    refund_body = {"refund_id": "RET-1", "amount": "100.10", "receipt_id": "R-1"}
    refunded = post(gateway, f"/api/v1/gift-cards/{number}/refunds", refund_body, TILL)
    assert (refunded["amount"], refunded["card"]["balance"]) == ("100.10", "649.85")

    before = money_snapshot(gateway)
    again = post(gateway, f"/api/v1/gift-cards/{number}/refunds", refund_body, TILL)  # a new key, the same refund
    assert again == refunded
    assert money_snapshot(gateway) == before
    conflict = post(
        gateway, f"/api/v1/gift-cards/{number}/refunds", {**refund_body, "amount": "5.00"}, TILL, status=422
    )
    assert conflict["error"]["code"] == "idempotency_conflict"
    too_much = post(
        gateway,
        f"/api/v1/gift-cards/{number}/refunds",
        {"refund_id": "RET-2", "amount": "350.16", "receipt_id": "R-1"},
        TILL,
        status=422,
    )
    assert too_much["error"]["code"] == "gift_card_refund_exceeds"
    assert too_much["error"]["details"]["refundable"] == "350.15"
    assert money_snapshot(gateway) == before

    rest = post(
        gateway,
        f"/api/v1/gift-cards/{number}/refunds",
        {"refund_id": "RET-2", "amount": "350.15", "receipt_id": "R-1"},
        TILL,
    )
    assert rest["card"]["balance"] == "1000.00"
    assert gift(gateway, number)["balance"] == "1000.00"
    assert gift(gateway, numbers[1])["balance"] == "1000.00"  # the rest of the batch is untouched

    history = gateway.http.get(f"/api/v1/gift-cards/{number}/history", headers=TILL).json()
    assert [(i["kind"], i["amount"], i["balance_after"]) for i in history["items"]] == [
        ("issue", "1000.00", "1000.00"),
        ("hold", None, None),
        ("redeem", "-450.25", "549.75"),
        ("refund", "100.10", "649.85"),
        ("refund", "350.15", "1000.00"),
    ]
    assert history["items"][1]["hold_status"] == "committed"
    assert [i["refund_id"] for i in history["items"][3:]] == ["RET-1", "RET-2"]
    gateway.assert_invariants()


def test_a_refund_without_a_receipt_is_limited_to_what_was_paid(gateway: Gateway) -> None:
    number = post(gateway, "/api/v1/gift-cards", {"number": "GC-77", "amount": "500.00"}, OPERATOR)["number"]
    refused = post(
        gateway, f"/api/v1/gift-cards/{number}/refunds", {"refund_id": "X", "amount": "0.01"}, TILL, status=422
    )
    assert refused["error"]["code"] == "gift_card_refund_exceeds"
    post(gateway, f"/api/v1/gift-cards/{number}/redeem", {"amount": "120.00"}, TILL)
    post(gateway, f"/api/v1/gift-cards/{number}/refunds", {"refund_id": "X", "amount": "120.00"}, TILL)
    assert gift(gateway, number)["balance"] == "500.00"
    gateway.assert_invariants()


def test_blocked_stock_is_worthless_until_unblocked(gateway: Gateway) -> None:
    batch = post(gateway, "/api/v1/gift-cards/batches", {"count": 2, "amount": 300, "blocked": True}, OPERATOR)
    number = batch["cards"][0]["number"]
    assert gift(gateway, number)["blocked"] is True
    for path, body in (
        (f"/api/v1/gift-cards/{number}/holds", {"amount": 10}),
        (f"/api/v1/gift-cards/{number}/redeem", {"amount": 10}),
    ):
        assert post(gateway, path, body, TILL, status=409)["error"]["code"] == "gift_card_blocked"
    assert post(gateway, f"/api/v1/gift-cards/{number}/unblock", {}, TILL, status=403)["error"]["code"] == "forbidden"

    unblocked = post(gateway, f"/api/v1/gift-cards/{number}/unblock", {"reason": "sold at store 12"}, OPERATOR)
    assert unblocked["blocked"] is False
    post(gateway, f"/api/v1/gift-cards/{number}/redeem", {"amount": "299.99"}, TILL)
    assert gift(gateway, number)["balance"] == "0.01"
    post(gateway, f"/api/v1/gift-cards/{number}/block", {"reason": "lost"}, OPERATOR)
    post(gateway, f"/api/v1/gift-cards/{number}/block", None, OPERATOR)  # already blocked: nothing changes
    kinds = [
        (i["kind"], i["note"])
        for i in gateway.http.get(f"/api/v1/gift-cards/{number}/history", headers=SITE).json()["items"]
    ]
    assert kinds == [("issue", None), ("unblock", "sold at store 12"), ("redeem", None), ("block", "lost")]
    assert gift(gateway, batch["cards"][1]["number"])["blocked"] is True
    gateway.assert_invariants()


def test_expiry_books_what_is_left_once(gateway: Gateway) -> None:
    expires = (gateway.clock() + timedelta(days=1)).isoformat()
    number = post(
        gateway, "/api/v1/gift-cards", {"number": "GC-EXP", "amount": "800.00", "expires_at": expires}, OPERATOR
    )["number"]
    post(gateway, f"/api/v1/gift-cards/{number}/redeem", {"amount": "300.00", "receipt_id": "S-1"}, TILL)
    open_hold = post(
        gateway, f"/api/v1/gift-cards/{number}/holds", {"amount": "100.00", "ttl_seconds": 7 * 24 * 3600}, TILL
    )

    gateway.clock.advance(days=2)
    card = gift(gateway, number)
    assert (card["expired"], card["balance"]) == (True, "500.00")
    assert post(gateway, f"/api/v1/gift-cards/{number}/redeem", {"amount": 1}, TILL, status=409)["error"]["code"] == (
        "gift_card_expired"
    )
    refund = {"refund_id": "late", "amount": "10.00", "receipt_id": "S-1"}
    assert post(gateway, f"/api/v1/gift-cards/{number}/refunds", refund, TILL, status=409)["error"]["code"] == (
        "gift_card_expired"
    )

    assert gateway.service.expire_gift_cards() == 1
    assert gateway.service.expire_gift_cards() == 0  # nothing left: running it again changes nothing
    assert gift(gateway, number)["balance"] == "0.00"
    items = gateway.http.get(f"/api/v1/gift-cards/{number}/history", headers=TILL).json()["items"]
    assert (items[-1]["kind"], items[-1]["amount"], items[-1]["balance_after"]) == ("expire", "-500.00", "0.00")
    assert next(i for i in items if i["hold_id"] == open_hold["hold_id"])["hold_status"] == "voided"
    gateway.assert_invariants()


def test_the_invariant_checker_sees_a_tampered_certificate(gateway: Gateway) -> None:
    number = post(gateway, "/api/v1/gift-cards", {"number": "GC-T", "amount": "100.00"}, OPERATOR)["number"]
    held = post(gateway, f"/api/v1/gift-cards/{number}/holds", {"amount": "40.00"}, TILL)
    post(gateway, f"/api/v1/gift-cards/{number}/redeem", {"amount": "40.00", "hold_id": held["hold_id"]}, TILL)
    gateway.assert_invariants()
    now = datetime.now(UTC).replace(tzinfo=None)
    with gateway.service.db.write() as session:  # money appearing from nowhere, and a hold redeemed twice
        session.execute(
            text(
                "INSERT INTO gift_card_entries (number, kind, amount_kopecks, hold_id, client_id, created_at)"
                " VALUES (:n, 'refund', 5000, NULL, 'x', :t), (:n, 'redeem', -100, :h, 'x', :t)"
            ),
            {"n": number, "h": held["hold_id"], "t": now},
        )
    violations = gateway.service.check().violations
    assert any("refunded 5000 but only 4100 was paid" in v for v in violations), violations
    assert any("refund entries but 0 refunds" in v for v in violations), violations
    assert any(f"hold {held['hold_id']}: committed" in v for v in violations), violations


def test_cli_issues_a_batch_to_csv(tmp_path: Path, database_url: str) -> None:
    out = tmp_path / "certificates.csv"
    args = ["giftcards", "issue", "--count", "25", "--amount", "1500.50", "--out", str(out)]
    args += ["--expires", "2031-12-31", "--blocked", "--key", "print-run-7", "--database-url", database_url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 25 and len({r["number"] for r in rows}) == 25
    assert {(r["amount"], r["expires_at"], r["blocked"]) for r in rows} == {
        ("1500.50", "2031-12-31T23:59:59+00:00", "1")
    }
    first = out.read_text(encoding="utf-8")

    again = CliRunner().invoke(cli, args)  # the same key after a crash: the same batch, no second one
    assert again.exit_code == 0, again.output
    assert out.read_text(encoding="utf-8") == first

    db = Database(database_url)
    try:
        service = LoyaltyService(db, load_config(DEMO_CONFIG).program)
        with db.read() as session:
            assert session.execute(text("SELECT count(*) FROM gift_cards")).scalar_one() == 25
        info = service.gift_card_info("operator", GiftCardInfoRequest(number=rows[0]["number"]))
        assert (info.nominal, info.balance, info.blocked) == (Decimal("1500.50"), Decimal("1500.50"), True)
        assert service.check().ok
    finally:
        db.dispose()

"""Merging a duplicate customer into the one who stays, over real HTTP: balances add up, points
keep their expiry (and availability), cards reach the survivor, refunds of pre-merge receipts
and shipments of pre-merge orders still work, open holds block it, it happens once."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import GatewayConfig
from tests.conftest import Gateway, json_of
from tests.support import OPERATOR, SITE, TILL, key

SURVIVOR_CARD = "2700000000014"  # 500 never-expiring points + a 100-point welcome bonus (30 days)
LINES = [{"line_id": "1", "item": "TILE", "quantity": 4, "price": "250.00"}]


def call(gw: Gateway, path: str, body: Any, headers: dict[str, str], status: int = 200, **kw: Any) -> Any:
    response = gw.http.post(path, json=body, headers={**headers, **kw.get("extra", key())})
    assert response.status_code == status, response.text
    return json_of(response)


def balance(gw: Gateway, card: str) -> dict[str, Any]:
    response = gw.http.get(f"/api/v1/cards/{card}/balance", headers=TILL)
    assert response.status_code == 200, response.text
    return dict(response.json())


def customer_of(gw: Gateway, card: str) -> dict[str, Any]:
    return dict(gw.http.get("/api/v1/customers", params={"card_number": card}, headers=TILL).json())


def lots(gw: Gateway, card: str) -> list[tuple[str, int, str | None]]:
    """(source, remaining, expires_at) of the live lots of the card's account."""
    with gw.service.db.read() as session:
        rows = session.execute(
            text(
                "SELECT l.source, l.remaining, l.expires_at FROM lots l JOIN cards c ON c.account_id = l.account_id"
                " WHERE c.number = :card AND l.remaining > 0 ORDER BY l.expires_at, l.source, l.remaining"
            ),
            {"card": card},
        ).all()
    return [(str(s), int(r), str(e)[:19] if e is not None else None) for s, r, e in rows]


def _account(gw: Gateway, card: str) -> str:
    with gw.service.db.read() as session:
        return str(session.execute(text("SELECT account_id FROM cards WHERE number = :c"), {"c": card}).scalar_one())


def duplicate(gw: Gateway, phone: str, card: str) -> str:
    return str(call(gw, "/api/v1/customers", {"phone": phone, "card_number": card}, TILL)["customer_id"])


def test_merge_moves_points_with_their_dates_and_keeps_history(gateway: Gateway) -> None:
    survivor = customer_of(gateway, SURVIVOR_CARD)["customer_id"]
    gateway.clock.advance(days=10)  # the duplicate registers later: its points expire later
    dup = duplicate(gateway, "+79995550001", "2799000000001")
    bought = call(
        gateway,
        "/api/v1/receipts",
        {"receipt_id": "B-1", "card_number": "2799000000001", "lines": LINES, "points_to_spend": 50},
        TILL,
    )
    assert (bought["points_spent"], bought["points_accrued"]) == (50, 47)  # 5 % of 950
    before_survivor, before_dup = balance(gateway, SURVIVOR_CARD), balance(gateway, "2799000000001")
    assert (before_survivor["balance"], before_dup["balance"]) == (600, 97)
    moving = lots(gateway, "2799000000001")

    merge_key = {"Idempotency-Key": "merge-dup-1"}
    done = call(
        gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup, "reason": "twice"}, OPERATOR, extra=merge_key
    )
    assert (done["points_moved"], done["lots_moved"], done["cards_moved"]) == (97, 2, ["2799000000001"])
    assert (done["survivor_customer_id"], done["merged_customer_id"], done["receipts_moved"]) == (survivor, dup, 1)

    after = balance(gateway, SURVIVOR_CARD)
    assert (after["balance"], after["available"]) == (697, 697)
    assert balance(gateway, "2799000000001") == {**after, "card_number": "2799000000001"}  # the old card reaches it
    assert set(moving) <= set(lots(gateway, SURVIVOR_CARD))  # same points, same expiry dates
    assert customer_of(gateway, "2799000000001")["customer_id"] == survivor
    assert (
        gateway.http.get("/api/v1/customers", params={"phone": "+79995550001"}, headers=TILL).json()["customer_id"]
        == survivor
    )
    gateway.assert_invariants()

    snapshot = gateway.ledger_snapshot()
    again = call(
        gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup, "reason": "twice"}, OPERATOR, extra=merge_key
    )
    assert again == done
    other_key = call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, OPERATOR)
    assert other_key["merge_id"] == done["merge_id"]  # merged once, whatever the key
    assert gateway.ledger_snapshot() == snapshot

    refund = call(gateway, "/api/v1/receipts/B-1/refunds", {"refund_id": "B-1-R", "full": True}, TILL)
    assert (refund["points_returned"], refund["points_reversed"], refund["points_shortfall"]) == (50, 47, 0)
    assert refund["money_to_return"] == "950.00"
    assert balance(gateway, SURVIVOR_CARD)["balance"] == 700
    gateway.assert_invariants()

    history = gateway.http.get(f"/api/v1/customers/{survivor}/history", headers=SITE).json()
    assert [m["merge_id"] for m in history["merges"]] == [done["merge_id"]]
    assert [(r["receipt_id"], [x["refund_id"] for x in r["refunds"]]) for r in history["receipts"]] == [
        ("B-1", ["B-1-R"])
    ]
    owners = {(e["kind"], e["customer_id"]) for e in history["entries"]}
    assert {("welcome", dup), ("spend", dup), ("accrual", dup), ("merge_out", dup)} <= owners
    assert {("welcome", survivor), ("merge_in", survivor), ("return", survivor), ("reverse", survivor)} <= owners
    dup_view = gateway.http.get(f"/api/v1/customers/{dup}/history", headers=SITE).json()
    assert dup_view["merged_into"] == survivor

    # The duplicate's welcome bonus (registered 10 days later) expires 10 days after the survivor's own.
    gateway.clock.advance(days=21)
    assert balance(gateway, SURVIVOR_CARD)["balance"] == 600  # the survivor's own welcome bonus is gone
    gateway.clock.advance(days=10)
    assert balance(gateway, SURVIVOR_CARD)["balance"] == 500  # the duplicate's (50 left + 50 returned) too
    gateway.assert_invariants()


def test_open_holds_block_a_merge_and_a_merged_customer_stays_merged(gateway: Gateway) -> None:
    survivor = customer_of(gateway, SURVIVOR_CARD)["customer_id"]
    dup = duplicate(gateway, "+79995550002", "2799000000002")
    held = call(gateway, "/api/v1/holds", {"card_number": "2799000000002", "points": 30}, TILL)
    snapshot = gateway.ledger_snapshot()
    blocked = call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, OPERATOR, status=409)
    assert blocked["error"]["code"] == "merge_open_holds"
    assert blocked["error"]["details"]["hold_ids"] == [held["hold_id"]]
    assert gateway.ledger_snapshot() == snapshot
    assert call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, TILL, status=403)["error"][
        "code"
    ] == ("forbidden")

    call(gateway, f"/api/v1/holds/{held['hold_id']}/cancel", None, TILL)
    call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, OPERATOR)
    third = duplicate(gateway, "+79995550003", "2799000000003")
    into_merged = call(gateway, f"/api/v1/customers/{dup}/merge", {"merged_id": third}, OPERATOR, status=409)
    assert into_merged["error"]["code"] == "customer_merged"
    elsewhere = call(gateway, f"/api/v1/customers/{third}/merge", {"merged_id": dup}, OPERATOR, status=409)
    assert elsewhere["error"]["code"] == "customer_merged"
    new_card = call(gateway, f"/api/v1/customers/{dup}/cards", {}, TILL, status=409)
    assert new_card["error"]["code"] == "customer_merged"
    itself = call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": survivor}, OPERATOR, status=422)
    assert itself["error"]["code"] == "validation_error"
    gateway.assert_invariants()


def test_pending_points_and_open_orders_follow_the_merge(start_gateway: Any, demo_config: GatewayConfig) -> None:
    program = demo_config.program.model_copy(
        update={"accrual": demo_config.program.accrual.model_copy(update={"pending_days": 14})}
    )
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"program": program}))
    survivor = customer_of(gw, SURVIVOR_CARD)["customer_id"]
    dup = duplicate(gw, "+79995550004", "2799000000004")
    call(gw, "/api/v1/receipts", {"receipt_id": "P-1", "card_number": "2799000000004", "lines": LINES}, TILL)
    order = {"order_id": "O-1", "version": 1, "card_number": "2799000000004", "lines": LINES}
    placed = gw.http.put("/api/v1/orders/O-1", json=order, headers={**SITE, **key()})
    assert placed.status_code == 200, placed.text
    assert placed.json()["points_pending"] == 50
    assert balance(gw, "2799000000004")["pending"] == 100  # 50 for 14 days, 50 until shipped

    done = call(gw, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, OPERATOR)
    assert (done["points_moved"], done["orders_moved"]) == (200, 1)
    after = balance(gw, SURVIVOR_CARD)
    assert (after["available"], after["pending"]) == (700, 100)
    gw.assert_invariants()

    shipped = {**order, "version": 2, "shipments": [{"shipment_id": "S-1", "lines": [{"line_id": "1", "quantity": 4}]}]}
    response = gw.http.put("/api/v1/orders/O-1", json=shipped, headers={**SITE, **key()})
    assert response.status_code == 200, response.text
    assert (response.json()["points_pending"], response.json()["points_available"]) == (0, 50)
    with gw.service.db.read() as session:  # the shipment unlocked the order's points on the survivor's account
        unlocked = session.execute(
            text("SELECT count(*) FROM ledger_entries WHERE kind = 'unlock' AND account_id = :a"),
            {"a": _account(gw, SURVIVOR_CARD)},
        ).scalar_one()
    assert unlocked == 1
    gw.clock.advance(days=15)
    assert (balance(gw, SURVIVOR_CARD)["available"], balance(gw, SURVIVOR_CARD)["pending"]) == (800, 0)
    gw.assert_invariants()


def test_cli_merges(gateway: Gateway, database_url: str) -> None:
    survivor = customer_of(gateway, SURVIVOR_CARD)["customer_id"]
    dup = duplicate(gateway, "+79995550005", "2799000000005")
    args = ["customers", "merge", survivor, dup, "--reason", "duplicate", "--database-url", database_url]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "100 points in 1 lots" in first.output
    second = CliRunner().invoke(cli, args)  # the same command again: the same merge, nothing moves
    assert second.exit_code == 0 and "100 points in 1 lots" in second.output
    assert balance(gateway, SURVIVOR_CARD)["balance"] == 700
    missing = CliRunner().invoke(cli, ["customers", "merge", survivor, "nobody", "--database-url", database_url])
    assert missing.exit_code == 1 and "customer_not_found" in missing.output
    gateway.assert_invariants()


def test_the_checker_notices_a_merge_that_lost_points(gateway: Gateway) -> None:
    survivor = customer_of(gateway, SURVIVOR_CARD)["customer_id"]
    dup = duplicate(gateway, "+79995550006", "2799000000006")
    done = call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, OPERATOR)
    with gateway.service.db.write() as session:
        session.execute(
            text(
                "UPDATE lots SET expires_at = NULL"
                " WHERE id = (SELECT lot_id FROM ledger_entries WHERE kind = 'merge_in')"
            )
        )
        session.execute(text("UPDATE customer_merges SET points_moved = 99 WHERE id = :id"), {"id": done["merge_id"]})
    violations = gateway.service.check().violations
    assert any("does not keep its dates" in v for v in violations), violations
    assert any(f"merge {done['merge_id']}: recorded 99 points" in v for v in violations), violations


def test_per_customer_promo_limits_follow_the_merge(gateway: Gateway) -> None:
    survivor = customer_of(gateway, SURVIVOR_CARD)["customer_id"]
    dup = duplicate(gateway, "+79995550007", "2799000000007")
    terms = {"name": "Один раз", "description": "5%", "discount_percent": 5, "code": "ONCE-PER-PERSON"}
    call(gateway, "/api/v1/campaigns", {**terms, "uses_per_code": None, "per_customer": 1}, OPERATOR)

    def use(card: str, receipt_id: str) -> httpx.Response:
        body = {"receipt_id": receipt_id, "card_number": card, "lines": LINES, "promo_codes": ["ONCE-PER-PERSON"]}
        return gateway.http.post("/api/v1/receipts", json=body, headers={**TILL, **key()})

    assert use("2799000000007", "U-1").status_code == 200
    call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, OPERATOR)
    again = use(SURVIVOR_CARD, "U-2")  # the same person, now under one account
    assert again.status_code == 409 and again.json()["error"]["details"]["reason"] == "customer_limit", again.text


def test_referrals_and_order_turnover_follow_the_merge(gateway: Gateway) -> None:
    survivor = customer_of(gateway, SURVIVOR_CARD)["customer_id"]
    dup = duplicate(gateway, "+79995550008", "2799000000008")
    friend = call(
        gateway,
        "/api/v1/customers",
        {"phone": "+79995550009", "card_number": "2799000000009", "referrer_card": "2799000000008"},
        TILL,
    )["customer_id"]
    shipment = {"shipment_id": "S-1", "lines": [{"line_id": "1", "quantity": 4}]}
    order = {"order_id": "O-8", "version": 1, "card_number": "2799000000008", "lines": LINES, "shipments": [shipment]}
    placed = gateway.http.put("/api/v1/orders/O-8", json=order, headers={**SITE, **key()})
    assert placed.status_code == 200, placed.text

    call(gateway, f"/api/v1/customers/{survivor}/merge", {"merged_id": dup}, OPERATOR)
    with gateway.service.db.read() as session:
        referrer = session.execute(text("SELECT referrer_id FROM customers WHERE id = :c"), {"c": friend}).scalar_one()
        counted = session.execute(
            text("SELECT account_id, amount_kopecks FROM order_turnover WHERE document = 'shipment:S-1'")
        ).one()
    assert referrer == survivor  # the friend's purchases now earn the survivor referral points
    assert tuple(counted) == (_account(gateway, SURVIVOR_CARD), 1000_00)
    gateway.assert_invariants()
    with gateway.service.db.write() as session:  # a merge that forgot the turnover would leave it behind
        session.execute(text("UPDATE order_turnover SET account_id = :a"), {"a": _account(gateway, "2799000000009")})
    violations = gateway.service.check().violations
    assert violations == ["order O-8: the turnover of shipment:S-1 counts for another account than the order's"]

"""Promo campaigns with generated single-use codes, over real HTTP: exact discounts, one use per
code even under concurrency (SQLite and PostgreSQL), validity, limits, reservations at the till,
codes given back by a full refund, and no code kept in clear in the database."""

from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import GatewayConfig
from tests.conftest import Gateway, json_of
from tests.support import OPERATOR, SITE, TILL, key

CARDS = ["2700000000014", "2700000000021", "2700000000038"]
LINES = [
    {"line_id": "1", "item": "PAINT-5L", "quantity": 2, "price": "350.00"},
    {"line_id": "2", "item": "BRUSH", "quantity": 1, "price": "300.00"},
]


def post(gw: Gateway, path: str, body: Any, headers: dict[str, str] = OPERATOR, status: int = 200) -> Any:
    response = gw.http.post(path, json=body, headers={**headers, **key()})
    assert response.status_code == status, response.text
    return json_of(response)


def new_campaign(gw: Gateway, **terms: Any) -> str:
    body = {"name": "Весна", "description": "Скидка 10% по промокоду", "discount_percent": "10", **terms}
    return str(post(gw, "/api/v1/campaigns", body)["campaign_id"])


def generate(gw: Gateway, campaign_id: str, count: int) -> list[str]:
    batch = post(gw, f"/api/v1/campaigns/{campaign_id}/batches", {"count": count})
    response = gw.http.get(f"/api/v1/campaigns/{campaign_id}/batches/{batch['batch_id']}/codes", headers=OPERATOR)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return [row["code"] for row in csv.DictReader(io.StringIO(response.text))]


def receipt(gw: Gateway, card: str, receipt_id: str, code: str, headers: dict[str, str] = TILL) -> httpx.Response:
    body = {"receipt_id": receipt_id, "card_number": card, "lines": LINES, "promo_codes": [code]}
    return gw.http.post("/api/v1/receipts", json=body, headers={**headers, **key()})


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return dict(body)


def campaign_state(gw: Gateway) -> tuple[int, ...]:
    with gw.service.db.read() as session:
        row = session.execute(
            text(
                "SELECT (SELECT count(*) FROM campaign_code_uses), (SELECT count(*) FROM promo_reservations),"
                " (SELECT count(*) FROM promo_reservations WHERE status = 'open')"
            )
        ).one()
    return (*gw.ledger_snapshot(), *(int(x) for x in row))


def test_a_single_use_code_discounts_exactly_once(gateway: Gateway) -> None:
    campaign_id = new_campaign(gateway, prefix="SPRING")
    codes = generate(gateway, campaign_id, 20)
    assert len(set(codes)) == 20
    assert all(c.startswith("SPRING-") and len(c.replace("-", "")) == len("SPRING") + 10 for c in codes)

    preview = post(
        gateway, "/api/v1/calculate", {"card_number": CARDS[0], "lines": LINES, "promo_codes": [codes[0]]}, TILL
    )
    assert (preview["total_discount"], preview["amount_payable"], preview["points_to_accrue"]) == (
        "100.00",
        "900.00",
        45,
    )

    typed = codes[0].lower().replace("-", " ")  # however the cashier types it
    first = receipt(gateway, CARDS[0], "R-1", typed)
    assert first.status_code == 200, first.text
    done = first.json()
    assert (done["total_amount"], done["total_discount"], done["amount_payable"], done["points_accrued"]) == (
        "1000.00",
        "100.00",
        "900.00",
        45,
    )
    assert [(ln["line_id"], ln["discount"]) for ln in done["lines"]] == [("1", "70.00"), ("2", "30.00")]
    assert codes[0] not in first.text and codes[0].replace("-", "") not in first.text  # receipts name it masked
    assert any(r["rule"] == f"promo:SPRING-…{codes[0][-2:]}" for r in done["explanation"])

    before = campaign_state(gateway)
    retry = receipt(gateway, CARDS[0], "R-1", typed)  # the till resends the receipt with a new key
    assert retry.status_code == 200 and retry.json()["transaction_id"] == done["transaction_id"]
    refused = error(receipt(gateway, CARDS[1], "R-2", codes[0]), 409, "promocode_unavailable")
    assert refused["details"]["reason"] == "used_up"
    assert codes[0] not in str(refused)
    assert campaign_state(gateway) == before  # neither the retry nor the refusal changed anything

    check = post(gateway, "/api/v1/promo-codes/check", {"code": codes[0]}, TILL)
    assert (check["available"], check["reason"], check["status"]) == (False, "used_up", "Уже использован")
    assert post(gateway, "/api/v1/promo-codes/check", {"code": codes[1]}, TILL)["available"] is True
    error(receipt(gateway, CARDS[1], "R-3", "SPRING-0000-0000-00"), 404, "promocode_not_found")

    shown = gateway.http.get(f"/api/v1/campaigns/{campaign_id}", headers=OPERATOR).json()
    assert (shown["codes"], shown["codes_exhausted"], shown["uses"], shown["reserved"]) == (20, 1, 1, 0)
    gateway.assert_invariants()


def _race(base: str, card: str, index: int, code: str, barrier: threading.Barrier) -> str:
    body = {"receipt_id": f"RACE-{index}", "card_number": card, "lines": LINES, "promo_codes": [code]}
    with httpx.Client(base_url=base, timeout=60) as http:
        barrier.wait()
        response = http.post("/api/v1/receipts", json=body, headers={**TILL, **key()})
    if response.status_code == 200:
        return "used"
    return f"{response.json()['error']['code']}:{response.json()['error'].get('details', {}).get('reason')}"


def test_concurrent_receipts_with_one_single_use_code_exactly_one_wins(
    start_gateway: Any, any_database_url: str
) -> None:
    gw: Gateway = start_gateway(url=any_database_url)
    cards = list(CARDS)
    for n in range(5):  # different accounts, so that only the code's lock stands between the receipts
        customer = post(gw, "/api/v1/customers", {"phone": f"+7999111000{n}"}, TILL)
        cards.append(customer["cards"][0]["card_number"])
    code = generate(gw, new_campaign(gw), 1)[0]
    barrier = threading.Barrier(len(cards))
    with ThreadPoolExecutor(len(cards)) as pool:
        outcomes = list(pool.map(lambda i: _race(gw.url, cards[i], i, code, barrier), range(len(cards))))
    assert outcomes.count("used") == 1, outcomes
    assert set(outcomes) - {"used"} <= {"promocode_unavailable:used_up"}, outcomes
    with gw.service.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM campaign_code_uses")).scalar_one() == 1
        assert session.execute(text("SELECT count(*) FROM receipts")).scalar_one() == 1
    gw.assert_invariants()


def test_validity_minimum_and_per_customer_limits(gateway: Gateway) -> None:
    now = gateway.clock()
    later = new_campaign(gateway, valid_from=(now + timedelta(days=3)).isoformat())
    code = generate(gateway, later, 1)[0]
    assert error(receipt(gateway, CARDS[0], "V-1", code), 409, "promocode_unavailable")["details"]["reason"] == (
        "not_yet_valid"
    )

    summer = new_campaign(
        gateway,
        code="LETO-2025",
        uses_per_code=None,
        per_customer=1,
        min_amount="999.99",
        valid_to=(now + timedelta(days=1)).isoformat(),
        discount_percent=None,
        discount_amount="150.00",
    )
    assert gateway.http.get(f"/api/v1/campaigns/{summer}", headers=OPERATOR).json()["shared_code"] == "…25"
    small = {"receipt_id": "V-2", "card_number": CARDS[0], "lines": LINES[1:], "promo_codes": ["leto 2025"]}
    too_small = gateway.http.post("/api/v1/receipts", json=small, headers={**TILL, **key()})
    assert error(too_small, 409, "promocode_unavailable")["details"]["reason"] == "min_amount"
    first = receipt(gateway, CARDS[0], "V-3", "leto-2025")
    assert first.status_code == 200 and first.json()["total_discount"] == "150.00"
    before = campaign_state(gateway)
    again = error(receipt(gateway, CARDS[0], "V-4", "LETO2025"), 409, "promocode_unavailable")
    assert again["details"]["reason"] == "customer_limit"
    assert campaign_state(gateway) == before
    assert receipt(gateway, CARDS[1], "V-5", "LETO-2025").status_code == 200  # another customer may

    gateway.clock.advance(days=2)
    expired = error(receipt(gateway, CARDS[2], "V-6", "LETO-2025"), 409, "promocode_unavailable")
    assert (expired["details"]["reason"], expired["message"]) == ("expired", "Срок действия истёк")
    post(gateway, f"/api/v1/campaigns/{later}/pause", None)
    gateway.clock.advance(days=2)
    paused = error(receipt(gateway, CARDS[2], "V-7", code), 409, "promocode_unavailable")
    assert paused["details"]["reason"] == "inactive"
    post(gateway, f"/api/v1/campaigns/{later}/resume", None)
    assert receipt(gateway, CARDS[2], "V-7", code).status_code == 200
    gateway.assert_invariants()


def test_a_reservation_keeps_the_code_for_its_till(gateway: Gateway) -> None:
    code = generate(gateway, new_campaign(gateway), 1)[0]
    reserved = post(gateway, "/api/v1/promo-codes/reservations", {"code": code, "card_number": CARDS[0]}, TILL)
    assert reserved["available"] is True and reserved["reservation_id"]
    twice = post(gateway, "/api/v1/promo-codes/reservations", {"code": code}, TILL)
    assert twice["reservation_id"] == reserved["reservation_id"]  # the same till asking again

    taken = error(receipt(gateway, CARDS[1], "S-1", code, headers=SITE), 409, "promocode_unavailable")
    assert taken["details"]["reason"] == "reserved"
    elsewhere = post(gateway, "/api/v1/promo-codes/reservations", {"code": code}, SITE, status=409)
    assert elsewhere["error"]["details"]["reason"] == "reserved"

    release = f"/api/v1/promo-codes/reservations/{reserved['reservation_id']}/release"
    assert post(gateway, release, None, TILL)["released"] == 1
    assert post(gateway, release, None, TILL)["released"] == 0  # released already: nothing changes
    again = post(gateway, "/api/v1/promo-codes/reservations", {"code": code, "card_number": CARDS[0]}, TILL)
    assert again["reservation_id"] != reserved["reservation_id"]

    assert receipt(gateway, CARDS[0], "T-1", code).status_code == 200  # the till's receipt consumes it
    with gateway.service.db.read() as session:
        status = session.execute(
            text("SELECT status FROM promo_reservations WHERE id = :id"), {"id": again["reservation_id"]}
        ).scalar_one()
    assert status == "consumed"
    error(
        gateway.http.post(
            release.replace(reserved["reservation_id"], again["reservation_id"]), headers={**TILL, **key()}
        ),
        409,
        "hold_already_resolved",
    )

    lapsing = generate(gateway, new_campaign(gateway), 1)[0]
    post(gateway, "/api/v1/promo-codes/reservations", {"code": lapsing, "ttl_seconds": 60}, TILL)
    error(receipt(gateway, CARDS[1], "S-2", lapsing, headers=SITE), 409, "promocode_unavailable")
    gateway.clock.advance(seconds=61)
    assert (
        receipt(gateway, CARDS[1], "S-2", lapsing, headers=SITE).status_code == 200
    )  # the lapsed hold no longer counts
    assert gateway.service.sweep_promo_reservations() == 1
    assert gateway.service.sweep_promo_reservations() == 0
    gateway.assert_invariants()


@pytest.mark.parametrize("return_on_refund", [True, False])
def test_a_full_refund_gives_the_code_back_only_if_the_campaign_says_so(
    gateway: Gateway, return_on_refund: bool
) -> None:
    code = generate(gateway, new_campaign(gateway, return_on_refund=return_on_refund), 1)[0]
    assert receipt(gateway, CARDS[0], "F-1", code).status_code == 200
    post(gateway, "/api/v1/receipts/F-1/refunds", {"refund_id": "F-1-r1", "amount": "300.00"}, TILL)
    partly = error(receipt(gateway, CARDS[1], "F-2", code), 409, "promocode_unavailable")
    assert partly["details"]["reason"] == "used_up"  # a partial refund never gives the code back
    post(gateway, "/api/v1/receipts/F-1/refunds", {"refund_id": "F-1-r2", "full": True}, TILL)
    again = receipt(gateway, CARDS[1], "F-2", code)
    if return_on_refund:
        assert again.status_code == 200, again.text
        assert again.json()["total_discount"] == "100.00"
    else:
        assert error(again, 409, "promocode_unavailable")["details"]["reason"] == "used_up"
    gateway.assert_invariants()


def test_program_file_codes_keep_working(start_gateway: Any, demo_config: GatewayConfig) -> None:
    promo = {"code": "DEMO5", "description": "Демо 5%", "discount_percent": "5", "per_customer": 1}
    program = demo_config.program.model_validate({**demo_config.program.model_dump(), "promo_codes": [promo]})
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"program": program}))
    assert receipt(gw, CARDS[0], "P-1", "demo5").json()["total_discount"] == "50.00"
    assert error(receipt(gw, CARDS[0], "P-2", "DEMO5"), 409, "promocode_unavailable")["details"] == {
        "promo_code": "DEMO5",
        "reason": "customer_limit",
    }
    refused = post(
        gw, "/api/v1/campaigns", {"name": "x", "description": "x", "discount_percent": 1, "code": "DEMO5"}, status=422
    )
    assert refused["error"]["details"]["field"] == "code"
    gw.assert_invariants()


def test_no_code_is_kept_in_clear(gateway: Gateway) -> None:
    campaign_id = new_campaign(gateway, prefix="SAFE")
    codes = generate(gateway, campaign_id, 50)
    with gateway.service.db.read() as session:
        tables = ["campaign_codes", "promo_code_batches", "promo_campaigns", "idempotency_keys", "journal"]
        dump = "\n".join(
            "|".join(str(value) for value in row)
            for table in tables
            for row in session.execute(text(f"SELECT * FROM {table}")).all()
        ).upper()
    assert not [c for c in codes if c in dump or c.replace("-", "") in dump]
    again = generate(gateway, campaign_id, 1)  # a second batch never repeats a code
    assert again[0] not in codes


def test_1c_till_reserves_and_unlocks_a_campaign_code(gateway: Gateway) -> None:
    code = generate(gateway, new_campaign(gateway, discount_percent=None, discount_amount="250"), 1)[0]

    def info(headers: dict[str, str], promo: str) -> dict[str, Any]:
        response = gateway.http.get(f"/hs/loyaltyservice/promocodeinfo?Promocode={promo}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["Error"] is False, body
        return dict(body)

    mine = info(TILL, code)
    assert (mine["PromocodeIsAvalible"], mine["PromocodeStatus"]) == (True, "Действует")
    assert mine["PromocodeDiscountDescription"] == "Скидка 10% по промокоду (250.00 руб.)"
    # 1C's till reads PromocodeDiscount.Ref and .Name (ФормаРМК.НайтиПромокодКлиент)
    discount = mine["PromocodeDiscount"]
    assert discount["Name"] == mine["PromocodeDiscountDescription"] and discount["Ref"]
    other = info(SITE, code)
    assert (other["PromocodeIsAvalible"], other["PromocodeStatus"]) == (False, "Зарезервирован на другой кассе")
    unknown = info(TILL, "NOPE-1234")
    assert (unknown["PromocodeIsAvalible"], unknown["PromocodeDiscount"]) == (False, {"Ref": "", "Name": ""})

    unlocked = gateway.http.post(f"/hs/loyaltyservice/unlockpromocode?Promocode={code}", headers=TILL)
    assert (unlocked.status_code, unlocked.text) == (200, "Промокод разблокирован")  # compared word for word
    assert info(SITE, code)["PromocodeIsAvalible"] is True  # now the other client holds it
    unknown_unlock = gateway.http.post("/hs/loyaltyservice/unlockpromocode?Promocode=NOPE", headers=TILL)
    assert unknown_unlock.text == "Промокод разблокирован"


def test_cli_generates_codes_to_csv(tmp_path: Path, start_gateway: Any, database_url: str) -> None:
    gw: Gateway = start_gateway()
    campaign_id = new_campaign(gw, prefix="CLI", uses_per_code=3)
    out = tmp_path / "codes.csv"
    args = ["campaigns", "generate", campaign_id, "--count", "40", "--out", str(out), "--key", "batch-1"]
    result = CliRunner().invoke(cli, [*args, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len({r["code"] for r in rows}) == 40 and {(r["uses"], r["max_uses"]) for r in rows} == {("0", "3")}
    for n in range(3):
        assert receipt(gw, CARDS[n], f"C-{n}", rows[0]["code"]).status_code == 200
    error(receipt(gw, CARDS[0], "C-4", rows[0]["code"]), 409, "promocode_unavailable")
    show = CliRunner().invoke(cli, ["campaigns", "show", campaign_id, "--database-url", database_url])
    assert show.exit_code == 0, show.output
    assert "40 (1 used up, 0 reserved now)" in show.output

"""A tiered, segmented program end to end over real HTTP: registration with a segment and a
referrer, ``/api/v1/calculate`` and ``/api/v1/receipts`` with the explanation of every number,
the tier upgrade on the crossing purchase, the foreman's referral points, no redemption on the
first purchase, and a refund that takes the referral points back.

The building-materials example program; 1 point = 1 rouble; the gateway's clock is set to
Tuesday 10 March 2026, noon in Moscow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from tests.conftest import Gateway, json_of
from tests.support import OPERATOR, TILL, FakeClock, key

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"
FOREMAN, CLIENT, BUYER = "2700000009011", "2700000009028", "2700000009035"


@pytest.fixture
def gw(start_gateway: Any, clock: FakeClock) -> Gateway:
    clock.freeze()
    assert clock.frozen_at is not None
    clock.offset = datetime(2026, 3, 10, 9, 0, tzinfo=UTC) - clock.frozen_at
    return start_gateway(config=load_config(BUILDING))  # type: ignore[no-any-return]


def post(gw: Gateway, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = gw.http.post(path, json=body, headers={**TILL, **key()})
    assert response.status_code == status, response.text
    return json_of(response)


def balance(gw: Gateway, card: str) -> dict[str, Any]:
    response = gw.http.get(f"/api/v1/cards/{card}/balance", headers=TILL)
    assert response.status_code == 200, response.text
    return json_of(response)


def why(result: dict[str, Any]) -> dict[tuple[str, str | None], tuple[int, str]]:
    return {(e["rule"], e["line_id"]): (e["points"], e["discount"]) for e in result["explanation"]}


WALLPAPER = [{"line_id": "1", "item": "WP-5001", "quantity": "12", "price": "1200.00"}]


def test_registration_with_segment_and_referrer_and_bad_references_change_nothing(gw: Gateway) -> None:
    foreman = post(gw, "/api/v1/customers", {"card_number": FOREMAN, "phone": "+79990009011", "segment": "partner"})
    assert (foreman["segment"], foreman["referrer_id"]) == ("partner", None)
    before = gw.ledger_snapshot()
    unknown_segment = post(gw, "/api/v1/customers", {"card_number": CLIENT, "segment": "vip"}, status=422)
    assert unknown_segment["error"]["code"] == "validation_error"
    assert unknown_segment["error"]["details"]["field"] == "segment"
    unknown_referrer = post(gw, "/api/v1/customers", {"card_number": CLIENT, "referrer_card": "999"}, status=404)
    assert unknown_referrer["error"]["code"] == "referrer_not_found"
    assert gw.ledger_snapshot() == before
    client = post(
        gw,
        "/api/v1/customers",
        {"card_number": CLIENT, "phone": "+79990009028", "segment": "new_home", "referrer_card": FOREMAN},
    )
    assert (client["segment"], client["referrer_id"], client["welcome_points"]) == (
        "new_home",
        foreman["customer_id"],
        200,
    )


def test_first_purchase_referral_points_and_their_refund(gw: Gateway) -> None:
    post(gw, "/api/v1/customers", {"card_number": FOREMAN, "phone": "+79990009011", "segment": "partner"})
    post(gw, "/api/v1/customers", {"card_number": CLIENT, "segment": "new_home", "referrer_card": FOREMAN})
    foreman_before = balance(gw, FOREMAN)["available"]

    # the first purchase: points cannot pay for it, whatever the balance
    refused = post(
        gw,
        "/api/v1/calculate",
        {"card_number": CLIENT, "store": "S04", "lines": WALLPAPER, "points_to_spend": 100},
        status=409,
    )
    assert refused["error"]["code"] == "points_limit_exceeded"
    assert refused["error"]["details"]["max_points_payable"] == 0
    calc = post(gw, "/api/v1/calculate", {"card_number": CLIENT, "store": "S04", "lines": WALLPAPER})
    assert (calc["total_amount"], calc["total_discount"], calc["max_points_payable"]) == ("14400.00", "1008.00", 0)
    assert calc["points_to_accrue"] == 669  # 5 % (tier base) of 13 392
    explained = why(calc)
    assert explained[("discount:new-home-finishing", "1")] == (0, "1008.00")
    assert explained[("tier:base", "1")] == (669, "0.00")
    assert ("redemption.allow_on_first_purchase", None) in explained
    assert explained[("referral:foreman", None)][0] == 401  # 3 % of 13 392 to the foreman

    receipt = post(
        gw, "/api/v1/receipts", {"receipt_id": "R-1", "card_number": CLIENT, "store": "S04", "lines": WALLPAPER}
    )
    assert (receipt["points_accrued"], receipt["total_discount"]) == (669, "1008.00")
    assert why(receipt) == explained  # what the till showed is what was booked
    foreman = balance(gw, FOREMAN)
    assert foreman["available"] == foreman_before + 401
    assert {"points": 401, "expires_at": "2026-09-06T09:00:00Z"} in foreman["expiring"]  # referral points live 180 days

    # the second purchase may be paid with points
    second = post(
        gw, "/api/v1/calculate", {"card_number": CLIENT, "store": "S04", "lines": WALLPAPER, "points_to_spend": 100}
    )
    assert second["max_points_payable"] == 200 + 669  # the balance; 30 % of 13 392 is more

    # half the wallpaper comes back: half the foreman's points go
    half = {"refund_id": "RF-1", "lines": [{"line_id": "1", "quantity": "6"}]}
    post(gw, f"/api/v1/receipts/{receipt['transaction_id']}/refunds", half)
    assert balance(gw, FOREMAN)["available"] == foreman_before + 401 - 200  # cumulative share: 200 of 401
    post(gw, f"/api/v1/receipts/{receipt['transaction_id']}/refunds", {"refund_id": "RF-2", "full": True})
    assert balance(gw, FOREMAN)["available"] == foreman_before
    again = gw.http.post(
        f"/api/v1/receipts/{receipt['transaction_id']}/refunds",
        json={"refund_id": "RF-2", "full": True},
        headers={**TILL, **key()},
    )  # the same refund again (a new request id): nothing more is taken
    assert again.status_code == 200, again.text
    assert balance(gw, FOREMAN)["available"] == foreman_before
    gw.assert_invariants()


def test_tier_upgrade_on_the_crossing_purchase_over_http(gw: Gateway) -> None:
    post(gw, "/api/v1/customers", {"card_number": BUYER, "phone": "+79990009035"})
    big = [{"line_id": "1", "item": "TL-1001", "quantity": "100", "price": "600.00"}]
    first = post(gw, "/api/v1/receipts", {"receipt_id": "B-1", "card_number": BUYER, "store": "S01", "lines": big})
    assert first["points_accrued"] == 3000  # 5 % of 60 000 at tier base
    calc = post(gw, "/api/v1/calculate", {"card_number": BUYER, "store": "S01", "lines": big})
    assert calc["points_to_accrue"] == 6000  # 60 000 more crosses 100 000: 10 % at silver already
    explained = why(calc)
    assert ("tier.upgrade", None) in explained
    assert explained[("tier:silver", "1")] == (6000, "0.00")
    second = post(gw, "/api/v1/receipts", {"receipt_id": "B-2", "card_number": BUYER, "store": "S01", "lines": big})
    assert second["points_accrued"] == 6000
    found = gw.http.get("/api/v1/customers", params={"card_number": BUYER}, headers=TILL)
    assert json_of(found)["tier"] == "silver"
    third = post(gw, "/api/v1/calculate", {"card_number": BUYER, "store": "S01", "lines": big})
    assert ("tier.upgrade", None) not in why(third) and third["points_to_accrue"] == 6000
    gw.assert_invariants()


def test_partner_split_discount_and_zone_offer_over_http(gw: Gateway) -> None:
    post(gw, "/api/v1/customers", {"card_number": FOREMAN, "phone": "+79990009011", "segment": "partner"})
    lines = [
        {"line_id": "P", "item": "PN-2001", "quantity": "4", "price": "2500.00"},
        {"line_id": "G", "item": "GK-4001", "quantity": "30", "price": "400.00"},
    ]
    spb = post(gw, "/api/v1/calculate", {"card_number": FOREMAN, "store": "S06", "lines": lines})
    assert [(ln["line_id"], ln["discount"], ln["points_accrued"]) for ln in spb["lines"]] == [
        ("P", "1250.00", 250),  # 5 % partner discount, half of it as points, + 10 % paint in St Petersburg
        ("G", "300.00", 300),
    ]
    msk = post(gw, "/api/v1/calculate", {"card_number": FOREMAN, "store": "S01", "lines": lines})
    assert msk["total_discount"] == str(Decimal("250.00") + Decimal("300.00"))


def test_simulation_endpoint_is_for_operators(gw: Gateway) -> None:
    body = {
        "carts": [
            {
                "name": "gold crossing",
                "date": "2026-03-20",
                "store": "S02",
                "customer": {"segment": "retail", "tier": "silver", "turnover": "290000"},
                "lines": [{"line_id": "1", "item": "TL-1001", "quantity": 20, "price": "850.00"}],
            }
        ]
    }
    denied = gw.http.post("/api/v1/program/simulate", json=body, headers=TILL)
    assert denied.status_code == 403
    before = gw.ledger_snapshot()
    response = gw.http.post("/api/v1/program/simulate", json=body, headers=OPERATOR)
    assert response.status_code == 200, response.text
    result = json_of(response)["results"][0]
    assert (result["tier"], result["tier_upgrade"], result["points_to_accrue"]) == ("silver", "gold", 2550)
    assert gw.ledger_snapshot() == before
    too_many = {"carts": [{**body["carts"][0], "points_to_spend": 999_999}]}
    refused = gw.http.post("/api/v1/program/simulate", json=too_many, headers=OPERATOR)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["cart"] == 0

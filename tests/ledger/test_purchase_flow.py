"""A purchase over real HTTP against a running gateway, with exact numbers.

Demo program: 5 % accrual on the amount paid with money, at most 30 % of a receipt payable by
points, points live 365 days, a 100-point welcome bonus living 30 days. Demo card
2700000000014 opens with 500 never-expiring points plus the welcome bonus: 600.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway, json_of
from tests.support import TILL, key, wait_for

CARD = "2700000000014"
LINES = [
    {"line_id": "A", "item": "DRILL-01", "quantity": "2", "price": "500.00"},
    {"line_id": "B", "item": "BITS-SET", "quantity": 1, "price": 250.50},
]


def post(gw: Gateway, path: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
    response = gw.http.post(path, json=body, headers={**TILL, **key()})
    assert response.status_code == status, response.text
    return json_of(response)


def balance(gw: Gateway, card: str = CARD) -> dict[str, Any]:
    response = gw.http.get(f"/api/v1/cards/{card}/balance", headers=TILL)
    assert response.status_code == 200, response.text
    return json_of(response)


def test_calculate_hold_commit_balance(gateway: Gateway) -> None:
    assert balance(gateway)["available"] == 600

    calc = post(gateway, "/api/v1/calculate", {"card_number": CARD, "lines": LINES})
    assert calc["total_amount"] == "1250.50"
    assert calc["max_points_payable"] == 375  # 30 % of 1250.50 = 375.15
    assert calc["points_to_accrue"] == 62  # 5 % of 1250.50 = 62.525

    calc = post(gateway, "/api/v1/calculate", {"card_number": CARD, "lines": LINES, "points_to_spend": 300})
    assert calc["points_to_accrue"] == 47  # 5 % of 950.50 = 47.525
    assert [(ln["line_id"], ln["points_spent"], ln["points_accrued"]) for ln in calc["lines"]] == [
        ("A", 240, 38),
        ("B", 60, 9),
    ]
    assert calc["amount_payable"] == "950.50"

    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 300, "receipt_id": "R-1"})
    assert hold["status"] == "open"
    assert (hold["balance"]["available"], hold["balance"]["held"], hold["balance"]["balance"]) == (300, 300, 600)

    commit = post(
        gateway,
        "/api/v1/receipts",
        {"receipt_id": "R-1", "card_number": CARD, "hold_id": hold["hold_id"], "lines": LINES},
    )
    assert commit["points_spent"] == 300
    assert commit["points_accrued"] == 47
    assert commit["points_released"] == 0
    assert commit["amount_paid_by_points"] == "300.00"
    assert commit["amount_payable"] == "950.50"
    assert [(ln["points_spent"], ln["points_accrued"]) for ln in commit["lines"]] == [(240, 38), (60, 9)]

    after = balance(gateway)
    assert (after["available"], after["held"], after["pending"], after["balance"]) == (347, 0, 0, 347)
    # The welcome lot (soonest to expire) was spent first: what is left never expires but the
    # new accrual, which expires in a year.
    assert [e["points"] for e in after["expiring"]] == [47]
    gateway.assert_invariants()


def test_commit_spends_less_than_held_and_releases_the_rest(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 200})
    commit = post(
        gateway,
        "/api/v1/receipts",
        {
            "receipt_id": "R-2",
            "card_number": CARD,
            "hold_id": hold["hold_id"],
            "points_to_spend": 150,
            "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}],
        },
    )
    assert (commit["points_spent"], commit["points_released"], commit["points_accrued"]) == (150, 50, 42)
    assert balance(gateway)["available"] == 600 - 150 + 42
    gateway.assert_invariants()


def test_cancel_hold_releases_points_once(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 200})
    assert balance(gateway)["available"] == 400
    cancelled = post(gateway, f"/api/v1/holds/{hold['hold_id']}/cancel")
    assert (cancelled["status"], cancelled["points_released"]) == ("voided", 200)
    assert cancelled["balance"]["available"] == 600

    again = post(gateway, f"/api/v1/holds/{hold['hold_id']}/cancel", status=409)
    assert again["error"]["code"] == "hold_already_resolved"
    late = post(
        gateway,
        "/api/v1/receipts",
        {"receipt_id": "R-3", "card_number": CARD, "hold_id": hold["hold_id"], "lines": LINES},
        status=409,
    )
    assert late["error"]["code"] == "hold_already_resolved"
    assert balance(gateway)["available"] == 600
    gateway.assert_invariants()


def test_expired_hold_is_refused_and_voided_by_the_worker(start_gateway: Any) -> None:
    gw: Gateway = start_gateway(workers=True)
    hold = post(gw, "/api/v1/holds", {"card_number": CARD, "points": 100, "ttl_seconds": 60})
    assert balance(gw)["held"] == 100
    gw.clock.advance(seconds=61)

    refused = post(
        gw,
        "/api/v1/receipts",
        {"receipt_id": "R-4", "card_number": CARD, "hold_id": hold["hold_id"], "lines": LINES},
        status=409,
    )
    assert refused["error"]["code"] == "hold_expired"
    # The worker running inside the server voids it on its next pass.
    assert wait_for(lambda: balance(gw)["held"] == 0)
    after = balance(gw)
    assert (after["available"], after["held"]) == (600, 0)
    with gw.service.db.read() as session:
        from gateway.store.models import Hold

        row = session.get(Hold, hold["hold_id"])
        assert row is not None and (row.status, row.void_reason) == ("voided", "expired")
    gw.assert_invariants()


def _buy(gw: Gateway, receipt: str, card: str, lines: list[dict[str, Any]], points: int = 0) -> dict[str, Any]:
    return post(
        gw,
        "/api/v1/receipts",
        {"receipt_id": receipt, "card_number": card, "lines": lines, "points_to_spend": points},
    )


def test_partial_refunds_after_redeem_add_up_exactly(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 300})
    post(
        gateway,
        "/api/v1/receipts",
        {"receipt_id": "R-5", "card_number": CARD, "hold_id": hold["hold_id"], "lines": LINES},
    )
    assert balance(gateway)["available"] == 347

    first = post(
        gateway, "/api/v1/receipts/R-5/refunds", {"refund_id": "RET-1", "lines": [{"line_id": "A", "quantity": 1}]}
    )
    assert (first["amount_refunded"], first["points_returned"], first["points_reversed"]) == ("500.00", 120, 19)
    assert (first["points_shortfall"], first["money_to_return"]) == (0, "380.00")
    assert first["balance"]["available"] == 347 + 120 - 19

    # The same return receipt sent again (a till retry with a new key): same answer, no change.
    before = gateway.ledger_snapshot()
    repeat = post(
        gateway, "/api/v1/receipts/R-5/refunds", {"refund_id": "RET-1", "lines": [{"line_id": "A", "quantity": 1}]}
    )
    assert repeat["points_returned"] == 120
    assert gateway.ledger_snapshot() == before

    second = post(
        gateway, "/api/v1/receipts/R-5/refunds", {"refund_id": "RET-2", "lines": [{"line_id": "A", "quantity": 1}]}
    )
    assert (second["points_returned"], second["points_reversed"], second["money_to_return"]) == (120, 19, "380.00")

    too_much = post(
        gateway,
        "/api/v1/receipts/R-5/refunds",
        {"refund_id": "RET-3", "lines": [{"line_id": "A", "quantity": "0.001"}]},
        status=422,
    )
    assert too_much["error"]["code"] == "refund_exceeds_receipt"

    last = post(gateway, "/api/v1/receipts/R-5/refunds", {"refund_id": "RET-4", "full": True})
    assert (last["amount_refunded"], last["points_returned"], last["points_reversed"]) == ("250.50", 60, 9)
    assert last["money_to_return"] == "190.50"
    # Everything returned: the customer is back where they started, to the point.
    assert balance(gateway)["available"] == 600
    gateway.assert_invariants()


def test_refund_by_amount_in_three_steps_returns_everything_once(gateway: Gateway) -> None:
    _buy(gateway, "R-6", CARD, [{"line_id": "1", "item": "X", "quantity": 3, "price": "33.33"}], points=29)
    # 99.99: 29 points spent (cap 29.997), accrual 5 % of 70.99 = 3.5495 -> 3
    steps = [
        post(gateway, "/api/v1/receipts/R-6/refunds", {"refund_id": f"A-{i}", "amount": "33.33"}) for i in range(3)
    ]
    assert sum(s["points_returned"] for s in steps) == 29
    assert sum(s["points_reversed"] for s in steps) == 3
    assert [s["points_returned"] for s in steps] == [9, 10, 10]
    assert balance(gateway)["available"] == 600
    gateway.assert_invariants()


def test_refund_after_the_spent_points_expired(gateway: Gateway) -> None:
    customer = post(gateway, "/api/v1/customers", {"phone": "8 (912) 000-11-22", "name": "Test"})
    assert customer["phone"] == "+79120001122" and customer["welcome_points"] == 100
    card = customer["cards"][0]["card_number"]
    buy = _buy(gateway, "R-7", card, [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}], points=100)
    assert (buy["points_spent"], buy["points_accrued"]) == (100, 45)

    gateway.clock.advance(days=31)  # the welcome lot the 100 points came from has expired
    refund = post(gateway, "/api/v1/receipts/R-7/refunds", {"refund_id": "RET-7", "full": True})
    assert (refund["points_returned"], refund["points_returned_expired"], refund["points_reversed"]) == (100, 100, 45)
    assert refund["money_to_return"] == "900.00"
    assert balance(gateway, card)["balance"] == 0
    gateway.assert_invariants()


def test_refund_after_expiry_with_renew_policy(start_gateway: Any, demo_config: Any) -> None:
    program = demo_config.program.model_copy(
        update={"expiry": demo_config.program.expiry.model_copy(update={"refund_of_expired_points": "renew"})}
    )
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"program": program}))
    customer = post(gw, "/api/v1/customers", {"phone": "+79120001133"})
    card = customer["cards"][0]["card_number"]
    _buy(gw, "R-8", card, [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}], points=100)
    gw.clock.advance(days=31)
    refund = post(gw, "/api/v1/receipts/R-8/refunds", {"refund_id": "RET-8", "full": True})
    assert (refund["points_returned"], refund["points_returned_expired"]) == (100, 0)
    after = balance(gw, card)
    assert after["available"] == 100
    assert after["expiring"][0]["points"] == 100
    gw.assert_invariants()


def test_refund_of_earned_points_already_spent_reports_a_shortfall(gateway: Gateway) -> None:
    customer = post(gateway, "/api/v1/customers", {"phone": "+79120001144"})
    card = customer["cards"][0]["card_number"]
    _buy(gateway, "R-9", card, [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}])  # +50
    second = _buy(gateway, "R-10", card, [{"line_id": "1", "item": "Y", "quantity": 1, "price": "500.00"}], 150)
    assert (second["points_spent"], second["points_accrued"]) == (150, 17)
    refund = post(gateway, "/api/v1/receipts/R-9/refunds", {"refund_id": "RET-9", "full": True})
    # 50 earned points must go; only the 17 earned since are left: 33 are a shortfall the till
    # withholds from the cash it returns.
    assert (refund["points_reversed"], refund["points_shortfall"]) == (17, 33)
    assert (refund["shortfall_amount"], refund["money_to_return"]) == ("33.00", "967.00")
    assert balance(gateway, card)["balance"] == 0
    gateway.assert_invariants()


@pytest.mark.parametrize("pending_days", [3])
def test_pending_points_are_not_spendable_until_their_date(
    start_gateway: Any, demo_config: Any, pending_days: int
) -> None:
    program = demo_config.program.model_copy(
        update={"accrual": demo_config.program.accrual.model_copy(update={"pending_days": pending_days})}
    )
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"program": program}))
    customer = post(gw, "/api/v1/customers", {"phone": "+79120001155"})
    card = customer["cards"][0]["card_number"]
    _buy(gw, "R-11", card, [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}])
    now = balance(gw, card)
    assert (now["available"], now["pending"], now["balance"]) == (100, 50, 150)
    refused = post(gw, "/api/v1/holds", {"card_number": card, "points": 101}, status=409)
    assert refused["error"]["code"] == "insufficient_points"
    gw.clock.advance(days=pending_days, seconds=1)
    assert balance(gw, card)["available"] == 150
    gw.assert_invariants()


def test_captured_points_wait_for_their_receipt(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 300})
    captured = post(gateway, f"/api/v1/holds/{hold['hold_id']}/capture", {"points": 200})
    assert (captured["status"], captured["captured_points"]) == ("captured", 200)
    assert (captured["balance"]["available"], captured["balance"]["held"]) == (400, 200)
    # A retried write-off is the same capture; a different one is refused.
    assert post(gateway, f"/api/v1/holds/{hold['hold_id']}/capture", {"points": 200})["captured_points"] == 200
    assert (
        post(gateway, f"/api/v1/holds/{hold['hold_id']}/capture", {"points": 250}, status=409)["error"]["code"]
        == "hold_already_resolved"
    )

    commit = post(
        gateway,
        "/api/v1/receipts",
        {"receipt_id": "CAP-1", "card_number": CARD, "hold_id": hold["hold_id"], "lines": LINES},
    )
    assert (commit["points_spent"], commit["points_accrued"]) == (200, 52)  # 5 % of 1050.50
    assert balance(gateway)["available"] == 400 + 52
    gateway.assert_invariants()


def test_a_captured_hold_without_receipt_is_booked_by_the_worker(start_gateway: Any) -> None:
    gw: Gateway = start_gateway(workers=True)
    with_cart = post(gw, "/api/v1/holds", {"card_number": CARD, "points": 100})
    post(gw, f"/api/v1/holds/{with_cart['hold_id']}/capture", {"points": 100, "window_seconds": 3600, "lines": LINES})
    bare = post(gw, "/api/v1/holds", {"card_number": CARD, "points": 50})
    post(gw, f"/api/v1/holds/{bare['hold_id']}/capture", {"points": 40, "window_seconds": 3600})
    assert balance(gw)["available"] == 600 - 100 - 40

    gw.clock.advance(seconds=3601)  # no receipt came: the worker books what the till showed
    assert wait_for(lambda: balance(gw)["held"] == 0)
    # 100 points paid on the calculated cart (accrual 5 % of 1150.50 = 57), 40 as a bare payment
    assert balance(gw)["available"] == 600 - 100 - 40 + 57
    with gw.service.db.read() as session:
        from sqlmodel import select

        from gateway.store.models import Receipt

        receipts = {r.receipt_id: (r.points_spent, r.points_accrued) for r in session.exec(select(Receipt)).all()}
    assert receipts == {f"hold:{with_cart['hold_id']}": (100, 57), f"hold:{bare['hold_id']}": (40, 0)}
    gw.assert_invariants()

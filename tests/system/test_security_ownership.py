"""Every object belongs to the client that made it: another client's receipt cannot be returned,
another client's hold cannot be cancelled, captured or spent, another client's certificate hold
cannot be redeemed or released, and only operators (or a granted client) issue certificates.

Before the fix (issue 18) a transaction id read from a customer's history let any client return
any receipt, and a hold id let any client move another client's points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Gateway, json_of
from tests.security_support import CASHDESK, ERP, OTHER_TILL, two_tills_config
from tests.support import OPERATOR, SITE, TILL, card_with_points, key

LINES = [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}]


@pytest.fixture
def gw(start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway(config=two_tills_config())


def post(gw: Gateway, path: str, body: Any, auth: dict[str, str]) -> Any:
    return gw.http.post(path, json=body, headers={**auth, **key()})


def test_another_clients_receipt_cannot_be_refunded_by_its_transaction_id(gw: Gateway) -> None:
    card = card_with_points(gw.service, 500)
    booked = json_of(post(gw, "/api/v1/receipts", {"receipt_id": "R-1", "card_number": card, "lines": LINES}, TILL))
    txn = booked["transaction_id"]
    before = gw.ledger_snapshot()
    for auth in (OTHER_TILL, SITE):
        refused = post(gw, f"/api/v1/receipts/{txn}/refunds", {"refund_id": "RET-X", "full": True}, auth)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "receipt_not_found"
    assert gw.ledger_snapshot() == before
    own = post(gw, f"/api/v1/receipts/{txn}/refunds", {"refund_id": "RET-1", "full": True}, TILL)
    assert own.status_code == 200, own.text
    assert own.json()["points_reversed"] == booked["points_accrued"]
    gw.assert_invariants()


def test_another_clients_hold_cannot_be_cancelled_captured_or_spent(gw: Gateway) -> None:
    card = card_with_points(gw.service, 500)
    hold = json_of(post(gw, "/api/v1/holds", {"card_number": card, "points": 300}, TILL))
    hold_id = hold["hold_id"]
    before = gw.ledger_snapshot()
    attempts = [
        (f"/api/v1/holds/{hold_id}/cancel", None),
        (f"/api/v1/holds/{hold_id}/capture", {"points": 300}),
        ("/api/v1/receipts", {"receipt_id": "R-2", "card_number": card, "hold_id": hold_id, "lines": LINES}),
    ]
    for path, body in attempts:
        refused = post(gw, path, body, OTHER_TILL)
        assert refused.status_code == 404, (path, refused.text)
        assert refused.json()["error"]["code"] == "hold_not_found"
    assert gw.ledger_snapshot() == before
    spent = post(
        gw, "/api/v1/receipts", {"receipt_id": "R-2", "card_number": card, "hold_id": hold_id, "lines": LINES}, TILL
    )
    assert spent.status_code == 200 and spent.json()["points_spent"] == 300, spent.text
    gw.assert_invariants()


def test_another_clients_gift_card_hold_cannot_be_redeemed_or_released(gw: Gateway) -> None:
    issued = json_of(post(gw, "/api/v1/gift-cards", {"amount": "1000.00"}, OPERATOR))
    number = issued["number"]
    held = json_of(post(gw, f"/api/v1/gift-cards/{number}/holds", {"amount": "600.00"}, TILL))
    hold_id = held["hold_id"]
    for path, body in (
        (f"/api/v1/gift-cards/{number}/redeem", {"amount": "600.00", "hold_id": hold_id}),
        (f"/api/v1/gift-card-holds/{hold_id}/release", None),
    ):
        refused = post(gw, path, body, OTHER_TILL)
        assert refused.status_code == 404, (path, refused.text)
        assert refused.json()["error"]["code"] == "hold_not_found"
    info = gw.http.get(f"/api/v1/gift-cards/{number}", headers=TILL).json()
    assert info["balance"] == "1000.00"
    redeemed = post(gw, f"/api/v1/gift-cards/{number}/redeem", {"amount": "600.00", "hold_id": hold_id}, TILL)
    assert redeemed.status_code == 200, redeemed.text
    assert gw.http.get(f"/api/v1/gift-cards/{number}", headers=TILL).json()["balance"] == "400.00"


def test_gift_certificates_are_issued_by_operators_and_granted_clients_only(gw: Gateway) -> None:
    for auth in (TILL, ERP, OTHER_TILL):
        refused = post(gw, "/api/v1/gift-cards", {"amount": "5000.00", "number": "GC-STOLEN"}, auth)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
    missing = gw.http.get("/api/v1/gift-cards/GC-STOLEN", headers=TILL)
    assert missing.status_code == 404
    # The demo's site is granted gift_cards.issue (the shop sells certificates); so is "cashdesk".
    for auth, number in ((OPERATOR, "GC-OP"), (CASHDESK, "GC-DESK"), (SITE, "GC-SHOP")):
        issued = post(gw, "/api/v1/gift-cards", {"amount": "500.00", "number": number}, auth)
        assert issued.status_code == 200, issued.text
        assert issued.json()["balance"] == "500.00"

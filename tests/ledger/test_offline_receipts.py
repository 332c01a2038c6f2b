"""Offline receipts: accrued with their original time, never spending, once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.conftest import Gateway
from tests.support import TILL, key

CARD = "2700000000014"
LINES = [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}]


def offline(gw: Gateway, receipt: str, when: datetime, status: int = 200, **extra: Any) -> dict[str, Any]:
    response = gw.http.post(
        "/api/v1/receipts/offline",
        headers={**TILL, **key()},
        json={"receipt_id": receipt, "card_number": CARD, "lines": LINES, "occurred_at": when.isoformat(), **extra},
    )
    assert response.status_code == status, response.text
    return dict(response.json())


def test_offline_receipt_accrues_from_its_own_date_once(gateway: Gateway) -> None:
    when = gateway.clock() - timedelta(days=10)
    booked = offline(gateway, "OFF-1", when)
    assert (booked["points_spent"], booked["points_accrued"]) == (0, 50)
    balance = gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=TILL).json()
    assert balance["available"] == 650
    expiring = {e["points"]: datetime.fromisoformat(e["expires_at"]) for e in balance["expiring"]}
    assert abs(expiring[50] - (when + timedelta(days=365))) < timedelta(seconds=1)
    snapshot = gateway.ledger_snapshot()
    assert offline(gateway, "OFF-1", when) == booked  # posted again by a till that is not sure
    assert gateway.ledger_snapshot() == snapshot
    gateway.assert_invariants()


def test_offline_receipts_are_accrual_only_and_bounded_in_age(gateway: Gateway) -> None:
    snapshot = gateway.ledger_snapshot()
    assert offline(gateway, "OFF-2", gateway.clock(), 422, points_to_spend=10)["error"]["code"] == "validation_error"
    assert offline(gateway, "OFF-3", gateway.clock() - timedelta(days=31), 422)["error"]["code"] == "validation_error"
    assert offline(gateway, "OFF-4", gateway.clock() + timedelta(hours=1), 422)["error"]["code"] == "validation_error"
    response = gateway.http.post(
        "/api/v1/receipts/offline",
        headers={**TILL, **key()},
        json={"receipt_id": "OFF-5", "card_number": CARD, "lines": LINES, "occurred_at": "2026-11-20T10:00:00"},
    )
    assert response.status_code == 422  # a time without its offset is ambiguous
    assert gateway.ledger_snapshot() == snapshot


def test_an_offline_receipt_older_than_the_points_lifetime(start_gateway: Any, demo_config: Any) -> None:
    program = demo_config.program.model_copy(
        update={"expiry": demo_config.program.expiry.model_copy(update={"days": 7})}
    )
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"program": program}))
    booked = offline(gw, "OFF-6", gw.clock() - timedelta(days=8))
    assert booked["points_accrued"] == 50
    assert gw.http.get(f"/api/v1/cards/{CARD}/balance", headers=TILL).json()["available"] == 600
    gw.assert_invariants()

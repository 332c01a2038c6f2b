"""Retrying any mutating request with the same key never changes the ledger twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts.operations import HoldRequest
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.idempotency import IN_FLIGHT_LEASE, _claim
from tests.conftest import Gateway, json_of
from tests.support import SITE, TILL

CARD = "2700000000014"
LINES = [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}]


def send(gw: Gateway, path: str, body: dict[str, Any] | None, key: str, auth: dict[str, str] = TILL) -> Any:
    return gw.http.post(path, json=body, headers={**auth, "Idempotency-Key": key})


def _mutations(gw: Gateway) -> list[tuple[str, dict[str, Any] | None]]:
    hold_for_cancel = json_of(send(gw, "/api/v1/holds", {"card_number": CARD, "points": 10}, "setup-hold"))
    json_of(send(gw, "/api/v1/receipts", {"receipt_id": "S-1", "card_number": CARD, "lines": LINES}, "setup-r"))
    customer = json_of(send(gw, "/api/v1/customers", {"email": "setup@example.com"}, "setup-c"))
    return [
        ("/api/v1/holds", {"card_number": CARD, "points": 20}),
        ("/api/v1/receipts", {"receipt_id": "S-2", "card_number": CARD, "lines": LINES, "points_to_spend": 30}),
        (f"/api/v1/holds/{hold_for_cancel['hold_id']}/cancel", None),
        ("/api/v1/receipts/S-1/refunds", {"refund_id": "RS-1", "amount": "100.00"}),
        ("/api/v1/customers", {"phone": "+79120002211", "name": "Idem"}),
        (f"/api/v1/customers/{customer['customer_id']}/cards", {}),
        ("/api/v1/cards/2700000000021/replace", {"reason": "lost"}),
    ]


def test_every_mutation_retried_with_the_same_key_applies_once(gateway: Gateway) -> None:
    for index, (path, body) in enumerate(_mutations(gateway)):
        key = f"retry-{index}"
        first = send(gateway, path, body, key)
        assert first.status_code == 200, (path, first.text)
        snapshot = gateway.ledger_snapshot()
        for _ in range(3):
            again = send(gateway, path, body, key)
            assert again.status_code == 200, (path, again.text)
            assert again.json() == first.json(), path
        assert gateway.ledger_snapshot() == snapshot, path
    gateway.assert_invariants()


def test_same_key_different_payload_is_a_conflict(gateway: Gateway) -> None:
    assert send(gateway, "/api/v1/holds", {"card_number": CARD, "points": 20}, "k1").status_code == 200
    snapshot = gateway.ledger_snapshot()
    response = send(gateway, "/api/v1/holds", {"card_number": CARD, "points": 21}, "k1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert gateway.ledger_snapshot() == snapshot


def test_equivalent_payloads_are_the_same_request(gateway: Gateway) -> None:
    body = {
        "receipt_id": "E-1",
        "card_number": CARD,
        "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": 100.1}],
    }
    first = send(gateway, "/api/v1/receipts", body, "eq")
    body["lines"][0]["price"] = "100.10"  # type: ignore[index]
    second = send(gateway, "/api/v1/receipts", body, "eq")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()


def test_keys_are_scoped_by_client(gateway: Gateway) -> None:
    till = send(gateway, "/api/v1/holds", {"card_number": CARD, "points": 20}, "shared-key")
    site = send(gateway, "/api/v1/holds", {"card_number": CARD, "points": 20}, "shared-key", auth=SITE)
    assert till.status_code == site.status_code == 200
    assert till.json()["hold_id"] != site.json()["hold_id"]


def test_a_request_in_flight_answers_409_and_a_dead_claim_lapses(gateway: Gateway) -> None:
    body = {"card_number": CARD, "points": 20}
    now = gateway.clock()
    # Another worker claimed the key and is still running the request.
    request = HoldRequest(**body)
    stored, entry = _claim(gateway.service.db, "tills", "busy", "hold", request, canonical_hash("hold", request), now)
    assert stored is None and entry is not None
    snapshot = gateway.ledger_snapshot()
    response = send(gateway, "/api/v1/holds", body, "busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_flight"
    assert gateway.ledger_snapshot() == snapshot
    # Its process died: after the lease the retry runs, once.
    gateway.clock.advance(seconds=IN_FLIGHT_LEASE.total_seconds() + 1)
    response = send(gateway, "/api/v1/holds", body, "busy")
    assert response.status_code == 200
    assert send(gateway, "/api/v1/holds", body, "busy").json() == response.json()


def test_a_failed_request_can_be_retried_with_its_key(gateway: Gateway) -> None:
    body = {"card_number": CARD, "points": 700}
    failed = send(gateway, "/api/v1/holds", body, "retry-after-error")
    assert failed.json()["error"]["code"] == "insufficient_points"
    json_of(
        send(
            gateway,
            "/api/v1/receipts",
            {
                "receipt_id": "T-1",
                "card_number": CARD,
                "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "3000.00"}],
            },
            "top-up",
        )
    )  # +150
    ok = send(gateway, "/api/v1/holds", body, "retry-after-error")
    assert ok.status_code == 200 and ok.json()["points"] == 700


@pytest.mark.parametrize("header", [None, "", "x" * 256])
def test_mutations_need_a_valid_key(gateway: Gateway, header: str | None) -> None:
    headers = dict(TILL)
    if header is not None:
        headers["Idempotency-Key"] = header
    response = gateway.http.post("/api/v1/holds", json={"card_number": CARD, "points": 5}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


def test_retention_is_published() -> None:
    from gateway.ledger.idempotency import RETENTION

    assert timedelta(hours=24) <= RETENTION
    assert IN_FLIGHT_LEASE < RETENTION


def test_a_receipt_is_booked_once_whatever_the_key(gateway: Gateway) -> None:
    body = {"receipt_id": "N-1", "card_number": CARD, "lines": LINES, "points_to_spend": 100}
    first = send(gateway, "/api/v1/receipts", body, "n-1")
    snapshot = gateway.ledger_snapshot()
    resent = send(gateway, "/api/v1/receipts", body, "n-1-retry-from-another-request-id")
    assert resent.status_code == 200 and resent.json() == first.json()
    assert gateway.ledger_snapshot() == snapshot
    changed = send(gateway, "/api/v1/receipts", {**body, "points_to_spend": 50}, "n-1-changed")
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "receipt_already_committed"
    assert gateway.ledger_snapshot() == snapshot

"""Bad input gets a stable error code, HTTP 4xx, and changes nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.support import TILL, basic, key

CARD = "2700000000014"
LINE = {"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}


def line(**changes: Any) -> dict[str, Any]:
    return {**LINE, **changes}


CASES: list[tuple[str, str, dict[str, Any] | None, dict[str, str], int, str]] = [
    ("unknown card hold", "/api/v1/holds", {"card_number": "999", "points": 5}, TILL, 404, "card_not_found"),
    (
        "unknown card commit",
        "/api/v1/receipts",
        {"receipt_id": "B1", "card_number": "999", "lines": [LINE]},
        TILL,
        404,
        "card_not_found",
    ),
    (
        "negative quantity",
        "/api/v1/receipts",
        {"receipt_id": "B2", "card_number": CARD, "lines": [line(quantity=-1)]},
        TILL,
        422,
        "validation_error",
    ),
    (
        "zero quantity",
        "/api/v1/calculate",
        {"card_number": CARD, "lines": [line(quantity=0)]},
        TILL,
        422,
        "validation_error",
    ),
    (
        "too many decimals",
        "/api/v1/receipts",
        {"receipt_id": "B3", "card_number": CARD, "lines": [line(price=10.005)]},
        TILL,
        422,
        "validation_error",
    ),
    (
        "too many decimals as text",
        "/api/v1/calculate",
        {"lines": [line(price="10.001")]},
        TILL,
        422,
        "validation_error",
    ),
    ("float-like quantity", "/api/v1/calculate", {"lines": [line(quantity=0.1 + 0.2)]}, TILL, 422, "validation_error"),
    ("negative price", "/api/v1/calculate", {"lines": [line(price="-1.00")]}, TILL, 422, "validation_error"),
    ("missing lines", "/api/v1/receipts", {"receipt_id": "B4", "card_number": CARD}, TILL, 422, "validation_error"),
    ("missing card", "/api/v1/holds", {"points": 5}, TILL, 422, "validation_error"),
    ("unknown field", "/api/v1/holds", {"card_number": CARD, "points": 5, "pionts": 1}, TILL, 422, "validation_error"),
    ("negative points", "/api/v1/holds", {"card_number": CARD, "points": -5}, TILL, 422, "validation_error"),
    ("fractional points", "/api/v1/holds", {"card_number": CARD, "points": 5.5}, TILL, 422, "validation_error"),
    ("duplicate line ids", "/api/v1/calculate", {"lines": [LINE, LINE]}, TILL, 422, "validation_error"),
    ("too many points", "/api/v1/holds", {"card_number": CARD, "points": 601}, TILL, 409, "insufficient_points"),
    (
        "over the 30% cap",
        "/api/v1/receipts",
        {"receipt_id": "B5", "card_number": CARD, "lines": [LINE], "points_to_spend": 31},
        TILL,
        409,
        "points_limit_exceeded",
    ),
    ("unknown hold", "/api/v1/holds/nope/cancel", None, TILL, 404, "hold_not_found"),
    (
        "unknown receipt",
        "/api/v1/receipts/nope/refunds",
        {"refund_id": "x", "full": True},
        TILL,
        404,
        "receipt_not_found",
    ),
    (
        "two refund modes",
        "/api/v1/receipts/x/refunds",
        {"refund_id": "x", "full": True, "amount": "1.00"},
        TILL,
        422,
        "validation_error",
    ),
    ("bad phone", "/api/v1/customers", {"phone": "12345abc"}, TILL, 422, "validation_error"),
    ("existing phone", "/api/v1/customers", {"phone": "+79990000001"}, TILL, 409, "customer_already_exists"),
    (
        "existing card",
        "/api/v1/customers",
        {"phone": "+79120003344", "card_number": CARD},
        TILL,
        409,
        "card_already_exists",
    ),
    ("not json", "/api/v1/holds", None, TILL, 422, "validation_error"),
    ("no credentials", "/api/v1/holds", {"card_number": CARD, "points": 5}, {}, 401, "unauthorized"),
    (
        "wrong password",
        "/api/v1/holds",
        {"card_number": CARD, "points": 5},
        basic("касса", "wrong"),
        401,
        "unauthorized",
    ),
    (
        "wrong token",
        "/api/v1/holds",
        {"card_number": CARD, "points": 5},
        {"Authorization": "Bearer not-a-real-token-at-all"},
        401,
        "unauthorized",
    ),
    (
        "garbage basic",
        "/api/v1/holds",
        {"card_number": CARD, "points": 5},
        {"Authorization": "Basic ***"},
        401,
        "unauthorized",
    ),
]


@pytest.mark.parametrize(("path", "body", "auth", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(
    gateway: Gateway, path: str, body: dict[str, Any] | None, auth: dict[str, str], status: int, code: str
) -> None:
    before = gateway.ledger_snapshot()
    if body is None and code == "validation_error":
        response = gateway.http.post(
            path, content=b"{not json", headers={**auth, **key(), "Content-Type": "application/json"}
        )
    else:
        response = gateway.http.post(path, json=body, headers={**auth, **key()})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert gateway.ledger_snapshot() == before
    gateway.assert_invariants()


def test_blocked_card_cannot_spend(gateway: Gateway) -> None:
    replaced = gateway.http.post(
        f"/api/v1/cards/{CARD}/replace", json={"new_card_number": "NEW-1"}, headers={**TILL, **key()}
    )
    assert replaced.status_code == 200, replaced.text
    before = gateway.ledger_snapshot()
    response = gateway.http.post("/api/v1/holds", json={"card_number": CARD, "points": 5}, headers={**TILL, **key()})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "card_blocked")
    assert response.json()["error"]["details"]["replaced_by"] == "NEW-1"
    assert gateway.ledger_snapshot() == before
    # The points moved with the account to the new card.
    assert gateway.http.get("/api/v1/cards/NEW-1/balance", headers=TILL).json()["available"] == 600


def test_cyrillic_basic_login_and_bearer_token_authenticate(gateway: Gateway) -> None:
    raw = base64.b64encode("касса:demo-till".encode()).decode()
    ok = gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers={"Authorization": f"Basic {raw}"})
    assert ok.status_code == 200
    token = gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers={"Authorization": "Bearer demo-till-token-0001"})
    assert token.status_code == 200
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance").status_code == 401


def test_operator_endpoints_need_operator_credentials(gateway: Gateway) -> None:
    assert gateway.http.get("/api/v1/ledger/check", headers=TILL).status_code == 403
    body = gateway.http.get("/api/v1/ledger/check", headers=basic("operator", "demo-operator")).json()
    assert body["ok"] is True and body["accounts"] == 3

"""A company account shared by several contacts, over real HTTP: each contact has a card of
their own reaching the company's points; their role decides who earns and who may spend, and a
refusal changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Gateway, json_of
from tests.support import OPERATOR, TILL, key

LINES = [{"line_id": "1", "item": "CEMENT-50", "quantity": 10, "price": "100.00"}]
BUYER_CARD, VIEWER_CARD, EARNER_CARD = "2788000000001", "2788000000002", "2788000000003"


def send(gw: Gateway, method: str, path: str, body: Any = None, headers: dict[str, str] = OPERATOR) -> httpx.Response:
    return gw.http.request(method, path, json=body, headers={**headers, **key()})


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return json_of(response)


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def points(gw: Gateway, card: str) -> int:
    return int(ok(gw.http.get(f"/api/v1/cards/{card}/balance", headers=TILL))["balance"])


def company_with_contacts(gw: Gateway) -> tuple[str, dict[str, str]]:
    company = ok(send(gw, "POST", "/api/v1/companies", {"name": "ООО «Ромашка»", "inn": "7707083893"}))
    people = {}
    for role, phone in (("buyer", "+79997770001"), ("viewer", "+79997770002"), ("earner", "+79997770003")):
        people[role] = ok(send(gw, "POST", "/api/v1/customers", {"phone": phone, "name": role}, TILL))["customer_id"]
    for role, card in (("buyer", BUYER_CARD), ("viewer", VIEWER_CARD), ("earner", EARNER_CARD)):
        body = {"customer_id": people[role], "role": role, "card_number": card}
        ok(send(gw, "POST", f"/api/v1/companies/{company['company_id']}/members", body))
    return str(company["company_id"]), people


def test_roles_decide_who_earns_and_who_spends(gateway: Gateway) -> None:
    company_id, people = company_with_contacts(gateway)
    personal_card = ok(gateway.http.get("/api/v1/customers", params={"customer_id": people["earner"]}, headers=TILL))[
        "cards"
    ][0]["card_number"]

    earned = ok(
        send(
            gateway, "POST", "/api/v1/receipts", {"receipt_id": "E-1", "card_number": EARNER_CARD, "lines": LINES}, TILL
        )
    )
    assert earned["points_accrued"] == 50
    assert points(gateway, BUYER_CARD) == points(gateway, VIEWER_CARD) == 50  # one company account
    assert points(gateway, personal_card) == 100  # the contact's own points (welcome bonus) are apart

    hold = ok(send(gateway, "POST", "/api/v1/holds", {"card_number": BUYER_CARD, "points": 20}, TILL))
    spent = ok(
        send(
            gateway,
            "POST",
            "/api/v1/receipts",
            {"receipt_id": "B-1", "card_number": BUYER_CARD, "lines": LINES, "hold_id": hold["hold_id"]},
            TILL,
        )
    )
    assert (spent["points_spent"], spent["points_accrued"]) == (20, 49)
    assert points(gateway, VIEWER_CARD) == 79

    snapshot = gateway.ledger_snapshot()
    refused(
        send(gateway, "POST", "/api/v1/holds", {"card_number": VIEWER_CARD, "points": 10}, TILL),
        403,
        "member_may_not_spend",
    )
    spend = {"receipt_id": "V-1", "card_number": VIEWER_CARD, "lines": LINES, "points_to_spend": 10}
    refused(send(gateway, "POST", "/api/v1/receipts", spend, TILL), 403, "member_may_not_spend")
    preview = {"card_number": VIEWER_CARD, "lines": LINES, "points_to_spend": 10}
    refused(send(gateway, "POST", "/api/v1/calculate", preview, TILL), 403, "member_may_not_spend")
    earn = {"receipt_id": "V-2", "card_number": VIEWER_CARD, "lines": LINES}
    refused(send(gateway, "POST", "/api/v1/receipts", earn, TILL), 403, "member_may_not_earn")
    by_earner = {"receipt_id": "E-2", "card_number": EARNER_CARD, "lines": LINES, "points_to_spend": 10}
    refused(send(gateway, "POST", "/api/v1/receipts", by_earner, TILL), 403, "member_may_not_spend")
    locked = gateway.http.get(
        f"/hs/loyaltyservice/getclientbonuses?ClientCardID={VIEWER_CARD}&BlockBonuses=1", headers=TILL
    ).json()
    assert (locked["Error"], locked["ErrorCode"]) == (True, "member_may_not_spend")
    assert gateway.ledger_snapshot() == snapshot  # every refusal changed nothing
    assert points(gateway, VIEWER_CARD) == 79  # the viewer sees the balance

    shown = ok(gateway.http.get(f"/api/v1/companies/{company_id}", headers=OPERATOR))
    assert (shown["name"], shown["inn"], shown["balance"], shown["available"]) == (
        "ООО «Ромашка»",
        "7707083893",
        79,
        79,
    )
    assert [
        (m["role"], m["may_earn"], m["may_spend"], [c["card_number"] for c in m["cards"]]) for m in shown["members"]
    ] == [
        ("buyer", True, True, [BUYER_CARD]),
        ("viewer", False, False, [VIEWER_CARD]),
        ("earner", True, False, [EARNER_CARD]),
    ]
    gateway.assert_invariants()


def test_contacts_come_and_go(gateway: Gateway) -> None:
    company_id, people = company_with_contacts(gateway)
    members = f"/api/v1/companies/{company_id}/members"
    ok(
        send(
            gateway, "POST", "/api/v1/receipts", {"receipt_id": "E-1", "card_number": EARNER_CARD, "lines": LINES}, TILL
        )
    )

    promoted = ok(send(gateway, "PATCH", f"{members}/{people['viewer']}", {"role": "buyer"}))
    assert next(m for m in promoted["members"] if m["customer_id"] == people["viewer"])["may_spend"] is True
    ok(send(gateway, "POST", "/api/v1/holds", {"card_number": VIEWER_CARD, "points": 10}, TILL))

    left = ok(send(gateway, "DELETE", f"{members}/{people['buyer']}"))
    gone = next(m for m in left["members"] if m["customer_id"] == people["buyer"])
    assert (gone["active"], gone["may_spend"], gone["cards"][0]["status"]) == (False, False, "blocked")
    refused(send(gateway, "POST", "/api/v1/holds", {"card_number": BUYER_CARD, "points": 5}, TILL), 409, "card_blocked")
    refused(send(gateway, "DELETE", f"{members}/{people['buyer']}"), 404, "member_not_found")
    refused(
        send(gateway, "POST", members, {"customer_id": people["earner"], "role": "buyer"}), 409, "member_already_exists"
    )

    back = ok(send(gateway, "POST", members, {"customer_id": people["buyer"], "role": "earner"}))
    again = next(m for m in back["members"] if m["customer_id"] == people["buyer"])
    assert (again["active"], again["role"], [c["status"] for c in again["cards"]]) == (True, "earner", ["active"])
    refused(
        send(gateway, "POST", "/api/v1/holds", {"card_number": BUYER_CARD, "points": 5}, TILL),
        403,
        "member_may_not_spend",
    )

    refused(send(gateway, "POST", "/api/v1/companies", {"name": "x"}, TILL), 403, "forbidden")
    refused(
        send(
            gateway,
            "POST",
            f"/api/v1/companies/{people['buyer']}/members",
            {"customer_id": people["earner"], "role": "buyer"},
        ),
        404,
        "company_not_found",
    )
    refused(send(gateway, "POST", members, {"customer_id": company_id, "role": "buyer"}), 422, "validation_error")
    refused(send(gateway, "POST", members, {"customer_id": people["earner"], "role": "owner"}), 422, "validation_error")
    gateway.assert_invariants()

"""The requests each benchmark scenario sends, how a success is recognised, and the cards they use.

Every scenario sends what a real till sends: a three-line cart on one of ``CARD_COUNT`` cards
(so that requests do not all queue on one account's lock), fresh idempotency keys and receipt
numbers for writes. A reply counts as a success only if the protocol says so (HTTP 200 *and*
``"Error":false`` for 1C, ``ReturnCode`` 0 for SOAP), not merely if the server answered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CARD_COUNT = 2000
CARD_POINTS = 1_000_000
TILL_AUTH = "Basic " + base64.b64encode("касса:demo-till".encode()).decode()
LINES = [
    {"line_id": "1", "item": "MILK-1L", "quantity": "2", "price": "89.90"},
    {"line_id": "2", "item": "BREAD", "quantity": "1", "price": "55.00"},
    {"line_id": "3", "item": "CHEESE", "quantity": "0.350", "price": "899.00", "amount": "314.65"},
]


def card(n: int) -> str:
    return f"29{n % CARD_COUNT:011d}"


def write_cards_csv(path: Path) -> None:
    """The bench's cards, for ``gateway import cards``."""
    rows = ["card_number;balance"] + [f"{card(i)};{CARD_POINTS}" for i in range(CARD_COUNT)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _json(method: str, path: str, payload: object, **headers: str) -> Request:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Request(method, path, {"Content-Type": "application/json", **headers}, body)


def echo(n: int, run: str) -> Request:
    return _json("POST", "/echo", {"card_number": card(n), "lines": LINES})


def calculate(n: int, run: str) -> Request:
    return _json("POST", "/api/v1/calculate", {"card_number": card(n), "lines": LINES}, Authorization=TILL_AUTH)


def commit(n: int, run: str) -> Request:
    body = {"receipt_id": f"bench-{run}-{n}", "card_number": card(n), "lines": LINES, "points_to_spend": 10}
    return _json("POST", "/api/v1/receipts", body, Authorization=TILL_AUTH, **{"Idempotency-Key": f"{run}-{n}"})


def onec_calculate(n: int, run: str) -> Request:
    cart = {
        "ObjectTime": "2026-11-23T12:00:00",
        "LoyaltyCardsList": [card(n)],
        "RetailStore": {"Ref": "store-1"},
        "Goods": [
            {
                "LineUID": str(i),
                "Count": 1,
                "Item": {"Ref": f"item-{i}", "Name": "Товар"},
                "Price": 100,
                "TotalAmount": 100,
            }
            for i in range(3)
        ],
    }
    return _json("POST", "/hs/loyaltyservice/calculatediscounts", cart, Authorization=TILL_AUTH)


def onec_bonuses(n: int, run: str) -> Request:
    return Request(
        "GET", f"/hs/loyaltyservice/getclientbonuses?ClientCardID={card(n)}", {"Authorization": TILL_AUTH}, b""
    )


SOAP = (
    '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    '<ProcessRequest xmlns="http://loyalty.manzanagroup.ru/loyalty.xsd"><request><ChequeRequest>'
    "<RequestID>{rid}</RequestID><DateTime>2026-11-23T12:00:00+03:00</DateTime><BusinessUnit>store-1</BusinessUnit>"
    "<POS>1</POS><Card><CardNumber>{card}</CardNumber></Card><Number>{number}</Number>"
    "<OperationType>Sale</OperationType><ChequeType>{kind}</ChequeType>"
    "<Item><PositionNumber>1</PositionNumber><Article>MILK-1L</Article><Price>89.90</Price><Quantity>2</Quantity>"
    "<Summ>179.80</Summ></Item>"
    "<Item><PositionNumber>2</PositionNumber><Article>BREAD</Article><Price>55</Price><Quantity>1</Quantity>"
    "<Summ>55</Summ></Item>"
    "</ChequeRequest></request></ProcessRequest></s:Body></s:Envelope>"
)
SOAP_HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": '"http://loyalty.manzanagroup.ru/loyalty.xsd/ProcessRequest"',
    "Authorization": TILL_AUTH,
}


def soap_soft(n: int, run: str) -> Request:
    body = SOAP.format(rid=f"s-{run}-{n}", card=card(n), number=f"s{run}{n}", kind="Soft")
    return Request("POST", "/soap/loyalty", SOAP_HEADERS, body.encode())


def soap_fiscal(n: int, run: str) -> Request:
    body = SOAP.format(rid=f"f-{run}-{n}", card=card(n), number=f"f{run}{n}", kind="Fiscal")
    return Request("POST", "/soap/loyalty", SOAP_HEADERS, body.encode())


def _ok_http(status: int, body: bytes) -> bool:
    return status == 200


def _ok_onec(status: int, body: bytes) -> bool:
    return status == 200 and b'"Error":false' in body.replace(b" ", b"")


def _ok_soap(status: int, body: bytes) -> bool:
    return status == 200 and b"ReturnCode>0<" in body


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    build: Callable[[int, str], Request]
    ok: Callable[[int, bytes], bool]
    writes: bool


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("echo", "bare FastAPI echo (baseline)", echo, _ok_http, False),
        Scenario("calculate", "JSON POST /api/v1/calculate", calculate, _ok_http, False),
        Scenario("commit", "JSON POST /api/v1/receipts (spend 10 + accrue)", commit, _ok_http, True),
        Scenario("onec_calculate", "1C calculatediscounts", onec_calculate, _ok_onec, False),
        Scenario("onec_bonuses", "1C getclientbonuses", onec_bonuses, _ok_onec, False),
        Scenario("soap_soft", "SOAP ProcessRequest Soft", soap_soft, _ok_soap, False),
        Scenario("soap_fiscal", "SOAP ProcessRequest Fiscal", soap_fiscal, _ok_soap, True),
    )
}

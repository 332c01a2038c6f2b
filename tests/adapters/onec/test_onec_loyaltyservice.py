"""Transport and robustness of the 1C «Сервер лояльности» contract over real HTTP: unencoded query
values, Cyrillic Basic logins, JSON bodies on GET, locks under concurrency, errors in the forms the
till shows. A whole till day in the exact shapes of 1C's code is tests/adapters/onec/test_onec_till_day.py (which
cites the BSL); this file keeps the short-hand queries of a generic client."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from gateway.ledger.customers import card_ref
from gateway.store.models import Hold, UnmappedRef
from tests.conftest import Gateway
from tests.raw_http import RawResponse, basic_header, raw_request
from tests.support import OPERATOR, SITE, key

CARD = "2700000000014"  # Анна Демо, +79990000001, 600 points
TILL = basic_header("касса", "demo-till")
ROOT = "/hs/loyaltyservice"
ITEM_DRILL = "6a1f5a2e-0000-4000-8000-00000000d001"
ITEM_BITS = "6a1f5a2e-0000-4000-8000-00000000d002"
STORE = "3c2e9a10-0000-4000-8000-0000000000a1"
MSK = ZoneInfo("Europe/Moscow")


def call(
    gw: Gateway,
    method: str,
    query: str = "",
    *,
    http: str = "GET",
    body: Any = None,
    auth: str | None = TILL,
    prefix: str = "",
) -> RawResponse:
    target = f"{prefix}{ROOT}/{method}/" + (f"?{query}" if query else "")
    payload = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    return raw_request(gw.url, http, target, auth=auth, body=payload)


def ok_json(response: RawResponse) -> dict[str, Any]:
    assert response.status == 200, (response.status, response.body)
    data = response.json()
    assert isinstance(data, dict)
    assert data["Error"] is False and data["ErrorMessage"] == "" and data["Version"] == "3.0.8.73", data
    return data


def error_json(response: RawResponse, code: str, status: int = 200) -> dict[str, Any]:
    assert response.status == status, (response.status, response.body)
    data = response.json()
    assert isinstance(data, dict)
    assert data["Error"] is True and data["ErrorCode"] == code and data["ErrorMessage"] and data["Version"], data
    return data


def cart(card: str = CARD, *, store: str = STORE) -> dict[str, Any]:
    return {
        "ObjectTime": "2026-11-23T12:30:00",
        "CurrentDate": "2026-11-23T12:30:00",
        "LoyaltyCardsList": [card],
        "LoyaltyCardPresented": True,
        "RetailStore": {"Ref": store, "Name": "Магазин на Ленина"},
        "BlockBonuses": "0",
        "GetMaxBonusPay": True,
        "Return": False,
        "Currency": "руб.",
        "Goods": [
            {
                "LineUID": "f1",
                "Count": 2,
                "Item": {"Ref": ITEM_DRILL, "Name": "Дрель"},
                "Price": 500,
                "Amount": 1000,
                "AmountOfAutomaticDiscount": 0,
                "AmountOfManualDiscount": 0,
                "TotalAmount": 1000,
                "VATRate": "20%",
            },
            {
                "LineUID": "f2",
                "Count": 1,
                "Item": {"Ref": ITEM_BITS, "Name": "Набор бит"},
                "Price": 250.5,
                "Amount": 250.5,
                "AmountOfAutomaticDiscount": 0,
                "AmountOfManualDiscount": 0,
                "TotalAmount": 250.5,
                "VATRate": "20%",
            },
        ],
    }


def local(moment: datetime) -> str:
    return moment.astimezone(MSK).replace(tzinfo=None, microsecond=0).isoformat()


def test_ping_under_any_infobase_prefix(gateway: Gateway) -> None:
    for prefix in ("", "/retail", "/Retail_2/ru_RU"):
        response = call(gateway, "ping", prefix=prefix)
        assert (response.status, response.text) == (200, "ok")
        assert response.headers["content-type"].startswith("text/plain")


def test_unlock_releases_the_lock_and_a_retried_unlock_changes_nothing(gateway: Gateway) -> None:
    ok_json(call(gateway, "getclientbonuses", f"ClientCardID={CARD}&BlockBonuses=1"))
    site_view = gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=SITE).json()
    assert (site_view["available"], site_view["held"]) == (0, 600)
    unlocked = call(gateway, "unlockclientbonuses", f"ClientCardID={CARD}", http="POST")
    assert (unlocked.status, unlocked.text) == (200, "Бонусы разблокированы")
    snapshot = gateway.ledger_snapshot()
    for _ in range(2):
        retried = call(gateway, "unlockclientbonuses", f"ClientCardID={CARD}", http="POST")
        assert (retried.status, retried.text) == (200, "Бонусы разблокированы")
    assert gateway.ledger_snapshot() == snapshot
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=SITE).json()["available"] == 600
    gateway.assert_invariants()


def test_an_expired_lock_is_released_and_the_next_read_locks_again(gateway: Gateway) -> None:
    ok_json(call(gateway, "getclientbonuses", f"ClientCardID={CARD}&BlockBonuses=1"))
    gateway.clock.advance(seconds=601)
    gateway.service.sweep_expired_holds()
    assert ok_json(call(gateway, "getclientbonuses", f"ClientCardID={CARD}&BlockBonuses=1"))["BonusCount"] == 600
    with gateway.service.db.read() as session:
        statuses = sorted(h.status for h in session.exec(select(Hold)).all())
    assert statuses == ["open", "voided"]


def test_concurrent_card_reads_lock_once(gateway: Gateway) -> None:
    barrier = threading.Barrier(8)

    def read(_: int) -> int:
        barrier.wait()
        return int(ok_json(call(gateway, "getclientbonuses", f"ClientCardID={CARD}&BlockBonuses=1"))["BonusCount"])

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(read, range(8)))
    assert counts == [600] * 8
    with gateway.service.db.read() as session:
        assert len(session.exec(select(Hold)).all()) == 1
    gateway.assert_invariants()


def test_issue_a_card_with_cyrillic_values_sent_raw(gateway: Gateway) -> None:
    query = "Phone=+79120000777&Client=Иван&Email=Ivan@Example.com&DateOfBirth=1990-05-17T00:00:00&GenerateNumber=1"
    issued = ok_json(call(gateway, "issueclientcard", query, http="POST"))
    assert (issued["ExistingCard"], issued["ElseClient"]) == (False, False)
    assert issued["Client"] == "Иван"
    assert (issued["PhoneNumber"], issued["Email"], issued["DateOfBirth"]) == (
        "+79120000777",
        "ivan@example.com",
        "1990-05-17T00:00:00",
    )
    assert len(issued["CardID"]) == 13 and issued["CardRef"] == card_ref(issued["CardID"])
    snapshot = gateway.ledger_snapshot()
    again = ok_json(call(gateway, "issueclientcard", query, http="POST"))
    assert (again["ExistingCard"], again["CardID"]) == (True, issued["CardID"])
    assert gateway.ledger_snapshot() == snapshot
    # welcome bonus on the new card
    assert ok_json(call(gateway, "getclientbonuses", f"ClientCardID={issued['CardID']}"))["BonusCount"] == 100
    # a card number that belongs to someone else
    other = ok_json(call(gateway, "issueclientcard", f"Phone=+79120000888&ClientCardID={CARD}", http="POST"))
    assert (other["ExistingCard"], other["ElseClient"], other["PhoneNumber"]) == (True, True, "")


def test_a_cyrillic_basic_login_is_decoded_as_utf8(gateway: Gateway) -> None:
    assert call(gateway, "ping", auth=basic_header("касса", "demo-till")).status == 200
    assert call(gateway, "ping", auth=basic_header("касса", "wrong")).status == 401


def test_unknown_references_are_reported_and_mapped_ones_used(start_gateway: Any, demo_config: Any) -> None:
    onec = demo_config.onec.model_copy(update={"goods": {ITEM_DRILL: "DRILL-01"}, "stores": {}})
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"onec": onec}))
    ok_json(call(gw, "calculatediscounts", body=cart()))
    ok_json(call(gw, "calculatediscounts", body=cart()))  # within the minute: not written again
    gw.clock.advance(seconds=61)
    ok_json(call(gw, "calculatediscounts", body=cart()))
    with gw.service.db.read() as session:
        rows = {(r.kind, r.ref): (r.name, r.seen) for r in session.exec(select(UnmappedRef)).all()}
    assert rows == {("goods", ITEM_BITS): ("Набор бит", 2), ("store", STORE): ("Магазин на Ленина", 2)}
    listed = gw.http.get("/api/v1/mappings/unmapped", headers=OPERATOR).json()
    assert {(r["kind"], r["ref"], r["seen"]) for r in listed} == {("goods", ITEM_BITS, 2), ("store", STORE, 2)}
    from typer.testing import CliRunner

    from gateway.cli import app as cli

    result = CliRunner().invoke(cli, ["mappings", "unmapped", "--database-url", gw.service.db.url])
    assert result.exit_code == 0 and ITEM_BITS[:8] in result.output


def test_reference_lists_and_absent_gift_cards_and_promo_codes(gateway: Gateway) -> None:
    types = call(gateway, "getcardtypes").json()
    assert [(t["CardTypeID"], t["CardTypeDescription"]) for t in types] == [(types[0]["CardTypeID"], "Бонусная карта")]
    assert ok_json(call(gateway, "useautomaticdiscounts"))["UseAutomaticDiscounts"] is True
    error_json(call(gateway, "getgiftcardinfo", "GiftCardNumber=GC-1"), "gift_card_not_found")
    assert ok_json(call(gateway, "checkgiftcard", "GiftCardNumber=GC-1"))["GiftCardUsed"] is False
    promo = ok_json(call(gateway, "promocodeinfo", "Promocode=SALE10"))
    assert (promo["PromocodeIsAvalible"], promo["PromocodeDiscount"]) == (False, {"Ref": "", "Name": ""})
    for method in ("unlockgiftcard", "writeoffgiftcard"):
        response = call(gateway, method, "GiftCardNumber=GC-1&GiftCardWriteOffAmount=100", http="POST")
        assert (response.status, response.text) == (200, "Подарочный сертификат не найден")
    assert call(gateway, "unlockpromocode", "Promocode=SALE10", http="POST").text == "Промокод разблокирован"


ERRORS: list[tuple[str, str, str, Any, str, int, str]] = [
    ("unknown card json", "getclientbonuses", "ClientCardID=0000", None, "json", 200, "not-found-form"),
    ("unknown phone", "findclientcard", "Phone=+79000000000", None, "json", 200, "no-cards"),
    ("no identifier", "getclientbonuses", "", None, "json", 200, "not-found-form"),
    ("bad phone", "findclientcard", "Phone=abc", None, "json", 200, "no-cards"),
    ("malformed body", "calculatediscounts", "", b"{not json", "calc", 200, "Некорректный запрос"),
    ("body not an object", "calculatediscounts", "", b"[1,2]", "calc", 200, "Некорректный запрос"),
    (
        "missing Goods",
        "calculatediscounts",
        "",
        {"ObjectTime": "2026-11-23T12:00:00", "LoyaltyCardsList": [], "RetailStore": {"Ref": STORE}},
        "calc",
        200,
        "Некорректный запрос",
    ),
    (
        "bad Count",
        "calculatediscounts",
        "",
        {**cart(), "Goods": [{**cart()["Goods"][0], "Count": "много"}]},
        "calc",
        200,
        "Некорректный запрос",
    ),
    (
        "three decimals",
        "calculatediscounts",
        "",
        {**cart(), "Goods": [{**cart()["Goods"][0], "Amount": 1.005}]},
        "calc",
        200,
        "Некорректный запрос",
    ),
    (
        "unknown card writeoff",
        "writeoffclientbonuses",
        "ClientCardID=0000&BonusesCount=10",
        None,
        "text",
        200,
        "Карта клиента не найдена",
    ),
    (
        "writeoff above the balance",
        "writeoffclientbonuses",
        f"ClientCardID={CARD}&BonusesCount=601",
        None,
        "text",
        200,
        "Недостаточно бонусов",
    ),
    (
        "a third decimal of a rouble",
        "writeoffclientbonuses",
        f"ClientCardID={CARD}&BonusesCount=10,555",
        None,
        "text",
        200,
        "Некорректный запрос",
    ),
    ("unknown method", "nosuchmethod", "", None, "json", 404, "not_found"),
]


@pytest.mark.parametrize(
    ("method", "query", "body", "kind", "status", "code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_come_in_the_contract_form_and_change_nothing(
    gateway: Gateway, method: str, query: str, body: Any, kind: str, status: int, code: str
) -> None:
    snapshot = gateway.ledger_snapshot()
    http = "POST" if kind == "text" else "GET"
    if isinstance(body, bytes):
        response = raw_request(gateway.url, http, f"{ROOT}/{method}/", auth=TILL, body=body)
    else:
        response = call(gateway, method, query, http=http, body=body)
    if code == "not-found-form":
        data = ok_json(response)
        assert data["ClientNotFound"] is True
    elif code == "no-cards":
        assert ok_json(response)["LoyaltyCardsList"] == []
    elif kind == "json":
        error_json(response, code, status)
    else:  # texts the till compares (write-offs) or shows (calculatediscounts)
        assert response.status == status
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.text.startswith(code), response.text
    assert gateway.ledger_snapshot() == snapshot


@pytest.mark.parametrize(("method", "kind"), [("getclientbonuses", "json"), ("writeoffclientbonuses", "text")])
def test_wrong_credentials(gateway: Gateway, method: str, kind: str) -> None:
    snapshot = gateway.ledger_snapshot()
    for auth in (None, basic_header("касса", "nope"), "Basic !!!"):
        response = call(gateway, method, f"ClientCardID={CARD}&BonusesCount=10", http="POST", auth=auth)
        assert response.status == 401
        assert "Basic" in response.headers["www-authenticate"]
        if kind == "json":
            assert response.json()["ErrorCode"] == "unauthorized"
        else:  # the till reads no body above 200
            assert response.text != "Бонусы успешно списаны"
    assert gateway.ledger_snapshot() == snapshot


def test_request_ids_do_not_leak_between_sessions() -> None:
    assert uuid.UUID(card_ref(CARD)).version == 5


def test_raw_spaces_and_cp1251_bytes_in_the_query(gateway: Gateway) -> None:
    target = f"{ROOT}/issueclientcard/?Phone=+79120000999&Client=Иван Петров&GenerateNumber=1"
    issued = ok_json(raw_request(gateway.url, "POST", target, auth=TILL))
    assert issued["Client"] == "Иван Петров"
    # An older client that writes its ANSI code page (windows-1251) instead of UTF-8
    target_1251 = f"{ROOT}/findclientcard/?Phone=+79120000999&Client=".encode() + "Иван".encode("cp1251")
    found = ok_json(raw_request(gateway.url, "GET", target_1251, auth=TILL))
    assert found["LoyaltyCardsList"][0]["ClientName"] == "Иван Петров"


def test_request_line_rewrite() -> None:
    from gateway.api.http_protocol import rewrite_request_line

    raw = "GET /hs/loyaltyservice/x?Phone=+7912&Client=Ив ан HTTP/1.1\r\n".encode()
    assert (
        rewrite_request_line(raw)
        == b"GET /hs/loyaltyservice/x?Phone=+7912&Client=%D0%98%D0%B2%20%D0%B0%D0%BD HTTP/1.1\r\n"
    )
    assert rewrite_request_line(b"GET /ok?a=1 HTTP/1.1\r\n") == b"GET /ok?a=1 HTTP/1.1\r\n"
    assert rewrite_request_line(b"garbage\r\n") == b"garbage\r\n"


def test_gift_certificate_reserved_for_the_till_that_read_it(gateway: Gateway) -> None:
    """getgiftcardinfo reserves what is left for this till (1C's server locks the certificate as
    it answers); a write-off takes from the reservation and releases the rest; unlock frees it."""
    issued = gateway.http.post(
        "/api/v1/gift-cards",
        headers={**OPERATOR, **key()},
        json={"number": "GC-5000", "amount": "5000.00", "name": "Сертификат 5000"},
    )
    assert issued.status_code == 200, issued.text
    info = ok_json(call(gateway, "getgiftcardinfo", "GiftCardNumber=GC-5000"))
    assert info["GiftCard"] == {"GiftCardName": "Сертификат 5000", "GiftCardRef": issued.json()["ref"]}
    assert (info["GiftCardValue"], info["GiftCardBalance"], info["Blocked"]) == (5000, 5000, False)
    by_uid = ok_json(call(gateway, "getgiftcardinfo", f"GiftCardUID={issued.json()['ref']}"))
    assert by_uid["GiftCardNumber"] == "GC-5000"
    elsewhere = gateway.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()
    assert (elsewhere["balance"], elsewhere["available"]) == ("5000.00", "0.00")

    written = call(gateway, "writeoffgiftcard", "GiftCardNumber=GC-5000&GiftCardWriteOffAmount=1234.50", http="POST")
    assert (written.status, written.text) == (200, "Подарочный сертификат успешно списан на указанную сумму")
    after = gateway.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()
    assert (after["balance"], after["available"]) == ("3765.50", "3765.50")  # the reservation's rest is released

    ok_json(call(gateway, "getgiftcardinfo", "GiftCardNumber=GC-5000"))
    for _ in range(2):
        unlocked = call(gateway, "unlockgiftcard", "GiftCardNumber=GC-5000", http="POST")
        assert unlocked.text == "Подарочный сертификат разблокирован"
    assert gateway.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()["available"] == "3765.50"
    too_much = call(gateway, "writeoffgiftcard", "GiftCardNumber=GC-5000&GiftCardWriteOffAmount=4000", http="POST")
    assert too_much.status == 200 and too_much.text.startswith("Недостаточно средств на подарочном сертификате")
    gateway.assert_invariants()

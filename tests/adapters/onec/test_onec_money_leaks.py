"""Money that leaked through 1C write-offs (issue 15, adversarial run): one test per leak, each
failing on the adapter as it was and passing now. Requests are in the exact shapes of 1C:УНФ's
till (``AlexanderYekat/unf`` ``DataProcessors/РабочееМестоКассира/Forms/ФормаРМК/Ext/Form/Module.bsl``:
``СписатьРазблокироватьБонусныеБаллы``, ``СписатьПодарочныйСертификат``; transport
``CommonModules/СерверЛояльностиПолучательДанныхВызовСервера``) — see tests/adapters/onec/test_onec_till_day.py.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col, select

from gateway.config import GatewayConfig
from gateway.store.models import Receipt
from tests.adapters.onec.test_onec_till_day import (
    CARD,
    ERP,
    FIND_KEYS,
    ITEM_DRILL,
    STORE_CENTER,
    balance,
    bonus_query,
    calc_body,
    goods_line,
    query,
    read_json,
    read_ok,
    read_text,
    send,
    till_config,
)
from tests.conftest import Gateway
from tests.support import SITE, key

WRITTEN_OFF = "Бонусы успешно списаны"
GIFT_WRITTEN_OFF = "Подарочный сертификат успешно списан на указанную сумму"


@pytest.fixture
def till(start_gateway: Any, demo_config: GatewayConfig) -> Gateway:
    onec = {"capture_window_seconds": 3600}
    config = till_config(demo_config)
    gw: Gateway = start_gateway(config=config.model_copy(update={"onec": config.onec.model_copy(update=onec)}))
    gw.clock.freeze()
    return gw


def write_off(gw: Gateway, amount: str) -> str:
    return read_text(send(gw, "POST", "writeoffclientbonuses", bonus_query(ClientCardID=CARD, BonusesCount=amount)))


def test_two_tills_writing_off_the_same_amount_are_two_captures(till: Gateway) -> None:
    """All tills share one client: the second till's identical write-off used to be answered
    "ok" as a retry of the first, with nothing captured for it."""
    for _ in range(2):  # both tills read the card for payment
        read_ok(send(till, "GET", "findclientcard", query(FIND_KEYS, ClientCardID=CARD, BlockBonuses="1")))
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: write_off(till, "100"), range(2)))
    assert replies == [WRITTEN_OFF, WRITTEN_OFF]
    assert balance(till) == (400, 200)  # two captures, both booked
    # 400 left: a third and fourth till taking 300 each: only one of them is paid for.
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: write_off(till, "300"), range(2)))
    assert sorted(replies, key=lambda r: r != WRITTEN_OFF)[0] == WRITTEN_OFF
    assert replies.count(WRITTEN_OFF) == 1
    assert balance(till) == (100, 500)
    till.assert_invariants()


def test_two_tills_cannot_pay_twice_with_one_gift_certificate(till: Gateway) -> None:
    """The same on certificates let 2,000 roubles of goods be paid with a 1,000-rouble one."""
    issued = till.http.post(
        "/api/v1/gift-cards", headers={**SITE, **key()}, json={"number": "GC-1000", "amount": "1000.00", "name": "С"}
    )
    assert issued.status_code == 200, issued.text
    for _ in range(2):
        read_ok(send(till, "GET", "getgiftcardinfo", bonus_query(GiftCardNumber="GC-1000")))
    q = bonus_query(GiftCardNumber="GC-1000", GiftCardWriteOffAmount="1000")
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: read_text(send(till, "POST", "writeoffgiftcard", q)), range(2)))
    assert replies.count(GIFT_WRITTEN_OFF) == 1, replies
    assert till.http.get("/api/v1/gift-cards/GC-1000", headers=SITE).json()["balance"] == "0.00"
    till.assert_invariants()


def test_a_capture_belongs_to_the_till_that_made_it(till: Gateway) -> None:
    """Another client's receipt paying exactly N points without a hold used to be booked against
    a till's captured write-off of N: the till's payment vanished into the site's receipt."""
    assert write_off(till, "100") == WRITTEN_OFF
    assert balance(till) == (500, 100)
    site_receipt = {
        "receipt_id": "SITE-1",
        "card_number": CARD,
        "points_to_spend": 100,
        "lines": [{"line_id": "1", "item": "X", "quantity": "1", "price": "1000.00"}],
    }
    booked = till.http.post("/api/v1/receipts", headers={**SITE, **key()}, json=site_receipt)
    assert booked.status_code == 200, booked.text
    available, held = balance(till)
    assert held == 100  # the till's write-off still waits for its own receipt
    assert available == 500 - 100 + booked.json()["points_accrued"]
    till.assert_invariants()


def test_a_back_office_receipt_after_the_capture_window_is_not_debited_again(till: Gateway) -> None:
    """The gateway books a capture whose receipt did not come within the window; the ERP's
    receipt arriving later used to spend the same points a second time."""
    read_ok(
        send(
            till,
            "GET",
            "calculatediscounts",
            body=calc_body([CARD], STORE_CENTER, [goods_line("l1", ITEM_DRILL, "Дрель", 1, Decimal("500"))]),
        )
    )
    assert write_off(till, "100") == WRITTEN_OFF
    till.clock.advance(seconds=3601)
    assert till.service.sweep_expired_holds() == 1  # booked by the gateway from the cart
    after_booking = balance(till)
    assert after_booking[1] == 0
    receipt = {
        "receipt_id": "ERP-77",
        "card_number": CARD,
        "points_to_spend": 100,
        "lines": [{"line_id": "1", "item": "DRILL-01", "quantity": "1", "price": "500.00"}],
    }
    for _ in range(2):  # and again under another key: still one purchase
        late = till.http.post("/api/v1/receipts", headers={"Authorization": ERP, **key()}, json=receipt)
        assert late.status_code == 200, late.text
        assert late.json()["points_spent"] == 100
        assert balance(till) == after_booking
    till.assert_invariants()


HUGE = "1E+999999"


@pytest.mark.parametrize(
    ("method", "http", "q", "body"),
    [
        ("writeoffclientbonuses", "POST", bonus_query(ClientCardID=CARD, BonusesCount=HUGE), None),
        ("writeoffgiftcard", "POST", bonus_query(GiftCardNumber="GC-1", GiftCardWriteOffAmount=HUGE), None),
        ("writeoffclientbonuses", "POST", bonus_query(ClientCardID=CARD, BonusesCount="Infinity"), None),
        ("findclientcard", "GET", query(FIND_KEYS, ClientCardID="7" * 5000), None),
        ("getclientbonuses", "GET", bonus_query(ClientCardID="7" * 500), None),
        (
            "calculatediscounts",
            "GET",
            "",
            json.dumps(
                {
                    "Goods": [
                        {"LineUID": str(i), "Item": {"Ref": ITEM_DRILL}, "Count": 1, "Price": 1} for i in range(10_000)
                    ]
                }
            ).encode(),
        ),
        ("calculatediscounts", "GET", "", b'{"Goods":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("calculatediscounts", "GET", "", b'{"Goods":[{"LineUID":"1","Item":{"Ref":"x"},"Count":1,"Price":1e999999}]}'),
        ("calculatediscounts", "GET", "", b'{"Goods":[{"LineUID":"1","Item":{"Ref":"x"},"Count":1,"Price":Infinity}]}'),
        (
            "calculatediscounts",
            "GET",
            "",
            b'{"Goods":[{"LineUID":"1","Item":{"Ref":"x"},"Count":"1' + b"0" * 5000 + b'","Price":1}]}',
        ),
        # above the adapter's 1 MiB: refused in the till's shape, not by a bare 413
        ("calculatediscounts", "GET", "", b'{"Goods":[' + b" " * (5 * 1024 * 1024) + b"]}"),
    ],
    ids=[
        "BonusesCount=1E+999999",
        "GiftCardWriteOffAmount=1E+999999",
        "BonusesCount=Infinity",
        "5000-char card id",
        "500-char card id",
        "10000-line cart",
        "100k-deep JSON",
        "infinite price",
        "Infinity price",
        "5000-digit count",
        "5 MiB body",
    ],
)
def test_bounds_before_arithmetic(till: Gateway, method: str, http: str, q: str, body: bytes | None) -> None:
    """Numbers and sizes are bounded before any arithmetic: ``1E+999999`` used to freeze the server
    for ~25 s, big carts, deep JSON, long ids and infinite amounts gave internal errors. Each gets
    the error the till shows, quickly, and changes nothing."""
    snapshot = till.ledger_snapshot()
    started = time.monotonic()
    response = send(till, http, method, q, body=body)
    assert time.monotonic() - started < 5
    assert response.status == 200, (response.status, response.body[:200])
    if method.startswith("writeoff"):
        assert read_text(response) not in ("", WRITTEN_OFF, GIFT_WRITTEN_OFF)
    elif method == "calculatediscounts":  # a body that is not JSON: the till shows it as the error
        assert response.headers["content-type"] == "text/plain; charset=utf-8" and response.text
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.body)
    else:
        data = read_json(response)
        assert data["Error"] is True and data["ErrorMessage"], data
    assert till.ledger_snapshot() == snapshot


def test_a_later_receipts_cart_never_attaches_to_an_earlier_write_off(till: Gateway) -> None:
    """The cart used to be remembered on the first open *or captured* hold of the card: the next
    customer's calculation replaced the cart of the receipt already paid, and the gateway booked
    the wrong goods when that receipt's capture window passed."""
    first = [goods_line("a1", ITEM_DRILL, "Дрель", 1, Decimal("500"))]
    read_ok(send(till, "GET", "calculatediscounts", body=calc_body([CARD], STORE_CENTER, first)))
    assert write_off(till, "100") == WRITTEN_OFF
    second = [goods_line("b1", ITEM_DRILL, "Дрель", 4, Decimal("500"))]
    read_ok(send(till, "GET", "calculatediscounts", body=calc_body([CARD], STORE_CENTER, second)))
    till.clock.advance(seconds=3601)
    till.service.sweep_expired_holds()
    with till.service.db.read() as session:
        booked = session.exec(select(Receipt).where(col(Receipt.receipt_id).startswith("hold:"))).all()
    assert [(r.total_kopecks, r.points_spent) for r in booked] == [(50_000, 100)]  # the first cart, not the second
    till.assert_invariants()

"""A whole day of a 1C:УНФ till against the gateway, over a real server on loopback, in the exact
shapes of 1C's code — the authority for every request and every reading of a reply:

* transport: ``AlexanderYekat/unf`` ``CommonModules/СерверЛояльностиПолучательДанныхВызовСервера``
  (``ДобавитьПараметрыВРесурс``: ``/<method>/?K=V&…``, every key, nothing encoded; any status above
  200 is an error and the body is not read);
* method, resource and key order: ``CommonModules/СерверЛояльностиПолучательДанныхКлиентСервер``
  (``ПараметрыМетодовБонуснойПодсистемы``, ``СтруктураПараметровНайтиКартуКлиента``,
  ``ПараметрыЗапроса…``);
* what the till fills and reads: ``DataProcessors/РабочееМестоКассира/Forms/ФормаРМК/Ext/Form/Module.bsl``
  and ``CommonModules/ОбщегоНазначенияРМК`` (calculatediscounts), ``CommonModules/ИнтерфейсРМКСлужебный``
  (``ЗаполнитьПараметрыКартыЛояльности``);
* 1C's own server of the contract, for reply shapes and texts: ``HTTPServices/СерверЛояльности`` and
  ``CommonModules/СерверЛояльностиПоставщикДанных`` (same in ``work1cblackbird/ut11``).

Values are 1C's default presentations (``Строка(Число)``: ``67,04``, ``1 500`` with a no-break
space; booleans ``Да``/``Нет``; dates ``15.03.1990 0:00:00``); replies are read the way the till
reads them: ``ПрочитатьJSON`` into structures whose fields are accessed without checks.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from gateway.config import GatewayConfig
from gateway.core.program import Program
from tests.conftest import Gateway
from tests.raw_http import RawResponse, basic_header, raw_request
from tests.support import SITE, key

CARD = "2700000000014"  # Анна Демо, +79990000001, 500 points (+100 welcome)
TILL = basic_header("касса", "demo-till")
ERP = basic_header("erp", "demo-erp")
ROOT = "/УНФ/hs/loyaltyservice"  # the till's address names the infobase before /hs/
ZERO = "00000000-0000-0000-0000-000000000000"  # Строка(ПустаяСсылка.УникальныйИдентификатор())
NBSP = "\u00a0"
STORE_CENTER = "3c2e9a10-0000-4000-8000-0000000000a1"
STORE_OUTLET = "3c2e9a10-0000-4000-8000-0000000000a2"
RETAIL = "8f1b6a10-0000-0000-0000-000000000001"
WHOLESALE = "8f1b6a10-0000-0000-0000-000000000002"
ITEM_DRILL = "6a1f5a2e-0000-4000-8000-00000000d001"
ITEM_BITS = "6a1f5a2e-0000-4000-8000-00000000d002"
CARD_TYPE = "5b0e6f2e-1c00-4c6b-9f1e-000000000001"
WORKPLACE = {"Ref": "9d0c0000-0000-4000-8000-000000000001", "Name": "Касса 1"}

# ПараметрыМетодовБонуснойПодсистемы: every key, in this order, unset ones sent as "K=".
BONUS_KEYS = (
    "ClientCardID",
    "CardGUID",
    "Phone",
    "Email",
    "Client",
    "Store",
    "GiftCardNumber",
    "GiftCardUID",
    "BonusesCount",
    "GiftCardWriteOffAmount",
    "Promocode",
    "DateOfBirth",
    "ClientCardTypeUID",
    "Currency",
    "GenerateNumber",
)
# СтруктураПараметровНайтиКартуКлиента
FIND_KEYS = ("ClientCardID", "Phone", "Email", "BlockBonuses", "ClientGUID", "CardGUID")


def till_config(demo: GatewayConfig) -> GatewayConfig:
    """The demo program plus what a retailer's 1C has: two price types, a zone, a promo code,
    discounts by zone and price type, the till's stores mapped, the ERP settling till write-offs."""
    program = Program.model_validate(
        {
            **demo.program.model_dump(mode="json", exclude_defaults=True),
            "catalogue": {
                "price_types": [
                    {"code": "retail", "refs": [RETAIL]},
                    {"code": "wholesale", "refs": [WHOLESALE], "accrual_percent": 2, "max_share_percent": 0},
                ],
                "default_price_type": "retail",
                "zones": [{"code": "center", "stores": ["S-CENTER"]}],
            },
            "discounts": {
                "combine": "sum",
                "rules": [
                    {"id": "center", "description": "Скидка центра", "percent": 5, "when": {"zones": ["center"]}},
                    {
                        "id": "retail",
                        "description": "Розничная скидка",
                        "percent": 2,
                        "when": {"price_types": ["retail"]},
                    },
                ],
            },
            "promo_codes": [{"code": "SPRING10", "description": "Весна", "discount_percent": 10}],
        }
    )
    onec = demo.onec.model_copy(
        update={
            "stores": {STORE_CENTER: "S-CENTER", STORE_OUTLET: "S-OUTLET"},
            "store_price_types": {STORE_CENTER: RETAIL, STORE_OUTLET: WHOLESALE},
            "goods": {ITEM_DRILL: "DRILL-01", ITEM_BITS: "BITS-32"},
        }
    )
    updates: dict[str, dict[str, Any]] = {
        "erp": {"settles_captures_of": ["tills"]},  # the back office forwards the tills' receipts
        "site": {"grants": ["gift_cards.issue"]},  # the site sells gift certificates
    }
    clients = [c.model_copy(update=updates.get(c.id, {})) for c in demo.clients]
    return demo.model_copy(update={"program": program, "onec": onec, "clients": clients})


@pytest.fixture
def till(start_gateway: Any, demo_config: GatewayConfig) -> Gateway:
    gw: Gateway = start_gateway(config=till_config(demo_config))
    gw.clock.freeze()
    return gw


# ---------------------------------------------------------------------------------------------
# the till's side of the wire
# ---------------------------------------------------------------------------------------------


def query(keys: tuple[str, ...], **values: str) -> str:
    """``ДобавитьПараметрыВРесурс``: ``?K1=V1&K2=V2`` over every key, values as they print."""
    unknown = set(values) - set(keys)
    assert not unknown, unknown
    return "&".join(f"{k}={values.get(k, '')}" for k in keys)


def bonus_query(**values: str) -> str:
    """The RMK form's ``ПараметрыМетодовБонуснойПодсистемы`` as it fills it for a found card."""
    defaults = {
        "CardGUID": ZERO,
        "GiftCardUID": ZERO,
        "ClientCardTypeUID": CARD_TYPE,
        "Currency": "643",
        "GenerateNumber": "Нет",
    }
    return query(BONUS_KEYS, **{**defaults, **values})


def send(gw: Gateway, http: str, method: str, q: str = "", body: bytes | None = None) -> RawResponse:
    """``ВыполнитьЗапросКСерверуЛояльности``: resource ``/<method>/`` plus the query, raw."""
    return raw_request(gw.url, http, f"{ROOT}/{method}/?{q}" if q else f"{ROOT}/{method}/", auth=TILL, body=body)


def read_json(response: RawResponse) -> Any:
    """``ЕстьОшибки = КодСостояния > 200``; then ``ПрочитатьJSON`` of the body."""
    assert response.status == 200, (response.status, response.body)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return json.loads(response.body)


def read_ok(response: RawResponse) -> dict[str, Any]:
    data = read_json(response)
    assert data["Error"] is False, data  # ДанныеОтвета.Свойство("Error") И НЕ ДанныеОтвета.Error
    return data  # type: ignore[no-any-return]


def read_text(response: RawResponse) -> str:
    """Plain-text replies: ``Результат.ДанныеОтвета`` compared word for word ("" on an error)."""
    if response.status > 200:
        return ""
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    return response.text


def compare_versions(a: str, b: str) -> int:
    """``ОбщегоНазначенияКлиентСервер.СравнитьВерсии``: four numbers, compared in turn."""
    left, right = [int(x) for x in a.split(".")], [int(x) for x in b.split(".")]
    assert len(left) == len(right) == 4
    return (left > right) - (left < right)


def card_params(card: dict[str, Any]) -> dict[str, Any]:
    """``ИнтерфейсРМКСлужебный.ЗаполнитьПараметрыКартыЛояльности``: every field read unchecked."""
    return {
        "КодКарты": card["Barcode"] or card["MagneticCode"],
        "ИдентификаторКарты": card["CardGUID"],
        "ФИО": card["ClientName"],
        "Телефон": card["Phone"],
        "Почта": card["Email"],
        "ДатаРождения": card["DateOfBirth"],  # XMLЗначение(Тип("Дата"), …): ISO, no zone
        "ЭтоКомпания": not card["IsPerson"],
        "Бонусы": card["BonusData"]["BonusCount"],
        "Курс": card["BonusData"]["BonusRate"],
        "Процент": card["BonusData"]["PaymentPercent"],
    }


def goods_line(uid: str, item: str, name: str, count: int, price: Decimal) -> dict[str, Any]:
    """``ОбщегоНазначенияРМК.ПолучитьТаблицуТоваров``: one line of ``Goods``."""
    amount = price * count
    return {
        "LineUID": uid,
        "Count": count,
        "PackagesCount": count,
        "Item": {"Ref": item, "Name": name},
        "Price": float(price),
        "GiftSale": False,
        "PercentOfAutomaticDiscount": 0,
        "PercentOfManualDiscount": 0,
        "VATRate": "20%",
        "Amount": float(amount),
        "AmountOfAutomaticDiscount": 0,
        "AmountOfBonusPay": 0,
        "TotalAmount": float(amount),
        "VATAmount": float((amount / 6).quantize(Decimal("0.01"))),
        "AmountOfManualDiscount": 0,
        "Package": {"Ref": ZERO, "Name": ""},
        "Variant": {"Ref": ZERO, "Name": ""},
        "Order": {"Ref": ZERO, "Name": ""},
    }


def calc_body(cards: list[str], store: str, goods: list[dict[str, Any]], **extra: Any) -> bytes:
    """``ПолучитьСтруктуруПараметровРасчетаСкидок``: every key of ``СтруктураПараметровРасчетаСкидок``;
    ``ЗаписатьJSON`` writes dates ISO without a zone."""
    body = {
        "RecoverManagedDiscounts": False,
        "ObjectTime": "2026-12-03T12:30:00",
        "CurrentDate": "2026-12-03T12:30:00",
        "LoyaltyCardPresented": bool(cards),
        "HasGifts": False,
        "UseApplicationPrices": False,
        "ControlBalanceOfGoods": False,
        "LoyaltyCardsList": cards,
        "PromocodesList": [],
        "ControlledDiscountsList": [],
        "RetailStore": {"Ref": store, "Name": "Магазин"},
        "ApplyObject": False,
        "WorkPlace": WORKPLACE,
        "Goods": goods,
        "GetLoyaltyCardData": False,
        "GetMaxBonusPay": True,
        "BlockBonuses": "1",
        "Currency": "643",
        "Return": False,
        "PayTypes": [],
        "GetPossibleOnPayDiscounts": False,
        **extra,
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def read_calculation(data: dict[str, Any]) -> dict[str, Any]:
    """``ОбщегоНазначенияРМК.РассчитатьАвтоматическиеСкидки`` and its ``ПолучитьТаблицу…ИзЗапроса``."""
    goods = {
        g["LineUID"]: {
            "Цена": g["Price"],
            "Сумма": g["Amount"],
            "Количество": g["Count"],
            "КоличествоУпаковок": g["PackagesCount"],
            "СуммаАвтоматическойСкидки": g["AmountOfAutomaticDiscount"],
            "СуммаРучнойСкидки": g["AmountOfManualDiscount"],
            "ПроцентАвтоматическойСкидки": g["PercentOfAutomaticDiscount"],
            "ПроцентРучнойСкидки": g["PercentOfManualDiscount"],
            "СуммаВсего": g["TotalAmount"],
            "СуммаНДС": g["VATAmount"],
            "Номенклатура": g["Item"]["Ref"],
            "Упаковка": g["Package"],
            "Характеристика": g["Variant"],
        }
        for g in data["Goods"]
    }
    discounts = [
        {
            "КлючСвязи": d["KeyRelation"],
            "СкидкаНаценка": d["Discount"]["Ref"],
            "Сумма": d["Amount"],
            "ОграниченаМинимальнойЦеной": d["MinimalPriceRestriction"],
            "ЗначениеСкидкиНаценки": d["DiscountValue"],
            "ИдентификаторСтроки": d["LineUID"],
            "Представление": d["Discount"]["Name"],
        }
        for d in data["DiscountsList"]
    ]
    bonuses = [
        {
            "КлючСвязи": b["KeyRelation"],
            "СкидкаНаценка": b["Discount"]["Ref"],
            "БонуснаяПрограмма": b["BonusProgramm"]["Ref"],
            "ДатаНачисления": b["AccuralDate"],
            "ДатаСписания": b["WriteOffDate"],
            "КоличествоБонусныхБаллов": b["BonusCount"],
        }
        for b in data["BonusesToAccrue"]
    ]
    promos = [
        {
            "Промокод": p["Promocode"],
            "ОписаниеОшибкиПрименения": p["ErrorDescription"],
            "СкидкаПредоставлена": p["DiscountActive"],
            "ЭтоАктивацияПромокода": p["PromocodeActivation"],
            "СкидкаНаценка": p["PromocodeDiscount"]["Ref"],
            "УсловиеПредоставленияСкидки": p["DiscountCondition"],
            "УникальныйИдентификатор": p["PromocodeUID"].replace("-", "_"),
        }
        for p in data["PromocodesList"]
    ]
    messages = [(m["MessageText"], m["AfterSale"]) for m in data["Messages"]]
    card = None
    if not data["LoyaltyCardDescription"]["CardNotFound"]:
        card = card_params(data["LoyaltyCardDescription"]["LoyaltyCard"])
    for key_relation in [d["КлючСвязи"] for d in discounts] + [b["КлючСвязи"] for b in bonuses]:
        assert isinstance(key_relation, int) and 1 <= key_relation <= len(goods)  # Число(5,0): a line number
    return {
        "goods": goods,
        "discounts": discounts,
        "bonuses": bonuses,
        "promos": promos,
        "messages": messages,
        "card": card,
        "max_bonus_pay": data.get("MaxBonusPay"),
    }


def balance(gw: Gateway, card: str = CARD) -> tuple[int, int]:
    data = gw.http.get(f"/api/v1/cards/{card}/balance", headers=SITE).json()
    return int(data["available"]), int(data["held"])


# ---------------------------------------------------------------------------------------------
# the day
# ---------------------------------------------------------------------------------------------


def test_open_shift_version_card_types_and_automatic_discounts(till: Gateway) -> None:
    """ФормаРМК: useautomaticdiscounts decides, by ``Version``, which calls the till makes next
    (``СравнитьВерсии`` with 3.0.5.1, 3.0.6.1, 3.0.7.1); ``ЗаполнитьТаблицуВидовКарт`` reads
    getcardtypes as a top-level array."""
    assert (send(till, "GET", "ping").status, read_text(send(till, "GET", "ping"))) == (200, "ok")
    data = read_ok(send(till, "GET", "useautomaticdiscounts"))
    assert data["UseAutomaticDiscounts"] is True
    for threshold in ("3.0.5.1", "3.0.6.1", "3.0.7.1"):  # new search, sales, GUID search, returns
        assert compare_versions(data["Version"], threshold) > 0
    types = read_json(send(till, "GET", "getcardtypes"))
    assert isinstance(types, list) and len(types) == 1
    row = types[0]
    assert (row["CardTypeID"], row["CardTypeDescription"], row["IsPerson"]) == (CARD_TYPE, "Бонусная карта", True)
    assert (row["Идентификатор"], row["Наименование"]) == (CARD_TYPE, "Бонусная карта")
    # ФормаРМК ЗаполнитьТаблицуУправляемыхСкидок / ЗаполнитьТаблицуСкидокЗависящихОтВидаОплаты: arrays
    assert read_json(send(till, "GET", "getcontrolleddiscountslist", "MaxSale=&MaxMarkup=&Store=&Client=")) == []
    assert read_json(send(till, "GET", "getlistonpaydiscounts")) == []


def test_card_by_number_and_by_the_last_digits_of_a_phone(till: Gateway) -> None:
    """ФормаРМК ``ПараметрыМетодаНайтиКартуКлиента``: ``ClientCardID`` or ``Phone`` = ``*`` + the
    digits (``ПреобразованнаяСтрокаПоискаТелефонаНаСервереЛояльности``), ``BlockBonuses`` "1"/"0";
    ``ЗапроситьКартыССервераЛояльности`` reads ``LoyaltyCardsList``; 1C's server
    (``НайтиКартуКлиентаGET``) locks the points of a single found card when asked."""
    by_number = read_ok(send(till, "GET", "findclientcard", query(FIND_KEYS, ClientCardID=CARD, BlockBonuses="1")))
    (card,) = by_number["LoyaltyCardsList"]
    params = card_params(card)
    assert (params["КодКарты"], params["ФИО"], params["Телефон"]) == (CARD, "Анна Демо", "+79990000001")
    assert (params["Бонусы"], params["Курс"], params["Процент"]) == (600, 1, 30)
    assert params["ДатаРождения"] == "0001-01-01T00:00:00" and params["ЭтоКомпания"] is False
    assert balance(till) == (0, 600)  # reserved for this till, as 1C's server does

    by_phone = read_ok(send(till, "GET", "findclientcard", query(FIND_KEYS, Phone="*0001", BlockBonuses="0")))
    assert [c["Barcode"] for c in by_phone["LoyaltyCardsList"]] == [CARD]
    assert by_phone["LoyaltyCardsList"][0]["BonusData"]["BonusCount"] == 600  # this till's reservation
    full_phone = read_ok(send(till, "GET", "findclientcard", query(FIND_KEYS, Phone="79990000001", BlockBonuses="0")))
    assert [c["CardGUID"] for c in full_phone["LoyaltyCardsList"]] == [card["CardGUID"]]
    nobody = read_ok(send(till, "GET", "findclientcard", query(FIND_KEYS, Phone="*9999", BlockBonuses="1")))
    assert nobody["LoyaltyCardsList"] == []

    # Servers above 3.0.5.1: the till asks for the sales turnover of the card (ЗапроситьДанныеПродаж).
    sales = read_ok(send(till, "GET", "salesturnover", bonus_query(ClientCardID=CARD)))
    assert (sales["ClientNotFound"], sales["CardRef"], sales["SellCount"]) == (False, card["CardGUID"], 0)

    # The cashier cancels the card: unlock, compared with «Бонусы разблокированы» word for word.
    assert (
        read_text(send(till, "POST", "unlockclientbonuses", bonus_query(ClientCardID=CARD))) == "Бонусы разблокированы"
    )
    assert balance(till) == (600, 0)


def test_a_receipt_with_price_types_a_promo_code_and_a_fractional_write_off(till: Gateway) -> None:
    """ОбщегоНазначенияРМК: the cart with the card's GUID (servers above 3.0.7.1), ``BlockBonuses``
    "1", the till's promo codes; the reply's lines, ``DiscountsList`` per line (zone and price-type
    discounts, the promo code), ``BonusesToAccrue`` keyed by line number, ``MaxBonusPay`` on the
    discounted prices. Then ФормаРМК ``СписатьРазблокироватьБонусныеБаллы``:
    ``BonusesCount = Строка(СуммаБонусов)`` = ``67,04`` must answer «Бонусы успешно списаны»."""
    found = read_ok(send(till, "GET", "findclientcard", query(FIND_KEYS, ClientCardID=CARD, BlockBonuses="1")))
    guid = found["LoyaltyCardsList"][0]["CardGUID"]
    goods = [
        goods_line("a1b2c3d4-0000-4000-8000-000000000001", ITEM_DRILL, "Дрель", 1, Decimal("150.00")),
        goods_line("a1b2c3d4-0000-4000-8000-000000000002", ITEM_BITS, "Набор бит", 2, Decimal("50.00")),
    ]
    promos = [{"Promocode": "spring10", "PromocodeDiscountUID": "", "PromocodeUID": "p_1"}]
    data = read_ok(
        send(till, "GET", "calculatediscounts", body=calc_body([guid], STORE_CENTER, goods, PromocodesList=promos))
    )
    calc = read_calculation(data)
    drill, bits = (calc["goods"][g["LineUID"]] for g in goods)
    # 5 % zone + 2 % retail price type (summed: 7 %), then the promo code's 10 % of the rest
    assert (drill["Сумма"], drill["СуммаАвтоматическойСкидки"], drill["ПроцентАвтоматическойСкидки"]) == (
        125.55,
        24.45,
        16.3,
    )
    assert (bits["Сумма"], bits["СуммаАвтоматическойСкидки"], bits["СуммаВсего"]) == (83.7, 16.3, 100)
    by_line: dict[int, list[str]] = {}
    for d in calc["discounts"]:
        by_line.setdefault(d["КлючСвязи"], []).append(d["Представление"])
        assert d["ИдентификаторСтроки"] in calc["goods"] and d["Сумма"] > 0
    assert {k: sorted(v) for k, v in by_line.items()} == {
        1: ["Весна", "Розничная скидка (2%)", "Скидка центра (5%)"],
        2: ["Весна", "Розничная скидка (2%)", "Скидка центра (5%)"],
    }
    assert calc["promos"][0]["Промокод"] == "spring10" and calc["promos"][0]["СкидкаПредоставлена"] is True
    assert calc["promos"][0]["УникальныйИдентификатор"] == "p_1"
    assert sum(b["КоличествоБонусныхБаллов"] for b in calc["bonuses"]) == 10  # 5 % of 207,50
    assert {b["КлючСвязи"] for b in calc["bonuses"]} == {1, 2}
    assert calc["max_bonus_pay"] == 62  # 30 % of what the till will charge (207,50), whole points
    assert calc["card"]["КодКарты"] == CARD and calc["card"]["Бонусы"] == 600
    assert balance(till) == (0, 600)

    # The same cart at the outlet (its retail prices are the wholesale price type): no zone, no
    # retail discount, nothing payable in points, 2 % accrual.
    outlet = read_calculation(
        read_ok(send(till, "GET", "calculatediscounts", body=calc_body([CARD], STORE_OUTLET, goods)))
    )
    assert outlet["discounts"] == [] and outlet["max_bonus_pay"] == 0
    assert sum(b["КоличествоБонусныхБаллов"] for b in outlet["bonuses"]) == 5

    # 30 % of 223,46 is 67,04: a fractional amount of money paid in points.
    written = send(till, "POST", "writeoffclientbonuses", bonus_query(ClientCardID=CARD, BonusesCount="67,04"))
    assert read_text(written) == "Бонусы успешно списаны"
    assert balance(till) == (532, 68)  # rounded up: the ledger books at least what the till took

    # The receipt reaches the gateway from the back office (the ERP settles the tills' captures).
    receipt = {
        "receipt_id": "ЧК-0001",
        "card_number": CARD,
        "store": "S-CENTER",
        "points_to_spend": 68,
        "lines": [{"line_id": "1", "item": "DRILL-01", "quantity": "1", "price": "223.46"}],
    }
    booked = till.http.post("/api/v1/receipts", headers={"Authorization": ERP, **key()}, json=receipt)
    assert booked.status_code == 200, booked.text
    assert booked.json()["points_spent"] == 68
    available, held = balance(till)
    assert held == 0 and available == 532 + booked.json()["points_accrued"]
    till.assert_invariants()


def test_a_return_paid_with_a_gift_certificate_and_a_certificate_sale_check(till: Gateway) -> None:
    """ФормаРМК ``НайтиПодарочныйСертификат`` (getgiftcardinfo, reserved by 1C's server as it
    answers), ``СписатьПодарочныйСертификат``: ``GiftCardWriteOffAmount = Строка(СуммаСертификата)``,
    negative on a return (``Строка(-СуммаСертификата)``) — money back onto the certificate; the
    sale of a new certificate first asks checkgiftcard (``GiftCardUsed``)."""
    issued = till.http.post(
        "/api/v1/gift-cards",
        headers={**SITE, **key()},
        json={"number": "GC-5000", "amount": "5000.00", "name": "Сертификат"},
    )
    assert issued.status_code == 200, issued.text
    ref = issued.json()["ref"]
    info = read_ok(send(till, "GET", "getgiftcardinfo", bonus_query(GiftCardNumber="GC-5000")))
    assert (info["GiftCardBalance"], info["GiftCard"]["GiftCardRef"], info["Blocked"]) == (5000, ref, False)
    elsewhere = till.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()
    assert elsewhere["available"] == "0.00"  # reserved for this till

    paid = send(till, "POST", "writeoffgiftcard", bonus_query(GiftCardUID=ref, GiftCardWriteOffAmount=f"1{NBSP}500"))
    assert read_text(paid) == "Подарочный сертификат успешно списан на указанную сумму"
    after = till.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()
    assert (after["balance"], after["available"]) == ("3500.00", "3500.00")

    # The customer brings the goods back: the till writes off the negative amount.
    back = send(
        till, "POST", "writeoffgiftcard", bonus_query(GiftCardNumber="GC-5000", GiftCardWriteOffAmount=f"-1{NBSP}500")
    )
    assert read_text(back) == "Подарочный сертификат успешно списан на указанную сумму"
    assert till.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()["balance"] == "5000.00"
    more_back = send(
        till, "POST", "writeoffgiftcard", bonus_query(GiftCardNumber="GC-5000", GiftCardWriteOffAmount="-0,01")
    )
    assert read_text(more_back) != "Подарочный сертификат успешно списан на указанную сумму"  # never more than paid
    assert till.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()["balance"] == "5000.00"

    read_ok(send(till, "GET", "getgiftcardinfo", bonus_query(GiftCardNumber="GC-5000")))
    unlocked = send(till, "POST", "unlockgiftcard", bonus_query(GiftCardNumber="GC-5000"))
    assert read_text(unlocked) == "Подарочный сертификат разблокирован"
    assert till.http.get("/api/v1/gift-cards/GC-5000", headers=SITE).json()["available"] == "5000.00"

    assert read_ok(send(till, "GET", "checkgiftcard", bonus_query(GiftCardNumber="GC-5000")))["GiftCardUsed"] is True
    assert read_ok(send(till, "GET", "checkgiftcard", bonus_query(GiftCardNumber="GC-NEW-1")))["GiftCardUsed"] is False
    till.assert_invariants()


def test_issue_a_card_with_a_birth_date(till: Gateway) -> None:
    """ФормаРМК ``ПараметрыМетодовБонуснойПодсистемы(Истина)``: ``Client`` is the name typed, the
    birth date is a 1C date printed by ``СтрШаблон`` (``15.03.1990 0:00:00``), ``GenerateNumber``
    ``Да``; ``ОбработатьРезультатСозданияКартыНаКлиенте`` / ``ВывестиДанныеСервераЛояльностиОСуществующейКарте``
    read ``Client`` as a string, ``CardID``, ``PhoneNumber``, ``Barcode``/``MagneticCode``, ``CardRef``."""
    q = bonus_query(
        Phone="+7 (912) 000-07-77",
        Client="Иван Петров",
        DateOfBirth="15.03.1990 0:00:00",
        GenerateNumber="Да",
    )
    issued = read_ok(send(till, "POST", "issueclientcard", q))
    assert (issued["ExistingCard"], issued["ElseClient"], issued["Client"]) == (False, False, "Иван Петров")
    assert (issued["PhoneNumber"], issued["DateOfBirth"]) == ("+79120000777", "1990-03-15T00:00:00")
    number = issued["Barcode"] or issued["MagneticCode"]
    assert number == issued["CardID"] and issued["CardRef"]
    again = read_ok(send(till, "POST", "issueclientcard", q))
    assert (again["ExistingCard"], again["CardID"]) == (True, number)
    found = read_ok(send(till, "GET", "findclientcard", query(FIND_KEYS, ClientCardID=number, BlockBonuses="0")))
    assert card_params(found["LoyaltyCardsList"][0])["ДатаРождения"] == "1990-03-15T00:00:00"
    no_date = read_ok(send(till, "POST", "issueclientcard", bonus_query(Phone="79120000778", GenerateNumber="Да")))
    assert no_date["DateOfBirth"] == "0001-01-01T00:00:00" and no_date["Client"] == ""


def test_a_bad_request_gets_the_error_the_till_shows_and_changes_nothing(till: Gateway) -> None:
    """JSON calls: ``Error``/``ErrorMessage`` (shown by the till); calculatediscounts: a body that is
    not JSON is the error text (``РассчитатьАвтоматическиеСкидки``); texts: anything but the
    success text makes the till unlock."""
    snapshot = till.ledger_snapshot()
    bad_date = read_json(
        send(till, "POST", "issueclientcard", bonus_query(Phone="79120000779", DateOfBirth="32.13.1990"))
    )
    assert bad_date["Error"] is True and bad_date["ErrorMessage"]
    calc = send(till, "GET", "calculatediscounts", body=b"{not json")
    assert calc.status == 200 and calc.headers["content-type"] == "text/plain; charset=utf-8" and calc.text
    written = send(till, "POST", "writeoffclientbonuses", bonus_query(ClientCardID=CARD, BonusesCount="abc"))
    assert written.status == 200 and read_text(written) not in ("", "Бонусы успешно списаны")
    assert read_text(send(till, "POST", "writeoffclientbonuses", bonus_query(ClientCardID="9999"))) == (
        "Карта клиента не найдена"
    )
    assert till.ledger_snapshot() == snapshot

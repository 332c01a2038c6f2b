"""Conformance of the «Дисконтный сервер» with the 1C:Розница 2.3 store base that calls it.

The authority is the Розница 2.3 dump ``DeZargo/1c_retail_apple``:

* ``WebServices/ДисконтныйСервер.xml`` — the service, its namespace, operations and parameter
  names (``ИдентификаторИсключаемогоДокументта`` misspelt), ``DiscountService.1cws``;
* ``XDTOPackages/ДисконтныйСервер/Ext/Package.bin`` — the XDTO types of tables and results;
* ``WebServices/ДисконтныйСервер/Ext/Module.bsl`` — what 1C's own server computes and returns
  (an object typed ``РезультатЗапросаОБонусах`` where ``РезультатЗапросаОНакоплениях`` is declared);
* ``CommonModules/ДисконтныйСервер/Ext/Module.bsl`` — the store: ``WSОпределения`` of the
  address, ``WSПрокси(…, "ДисконтныйСервер", "ДисконтныйСерверSoap")``, the values it sends
  (GUIDs by ``Строка(Ссылка.УникальныйИдентификатор())``, ``ВидДвижения`` 0/1, returns with
  negative amounts and quantities), the order of updates (sales, then bonuses, then coupons) and
  how it reads results (``.РезультатЗапроса``, ``.СтрокиТаблицы``, a ``Истина`` result).

Requests are written as 1C's ``WSПрокси`` serializes them (SOAP 1.1 for the ``…Soap`` port, the
wrapper and parameters qualified with prefix ``m``, ``xs``/``xsi`` declared on every parameter,
dates without an offset in the base's local time, decimals with a dot, the SOAPAction header in
UTF-8). The WSDL shape is that of a 1C-published service (e.g. 1C's ``WebCommonInfoBases`` WSDL
copied in ``korableg/V8I.Manager``); zeep stands in for ``WSОпределения`` to read it.
"""

from __future__ import annotations

import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import zeep
from lxml import etree
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.workers.stuck import StuckTransactions
from tests.conftest import Gateway
from tests.support import TILL, basic, card_with_points, key

NS = "http://localhost/rt2discountservice"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PUBLICATION = "/rt23/ws/DiscountService.1cws"
DATA = Path(__file__).resolve().parents[2] / "data" / "discountserver"
CARD_REF = "7b0c1f5e-2d3a-11ef-9a4b-00155d0a1f01"  # tests/data/discountserver/cards.csv
CARD_NUMBER = "2900000000017"
PROGRAM_REF = "1f2e3d4c-5b6a-11ef-8a9b-00155d0a1f02"  # БонуснаяПрограммаЛояльности
STORE_REF = "5a4b3c2d-1e0f-11ef-9f8e-00155d0a1f03"  # Магазины
DISCOUNT_REF = "9e8d7c6b-5a49-11ef-8382-00155d0a1f04"  # СкидкиНаценки
ITEMS = ("c1d2e3f4-0001-11ef-9a4b-00155d0a1f10", "c1d2e3f4-0002-11ef-9a4b-00155d0a1f10")
NO_CHARACTERISTIC = "00000000-0000-0000-0000-000000000000"  # an empty reference, as Строка() gives it
MOSCOW = ZoneInfo("Europe/Moscow")

Row = dict[str, str]


# -- the store's side: what WSПрокси sends --------------------------------------------------


def _param(name: str, value: str) -> str:
    return (
        f'<m:{name} xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{value}</m:{name}>'
    )


def _table(name: str, rows: list[Row]) -> str:
    inner = "".join(
        "<m:СтрокиТаблицы>" + "".join(f"<m:{k}>{v}</m:{k}>" for k, v in row.items()) + "</m:СтрокиТаблицы>"
        for row in rows
    )
    return _param(name, inner)


def _utf8(headers: dict[str, str]) -> dict[bytes, bytes]:
    """Headers as 1C sends them: the Cyrillic operation name in the action as UTF-8 bytes."""
    return {name.encode(): value.encode() for name, value in headers.items()}


def envelope(operation: str, params: str) -> bytes:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/><soap:Body>'
        f'<m:{operation} xmlns:m="{NS}">{params}</m:{operation}></soap:Body></soap:Envelope>'
    ).encode()


def local(moment: datetime) -> str:
    """A date as 1C writes it: the base's local time, no offset."""
    return moment.astimezone(MOSCOW).strftime("%Y-%m-%dT%H:%M:%S")


class Store:
    """A Розница 2.3 store base calling its discount server (CommonModules/ДисконтныйСервер)."""

    def __init__(self, gateway: Gateway, headers: dict[str, str] = TILL) -> None:
        self.gateway = gateway
        self.headers = headers
        # A WSDL-driven reader beside lxml: zeep parses every reply by the published WSDL
        # (xsi:type included), as WSПрокси deserializes it by WSОпределения.
        wsdl = gateway.http.get(f"{PUBLICATION}?wsdl", headers=headers).content
        self.proxy_client = zeep.Client(io.BytesIO(wsdl))  # type: ignore[no-untyped-call]
        self.proxy = self.proxy_client.wsdl.services["ДисконтныйСервер"].ports["ДисконтныйСерверSoap"]
        self.last_read: Any = None

    def post(self, operation: str, params: str) -> httpx.Response:
        headers = {
            **self.headers,
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{NS}#ДисконтныйСервер:{operation}"',
        }
        return self.gateway.http.post(PUBLICATION, content=envelope(operation, params), headers=_utf8(headers))

    def call(self, operation: str, params: str) -> etree._Element:
        """The ``return`` element, as the proxy hands it to the BSL code."""
        response = self.post(operation, params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/xml")
        root = etree.fromstring(response.content)
        result = root.find(f"{{{SOAP}}}Body/{{{NS}}}{operation}Response/{{{NS}}}return")
        assert result is not None, response.text
        self.last_read = self.proxy.binding.process_reply(
            self.proxy_client, self.proxy.binding._operations[operation], response
        )
        return result

    def update(self, operation: str, doc_type: str, doc_ref: str, table: str, rows: list[Row]) -> bool:
        result = self.call(
            operation,
            _param("ТипДокумента", doc_type) + _param("ИдентификаторДокумента", doc_ref) + _table(table, rows),
        )
        assert self.last_read is (result.text == "true")  # the store compares the result with Истина
        return result.text == "true"

    def send_document(
        self, doc_type: str, doc_ref: str, sales: list[Row], bonuses: list[Row], coupons: list[Row] | None = None
    ) -> None:
        """ОбновитьДанныеОПродажах(ДокументСсылка): sales, then bonuses, then coupons; each must be Истина."""
        assert self.update("ОбновитьДанныеОПродажах", doc_type, doc_ref, "ТаблицаТоваров", sales)
        assert self.update("ОбновитьДанныеОБонусах", doc_type, doc_ref, "ТаблицаБонусов", bonuses)
        if coupons:
            assert self.update("ОбновитьДанныеОКупонах", doc_type, doc_ref, "ТаблицаКупонов", coupons)

    def accumulations(self, start: str, end: str, excluded: str = "") -> tuple[Decimal, Decimal]:
        result = self.call(
            "ПолучитьСуммуНакопления",
            _param("ИдентификаторКарты", CARD_REF)
            + _param("ДатаНачала", start)
            + _param("ДатаОкончания", end)
            + _param("ИдентификаторСегмента", "")
            + _param("ИдентификаторИсключаемогоДокументта", excluded),
        )
        rows = result.findall(f"{{{NS}}}РезультатЗапроса")
        assert len(rows) == 1
        return Decimal(rows[0].findtext(f"{{{NS}}}СуммаНакопления", "")), Decimal(
            rows[0].findtext(f"{{{NS}}}КоличествоНакопления", "")
        )

    def balance(self, when: str = "0001-01-01T00:00:00") -> Decimal:
        result = self.call(
            "ПолучитьОстатокБонусов", _param("ИдентификаторКарты", CARD_REF) + _param("ДатаЗапроса", when)
        )
        # 1C's module returns another type than the declared one: the proxy reads it by xsi:type.
        assert result.get(f"{{{XSI}}}type") == "m:РезультатЗапросаОБонусах"
        rows = result.findall(f"{{{NS}}}РезультатЗапроса")
        assert len(rows) == 1 and rows[0].findtext(f"{{{NS}}}ДатаОперации")
        points = Decimal(rows[0].findtext(f"{{{NS}}}КоличествоБаллов", ""))
        [read] = self.last_read  # the same number through the WSDL-driven reader
        assert read["КоличествоБаллов"] == points and isinstance(read["ДатаОперации"], datetime)
        return points

    def coupon(self, code: str, when: str) -> list[etree._Element]:
        result = self.call("ПолучитьСкидкиПоКупону", _param("КодКупона", code) + _param("ДатаЗапроса", when))
        return result.findall(f"{{{NS}}}СтрокиТаблицы")


def sale_rows(when: str, lines: list[tuple[str, str, str]]) -> list[Row]:
    """ТаблицаТоваровДляОбновленияПродаж: one row per line, the document's date and card."""
    return [
        {
            "Период": when,
            "ИдентификаторКарты": CARD_REF,
            "ИдентификаторНоменклатуры": item,
            "ИдентификаторХарактеристики": NO_CHARACTERISTIC,
            "Сумма": amount,
            "Количество": quantity,
        }
        for item, amount, quantity in lines
    ]


def bonus_row(when: str, kind: int, accrued: str, to_write_off: str = "0") -> Row:
    """ТаблицаБонусовДляОбновленияПродаж: ВидДвижения 0 = Приход, 1 = Расход."""
    return {
        "Период": when,
        "ВидДвижения": str(kind),
        "ИдентификаторБонуснойПрограммы": PROGRAM_REF,
        "ИдентификаторКарты": CARD_REF,
        "Начислено": accrued,
        "КСписанию": to_write_off,
    }


def coupon_row(when: str, code: str, state: str) -> Row:
    return {
        "Период": when,
        "ИдентификаторСкидки": DISCOUNT_REF,
        "КодКупона": code,
        "Состояние": state,
        "ИдентификаторМагазина": STORE_REF,
        "ПериодДействия": "0001-01-01T00:00:00",
    }


def import_cards(gateway: Gateway) -> None:
    """``gateway discountserver import-cards`` with the catalogue export (cards.csv)."""
    result = CliRunner().invoke(
        cli, ["discountserver", "import-cards", str(DATA / "cards.csv"), "--database-url", gateway.service.db.url]
    )
    assert result.exit_code == 0, result.output
    assert "mapped 1 cards" in result.output


@pytest.fixture
def store(gateway: Gateway) -> Store:
    card_with_points(gateway.service, 200, CARD_NUMBER)
    import_cards(gateway)
    return Store(gateway)


# -- the tests ---------------------------------------------------------------------------------


def test_wsdl_is_read_by_wsdefinitions_with_the_names_the_store_uses(gateway: Gateway) -> None:
    """ДисконтныйСервер.ПроксиДисконтногоСервера: WSОпределения(address?wsdl), then
    WSПрокси(definitions, "http://localhost/rt2discountservice", "ДисконтныйСервер", "ДисконтныйСерверSoap")."""
    response = gateway.http.get(f"{PUBLICATION}?wsdl", headers=TILL)
    assert response.status_code == 200
    client = zeep.Client(io.BytesIO(response.content))  # type: ignore[no-untyped-call]
    service = client.wsdl.services["ДисконтныйСервер"]
    assert set(service.ports) == {"ДисконтныйСерверSoap", "ДисконтныйСерверSoap12"}
    port = service.ports["ДисконтныйСерверSoap"]
    assert port.binding_options["address"] == f"{gateway.url}{PUBLICATION}"
    operations = port.binding._operations
    expected = {
        "ПолучитьСуммуНакопления": [
            "ИдентификаторКарты",
            "ДатаНачала",
            "ДатаОкончания",
            "ИдентификаторСегмента",
            "ИдентификаторИсключаемогоДокументта",
        ],
        "ПолучитьДанныеПоследнейПокупки": [
            "ИдентификаторКарты",
            "ДатаРасчета",
            "ИдентификаторСегмента",
            "ИдентификаторИсключаемогоДокументта",
        ],
        "ПолучитьОстатокБонусов": ["ИдентификаторКарты", "ДатаЗапроса"],
        "ПолучитьОстатокБонусовРасширенный": ["ИдентификаторКарты", "ДатаЗапроса"],
        "ОбновитьДанныеОПродажах": ["ТипДокумента", "ИдентификаторДокумента", "ТаблицаТоваров"],
        "ОбновитьДанныеОБонусах": ["ТипДокумента", "ИдентификаторДокумента", "ТаблицаБонусов"],
        "ОбновитьДанныеОКупонах": ["ТипДокумента", "ИдентификаторДокумента", "ТаблицаКупонов"],
        "ПолучитьСкидкиПоКупону": ["КодКупона", "ДатаЗапроса"],
    }
    assert set(operations) == set(expected)
    for name, params in expected.items():
        operation = operations[name]
        assert [element[0] for element in operation.input.body.type.elements] == params
        assert operation.soapaction == f"{NS}#ДисконтныйСервер:{name}"
        assert [element[0] for element in operation.output.body.type.elements] == ["return"]
    sales_row = client.get_type(f"{{{NS}}}СтрокаТаблицыПродаж")  # type: ignore[no-untyped-call]
    assert [e[0] for e in sales_row.elements] == [
        "Период",
        "ИдентификаторКарты",
        "ИдентификаторНоменклатуры",
        "ИдентификаторХарактеристики",
        "Сумма",
        "Количество",
    ]
    schema = etree.fromstring(response.content).find(
        "{http://schemas.xmlsoap.org/wsdl/}types/{http://www.w3.org/2001/XMLSchema}schema"
    )
    assert schema is not None and schema.get("elementFormDefault") == "qualified"
    # The service page without ?wsdl is not the description.
    assert gateway.http.get(PUBLICATION).headers["content-type"].startswith("text/plain")


def test_a_store_day(store: Store, gateway: Gateway) -> None:
    """A day of a Розница 2.3 store: accumulations and balance for a cumulative discount, a sale paid
    partly by points with a coupon (sent twice from the queue: ВыгрузитьЗаданияНаОбновлениеПродаж),
    a return, the balance again. Sources: CommonModules/ДисконтныйСервер/Ext/Module.bsl
    (ДанныеНакопленийПоКарте, ОстатокБонусовПоКарте, ОбновитьДанныеОПродажах,
    ТаблицаСкидокДляКупона), WebServices/ДисконтныйСервер/Ext/Module.bsl."""
    now = gateway.service.clock()
    morning, noon, evening = local(now - timedelta(hours=3)), local(now - timedelta(hours=2)), local(now)
    month_start = local(now - timedelta(days=30))

    assert store.accumulations(month_start, evening) == (Decimal(0), Decimal(0))
    assert store.balance() == 200

    # A morning receipt issues a coupon (СостоянияОднократныхСкидокИКупонов: Активна).
    issuing = str(uuid.uuid4())
    store.send_document(
        "ЧекККМ",
        issuing,
        sale_rows(morning, [(ITEMS[0], "500", "1")]),
        [bonus_row(morning, 0, "25")],
        [coupon_row(morning, "ВЕСНА-0042", "Активна")],
    )
    assert store.balance() == 225
    [offer] = store.coupon("ВЕСНА-0042", noon)
    assert offer.findtext(f"{{{NS}}}ИдентификаторСкидки") == DISCOUNT_REF
    assert offer.findtext(f"{{{NS}}}Состояние") == "Активна"
    assert offer.findtext(f"{{{NS}}}ИдентификаторМагазина") == STORE_REF

    # The noon sale: 1 000.00 roubles, 100 points written off (1C's Расход rows: the points and the
    # КСписанию they close), 45 accrued on the 900 paid with money, the coupon applied.
    sale = str(uuid.uuid4())
    sales = sale_rows(noon, [(ITEMS[0], "600", "2"), (ITEMS[1], "400", "1.5")])
    bonuses = [bonus_row(noon, 1, "100"), bonus_row(noon, 1, "0", "100"), bonus_row(noon, 0, "45")]
    coupons = [coupon_row(noon, "ВЕСНА-0042", "Применена")]
    store.send_document("ЧекККМ", sale, sales, bonuses, coupons)
    before = gateway.ledger_snapshot()
    store.send_document("ЧекККМ", sale, sales, bonuses, coupons)  # the queue sends it again
    assert gateway.ledger_snapshot() == before
    assert store.balance() == 225 - 100 + 45
    assert store.coupon("ВЕСНА-0042", evening) == []

    amount, quantity = store.accumulations(month_start, evening)
    assert (amount, quantity) == (Decimal("1500"), Decimal("4.5"))
    # The receipt being calculated is left out (ИдентификаторИсключаемогоДокументта).
    assert store.accumulations(month_start, evening, excluded=sale) == (Decimal("500"), Decimal("1"))
    last = store.call(
        "ПолучитьДанныеПоследнейПокупки",
        _param("ИдентификаторКарты", CARD_REF)
        + _param("ДатаРасчета", evening)
        + _param("ИдентификаторСегмента", "")
        + _param("ИдентификаторИсключаемогоДокументта", ""),
    )
    assert last.get(f"{{{XSI}}}type") == "m:РезультатЗапросаОПоследнейПокупке"
    row = last.find(f"{{{NS}}}РезультатЗапроса")
    assert row is not None
    assert row.findtext(f"{{{NS}}}ДатаПокупки") == noon
    assert Decimal(row.findtext(f"{{{NS}}}СуммаНакопления", "")) == 1000

    # A return of the second line: negative sums and quantities (ТаблицаТоваровДляОбновленияПродаж,
    # Коэффициент = -1), the written-off points coming back (Приход) and the accrual taken back (Расход).
    refund = str(uuid.uuid4())
    store.send_document(
        "ВозвратТоваровОтПокупателя",
        refund,
        sale_rows(evening, [(ITEMS[1], "-400", "-1.5")]),
        [bonus_row(evening, 0, "40"), bonus_row(evening, 1, "18")],
    )
    store.send_document(
        "ВозвратТоваровОтПокупателя",
        refund,
        sale_rows(evening, [(ITEMS[1], "-400", "-1.5")]),
        [bonus_row(evening, 0, "40"), bonus_row(evening, 1, "18")],
    )
    assert store.balance() == 170 + 40 - 18
    assert store.accumulations(month_start, evening) == (Decimal("1100"), Decimal("3"))

    extended = store.call(
        "ПолучитьОстатокБонусовРасширенный", _param("ИдентификаторКарты", CARD_REF) + _param("ДатаЗапроса", evening)
    )
    assert extended.get(f"{{{XSI}}}type") == "m:РезультатЗапросаОБонусахРасширенный"
    first, *later = extended.findall(f"{{{NS}}}РезультатЗапроса")
    assert first.findtext(f"{{{NS}}}ПредставлениеПериода") == "Сейчас"
    assert Decimal(first.findtext(f"{{{NS}}}КоличествоБаллов", "")) == 192
    assert first.findtext(f"{{{NS}}}ТекущийОстаток") == "true"
    assert later and all(r.findtext(f"{{{NS}}}ПредставлениеПериода", "").startswith("Списание через") for r in later)
    gateway.assert_invariants()


def test_a_resend_with_other_content_replaces_the_document(store: Store, gateway: Gateway) -> None:
    """1C's server rewrites the document's records (НаборЗаписей.Записать(Истина)): a document
    re-posted with fewer points written off gives the difference back, never adds."""
    when = local(gateway.service.clock())
    doc = str(uuid.uuid4())
    sales = sale_rows(when, [(ITEMS[0], "1000", "1")])
    store.send_document("ЧекККМ", doc, sales, [bonus_row(when, 1, "100"), bonus_row(when, 0, "45")])
    assert store.balance() == 145
    store.send_document("ЧекККМ", doc, sales, [bonus_row(when, 1, "60"), bonus_row(when, 0, "47")])
    assert store.balance() == 187
    store.send_document("ЧекККМ", doc, sales, [bonus_row(when, 1, "100"), bonus_row(when, 0, "45")])
    assert store.balance() == 145
    gateway.assert_invariants()


def test_an_unknown_card_is_refused_in_the_stores_log_and_listed_as_stuck(gateway: Gateway) -> None:
    """No sale is booked on a guessed card: the fault text is what the store writes to its event
    log (ОписаниеОшибки() in ОбновитьДанныеОПродажах), the document stays in its queue, and the
    operator sees it until the catalogue is imported and the queue resends it."""
    card_with_points(gateway.service, 200, CARD_NUMBER)
    store = Store(gateway)
    when = local(gateway.service.clock())
    doc = str(uuid.uuid4())
    before = gateway.ledger_snapshot()
    response = store.post(
        "ОбновитьДанныеОБонусах",
        _param("ТипДокумента", "ЧекККМ")
        + _param("ИдентификаторДокумента", doc)
        + _table("ТаблицаБонусов", [bonus_row(when, 0, "45")]),
    )
    assert response.status_code == 500
    fault = etree.fromstring(response.content).find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    assert fault is not None
    assert CARD_REF in fault.findtext("faultstring", "")
    assert "import-cards" in fault.findtext("faultstring", "")
    assert gateway.ledger_snapshot() == before
    operator = StuckTransactions(gateway.service)
    [stuck] = [item for item in operator.list() if item.kind == "store_document"]
    assert doc in stuck.detail and "card_not_found" in stuck.detail
    assert operator.show(stuck.id).item["document_ref"] == doc
    assert operator.replay(stuck.id).startswith("waiting")  # only the store can resend it

    import_cards(gateway)
    assert store.update("ОбновитьДанныеОБонусах", "ЧекККМ", doc, "ТаблицаБонусов", [bonus_row(when, 0, "45")])
    assert store.balance() == 245
    assert [item for item in StuckTransactions(gateway.service).list() if item.kind == "store_document"] == []


def test_a_write_off_beyond_the_programs_share_is_refused_and_changes_nothing(store: Store, gateway: Gateway) -> None:
    """The demo program lets points pay at most 30 % of a receipt: 100 points on 200 roubles is
    refused with the reason in the store's log, and nothing is booked."""
    when = local(gateway.service.clock())
    doc = str(uuid.uuid4())
    assert store.update(
        "ОбновитьДанныеОПродажах", "ЧекККМ", doc, "ТаблицаТоваров", sale_rows(when, [(ITEMS[0], "200", "1")])
    )
    before = gateway.ledger_snapshot()
    response = store.post(
        "ОбновитьДанныеОБонусах",
        _param("ТипДокумента", "ЧекККМ")
        + _param("ИдентификаторДокумента", doc)
        + _table("ТаблицаБонусов", [bonus_row(when, 1, "100")]),
    )
    assert response.status_code == 500
    assert "сверх доли программы" in response.text
    assert gateway.ledger_snapshot() == before
    assert store.balance() == 200


def test_fractional_points_and_malformed_values_are_refused(store: Store, gateway: Gateway) -> None:
    when = local(gateway.service.clock())
    before = gateway.ledger_snapshot()
    response = store.post(
        "ОбновитьДанныеОБонусах",
        _param("ТипДокумента", "ЧекККМ")
        + _param("ИдентификаторДокумента", str(uuid.uuid4()))
        + _table("ТаблицаБонусов", [bonus_row(when, 0, "12.5")]),
    )
    assert response.status_code == 500 and "дробные баллы" in response.text
    response = store.post(
        "ПолучитьОстатокБонусов", _param("ИдентификаторКарты", "не-гуид") + _param("ДатаЗапроса", when)
    )
    assert response.status_code == 500 and "уникальным идентификатором" in response.text
    assert gateway.ledger_snapshot() == before


def test_hostile_xml_and_wrong_credentials_are_refused(gateway: Gateway) -> None:
    store = Store(gateway)
    doctype = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&e;</soap:Body></soap:Envelope>'
    )
    response = gateway.http.post(PUBLICATION, content=doctype, headers={**TILL, "Content-Type": "text/xml"})
    assert response.status_code == 500 and "validation_error" in response.text
    # the same DTD in UTF-16 has no ASCII "<!DOCTYPE" to find: the shared parser decodes first
    utf16 = doctype.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    response = gateway.http.post(
        PUBLICATION, content=utf16.encode("utf-16"), headers={**TILL, "Content-Type": "text/xml"}
    )
    assert response.status_code == 500 and "DTDs and entity declarations are not accepted" in response.text
    deep = envelope("ПолучитьОстатокБонусов", "<m:x>" * 40 + "</m:x>" * 40)
    response = gateway.http.post(PUBLICATION, content=deep, headers={**TILL, "Content-Type": "text/xml"})
    assert response.status_code == 500 and "validation_error" in response.text
    wrong = Store(gateway, basic("касса", "не тот пароль"))
    response = wrong.post("ПолучитьОстатокБонусов", _param("ИдентификаторКарты", CARD_REF))
    assert response.status_code == 401 and "Fault" in response.text
    assert store.post("ПолучитьОстатокБонусов", _param("ИдентификаторКарты", CARD_REF)).status_code == 500


def test_accumulations_count_receipts_of_every_channel(store: Store, gateway: Gateway) -> None:
    """1C's server counts the card's sales of every store (СкидкиНаценкиСервер.ДанныеНакопленийПоКарте);
    here a receipt committed by a till over the JSON API counts beside the store documents, net of
    its refund, and the receipt being calculated is left out by its id."""
    receipt = str(uuid.uuid4())
    body = {
        "receipt_id": receipt,
        "card_number": CARD_NUMBER,
        "lines": [{"line_id": "1", "item": "SKU-1", "quantity": "2", "price": "150.00"}],
    }
    committed = gateway.http.post("/api/v1/receipts", json=body, headers={**TILL, **key()})
    assert committed.status_code == 200, committed.text
    refund = {"refund_id": f"{receipt}-r", "amount": "100.00"}
    refunded = gateway.http.post(f"/api/v1/receipts/{receipt}/refunds", json=refund, headers={**TILL, **key()})
    assert refunded.status_code == 200, refunded.text
    now = gateway.service.clock()
    start, end = local(now - timedelta(days=1)), local(now + timedelta(minutes=1))
    assert store.accumulations(start, end) == (Decimal("200"), Decimal("2"))
    assert store.accumulations(start, end, excluded=receipt) == (Decimal(0), Decimal(0))


def test_the_soap12_port_answers_in_soap12(store: Store, gateway: Gateway) -> None:
    """A base proxied through ``ДисконтныйСерверSoap12`` sends SOAP 1.2 with the action in the
    content type; the reply comes in the same version."""
    body = (
        '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Header/><soap:Body>'
        f'<m:ПолучитьОстатокБонусов xmlns:m="{NS}">{_param("ИдентификаторКарты", CARD_REF)}'
        f"{_param('ДатаЗапроса', '0001-01-01T00:00:00')}</m:ПолучитьОстатокБонусов></soap:Body></soap:Envelope>"
    ).encode()
    content_type = f'application/soap+xml; charset=utf-8; action="{NS}#ДисконтныйСервер:ПолучитьОстатокБонусов"'
    response = gateway.http.post(
        PUBLICATION,
        content=body,
        headers=_utf8({**TILL, "Content-Type": content_type}),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/soap+xml")
    soap12 = "http://www.w3.org/2003/05/soap-envelope"
    points = etree.fromstring(response.content).findtext(
        f"{{{soap12}}}Body/{{{NS}}}ПолучитьОстатокБонусовResponse/{{{NS}}}return/{{{NS}}}РезультатЗапроса/{{{NS}}}КоличествоБаллов"
    )
    assert points == "200"


def test_concurrent_resends_book_a_document_once(store: Store, gateway: Gateway) -> None:
    """The queue job and a re-post may send the same document at once: it is booked once."""
    when = local(gateway.service.clock())
    doc = str(uuid.uuid4())
    assert store.update(
        "ОбновитьДанныеОПродажах", "ЧекККМ", doc, "ТаблицаТоваров", sale_rows(when, [(ITEMS[0], "1000", "1")])
    )
    body = envelope(
        "ОбновитьДанныеОБонусах",
        _param("ТипДокумента", "ЧекККМ")
        + _param("ИдентификаторДокумента", doc)
        + _table("ТаблицаБонусов", [bonus_row(when, 1, "100"), bonus_row(when, 0, "45")]),
    )

    def send(_: int) -> int:
        with httpx.Client(base_url=gateway.url, timeout=60) as http:
            return http.post(
                PUBLICATION, content=body, headers={**TILL, "Content-Type": "text/xml; charset=utf-8"}
            ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(send, range(6))) == [200] * 6
    assert store.balance() == 145
    gateway.assert_invariants()


def test_a_return_of_goods_whose_points_were_spent_takes_what_is_left(store: Store, gateway: Gateway) -> None:
    """The customer spent the accrual of a sale before returning it: the return takes back what the
    card still has, the rest is the document's shortfall; the store's resend changes nothing."""
    when = local(gateway.service.clock())
    sale, elsewhere, refund = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    store.send_document("ЧекККМ", sale, sale_rows(when, [(ITEMS[0], "1000", "1")]), [bonus_row(when, 0, "50")])
    store.send_document("ЧекККМ", elsewhere, sale_rows(when, [(ITEMS[1], "900", "1")]), [bonus_row(when, 1, "240")])
    assert store.balance() == 10
    returned = (sale_rows(when, [(ITEMS[0], "-1000", "-1")]), [bonus_row(when, 1, "50")])
    store.send_document("ВозвратТоваровОтПокупателя", refund, *returned)
    store.send_document("ВозвратТоваровОтПокупателя", refund, *returned)
    assert store.balance() == 0
    with gateway.service.db.read() as session:
        shortfall = session.execute(
            text("SELECT points_shortfall FROM discount_server_documents WHERE document_ref = :ref"), {"ref": refund}
        ).scalar_one()
    assert shortfall == 40
    gateway.assert_invariants()


def test_the_catalogue_import_reads_1c_exports_and_rejects_what_is_not_a_card(gateway: Gateway, tmp_path: Path) -> None:
    """A list form saved by 1C in windows-1251 with tabs; a row without a GUID is rejected, a GUID
    moved to another number follows the catalogue."""
    card_with_points(gateway.service, 150, CARD_NUMBER)
    export = tmp_path / "cards.txt"
    export.write_bytes(
        (
            "Наименование\tКод карты\tУникальный идентификатор\r\n"
            f"Карта 1\t2900000000099\t{CARD_REF.upper()}\r\n"
            "Карта 2\t2900000000100\tне GUID\r\n"
        ).encode("cp1251")
    )
    url = ["--database-url", gateway.service.db.url]
    result = CliRunner().invoke(cli, ["discountserver", "import-cards", str(export), *url])
    assert result.exit_code == 1
    assert "mapped 1 cards" in result.output and "line 3" in result.output
    assert "2900000000099" in result.output  # not a card of the gateway yet
    result = CliRunner().invoke(cli, ["discountserver", "import-cards", str(DATA / "cards.csv"), *url])
    assert result.exit_code == 0 and "1 moved to another number" in result.output
    assert Store(gateway).balance() == 150

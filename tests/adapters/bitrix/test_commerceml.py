"""The CommerceML exchange at /bitrix/admin/1c_exchange.php, driven over real HTTP exactly as
1C:ERP's "exchange with site" drives a 1C-Bitrix site: checkauth -> init -> file (in chunks) ->
import (progress ... success) -> query -> success.

Orders are placed for the site client first (as the site module would); 1C's files then pay,
ship and cancel them. Demo program: 5 % accrual, pending until shipment.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from adapters.bitrix.config import BitrixConfig, CommerceMLConfig
from contracts.operations import BalanceRequest, CartLine
from contracts.orders import OrderRequest, OrderResult
from gateway.config import GatewayConfig
from tests.conftest import Gateway

DATA = Path(__file__).resolve().parents[2] / "data" / "commerceml"
PATH = "/bitrix/admin/1c_exchange.php"
ANNA, BORIS, VERA = "2700000000014", "2700000000021", "2700000000038"


class OneC:
    """What 1C does, request by request: Basic auth on checkauth, then the session cookie (and
    ``sessid``) it was given; replies read as windows-1251 text."""

    def __init__(
        self, gw: Gateway, login: str = "erp", password: str = "demo-erp", encoding: str = "windows-1251"
    ) -> None:
        self.gw = gw
        self.encoding = encoding
        self.login, self.password = login, password
        self.cookie: str | None = None
        self.sessid: str | None = None
        # 1C's HTTP connection keeps the cookie it was given; whether it sends it again with a
        # second checkauth depends on its version, so both are played.
        self.keep_cookie = False

    def call(self, mode: str, body: bytes | None = None, **params: str) -> httpx.Response:
        query = {"type": "sale", "mode": mode, **params}
        headers: dict[str, str] = {}
        if mode == "checkauth":
            token = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if self.cookie and (mode != "checkauth" or self.keep_cookie):
            headers["Cookie"] = self.cookie
        self.gw.http.cookies.clear()  # only the cookie 1C chose to send, not httpx's jar
        if body is None:
            return self.gw.http.get(PATH, params=query, headers=headers)
        return self.gw.http.post(PATH, params=query, headers=headers, content=body)

    def lines(self, mode: str, body: bytes | None = None, **params: str) -> list[str]:
        response = self.call(mode, body, **params)
        assert response.status_code == 200, response.text
        # Bitrix labels its text replies text/html (component.php, at its end).
        assert response.headers["content-type"] == f"text/html; charset={self.encoding}"
        return response.content.decode(self.encoding).split("\n")

    def checkauth(self) -> list[str]:
        reply = self.lines("checkauth")
        if reply[0] == "success":
            self.cookie = f"{reply[1]}={reply[2]}"
            self.sessid = reply[3].removeprefix("sessid=")
        return reply

    def init(self, version: str | None = "3.1") -> dict[str, str]:
        params = {"sessid": self.sessid or ""} | ({"version": version} if version else {})
        reply = self.lines("init", None, **params)
        return dict(line.split("=", 1) for line in reply if "=" in line)

    def upload(self, filename: str, data: bytes, limit: int) -> None:
        for offset in range(0, len(data), limit):
            assert self.lines("file", data[offset : offset + limit], filename=filename)[0] == "success"

    def import_file(self, filename: str) -> list[list[str]]:
        replies = []
        for _ in range(100):
            reply = self.lines("import", filename=filename)
            replies.append(reply)
            if reply[0] != "progress":
                return replies
        raise AssertionError("import never finished")

    def query(self) -> bytes:
        response = self.call("query")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/xml")
        return response.content

    def exchange(self, filename: str, data: bytes, limit: int) -> list[list[str]]:
        assert self.checkauth()[0] == "success"
        self.init()
        self.upload(filename, data, limit)
        return self.import_file(filename)


def _config(demo: GatewayConfig, **changes: Any) -> GatewayConfig:
    section = demo.bitrix or BitrixConfig()
    cml = (section.commerceml or CommerceMLConfig()).model_copy(update=changes)
    return demo.model_copy(update={"bitrix": section.model_copy(update={"commerceml": cml})})


def place(
    gw: Gateway, order_id: str, card: str, lines: list[tuple[str, str, str, str]], points: int = 0
) -> OrderResult:
    request = OrderRequest(
        order_id=order_id,
        version=1000,
        card_number=card,
        lines=[
            CartLine(line_id=lid, item=item, quantity=Decimal(qty), price=Decimal(price))
            for lid, item, qty, price in lines
        ],
        points_to_spend=points,
    )
    return gw.service.apply_order("site", f"test:{order_id}", request)


def state(gw: Gateway, order_id: str) -> tuple[str, bool, bool, int, int, int]:
    record = gw.service.get_order("site", order_id)
    assert record is not None
    r = record.result
    return (
        r.status,
        record.snapshot.paid,
        record.snapshot.cancelled,
        r.points_spent,
        r.points_pending,
        r.points_available,
    )


def available(gw: Gateway, card: str) -> int:
    return gw.service.balance("site", BalanceRequest(card_number=card)).available


def place_2x_orders(gw: Gateway) -> None:
    place(gw, "1001", ANNA, [("A", "DRILL-01", "2", "500.00"), ("B", "BITS-SET", "1", "250.50")], points=300)
    place(gw, "1002", VERA, [("H", "HAMMER-7", "3", "100.00")])
    place(gw, "1003", ANNA, [("S", "SAW-3", "1", "1000.00")])


def documents(xml: bytes) -> dict[str, etree._Element]:
    root = etree.fromstring(xml)
    return {d.findtext("Ид"): d for d in root.iter("Документ")}


def requisites(document: etree._Element) -> dict[str, str]:
    block = document.find("ЗначенияРеквизитов")
    assert block is not None
    return {r.findtext("Наименование"): r.findtext("Значение") for r in block}


# ---------------------------------------------------------------------------------------------


def test_the_exchange_as_1c_drives_it_windows_1251(
    start_gateway: Callable[..., Gateway], demo_config: GatewayConfig
) -> None:
    gw = start_gateway(config=_config(demo_config, file_limit=1024, import_batch=1))
    gw.clock.freeze()
    place_2x_orders(gw)
    assert state(gw, "1001") == ("placed", False, False, 300, 47, 0)
    assert available(gw, ANNA) == 300

    onec = OneC(gw)
    auth = onec.checkauth()
    assert auth[0] == "success" and auth[1] == "PHPSESSID" and auth[3].startswith("sessid=") and auth[4] == ""
    assert onec.init() == {"zip": "yes", "file_limit": "1024", "sessid": onec.sessid or "", "version": "2.09"}

    # query: our orders, windows-1251, the same again until success.
    first = onec.query()
    assert first.startswith(b"<?xml version='1.0' encoding='windows-1251'?>")
    orders = documents(first)
    assert set(orders) == {"1001", "1002", "1003"}
    anna = orders["1001"]
    # Points paid for the order travel as an order discount; the document's Сумма is the money.
    assert anna.findtext("ХозОперация") == "Заказ товара" and anna.findtext("Сумма") == "950.50"
    assert requisites(anna)["Заказ оплачен"] == "false"
    assert requisites(anna)["Статус заказа"] == "[N] Принят, ожидается оплата"
    assert requisites(anna)["Номер бонусной карты"] == ANNA and requisites(anna)["Оплачено бонусами"] == "300"
    assert [(g.findtext("Ид"), g.findtext("ЦенаЗаЕдиницу"), g.findtext("Сумма")) for g in anna.iter("Товар")] == [
        ("DRILL-01", "500.00", "1000.00"),
        ("BITS-SET", "250.50", "250.50"),
    ]
    assert onec.query() == first
    assert onec.lines("success")[0] == "success"
    assert documents(onec.query()) == {}

    data = (DATA / "orders_2_08_windows1251.xml").read_bytes()
    assert len(data) > 4 * 1024  # sent in five chunks
    onec.upload("orders.xml", data, 1024)
    replies = onec.import_file("orders.xml")
    assert [r[0] for r in replies] == ["progress"] * 3 + ["success"]  # one document per step
    assert replies[0][1] == "Обработано документов: 1."
    assert "Заказ №5c1e0d3a-17b2-11ef-9b6e-0050569a1c22 на сайте не найден." in replies[2]

    # 1001: paid and shipped by 1C (2.x: one shipment for the whole order): its points unlock.
    assert state(gw, "1001") == ("shipped", True, False, 300, 0, 47)
    assert available(gw, ANNA) == 347
    assert state(gw, "1002") == ("paid", True, False, 0, 15, 0)  # paid, still waiting for shipment
    assert state(gw, "1003") == ("cancelled", False, True, 0, 0, 0)
    record = gw.service.get_order("site", "1001")
    assert record is not None and record.snapshot.version == 1001
    shipment = record.snapshot.shipments[0]
    assert shipment.shipment_id == "1c:РТУ-000123" and shipment.shipped_at is not None
    assert shipment.shipped_at.isoformat() == "2024-05-22T10:00:00+03:00"

    # What 1C itself changed is not sent back to it (Bitrix: UPDATED_1C).
    assert documents(onec.query()) == {}
    assert onec.lines("success")[0] == "success"

    # A change after the committed export is the only thing the next query carries.
    place(gw, "1004", BORIS, [("X", "SAW-3", "1", "1000.00")])
    assert set(documents(onec.query())) == {"1004"}

    # The same file imported again (a new exchange) changes nothing.
    before = gw.ledger_snapshot()
    again = OneC(gw).exchange("orders.xml", data, 1024)
    assert again[-1][0] == "success"
    assert gw.ledger_snapshot() == before
    assert record.snapshot.version == gw.service.get_order("site", "1001").snapshot.version  # type: ignore[union-attr]
    gw.assert_invariants()


def test_commerceml_3_containers_in_utf8(start_gateway: Callable[..., Gateway], demo_config: GatewayConfig) -> None:
    gw = start_gateway(config=_config(demo_config, encoding="utf-8", schema_version="3.1"))
    placed = place(gw, "2001", BORIS, [("H", "HAMMER-7", "3", "100.00"), ("N", "NAILS-100", "10", "5.00")])
    assert (placed.points_pending, [ln.points_accrued for ln in placed.lines]) == (17, [15, 2])
    place(gw, "2002", BORIS, [("X", "HAMMER-7", "1", "100.00")])

    onec = OneC(gw, encoding="utf-8")
    assert onec.checkauth()[0] == "success"
    xml = onec.query()
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = etree.fromstring(xml)
    assert root.get("ВерсияСхемы") == "3.1"
    assert [c.findtext("Документ/Ид") for c in root.iter("Контейнер")] == ["2001", "2002"]
    assert onec.lines("success")[0] == "success"

    replies = onec.exchange("orders.xml", (DATA / "orders_3_1_utf8.xml").read_bytes(), 2048)
    assert replies == [["success", ""]]
    # Paid by the payment document; one of the two shipments is done (1 hammer): 5 of its 15 points.
    assert state(gw, "2001") == ("partially_shipped", True, False, 0, 12, 5)
    assert state(gw, "2002") == ("cancelled", False, True, 0, 0, 0)

    # The second shipment arrives later on its own, naming its order in Основание.
    replies = OneC(gw, encoding="utf-8").exchange("ship.xml", (DATA / "shipment_3_1_utf8.xml").read_bytes(), 2048)
    assert replies == [["success", ""]]
    assert state(gw, "2001") == ("shipped", True, False, 0, 0, 17)
    record = gw.service.get_order("site", "2001")
    assert record is not None
    assert [s.shipment_id for s in record.snapshot.shipments] == [
        "1c:1a7c3e20-18c4-11ef-9b6e-0050569a1c22",
        "1c:2b8d4f30-18c4-11ef-9b6e-0050569a1c22",
    ]

    assert documents(onec.query()) == {}  # all of it was 1C's own news
    gw.assert_invariants()


def test_a_zip_archive_is_extracted_then_imported(
    start_gateway: Callable[..., Gateway], demo_config: GatewayConfig
) -> None:
    gw = start_gateway(config=_config(demo_config, file_limit=1024))
    place(gw, "2001", BORIS, [("H", "HAMMER-7", "3", "100.00"), ("N", "NAILS-100", "10", "5.00")])
    place(gw, "2002", BORIS, [("X", "HAMMER-7", "1", "100.00")])
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("orders.xml", (DATA / "orders_3_1_utf8.xml").read_bytes())
    onec = OneC(gw)
    onec.checkauth()
    assert onec.init()["zip"] == "yes"
    onec.upload("orders.zip", packed.getvalue(), 1024)
    replies = onec.import_file("orders.xml")
    assert replies == [["progress", "Распаковка архива завершена.", ""], ["success", ""]]
    assert state(gw, "2001")[0] == "partially_shipped"


def _zip(members: dict[str, bytes]) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return packed.getvalue()


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<КоммерческаяИнформация><Документ><Ид>1001</Ид><Комментарий>&lol3;</Комментарий></Документ></КоммерческаяИнформация>""".encode()
XXE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE КоммерческаяИнформация [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<КоммерческаяИнформация><Документ><Ид>1001</Ид><ХозОперация>Заказ товара</ХозОперация>
<Комментарий>&xxe;</Комментарий></Документ></КоммерческаяИнформация>""".encode()
_SHIP_1001 = (
    "<Документ><Ид>1001</Ид><ХозОперация>Заказ товара</ХозОперация><ЗначенияРеквизитов><ЗначениеРеквизита>"
    "<Наименование>Отгружен</Наименование><Значение>true</Значение></ЗначениеРеквизита></ЗначенияРеквизитов></Документ>"
)
DEEP_AFTER_A_GOOD_ONE = (
    '<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация>'
    + _SHIP_1001
    + "<Документ>"
    + "<a>" * 40
    + "</a>" * 40
    + "</Документ></КоммерческаяИнформация>"
).encode()
TRUNCATED = (
    '<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация>' + _SHIP_1001 + "<Документ><Ид>10"
).encode()
UTF16 = (
    '<?xml version="1.0" encoding="UTF-16"?><КоммерческаяИнформация>' + _SHIP_1001 + "</КоммерческаяИнформация>"
).encode("utf-16")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("xxe.xml", XXE, "DTDs and entity declarations are not accepted"),
        ("laughs.xml", BILLION_LAUGHS, "DTDs and entity declarations are not accepted"),
        ("deep.xml", DEEP_AFTER_A_GOOD_ONE, "nesting deeper than 32 levels"),
        ("cut.xml", TRUNCATED, "malformed XML"),
        ("utf16.xml", UTF16, "UTF-16 documents are not accepted"),
        ("slip.zip", _zip({"../../../etc/cron.d/x.xml": b"<a/>"}), "недопустимое имя файла в архиве"),
        ("bomb.zip", _zip({"orders.xml": b"<a>" + b" " * (3 * 1024 * 1024) + b"</a>"}), "распакованный архив больше"),
        ("fake.zip", b"PK\x03\x04 not really a zip", "не является zip-архивом"),
    ],
)
def test_hostile_files_are_refused_and_change_nothing(
    start_gateway: Callable[..., Gateway], demo_config: GatewayConfig, name: str, data: bytes, message: str
) -> None:
    gw = start_gateway(config=_config(demo_config, file_limit=64 * 1024, max_file_bytes=2 * 1024 * 1024))
    place_2x_orders(gw)
    before = gw.ledger_snapshot()
    onec = OneC(gw)
    onec.checkauth()
    onec.init()
    onec.upload(name, data, 64 * 1024)
    reply = onec.import_file(name if not name.endswith(".zip") else "orders.xml")[-1]
    assert reply[0] == "failure" and message in reply[1], reply
    assert state(gw, "1001") == ("placed", False, False, 300, 47, 0)
    assert gw.ledger_snapshot() == before


def test_sessions_and_credentials(start_gateway: Callable[..., Gateway], demo_config: GatewayConfig) -> None:
    clients = [c.model_copy(update={"login": "обмен_1с"}) if c.id == "erp" else c for c in demo_config.clients]
    gw = start_gateway(config=_config(demo_config.model_copy(update={"clients": clients}), session_ttl_seconds=600))
    assert OneC(gw, "обмен_1с", "wrong").checkauth() == [
        "failure",
        "Ошибка авторизации. Неверное имя пользователя или пароль.",
        "",
    ]
    site = OneC(gw, "site", "demo-site").checkauth()
    assert site[0] == "failure" and site[1].startswith("У Вас нет прав")

    onec = OneC(gw, "обмен_1с", "demo-erp")  # a Cyrillic login, sent as UTF-8
    assert onec.checkauth()[0] == "success"
    assert onec.lines("query", sessid="forged")[0] == "failure"
    assert onec.lines("success", sessid=onec.sessid or "")[0] == "success"
    assert onec.lines("nonsense")[0:2] == ["failure", "Неизвестная команда."]
    catalog = onec.call("init").request.url.copy_set_param("type", "catalog")
    assert gw.http.get(catalog, headers={"Cookie": onec.cookie or ""}).content.decode("cp1251").startswith("failure")

    stranger = OneC(gw)
    stranger.cookie = "PHPSESSID=0123456789abcdef0123456789abcdef"
    assert stranger.lines("query")[0] == "failure"
    assert stranger.lines("success")[0] == "error"
    assert stranger.lines("file", b"<a/>", filename="x.xml")[0] == "failure"

    gw.clock.advance(seconds=601)  # idle past the session's lifetime
    assert onec.lines("query")[0] == "failure"
    assert onec.lines("success")[0] == "error"


@pytest.mark.parametrize(
    "filename", ["../secret.xml", "..\\..\\boot.ini", "C:\\1c\\orders.xml", "a/../../b.xml", "orders\x00.xml", ""]
)
def test_unsafe_file_names_are_refused(gateway: Gateway, filename: str) -> None:
    onec = OneC(gateway)
    onec.checkauth()
    onec.init()
    assert onec.lines("file", b"<a/>", filename=filename)[0:2] == ["failure", "Недопустимое имя файла."]


def test_idle_sessions_and_their_files_are_cleaned_up(gateway: Gateway, demo_config: GatewayConfig) -> None:
    from sqlalchemy import func
    from sqlmodel import select

    from adapters.bitrix.wiring import build_jobs
    from gateway.store.models_bitrix import BitrixExchangeChunk, BitrixExchangeFile

    onec = OneC(gateway)
    onec.checkauth()
    onec.init()
    onec.upload("orders.xml", (DATA / "orders_3_1_utf8.xml").read_bytes(), 1024)
    (job,) = build_jobs(gateway.service, demo_config)
    assert job.run()["exchange_sessions_purged"] == 0
    gateway.clock.advance(hours=25)
    assert job.run()["exchange_sessions_purged"] == 1
    with gateway.service.db.read() as session:
        assert session.exec(select(func.count()).select_from(BitrixExchangeFile)).one() == 0
        assert session.exec(select(func.count()).select_from(BitrixExchangeChunk)).one() == 0
    assert onec.lines("import", filename="orders.xml")[0] == "failure"  # the session is gone too


def test_large_files_stream_with_one_document_in_memory() -> None:
    from gateway.xmlsafe import iter_children

    one = (DATA / "orders_3_1_utf8.xml").read_text(encoding="utf-8")
    container = one[one.index("<Контейнер>") : one.index("</Контейнер>") + len("</Контейнер>")]
    body = '<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация ВерсияСхемы="3.1">' + container * 3000
    data = (body + "</КоммерческаяИнформация>").encode()
    assert len(data) > 10 * 1024 * 1024
    chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
    seen, most = 0, 0
    for element in iter_children(chunks, max_bytes=len(data)):
        root = element.getparent()
        assert root is not None
        most = max(most, len(root))  # what is in memory: this document and the rest of its chunk
        seen += 1
    assert seen == 3000
    assert most <= 20  # a 64 KiB chunk holds about 13 of these documents; the 2987 others were freed


def test_a_doctype_split_across_chunks_is_still_refused() -> None:
    from gateway.xmlsafe import UnsafeXml, iter_children

    data = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'
    cut = data.index(b"DOC") + 1
    with pytest.raises(UnsafeXml, match="DTDs"):
        list(iter_children([data[:cut], data[cut:]]))


def test_1c_news_is_merged_tolerantly() -> None:
    from adapters.bitrix.commerceml.documents import Document, Item, Package
    from adapters.bitrix.commerceml.importer import merge

    cfg = CommerceMLConfig()
    stored = OrderRequest(
        order_id="7",
        version=3000,
        card_number=ANNA,
        lines=[
            CartLine(line_id="1", item="G", quantity=Decimal("2"), price=Decimal("10")),
            CartLine(line_id="2", item="G", quantity=Decimal("1.5"), price=Decimal("10")),
        ],
    )

    def shipment(doc_id: str, quantity: str, shipped: str = "true") -> Document:
        return Document(
            "shipment", "Отпуск товара", doc_id, None, "7", {"отгружен": shipped}, [Item("G", None, Decimal(quantity))]
        )

    merged = merge(cfg, stored, Package(None, [shipment("a", "2.5"), shipment("b", "5", "false")]))
    assert [(q.line_id, q.quantity) for q in merged.shipments[0].lines] == [("1", Decimal(2)), ("2", Decimal("0.5"))]
    # The same shipment again, and more than is left: capped, never repeated.
    again = merge(cfg, merged, Package(None, [shipment("a", "2.5"), shipment("c", "9")]))
    assert [s.shipment_id for s in again.shipments] == ["1c:a", "1c:c"]
    assert [(q.line_id, q.quantity) for q in again.shipments[1].lines] == [("2", Decimal(1))]
    status = Document("order", "Заказ товара", "7", "7", None, {"статус заказа": "[F] Выполнен "}, [])
    assert merge(cfg, stored, Package(status)).shipped() == {"1": Decimal(2), "2": Decimal("1.5")}
    unpaid = Document("order", "Заказ товара", "7", "7", None, {"заказ оплачен": "false"}, [])
    assert merge(cfg, stored.model_copy(update={"paid": True}), Package(unpaid)).paid is True


def test_1c_edits_lines_of_an_unpaid_order_only() -> None:
    """Dev-tester/TechStore bitrix/modules/sale/general/order_loader.php,
    updateOrderWithoutShipmentsPayments: while the order is unpaid its basket becomes 1C's goods
    (matched by PRODUCT_XML_ID); a paid order is refused with CC_BSC1_FINAL_NOT_EDIT."""
    from adapters.bitrix.commerceml.documents import Document, Item, Package
    from adapters.bitrix.commerceml.importer import merge

    cfg = CommerceMLConfig()
    stored = OrderRequest(
        order_id="8",
        version=5,
        card_number=ANNA,
        points_to_spend=100,
        lines=[
            CartLine(line_id="1", item="G", quantity=Decimal("4"), price=Decimal("10")),
            CartLine(line_id="2", item="H", quantity=Decimal("1"), price=Decimal("60")),
        ],
    )

    def order(*items: Item) -> Package:
        return Package(Document("order", "Заказ товара", "8", "8", None, {}, list(items), has_goods=True))

    warnings: list[str] = []
    edited = merge(
        cfg,
        stored,
        order(Item("G", "Гвозди", Decimal("1"), Decimal("10")), Item("NEW", "Новый", Decimal("2"), Decimal("5.50"))),
        warnings,
        {"1": 40, "2": 60},
    )
    assert [(ln.line_id, ln.item, ln.quantity, ln.price) for ln in edited.lines] == [
        ("1", "G", Decimal(1), Decimal(10)),
        ("1c:NEW", "NEW", Decimal(2), Decimal("5.50")),
    ]
    assert edited.points_to_spend == 10 and warnings == []  # a quarter of line 1's 40; line 2's 60 back
    # Goods 1C knows by other ids than the site: nothing matches, the lines stay.
    kept = merge(cfg, stored, order(Item("guid-1", "Гвозди", Decimal("4"), Decimal("10"))), warnings)
    assert kept.lines == stored.lines and "Ид товаров 1С и сайта не совпадают" in warnings[0]
    # A paid order keeps its lines; 1C is told why.
    paid = stored.model_copy(update={"paid": True})
    assert merge(cfg, paid, order(Item("G", None, Decimal("1"), None)), warnings).lines == stored.lines
    assert warnings[-1].startswith("Заказ №8 не может быть изменен")
    # A document without Товары says nothing about the lines; one not cancelled un-cancels.
    cancelled = stored.model_copy(update={"cancelled": True})
    bare = Package(Document("order", "Заказ товара", "8", "8", None, {"отменен": "false"}, []))
    assert merge(cfg, cancelled, bare).model_dump() == stored.model_dump()

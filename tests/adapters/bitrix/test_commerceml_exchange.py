"""1C's "exchange with site" played step by step against the gateway on loopback, in both
protocol generations, with files shaped like the ones 1C sends, checking orders and points after
every step.

The authority is Bitrix's own exchange component, which 1C was built against:
``avshatalov48/bitrix-core-business`` ``modules/sale/install/components/bitrix/sale.export.1c/
component.php`` (checkauth lines; ``init`` with ``version`` -> ``import`` answers ``progress``
until ``success``; ``init`` without it -> the file is imported on ``file``; ``info``; ``success``
with a foreign cookie -> ``error``; text replies ``text/html``, XML ``application/xml``, always
windows-1251), its ``lang/ru/component.php`` (texts, ``Статуса заказа ИД``, the ``Cтатусы``
element of ``info`` spelt with a Latin C), ``modules/sale/general/export.php`` (what ``query``
sends); ``Dev-tester/TechStore`` ``bitrix/modules/sale/general/order_loader.php`` (how a site
applies 1C's order: the basket rewritten while unpaid, cancel and un-cancel, ``UPDATED_1C`` so
that 1C's own news is not sent back); ``magento-russia/3`` ``Cml2/Action/Login.php`` and
``Cookie.php`` (1C carries the session as the cookie named in the reply to ``checkauth``).

Files: ``tests/data/commerceml/edit_lines_cancel_2_08_windows1251.xml`` (1C 2.08: the
``urn:1C.ru:commerceml_2`` namespace, CRLF, values with trailing spaces, a delivery ``Услуга``
line) and ``uncancel_2_10_utf8.xml``, written in the shape of ``dobromyslov/commerceml-parser``
``data/`` and ``ArgentCrusade/commerceml`` ``tests/fixtures/``. ``query`` output is validated
with lxml against our own minimal schema ``orders-2.10-minimal.xsd`` (element order and
cardinality of ``doc/commerceml-2.10.xsd`` in ``dobromyslov/commerceml-parser``).

Demo program: 5 % accrual on the money part, pending until shipment; a point is worth 1 ruble.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from lxml import etree
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from contracts.operations import CartLine
from contracts.orders import OrderRequest
from gateway.cli import app as cli
from gateway.config import GatewayConfig
from tests.adapters.bitrix.test_commerceml import (
    ANNA,
    BORIS,
    VERA,
    OneC,
    _config,
    available,
    documents,
    place,
    requisites,
    state,
)
from tests.conftest import Gateway

DATA = Path(__file__).resolve().parents[2] / "data" / "commerceml"
SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "orders-2.10-minimal.xsd")))
EDIT = (DATA / "edit_lines_cancel_2_08_windows1251.xml").read_bytes()
UNCANCEL = (DATA / "uncancel_2_10_utf8.xml").read_bytes()


def _valid(xml: bytes) -> etree._Element:
    root = etree.fromstring(xml)
    assert SCHEMA.validate(root), SCHEMA.error_log
    return root


def _zip(members: dict[str, bytes]) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return packed.getvalue()


def _goods(document: etree._Element) -> list[tuple[str | None, str | None, str | None, str | None]]:
    return [
        (g.findtext("Ид"), g.findtext("ЦенаЗаЕдиницу"), g.findtext("Количество"), g.findtext("Сумма"))
        for g in document.iter("Товар")
    ]


def _discounts(document: etree._Element) -> list[tuple[str | None, str | None, str | None]]:
    block = document.find("Скидки")
    if block is None:
        return []
    return [(d.findtext("Наименование"), d.findtext("Сумма"), d.findtext("УчтеноВСумме")) for d in block]


def _place_orders(gw: Gateway) -> None:
    place(gw, "3001", ANNA, [("A", "DRILL-01", "2", "500.00"), ("B", "BITS-SET", "1", "250.50")], points=300)
    place(gw, "3002", VERA, [("H", "HAMMER-7", "3", "100.00")])
    # The site gave its own discount on this line: 290.00 for three does not divide in kopecks.
    gw.service.apply_order(
        "site",
        "test:3003",
        OrderRequest(
            order_id="3003",
            version=1000,
            card_number=BORIS,
            lines=[
                CartLine(
                    line_id="N",
                    item="NAILS-100",
                    quantity=Decimal(3),
                    price=Decimal("100.00"),
                    amount=Decimal("290.00"),
                )
            ],
        ),
    )


def test_current_generation_step_by_step(start_gateway: Callable[..., Gateway], demo_config: GatewayConfig) -> None:
    gw = start_gateway(config=_config(demo_config, file_limit=1024, import_batch=1))
    _place_orders(gw)
    assert state(gw, "3001") == ("placed", False, False, 300, 47, 0)
    anna_before = available(gw, ANNA)

    # checkauth: four lines, the cookie 1C sends from now on (magento-russia/3 Cookie.php).
    onec = OneC(gw)
    onec.keep_cookie = True
    auth = onec.checkauth()
    assert auth[:2] == ["success", "PHPSESSID"] and auth[3] == f"sessid={onec.sessid}"
    response = onec.call("init", sessid=onec.sessid or "", version="3.1")
    # Bitrix: zip, file_limit, the sessid line and "version=2.09" with no line feed after it.
    assert response.content == f"zip=yes\nfile_limit=1024\nsessid={onec.sessid}\nversion=2.09".encode()

    # query first: what the site has, in the schema's order, windows-1251.
    xml = onec.query()
    assert xml.startswith(b"<?xml version='1.0' encoding='windows-1251'?>")
    orders = {d.findtext("Ид"): d for d in _valid(xml).iter("Документ")}
    assert set(orders) == {"3001", "3002", "3003"}
    anna = orders["3001"]
    assert _goods(anna) == [("DRILL-01", "500.00", "2", "1000.00"), ("BITS-SET", "250.50", "1", "250.50")]
    # Points are an order discount not included in the lines; Сумма is the money still to pay.
    assert _discounts(anna) == [("Оплата бонусными баллами", "300.00", "false")]
    assert anna.findtext("Сумма") == "950.50"
    assert requisites(anna)["Статус заказа"] == "[N] Принят, ожидается оплата"
    assert requisites(anna)["Статуса заказа ИД"] == "N"
    nails = orders["3003"]
    # 290.00 / 3: the price is rounded up to 96.67, the kopeck it adds is an order discount.
    assert _goods(nails) == [("NAILS-100", "96.67", "3", "290.01")]
    assert _discounts(nails) == [("Скидка на заказ", "0.01", "false")]
    assert nails.findtext("Сумма") == "290.00"
    for document in orders.values():
        for good in document.iter("Товар"):
            price, quantity, total = (Decimal(good.findtext(n) or "") for n in ("ЦенаЗаЕдиницу", "Количество", "Сумма"))
            assert price * quantity == total
    assert onec.lines("success", sessid=onec.sessid or "") == ["success", ""]
    assert documents(onec.query()) == {}

    # 1C uploads its news zipped, in 1 KiB chunks; halfway it authenticates again with the
    # cookie it holds and gets the same session back, so the upload goes on.
    packed = _zip({"orders.xml": EDIT})
    assert len(packed) > 1024
    cookie = onec.cookie
    assert onec.lines("file", packed[:1024], filename="orders.zip")[0] == "success"
    assert onec.checkauth()[0] == "success" and onec.cookie == cookie
    onec.upload("orders.zip", packed[1024:], 1024)
    assert state(gw, "3001") == ("placed", False, False, 300, 47, 0)  # nothing applied on upload
    replies = onec.import_file("orders.xml")
    assert [r[0] for r in replies] == ["progress", "progress", "success"]  # unzip, then a document a step
    assert replies[0][1] == "Распаковка архива завершена."

    # 3001: paid by 1C, one drill of two left and the bits dropped. The points that paid for
    # what was removed go back (the drill line had 240 of the 300: 120 stay, 180 come back), the
    # dropped line earns nothing, the drill earns 5 % of the 380.00 paid in money: 19.
    record = gw.service.get_order("site", "3001")
    assert record is not None
    assert [(ln.line_id, ln.quantity) for ln in record.snapshot.lines] == [("A", Decimal(1))]
    assert state(gw, "3001") == ("paid", True, False, 120, 19, 0)
    assert available(gw, ANNA) == anna_before + 180
    # 3002 cancelled by 1C: its pending points are gone.
    assert state(gw, "3002") == ("cancelled", False, True, 0, 0, 0)

    # 1C's own news is not sent back; an order the site changes afterwards is.
    assert documents(onec.query()) == {}
    assert onec.lines("success", sessid=onec.sessid or "")[0] == "success"
    place(gw, "3004", BORIS, [("X", "SAW-3", "1", "1000.00")])
    assert set(documents(_valid_bytes(onec.query()))) == {"3004"}
    assert onec.lines("success", sessid=onec.sessid or "")[0] == "success"

    # Next exchange, UTF-8 and unzipped: 3002 un-cancelled; 3001 edited again, but it is paid
    # now, so the edit is refused with Bitrix's words and nothing of 3001 changes.
    again = OneC(gw, encoding="windows-1251")
    replies = again.exchange("uncancel.xml", UNCANCEL, 1024)
    assert replies[-1][0] == "success"
    assert any("Заказ №3001 не может быть изменен" in line for reply in replies for line in reply)
    assert state(gw, "3002") == ("placed", False, False, 0, 15, 0)
    assert state(gw, "3001") == ("paid", True, False, 120, 19, 0)
    assert documents(again.query()) == {}
    gw.assert_invariants()


def _valid_bytes(xml: bytes) -> bytes:
    _valid(xml)
    return xml


def test_a_second_checkauth_without_the_cookie_keeps_the_upload(
    start_gateway: Callable[..., Gateway], demo_config: GatewayConfig
) -> None:
    gw = start_gateway(config=_config(demo_config, file_limit=1024))
    _place_orders(gw)
    onec = OneC(gw)
    onec.checkauth()
    onec.init()
    first_cookie = onec.cookie
    assert onec.lines("file", EDIT[:1024], filename="orders.xml")[0] == "success"
    # A new session (a new cookie) takes over the upload and the agreed protocol version.
    assert onec.checkauth()[0] == "success" and onec.cookie != first_cookie
    onec.upload("orders.xml", EDIT[1024:], 1024)
    replies = onec.import_file("orders.xml")
    assert replies[-1][0] == "success"
    assert state(gw, "3001") == ("paid", True, False, 120, 19, 0)
    assert state(gw, "3002") == ("cancelled", False, True, 0, 0, 0)


def test_older_generation_imports_on_file(start_gateway: Callable[..., Gateway], demo_config: GatewayConfig) -> None:
    gw = start_gateway(config=_config(demo_config))
    _place_orders(gw)
    onec = OneC(gw)
    onec.checkauth()
    # init without version: no sessid, no version line (component.php).
    assert onec.call("init").content == b"zip=yes\nfile_limit=2097152\n"
    # 1C of this generation never calls import: the file is applied when it arrives.
    assert onec.lines("file", _zip({"orders.xml": EDIT}), filename="orders.zip") == ["success", ""]
    assert state(gw, "3001") == ("paid", True, False, 120, 19, 0)
    assert state(gw, "3002") == ("cancelled", False, True, 0, 0, 0)
    # The next exchange of the same 1C: plain XML, un-cancels 3002 on the spot.
    onec.checkauth()
    onec.call("init")
    reply = onec.lines("file", UNCANCEL, filename="uncancel.xml")
    assert reply[0] == "success" and "Заказ №3001 не может быть изменен" in reply[1]
    assert state(gw, "3002") == ("placed", False, False, 0, 15, 0)
    # Its query and success work as in the current generation.
    assert set(documents(_valid_bytes(onec.query()))) == {"3003"}
    assert onec.lines("success") == ["success", ""]
    assert documents(onec.query()) == {}
    gw.assert_invariants()


def test_info_lists_statuses_payment_systems_and_deliveries(gateway: Gateway) -> None:
    onec = OneC(gateway)
    onec.checkauth()
    response = onec.call("info")
    assert response.headers["content-type"] == "application/xml; charset=windows-1251"
    assert response.content.startswith(b"<?xml version='1.0' encoding='windows-1251'?>")
    root = etree.fromstring(response.content)
    assert root.tag == "Справочник"
    # "Cтатусы" with a Latin C, as Bitrix's lang/ru/component.php spells CC_BSC1_DI_STATUSES.
    assert [child.tag for child in root] == ["C\u0442атусы", "ПлатежныеСистемы", "СлужбыДоставки"]
    statuses = {e.findtext("Ид"): e.findtext("Название") for e in root[0]}
    assert statuses["N"] == "Принят, ожидается оплата" and statuses["F"] == "Выполнен"
    assert [(e.findtext("Ид"), e.findtext("Название")) for e in root[1]] == [("bonus", "Бонусные баллы")]
    assert onec.lines("nonsense")[:2] == ["failure", "Неизвестная команда."]


def _bomb(size: int, name: bytes = b"orders.xml") -> bytes:
    """A valid zip of one member of ``size`` zero bytes (a multiple of 1 MiB), about a
    thousandth of that in size. Each 1 MiB is deflated after a full flush, so every piece of
    the stream is the same bytes: built in a second instead of compressing a gigabyte."""
    block = b"\0" * (1 << 20)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = squeeze.compress(block) + squeeze.flush(zlib.Z_FULL_FLUSH)
    blocks = size >> 20
    data = piece * blocks + squeeze.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0) + name
    central = (
        struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0, 0, 0, 0, 0, 0)
        + name
    )
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    return local + data + central + end


def test_the_bomb_is_a_real_zip() -> None:
    small = _bomb(3 << 20)
    with zipfile.ZipFile(io.BytesIO(small)) as archive:
        assert archive.testzip() is None
        assert archive.read("orders.xml") == b"\0" * (3 << 20)


def test_a_zip_bomb_stops_early_writes_nothing_and_blocks_nothing(
    start_gateway: Callable[..., Gateway], demo_config: GatewayConfig, database_url: str
) -> None:
    from gateway.store.models_bitrix import BitrixExchangeChunk

    gw = start_gateway(config=_config(demo_config, file_limit=4 * 1024 * 1024))
    _place_orders(gw)
    before = gw.ledger_snapshot()
    bomb = _bomb(1 << 30)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 2 * 1024 * 1024
    onec = OneC(gw)
    onec.checkauth()
    onec.init()
    onec.upload("bomb.zip", bomb, 4 * 1024 * 1024)
    started = time.monotonic()
    reply = onec.lines("import", filename="orders.xml")
    elapsed = time.monotonic() - started
    assert reply[0] == "failure" and "распакованный архив больше" in reply[1], reply
    assert elapsed < 10  # it stopped at the bound, not at 1 GiB
    with gw.service.db.read() as session:
        stored = session.exec(select(func.coalesce(func.sum(func.length(BitrixExchangeChunk.data)), 0))).one()
    assert stored == len(bomb)  # the archive as sent, and not one byte unpacked
    assert gw.ledger_snapshot() == before

    # The same session goes on: a good file is imported as if the bomb had not been there.
    onec.upload("good.xml", EDIT, 4 * 1024 * 1024)
    assert onec.import_file("good.xml")[-1][0] == "success"
    assert state(gw, "3001") == ("paid", True, False, 120, 19, 0)
    # The failed archive is reported with its reason to the operator.
    result = CliRunner().invoke(cli, ["bitrix", "status", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "bomb.zip" in result.output and "распакованный архив больше" in result.output
    from adapters.bitrix.maintenance import failed_exchange_files

    assert any("bomb.zip" in line for line in failed_exchange_files(gw.service.db))


def test_a_broken_file_is_reported_and_the_next_import_is_not_blocked(
    start_gateway: Callable[..., Gateway], demo_config: GatewayConfig
) -> None:
    gw = start_gateway(config=_config(demo_config))
    _place_orders(gw)
    onec = OneC(gw)
    onec.checkauth()
    onec.init()
    cut = EDIT[: len(EDIT) // 2]
    onec.upload("cut.xml", cut, 1 << 20)
    reply = onec.lines("import", filename="cut.xml")
    assert reply[0] == "failure" and "malformed XML" in reply[1]
    assert onec.lines("import", filename="cut.xml")[0] == "failure"  # loudly, every time it is asked
    assert state(gw, "3001") == ("placed", False, False, 300, 47, 0)
    onec.upload("whole.xml", EDIT, 1 << 20)
    assert onec.import_file("whole.xml")[-1][0] == "success"
    assert state(gw, "3001") == ("paid", True, False, 120, 19, 0)
    from adapters.bitrix.maintenance import failed_exchange_files

    assert [line.split(" ", 2)[2].split(",")[0] for line in failed_exchange_files(gw.service.db)] == ["cut.xml"]
    # The operator page lists it with the reason.
    page = gw.http.get("/operator", headers={"Authorization": "Basic b3BlcmF0b3I6ZGVtby1vcGVyYXRvcg=="})
    assert page.status_code == 200
    listed = etree.HTML(page.text).xpath('//ul[@id="cml-failed"]/li/text()')
    assert len(listed) == 1 and "cut.xml" in listed[0] and "malformed XML" in listed[0]


def test_query_in_3_1_validates_and_carries_contacts(
    start_gateway: Callable[..., Gateway], demo_config: GatewayConfig
) -> None:
    gw = start_gateway(config=_config(demo_config, schema_version="3.1"))
    _place_orders(gw)
    onec = OneC(gw)
    onec.checkauth()
    onec.init()
    root = _valid(onec.query())
    assert root.get("ВерсияСхемы") == "3.1"
    assert [c.findtext("Документ/Ид") for c in root.iter("Контейнер")] == ["3001", "3002", "3003"]
    agents = {c.findtext("Документ/Ид"): c.find("Документ/Контрагенты/Контрагент") for c in root.iter("Контейнер")}
    anna = agents["3001"]
    assert anna is not None
    # Роль closes the counterparty (it extends the base type); contacts use 2.10's КонтактТип.
    assert [child.tag for child in anna][-1] == "Роль"
    assert [(c.findtext("Тип"), c.findtext("Значение")) for c in anna.iter("Контакт")] == [
        ("Телефон мобильный", "+79990000001")
    ]

"""The order sync against a 1C:ERP publication as real deployments have it: the web server's URL
limits (IIS, Apache), record-level access rights, sales «по нескольким заказам», the same goods
on two order lines.

Sources (the authority; read, not copied):
* 1C's developer guide, chapter «Стандартный интерфейс OData» (8.3.27), quoted in
  ``hacker-cb/1c-odata`` ``docs/1c/markdown/17.4_-_Cтандартный_интерфейс_OData_8_3_27.md``:
  §17.4.5.2 (a composite field matches only through ``cast``; lambdas ``Товары/any(d: …)``),
  §17.4.5.4 ``allowedOnly`` (without it a restricted record in a read is an error 401),
  §17.4.4 and §17.4.8 ``$select`` with ``<tabular part>/<field>``, §17.4.10 error codes (20: access
  rights);
* 1C:УТ 11 metadata, ``work1cblackbird/ut11``: ``Documents/ЗаказКлиента`` (``Товары.КодСтроки``),
  ``Documents/РеализацияТоваровУслуг`` (header ``ЗаказКлиента`` empty for a sale by several
  orders, per line ``ЗаказКлиента`` and ``КодСтроки``), ``Documents/ВозвратТоваровОтКлиента``;
* IIS request filtering: ``maxQueryString`` 2,048 bytes by default, refused as 404.15; Apache:
  ``LimitRequestLine`` 8,190 bytes, refused as 414.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from adapters.onec.erp.sync import SyncReport
from adapters.onec.erp.wiring import build_runtime
from contracts.orders import OrderResult
from gateway.ledger.service import LoyaltyService
from testing.fake_erp import APACHE_REQUEST_LINE, CARDS, IIS_QUERY_STRING, Behaviour, FakeErp, Line
from tests.erp_helpers import ERP_CLIENT, at, erp_config, new_card

D = Decimal


def sync(service: LoyaltyService, erp: FakeErp, **overrides: Any) -> SyncReport:
    with erp.running() as url:
        runtime = build_runtime(service, erp_config(url, **overrides))
        try:
            return runtime.sync.run()
        finally:
            runtime.port.close()


def result(service: LoyaltyService, order: str) -> OrderResult:
    record = service.get_order(ERP_CLIENT, order)
    assert record is not None, f"order {order} was not applied"
    return record.result


def shipped_backlog(service: LoyaltyService, erp: FakeErp, orders: int) -> list[str]:
    """``orders`` orders on three cards, each shipped in full by a sale of its own."""
    cards = [new_card(service, erp, points=0)[1] for _ in range(3)]
    refs = []
    for i in range(orders):
        ref = erp.create_order([Line(1, f"goods-{i}", D(1), D(1000))], card_ref=cards[i % 3], at=at(i))
        erp.ship(ref, {1: 1}, at=at(i) + timedelta(seconds=30))
        refs.append(ref)
    return refs


def assert_all_shipped(service: LoyaltyService, refs: list[str]) -> None:
    for ref in refs:
        outcome = result(service, ref)
        assert (outcome.status, outcome.points_pending, outcome.points_available) == ("shipped", 0, 50)


def test_iis_default_limits_every_request_fits_2048_bytes(service: LoyaltyService) -> None:
    """The README's settings (50 orders a page, 26 references a lookup) under IIS's default
    request filtering: the default budget splits every lookup so that no query string passes
    2,048 bytes, and every shipped order unlocks its points on the first run."""
    erp = FakeErp(behaviour=Behaviour(max_query_string=IIS_QUERY_STRING))
    refs = shipped_backlog(service, erp, 60)
    report = sync(service, erp, sync={"page_size": 50, "batch_refs": 26})
    assert report.error is None
    assert erp.measure.count(404) == 0
    queries = erp.measure.queries("standard.odata")
    assert queries and max(len(q) for q in queries) <= IIS_QUERY_STRING
    assert_all_shipped(service, refs)


def test_iis_refusal_404_15_shrinks_the_batch_and_the_sync_goes_on(service: LoyaltyService) -> None:
    """A budget set above what the publication allows: IIS answers 404.15; the client knows the
    page for what it is, splits the lookup and lowers its budget — nothing is skipped."""
    erp = FakeErp(behaviour=Behaviour(max_query_string=IIS_QUERY_STRING))
    refs = shipped_backlog(service, erp, 30)
    report = sync(service, erp, odata={"max_query_bytes": 8000}, sync={"page_size": 30, "batch_refs": 26})
    assert report.error is None
    assert erp.measure.count(404) >= 1  # the web server did refuse, and the sync went through it
    assert_all_shipped(service, refs)


def test_apache_414_shrinks_the_batch_and_the_sync_goes_on(service: LoyaltyService) -> None:
    """Apache's 8,190-byte request line with the README's 26 references a lookup and a budget
    that ignores it: 414 is recognised, the batch shrunk, every order applied."""
    erp = FakeErp(behaviour=Behaviour(max_request_line=APACHE_REQUEST_LINE))
    refs = shipped_backlog(service, erp, 30)
    report = sync(service, erp, odata={"max_query_bytes": 30000}, sync={"page_size": 30, "batch_refs": 26})
    assert report.error is None
    assert erp.measure.count(414) >= 1
    assert_all_shipped(service, refs)


def test_a_publication_stricter_than_any_request_stops_with_a_clear_error(service: LoyaltyService) -> None:
    """A query string limit no feed read fits: the run stops and says why (never a silent stop,
    never a cursor moved past unread documents)."""
    erp = FakeErp(behaviour=Behaviour(max_query_string=400))
    shipped_backlog(service, erp, 2)
    report = sync(service, erp)
    assert report.error is not None
    assert "404" in report.error and "max_query_bytes" in report.error
    assert report.applied == 0 and report.pages == 0


def test_restricted_documents_are_left_out_with_allowed_only(service: LoyaltyService) -> None:
    """Record-level access restrictions in the ERP (common): with ``allowedOnly=true`` on every
    read, a document the user may not see is left out; the others sync."""
    erp = FakeErp()
    _, card_ref = new_card(service, erp)
    refs = [erp.create_order([Line(1, "goods-a", D(1), D(1000))], card_ref=card_ref, at=at(i)) for i in range(3)]
    erp.restricted.add(refs[1])
    report = sync(service, erp)
    assert report.error is None
    assert service.get_order(ERP_CLIENT, refs[1]) is None
    assert result(service, refs[0]).status == result(service, refs[2]).status == "placed"
    reads = [unquote(q) for q in erp.measure.queries("standard.odata")]
    assert reads and all("allowedOnly=true" in q for q in reads)


def test_without_allowed_only_a_restricted_document_is_reported_as_missing_rights(service: LoyaltyService) -> None:
    """1C answers 401 with its code 20 when a restricted record falls into a read: the sync says
    it is a matter of rights (and what to grant), not of the password."""
    erp = FakeErp()
    _, card_ref = new_card(service, erp)
    refs = [erp.create_order([Line(1, "goods-a", D(1), D(1000))], card_ref=card_ref, at=at(i)) for i in range(2)]
    erp.restricted.add(refs[0])
    report = sync(service, erp, odata={"allowed_only": False})
    assert report.error is not None
    assert "код 20" in report.error and "нет прав" in report.error and "allowed_only" in report.error
    assert "erp.password" not in report.error


def test_no_right_to_the_card_catalog_says_what_to_grant(service: LoyaltyService) -> None:
    erp = FakeErp()
    _, card_ref = new_card(service, erp)
    erp.create_order([Line(1, "goods-a", D(1), D(1000))], card_ref=card_ref, at=at(0))
    erp.denied.add(CARDS)
    report = sync(service, erp)
    assert report.error is not None
    assert "loyalty cards" in report.error and "код 20" in report.error and "карт лояльности" in report.error


def test_a_sale_by_several_orders_unlocks_each_order(service: LoyaltyService) -> None:
    """A sale «по нескольким заказам»: its header names no order, each line names its own. Both
    orders are found (by their lines) and each unlocks the points of what it shipped."""
    erp = FakeErp()
    _, card_ref = new_card(service, erp)
    first = erp.create_order([Line(1, "goods-a", D(1), D(1000)), Line(2, "goods-b", D(1), D(2000))], card_ref=card_ref)
    second = erp.create_order([Line(1, "goods-c", D(2), D(1500))], card_ref=card_ref)
    assert sync(service, erp).error is None
    assert result(service, first).points_pending == 150 and result(service, second).points_pending == 150
    erp.ship_orders([(first, 1, 1), (first, 2, 1), (second, 1, 2)], at=at(60))
    assert erp.shipments and all(doc.link == "" for doc in erp.shipments.values())
    report = sync(service, erp)
    assert report.error is None
    for order in (first, second):
        outcome = result(service, order)
        assert (outcome.status, outcome.points_pending, outcome.points_available) == ("shipped", 0, 150)


def test_the_same_goods_on_two_lines_credit_the_line_with_the_same_line_code(service: LoyaltyService) -> None:
    """The same item on two order lines at different prices (50 and 150 points); only the second
    line is shipped. The sale line's ``КодСтроки`` names the order line: its 150 points unlock,
    the first line's 50 stay pending (matching by goods in line order unlocked 50)."""
    erp = FakeErp()
    _, card_ref = new_card(service, erp)
    order = erp.create_order([Line(1, "goods-a", D(1), D(1000)), Line(2, "goods-a", D(1), D(3000))], card_ref=card_ref)
    erp.ship(order, {2: 1}, at=at(30))
    report = sync(service, erp)
    assert report.error is None
    outcome = result(service, order)
    lines = {line.line_id: line for line in outcome.lines}
    assert (lines["2"].points_available, lines["2"].points_pending) == (150, 0)
    assert (lines["1"].points_available, lines["1"].points_pending) == (0, 50)
    assert (outcome.points_available, outcome.points_pending) == (150, 50)


def test_only_the_fields_needed_are_read(service: LoyaltyService) -> None:
    """Every read names its fields (``$select``), tabular parts included; what the gateway does
    not use (the document's total, the cancellation reason) is not transferred."""
    erp = FakeErp()
    shipped_backlog(service, erp, 3)
    assert sync(service, erp).error is None
    reads = [unquote(q) for q in erp.measure.queries("standard.odata")]
    assert reads and all("$select=" in q for q in reads)
    selected = {field for q in reads for field in q.split("$select=", 1)[1].split("&", 1)[0].split(",")}
    assert {"Товары/КодСтроки", "Товары/ЗаказКлиента", "ДатаИзменения"} <= selected
    assert "СуммаДокумента" not in selected and "Товары/ПричинаОтмены_Key" not in selected


def test_a_return_from_a_sale_by_several_orders_takes_back_once(service: LoyaltyService) -> None:
    """One unit of goods both orders bought comes back from their common sale: it is taken back
    from the sale line that shipped it (the first of those goods) — once, not from each order."""
    erp = FakeErp()
    _, card_ref = new_card(service, erp)
    first = erp.create_order([Line(1, "goods-a", D(1), D(1000))], card_ref=card_ref)
    second = erp.create_order([Line(2, "goods-a", D(2), D(1500))], card_ref=card_ref)
    sale = erp.ship_orders([(first, 1, 1), (second, 2, 2)], at=at(60))
    assert sync(service, erp).error is None
    assert (result(service, first).points_available, result(service, second).points_available) == (50, 150)
    erp.return_goods(sale, {1: 1}, at=at(120))
    assert sync(service, erp).error is None
    assert (result(service, first).points_available, result(service, second).points_available) == (0, 150)

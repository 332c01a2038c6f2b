"""The ERP client against the fake ERP: both transports read the same orders the same way, HTTP
Basic with a Cyrillic login, one connection pool, every call through the guard, retryable
failures retried (500, timeouts, 503) and the others surfaced at once (401, 404), zeep hardened."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.onec.erp.config import ErpConfig
from adapters.onec.erp.odata import ODataTransport
from adapters.onec.erp.soap import SoapTransport
from gateway.core.erp import CallKind, ErpLoyaltyResult, ErpPort, ErpRejected, ErpUnavailable
from testing.erp import erp_config
from testing.fake_erp import Behaviour, FakeErp, Line, ODataFilter

CARD = "2700000000014"
STORE = "0f5a3a2e-3c1b-4b8e-9a52-5a1e2a000001"


class CountingGuard:
    """A guard that lets every call through and counts them (the throttle's own tests live in
    test_erp_throttle.py); the ERP's own count must match it."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {"pull": 0, "push": 0}

    @contextmanager
    def __call__(self, kind: CallKind) -> Iterator[None]:
        self.calls[kind] += 1
        yield


def transport(config: ErpConfig, guard: CountingGuard) -> ErpPort:
    return SoapTransport(config, guard) if config.transport == "soap" else ODataTransport(config, guard)


def scenario(erp: FakeErp) -> tuple[str, str, str]:
    card_ref = erp.add_card(CARD)
    order = erp.create_order(
        [
            Line(1, "goods-a", Decimal(4), Decimal("250.00"), points=Decimal(40)),
            Line(2, "goods-b", Decimal(2), Decimal("99.90"), amount=Decimal("189.80")),
            Line(3, "goods-c", Decimal(1), Decimal(50), cancelled=True),
        ],
        card_ref=card_ref,
        store_ref=STORE,
        at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )
    shipment = erp.ship(order, {1: 3, 2: 2}, at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    erp.return_goods(shipment, {1: 1}, at=datetime(2026, 11, 23, 11, 0, tzinfo=UTC))
    erp.create_order([Line(1, "goods-a", Decimal(1), Decimal(10))], card_ref=None)  # no loyalty card
    return order, shipment, card_ref


@pytest.mark.parametrize("kind", ["odata", "soap11", "soap12"])
def test_both_transports_read_an_order_the_same_way(kind: str) -> None:
    erp = FakeErp()
    order, shipment, _ = scenario(erp)
    with erp.running() as url:
        transport_name = "odata" if kind == "odata" else "soap"
        config = erp_config(
            url,
            transport=transport_name,
            soap={"binding": kind} if kind != "odata" else {},
            mapping={"goods": {"goods-a": "SKU-A"}, "stores": {STORE: "shop-1"}},
        )
        guard = CountingGuard()
        port = transport(config, guard)
        page = port.changed_orders(None, 10)
        port.close()
    assert not page.more
    changes = {c.order_id: c for c in page.changes}
    mapped = changes[order]
    assert mapped.problem is None and mapped.request is not None
    request = mapped.request
    assert request.card_number == CARD
    assert request.store == "shop-1"
    assert [(line.line_id, line.item, line.quantity, line.amount) for line in request.lines] == [
        ("1", "SKU-A", Decimal(4), Decimal("1000.00")),
        ("2", "goods-b", Decimal(2), Decimal("189.80")),
    ]  # the cancelled line is gone; unmapped goods keep the ERP's reference
    assert {(u.kind, u.ref) for u in mapped.unmapped} == {("goods", "goods-b")}
    assert request.points_to_spend == 40
    assert [(s.shipment_id, {q.line_id: q.quantity for q in s.lines}) for s in request.shipments] == [
        (shipment, {"1": Decimal(3), "2": Decimal(2)})
    ]
    assert [{q.line_id: q.quantity for q in r.lines} for r in request.returns] == [{"1": Decimal(1)}]
    assert request.placed_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert mapped.changed_at == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    others = [c for c in changes.values() if c.order_id != order]
    assert [c.skip for c in others] == ["no loyalty card on the order"]
    # every call went through the guard, and the ERP saw exactly those calls
    assert guard.calls["pull"] == erp.measure.count() > 0


@pytest.mark.parametrize("kind", ["odata", "soap"])
def test_a_cyrillic_login_works_and_a_wrong_password_is_not_retried(kind: str) -> None:
    erp = FakeErp()
    scenario(erp)
    with erp.running() as url:
        good = transport(erp_config(url, transport=kind), CountingGuard())
        assert good.changed_orders(None, 5).changes
        good.close()
        calls = erp.measure.count()
        guard = CountingGuard()
        bad = transport(erp_config(url, transport=kind, password="не тот"), guard)
        with pytest.raises(ErpRejected, match="401"):
            bad.changed_orders(None, 5)
        bad.close()
    # surfaced at once: one call per request the page needed (OData asks three feeds at once), none retried
    assert erp.measure.count() - calls == guard.calls["pull"] == {"odata": 3, "soap": 1}[kind]


@pytest.mark.parametrize("kind", ["odata", "soap"])
def test_500_and_timeouts_are_retried_with_backoff(kind: str) -> None:
    erp = FakeErp(behaviour=Behaviour(fail_next=2, hang_next=1, hang_seconds=3))
    order, _, _ = scenario(erp)
    with erp.running() as url:
        config = erp_config(url, transport=kind, read_timeout_seconds=0.5, retry={"attempts": 5})
        port = transport(config, CountingGuard())
        page = port.changed_orders(None, 10)
        port.close()
    assert order in {c.order_id for c in page.changes}
    assert erp.measure.count(500) == 2  # both failures were seen by the ERP, then retried


def test_retries_stop_after_the_configured_attempts() -> None:
    erp = FakeErp(behaviour=Behaviour(fail_next=10))
    with erp.running() as url:
        guard = CountingGuard()
        port = ODataTransport(erp_config(url, retry={"attempts": 3}), guard)
        with pytest.raises(ErpUnavailable, match="HTTP 500"):
            port.fetch_orders(["5b0e6f2e-0000-4c6b-9f1e-000000000001"])
        port.close()
    assert erp.measure.count(500) == 3 == guard.calls["pull"]


def test_overload_503_is_retried() -> None:
    erp = FakeErp(behaviour=Behaviour(capacity=0))
    with erp.running() as url:
        port = ODataTransport(erp_config(url, retry={"attempts": 2}), CountingGuard())
        with pytest.raises(ErpUnavailable, match="503"):
            port.fetch_orders(["5b0e6f2e-0000-4c6b-9f1e-000000000001"])
        port.close()
    assert erp.measure.count(503) == 2


def test_a_missing_object_is_not_retried() -> None:
    erp = FakeErp()
    with erp.running() as url:
        guard = CountingGuard()
        port = ODataTransport(erp_config(url, odata={"orders": "Document_НетТакого"}), guard)
        with pytest.raises(ErpRejected, match="404"):
            port.fetch_orders(["5b0e6f2e-0000-4c6b-9f1e-000000000001"])
        port.close()
    assert guard.calls["pull"] == 1


def test_the_change_feed_pages_through_a_backlog_without_skipping() -> None:
    erp = FakeErp()
    card = erp.add_card(CARD)
    same_second = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    refs = {erp.create_order([Line(1, "a", Decimal(1), Decimal(100))], card_ref=card, at=same_second) for _ in range(7)}
    with erp.running() as url:
        port = ODataTransport(erp_config(url, sync={"overlap_seconds": 0}), CountingGuard())
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            page = port.changed_orders(cursor, 3)
            seen += [c.order_id for c in page.changes]
            cursor = page.next_cursor
            if not page.more:
                break
        assert sorted(seen) == sorted(refs)  # seven changes in one second, pages of three: none lost or doubled
        assert port.changed_orders(cursor, 3).changes == []
        assert port.backlog(cursor) == 0
        port.close()


@pytest.mark.parametrize("kind", ["odata", "soap"])
def test_results_are_written_back_and_an_older_version_never_overwrites(kind: str) -> None:
    erp = FakeErp()
    order, _, _ = scenario(erp)
    with erp.running() as url:
        guard = CountingGuard()
        port = transport(erp_config(url, transport=kind), guard)
        at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        newer = ErpLoyaltyResult(order, 2000, "shipped", CARD, 40, 0, 57, 57, 0, 917, at)
        older = ErpLoyaltyResult(order, 1000, "placed", CARD, 40, 57, 0, 57, 0, 860, at)
        port.push_results([newer])
        port.push_results([older])
        port.push_results([newer])  # delivered twice: the same record
        port.close()
    record = erp.results[order]
    version_key, available_key = ("Версия", "БаллыДоступны") if kind == "odata" else ("Version", "PointsAvailable")
    assert int(record[version_key]) == 2000 and int(record[available_key]) == 57
    assert guard.calls["push"] >= 3


def test_zeep_refuses_a_dtd_in_the_answer() -> None:
    erp = FakeErp()
    scenario(erp)
    with erp.running() as url:
        erp.inject_dtd = True
        port = SoapTransport(erp_config(url, transport="soap", retry={"attempts": 1}), CountingGuard())
        with pytest.raises((ErpRejected, ErpUnavailable), match=r"DTD|entit|XML"):
            port.changed_orders(None, 5)
        port.close()


def test_the_fake_erp_filter_language() -> None:
    row = {"Ref_Key": "ab", "ДатаИзменения": "2026-11-23T10:00:00", "Posted": True, "ЗаказКлиента": "x1",
           "ЗаказКлиента_Type": "StandardODATA.Document_ЗаказКлиента"}  # fmt: skip
    assert ODataFilter("ДатаИзменения ge datetime'2026-11-23T10:00:00' and Posted eq true").matches(row)
    assert not ODataFilter("ДатаИзменения gt datetime'2026-11-23T10:00:00'").matches(row)
    assert ODataFilter("(ЗаказКлиента eq cast(guid'X1', 'Document_ЗаказКлиента') or Ref_Key eq 'zz')").matches(row)
    assert not ODataFilter("ЗаказКлиента eq cast(guid'x1', 'Document_Другой')").matches(row)
    with pytest.raises(ValueError):
        ODataFilter("Posted eq")
    # 1C's guide §17.4.5.2 (hacker-cb/1c-odata docs/1c/): a composite field compared with a bare
    # guid never matches — only cast names the type; lambdas reach a tabular part's lines
    assert not ODataFilter("ЗаказКлиента eq guid'x1'").matches(row)
    lines = {**row, "Товары": [{"ЗаказКлиента": "y2", "ЗаказКлиента_Type": "StandardODATA.Document_ЗаказКлиента"}]}
    assert ODataFilter("Товары/any(d: d/ЗаказКлиента eq cast(guid'Y2', 'Document_ЗаказКлиента'))").matches(lines)
    assert not ODataFilter("Товары/any(d: d/ЗаказКлиента eq cast(guid'x1', 'Document_ЗаказКлиента'))").matches(lines)


def test_a_result_record_created_meanwhile_is_written_over_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """1C never upserts on POST (code 15, «Сущность с таким ключом уже существует», guide
    §17.4.10): when another replica creates the order's record between our PATCH (404) and our
    POST, the POST is refused and the client PATCHes the record it now finds."""
    erp = FakeErp()
    order, _, _ = scenario(erp)
    real = erp._write_result

    def another_replica_first(method: str, target: str, body: dict[str, object]) -> object:
        answer = real(method, target, body)
        if method == "PATCH" and answer.status_code == 404:  # the other replica's POST lands now
            real("POST", "InformationRegister_ЛояльностьЗаказов", {"Заказ_Key": order, "Версия": 1})
        return answer

    monkeypatch.setattr(erp, "_write_result", another_replica_first)
    with erp.running() as url:
        port = ODataTransport(erp_config(url), CountingGuard())
        stamp = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        result = ErpLoyaltyResult(order, 2000, "shipped", CARD, 40, 0, 57, 57, 0, 100, stamp, ())
        port.push_results([result])
        port.close()
    methods = [call.method for call in erp.measure.calls]
    assert methods == ["PATCH", "POST", "PATCH"]
    assert erp.measure.count(400) == 1  # the refused POST
    assert int(erp.results[order]["Версия"]) == 2000 and int(erp.results[order]["БаллыДоступны"]) == 57

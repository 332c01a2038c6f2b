"""The hourly rollups behind the summary, daily and stores reports: whatever part of the ledger
has been folded when a report runs, its numbers are exactly those of the raw queries over the
receipts, refunds and ledger entries (hypothesis drives purchases, returns, offline receipts,
folds of random sizes and report periods); two workers folding at once fold every row once; what
was booked in the last minutes is read from the tail."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from contracts.operations import CommitRequest, OfflineReceiptRequest, RefundRequest
from gateway.reports import make_filters, run_report
from gateway.reports.rollups import LAG, fold, fold_once, hours_table, watermark
from tests.ledger.test_reports import CARD_A, CARD_B, CARD_C, DAY0, Shop, line, metrics

ROLLED_UP = ("summary", "daily", "stores")
STORES = ("S01", "S02", "S06", "s06", None)


@pytest.fixture
def shop(database_url: str) -> Iterator[Shop]:
    shop = Shop(database_url)
    for card in (CARD_A, CARD_B, CARD_C):
        shop.register(card, segment="partner" if card == CARD_B else None)
    yield shop
    shop.db.dispose()


def both_ways(shop: Shop, name: str, first: int, last: int, **filters: Any) -> tuple[list[Any], list[Any]]:
    """The report read through the rollups, and the same report from the ledger tables alone."""
    out = []
    for rollups in (True, False):
        f = make_filters(
            shop.program,
            DAY0 + timedelta(days=first),
            DAY0 + timedelta(days=last),
            now=shop.clock(),
            rollups=rollups,
            **filters,
        )
        out.append(run_report(shop.db, shop.program, name, f).rows)
    return out[0], out[1]


Action = tuple[str, int, int, int]
actions = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(0, 2), st.integers(0, len(STORES) - 1), st.integers(1, 5000)),
        st.tuples(st.just("offline"), st.integers(0, 2), st.integers(0, 30), st.integers(1, 5000)),
        st.tuples(st.just("refund"), st.integers(0, 50), st.just(0), st.just(0)),
        st.tuples(st.just("later"), st.integers(1, 30), st.just(0), st.just(0)),  # hours
        st.tuples(st.just("fold"), st.integers(1, 4), st.integers(1, 3), st.just(0)),  # batch, batches
    ),
    min_size=3,
    max_size=14,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=actions, first=st.integers(0, 3), length=st.integers(0, 4), store=st.sampled_from([None, "S01", "s06"]))
def test_reports_from_rollups_equal_the_raw_ledger_queries_at_any_watermark(
    shop: Shop, plan: list[Action], first: int, length: int, store: str | None
) -> None:
    cards = (CARD_A, CARD_B, CARD_C)
    receipts: list[str] = []
    for verb, a, b, c in plan:
        if verb == "buy":
            request = CommitRequest(
                receipt_id=f"R-{uuid.uuid4().hex[:10]}",
                card_number=cards[a],
                store=STORES[b],
                lines=[line("1", "CEMENT", f"{c}.00"), line("2", "PN-1", "10.50")],
            )
            receipts.append(shop.service.commit("tills", uuid.uuid4().hex, request).receipt_id)
        elif verb == "offline":  # closed by a till hours ago, booked now
            late = OfflineReceiptRequest(
                receipt_id=f"O-{uuid.uuid4().hex[:10]}",
                card_number=cards[a],
                store="S02",
                occurred_at=shop.clock() - timedelta(hours=b),
                lines=[line("1", "CEMENT", f"{c}.00")],
            )
            receipts.append(shop.service.offline_commit("tills", uuid.uuid4().hex, late).receipt_id)
        elif verb == "refund" and receipts:
            receipt = receipts.pop(a % len(receipts))
            refund = RefundRequest(receipt_id=receipt, refund_id=f"F-{uuid.uuid4().hex[:8]}", full=True)
            shop.service.refund("tills", uuid.uuid4().hex, refund)
        elif verb == "later":
            shop.clock.advance(hours=a)
        elif verb == "fold":
            for _ in range(b):
                fold_once(shop.db, shop.clock(), batch=a)
    # the story runs from day 0; the report's period moves over it
    story_day = shop.clock.offset.days
    start = min(first, story_day)
    for name in ROLLED_UP:
        via_rollups, raw = both_ways(shop, name, start, start + length, store=store)
        assert via_rollups == raw, name
    via_rollups, raw = both_ways(shop, "summary", 0, story_day + 1, zone="spb")
    assert via_rollups == raw


def test_points_accrued_spent_and_expired_reconcile_with_the_liability_through_the_rollups(shop: Shop) -> None:
    shop.buy(CARD_A, "S01", [line("1", "CEMENT", "1000.00")])
    shop.buy(CARD_B, "S06", [line("1", "CEMENT", "400.00")], points=45)
    shop.day(31)
    assert shop.expire() > 0  # the welcome lots (30 days)
    shop.day(40)
    shop.buy(CARD_C, "S02", [line("1", "CEMENT", "200.00")])
    shop.day(41)
    folded = fold(shop.db, shop.clock())
    assert folded["receipts"] == 3 and folded["entries"] >= 3 + 3 + 1 + 3  # welcome, accruals, spend, expiries
    m = metrics(shop.report("summary", 0, 41))
    assert m["points_welcome"] == 300 and m["points_accrued"] == 50 + 17 + 10 and m["points_spent"] == 45
    assert m["points_expired"] == 300 - 45
    assert m["liability_closing"] == m["points_welcome"] + m["points_accrued"] - m["points_spent"] - m["points_expired"]
    assert m["liability_closing"] == 50 + 17 + 10
    assert both_ways(shop, "summary", 0, 41)[0] == both_ways(shop, "summary", 0, 41)[1]


def test_what_was_booked_in_the_last_minutes_is_read_from_the_tail(shop: Shop) -> None:
    shop.buy(CARD_A, "S01", [line("1", "CEMENT", "1000.00")])
    shop.clock.advance(minutes=10)
    assert fold(shop.db, shop.clock())["receipts"] == 1
    shop.buy(CARD_B, "S01", [line("1", "CEMENT", "300.00")])  # booked now: inside the job's lag
    assert fold(shop.db, shop.clock())["receipts"] == 0
    with shop.db.read() as session:
        assert watermark(session) <= shop.clock() - LAG
        assert session.execute(select(func.sum(hours_table.c.receipts))).scalar_one() == 1
    m = metrics(shop.report("summary", 0, 0))
    assert (m["receipts_with_card"], m["turnover"], m["active_customers"]) == (2, Decimal("1300.00"), 2)


def test_a_return_after_the_fold_counts_against_its_receipt_both_before_and_after_the_next_fold(shop: Shop) -> None:
    sold = shop.buy(CARD_A, "S06", [line("1", "CEMENT", "1000.00")])
    shop.clock.advance(minutes=10)
    fold(shop.db, shop.clock())
    shop.day(3)
    shop.service.refund(
        "tills", uuid.uuid4().hex, RefundRequest(receipt_id=sold.receipt_id, refund_id="F-1", full=True)
    )
    days = {str(r[0]): r for r in shop.report("daily", 0, 3).rows}
    assert days["2026-06-10"][2:4] == (1, 0)  # one receipt, its turnover returned in full
    shop.clock.advance(minutes=10)
    assert fold(shop.db, shop.clock())["refunds"] == 1
    days = {str(r[0]): r for r in shop.report("daily", 0, 3).rows}
    assert days["2026-06-10"][2:4] == (1, 0)
    assert both_ways(shop, "stores", 0, 3)[0] == both_ways(shop, "stores", 0, 3)[1]


def test_two_workers_folding_at_once_fold_every_row_once(shop: Shop) -> None:
    for n in range(12):
        shop.buy((CARD_A, CARD_B, CARD_C)[n % 3], ("S01", "S06")[n % 2], [line("1", "CEMENT", f"{100 + n}.00")])
        shop.clock.advance(minutes=1)
    shop.clock.advance(minutes=10)
    counted: list[dict[str, int]] = []

    def work() -> None:
        counted.append(fold(shop.db, shop.clock(), batch=2))

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(counted) == 2  # neither worker failed
    assert sum(c["receipts"] for c in counted) == 12
    with shop.db.read() as session:
        assert session.execute(select(func.sum(hours_table.c.receipts))).scalar_one() == 12
    via_rollups, raw = both_ways(shop, "summary", 0, 0)
    assert via_rollups == raw
    assert metrics(shop.report("summary", 0, 0))["receipts_with_card"] == 12


def test_the_rollup_job_runs_beside_the_other_periodic_jobs() -> None:
    from gateway.config import DEMO_CONFIG, Settings, load_config
    from gateway.wiring import build_jobs, build_service

    config = load_config(DEMO_CONFIG)
    service = build_service(Settings(database_url="sqlite:///:memory:"), config)
    try:
        assert "report-rollups" in [job.name for job in build_jobs(service, config)]
    finally:
        service.db.dispose()


def test_a_fold_stopped_midway_leaves_the_rest_to_the_tail(shop: Shop) -> None:
    for n in range(6):
        shop.buy((CARD_A, CARD_B)[n % 2], "S01", [line("1", "CEMENT", "100.00")])
        shop.clock.advance(minutes=1)
    shop.clock.advance(minutes=10)

    def folded() -> int:
        with shop.db.read() as session:
            return int(session.execute(select(func.coalesce(func.sum(hours_table.c.receipts), 0))).scalar_one())

    while folded() < 2:  # batches of two rows of each source: the welcome entries come first
        assert fold_once(shop.db, shop.clock(), batch=2) is not None
    assert folded() < 6
    m = metrics(shop.report("summary", 0, 0))
    assert (m["receipts_with_card"], m["turnover"]) == (6, Decimal("600.00"))
    assert both_ways(shop, "stores", 0, 0)[0] == both_ways(shop, "stores", 0, 0)[1]

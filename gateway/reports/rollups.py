"""Sales and point flows pre-aggregated per UTC hour, kept exact by a watermark.

The rollup job (``fold``) takes the receipts, refunds and ledger entries booked since the
watermark, in batches of at most ``batch`` rows of each, adds them to ``report_receipt_hours`` and
``report_ledger_hours`` with one upsert per table, and moves the watermark — all in one short
write transaction, so a batch is folded exactly once even when several workers run the job.

A report reads the rollups for the hours of its period plus the *tail*: what was booked at or
after the watermark, straight from the ledger tables, in the same snapshot. Rows booked before
the watermark are in the rollups and nowhere else, rows at or after it are in the tail, so the
sum is exact at any moment. The job stays ``LAG`` behind the clock, so that a transaction that
began before a batch was cut (and books its rows with its own start time) has committed by then.

Refunds are added to the hour, store and channel of the receipt they return, as the raw reports
count a receipt's returns with the receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from gateway.core.program import Program
from gateway.reports.base import Filters
from gateway.reports.purchases import CLOCK_SKEW, entries, in_period, purchase_time, receipt_lines, receipts, refunds
from gateway.store.db import Database
from gateway.store.models_reports import LedgerHour, ReceiptHour, RollupWatermark

LAG = timedelta(minutes=5)
BATCH = 500  # rows of each source per write transaction (about 20–40 ms on SQLite)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAME = "sales"

hours_table = ReceiptHour.__table__  # type: ignore[attr-defined]
ledger_table = LedgerHour.__table__  # type: ignore[attr-defined]
watermark_table = RollupWatermark.__table__  # type: ignore[attr-defined]

MEASURES = (
    "receipts",
    "gross_kopecks",
    "discount_kopecks",
    "returned_kopecks",
    "paid_by_points_kopecks",
    "points_spent",
    "points_accrued",
)


def hour_of(dialect: str, at: ColumnElement[Any]) -> ColumnElement[Any]:
    """UTC hours since the epoch of a timestamp column, in SQL (SQLite keeps naive UTC text)."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", at), BigInteger) // 3600
    return cast(func.floor(func.extract("epoch", at) / 3600), BigInteger)


def hour_number(at: datetime) -> int:
    return int((at - EPOCH).total_seconds()) // 3600


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# -- folding ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Folded:
    receipts: int
    refunds: int
    entries: int
    until: datetime

    def counters(self) -> dict[str, int]:
        return {"receipts": self.receipts, "refunds": self.refunds, "entries": self.entries}


def watermark(session: Session, *, lock: bool = False) -> datetime:
    query = select(watermark_table.c.folded_until).where(watermark_table.c.name == NAME)
    if lock and _dialect(session) != "sqlite":  # SQLite: BEGIN IMMEDIATE already holds the write lock
        query = query.with_for_update()
    found = session.execute(query).scalar_one_or_none()
    return found if found is not None else EPOCH


def _cut(session: Session, since: datetime, limit: datetime, batch: int) -> datetime:
    """Where this batch ends: before the ``batch``+1-th row of any source, or at ``limit``."""
    sources = (receipts.c.created_at, refunds.c.created_at, entries.c.created_at)
    bound = limit
    for at in sources:
        nth = select(at).where(at >= since, at < limit).order_by(at).offset(batch).limit(1)
        found = session.execute(nth).scalar_one_or_none()
        if found is not None and found < bound:
            bound = found
    if bound == since:
        # more than ``batch`` rows share the watermark's instant: they go together, up to the next one
        nexts = [
            session.execute(select(func.min(at)).where(at > since, at < limit)).scalar_one_or_none() for at in sources
        ]
        bound = min([t for t in nexts if t is not None] + [limit])
    return bound


def _insert(session: Session, table: Any) -> Any:
    return sqlite.insert(table) if _dialect(session) == "sqlite" else postgresql.insert(table)


def _upsert(session: Session, table: Any, keys: list[str], columns: list[str], rows: Select[Any]) -> int:
    statement = _insert(session, table).from_select(columns, rows)
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={c: table.c[c] + statement.excluded[c] for c in columns if c not in keys},
    )
    return int(getattr(session.execute(statement), "rowcount", 0) or 0)


def _discount() -> Any:
    return (
        select(func.coalesce(func.sum(receipt_lines.c.discount_kopecks), 0))
        .where(receipt_lines.c.receipt_txn_id == receipts.c.id)
        .scalar_subquery()
    )


def _fold_batch(session: Session, since: datetime, until: datetime) -> Folded:
    dialect = _dialect(session)
    hour = hour_of(dialect, purchase_time())
    store = func.coalesce(receipts.c.store, "")
    booked = (receipts.c.created_at >= since) & (receipts.c.created_at < until)
    sales = (
        select(
            hour,
            store,
            receipts.c.client_id,
            func.count(),
            func.sum(receipts.c.total_kopecks),
            func.sum(_discount()),
            literal(0, BigInteger),
            func.sum(receipts.c.points_spent * receipts.c.point_value_kopecks),
            func.sum(receipts.c.points_spent),
            func.sum(receipts.c.points_accrued),
        )
        .where(booked)
        .group_by(hour, store, receipts.c.client_id)
    )
    keys = ["hour", "store", "client_id"]
    n_receipts = session.execute(select(func.count()).where(booked)).scalar_one()
    if n_receipts:
        _upsert(session, hours_table, keys, [*keys, *MEASURES], sales)
    refunded = (refunds.c.created_at >= since) & (refunds.c.created_at < until)
    returns = (
        select(
            hour,
            store,
            receipts.c.client_id,
            *(literal(0, BigInteger) for _ in MEASURES[:3]),
            func.sum(refunds.c.amount_kopecks),
            *(literal(0, BigInteger) for _ in MEASURES[4:]),
        )
        .select_from(refunds)
        .join(receipts, receipts.c.id == refunds.c.receipt_txn_id)
        .where(refunded)
        .group_by(hour, store, receipts.c.client_id)
    )
    n_refunds = session.execute(select(func.count()).select_from(refunds).where(refunded)).scalar_one()
    if n_refunds:
        _upsert(session, hours_table, keys, [*keys, *MEASURES], returns)
    entry_hour = hour_of(dialect, entries.c.created_at)
    written = (entries.c.created_at >= since) & (entries.c.created_at < until)
    flows = (
        select(
            entry_hour, entries.c.kind, func.count(), func.sum(entries.c.points), func.sum(func.abs(entries.c.points))
        )
        .where(written)
        .group_by(entry_hour, entries.c.kind)
    )
    n_entries = session.execute(select(func.count()).select_from(entries).where(written)).scalar_one()
    if n_entries:
        _upsert(session, ledger_table, ["hour", "kind"], ["hour", "kind", "entries", "points", "magnitude"], flows)
    return Folded(int(n_receipts), int(n_refunds), int(n_entries), until)


def fold_once(db: Database, now: datetime, batch: int = BATCH) -> Folded | None:
    """Fold one batch booked before ``now - LAG``; None when there is nothing left to fold."""
    limit = now - LAG
    with db.write() as session:
        # the row exists before it is locked, so that two first folds wait for each other
        first = _insert(session, watermark_table).values(name=NAME, folded_until=EPOCH, updated_at=now)
        session.execute(first.on_conflict_do_nothing(index_elements=["name"]))
        since = watermark(session, lock=True)
        if since >= limit:
            return None
        until = _cut(session, since, limit, batch)
        folded = _fold_batch(session, since, until)
        values = {"folded_until": until, "updated_at": now}
        session.execute(watermark_table.update().where(watermark_table.c.name == NAME).values(**values))
        return folded


def fold(db: Database, now: datetime, batch: int = BATCH, max_batches: int = 200) -> dict[str, int]:
    """The rollup job: fold batch after batch until caught up (or ``max_batches``, so one run of
    the worker stays short); returns what was folded."""
    done = {"receipts": 0, "refunds": 0, "entries": 0, "batches": 0}
    for _ in range(max_batches):
        folded = fold_once(db, now, batch)
        if folded is None:
            break
        done["batches"] += 1
        for name, value in folded.counters().items():
            done[name] += value
    return done


# -- reading ------------------------------------------------------------------------------------


def usable(filters: Filters) -> bool:
    """Whether a report of these filters can read the rollups: whole hours (every zone the program
    may have since 2014 is), no segment (a customer's segment changes after the purchase, and the
    reports count the segment the customer is in now)."""
    whole = filters.start.timestamp() % 3600 == 0 and filters.end.timestamp() % 3600 == 0
    return filters.rollups and whole and not filters.segment


def _store_filter(store: ColumnElement[Any], filters: Filters) -> ColumnElement[bool]:
    if filters.stores is None:
        return literal(True)
    return func.lower(store).in_([s.lower() for s in filters.stores])


def sales(session: Session, program: Program, filters: Filters) -> Subquery:
    """The period's sales per UTC hour, store and channel — the rollups up to the watermark and the
    receipts and refunds booked after it — with the columns of ``report_receipt_hours``."""
    dialect = _dialect(session)
    mark = watermark(session)
    first, last = hour_number(filters.start), hour_number(filters.end)
    h = hours_table.c
    folded = select(h.hour, h.store, h.client_id, *(h[m] for m in MEASURES)).where(
        h.hour >= first, h.hour < last, _store_filter(h.store, filters)
    )
    hour = hour_of(dialect, purchase_time())
    store = func.coalesce(receipts.c.store, "")
    returned = (
        select(func.coalesce(func.sum(refunds.c.amount_kopecks), 0))
        .where(refunds.c.receipt_txn_id == receipts.c.id)
        .scalar_subquery()
    )
    tail = (
        select(
            hour,
            store,
            receipts.c.client_id,
            func.count(),
            func.sum(receipts.c.total_kopecks),
            func.sum(_discount()),
            func.sum(returned),
            func.sum(receipts.c.points_spent * receipts.c.point_value_kopecks),
            func.sum(receipts.c.points_spent),
            func.sum(receipts.c.points_accrued),
        )
        .where(
            # the tail's own lower bound, alone: SQLite ranges an index over one of two lower bounds
            receipts.c.created_at >= max(mark, filters.start - CLOCK_SKEW),
            in_period(program, filters.start, filters.end, bracket=False),
            _store_filter(receipts.c.store, filters),
        )
        .group_by(hour, store, receipts.c.client_id)
    )
    # refunds booked after the watermark of receipts folded before it: few, so they lead the join
    recent = (
        select(refunds.c.receipt_txn_id, func.sum(refunds.c.amount_kopecks).label("amount"))
        .where(refunds.c.created_at >= mark)
        .group_by(refunds.c.receipt_txn_id)
        .subquery("recent")
    )
    late_returns = (
        select(
            hour,
            store,
            receipts.c.client_id,
            *(literal(0, BigInteger) for _ in MEASURES[:3]),
            func.sum(recent.c.amount),
            *(literal(0, BigInteger) for _ in MEASURES[4:]),
        )
        .select_from(recent)
        .join(receipts, receipts.c.id == recent.c.receipt_txn_id)
        .where(
            receipts.c.created_at < mark,
            in_period(program, filters.start, filters.end),
            _store_filter(receipts.c.store, filters),
        )
        .group_by(hour, store, receipts.c.client_id)
    )
    stacked = union_all(folded, tail, late_returns).subquery("stacked")
    s = stacked.c
    return (
        select(s.hour, s.store, s.client_id, *(func.sum(s[m]).label(m) for m in MEASURES))
        .group_by(s.hour, s.store, s.client_id)
        .subquery("sales")
    )


def ledger_hours(session: Session, filters: Filters) -> Subquery:
    """Ledger entries before the period's end per UTC hour and kind: the rollups and the tail."""
    mark = watermark(session)
    last = hour_number(filters.end)
    lh = ledger_table.c
    folded = select(lh.hour, lh.kind, lh.points, lh.magnitude).where(lh.hour < last)
    hour = hour_of(_dialect(session), entries.c.created_at)
    tail = (
        select(hour, entries.c.kind, func.sum(entries.c.points), func.sum(func.abs(entries.c.points)))
        .where(entries.c.created_at >= mark, entries.c.created_at < filters.end)
        .group_by(hour, entries.c.kind)
    )
    stacked = union_all(folded, tail).subquery("ledger_stacked")
    return select(stacked.c.hour, stacked.c.kind, stacked.c.points, stacked.c.magnitude).subquery("ledger")


def buyers(session: Session, program: Program, filters: Filters) -> Select[Any]:
    """Distinct customers of the period per store and channel, from the covering index
    ``ix_receipts_buyers`` (an account is one customer's)."""
    return (
        select(
            receipts.c.store,
            receipts.c.client_id,
            func.count(func.distinct(receipts.c.account_id)).label("customers"),
        )
        .where(in_period(program, filters.start, filters.end), _store_filter(receipts.c.store, filters))
        .group_by(receipts.c.store, receipts.c.client_id)
    )


def active_customers(session: Session, program: Program, filters: Filters) -> int:
    query = select(func.count(func.distinct(receipts.c.account_id))).where(
        in_period(program, filters.start, filters.end), _store_filter(receipts.c.store, filters)
    )
    return int(session.execute(query).scalar_one())

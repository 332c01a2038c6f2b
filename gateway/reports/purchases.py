"""The one set every purchase report starts from: the receipts of a period (narrowed by store,
zone and segment), each with its paid amount after discounts and returns, its customer, store,
zone and channel. Built as SQL (a CTE), never loaded row by row."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import CTE, ColumnElement, Select, String, and_, case, func, literal, select
from sqlmodel import SQLModel

import gateway.store.models  # noqa: F401  (registers every table with the metadata)
from gateway.core.program import Program
from gateway.reports.base import Filters

T = SQLModel.metadata.tables
receipts = T["receipts"]
receipt_lines = T["receipt_lines"]
refunds = T["refunds"]
accounts = T["accounts"]
customers = T["customers"]
cards = T["cards"]
entries = T["ledger_entries"]

# A receipt's till may post it up to this long after it happened (offline receipts), and a
# receipt may be dated a few minutes ahead of the server's clock (till clocks drift).
CLOCK_SKEW = timedelta(minutes=5)


def purchase_time() -> ColumnElement[datetime]:
    """When a purchase happened: the till's time of an offline receipt, else when it was booked."""
    return func.coalesce(receipts.c.occurred_at, receipts.c.created_at)


def in_period(program: Program, start: datetime, end: datetime, *, bracket: bool = True) -> ColumnElement[bool]:
    """``start <= purchase time < end``, with a bracket on ``created_at`` so the index on it is
    used: an offline receipt is booked at most ``offline.max_age_days`` after it happened
    (``bracket=False``: the caller gives the lower end of the bracket itself)."""
    at = purchase_time()
    max_age = timedelta(days=program.offline.max_age_days)
    conditions = [receipts.c.created_at < end + max_age, at >= start, at < end]
    if bracket:
        conditions.append(receipts.c.created_at >= start - CLOCK_SKEW)
    return and_(*conditions)


def zone_of(program: Program, store: ColumnElement[str | None]) -> ColumnElement[str | None]:
    """The zone of a receipt's store, as the catalogue maps it (case-insensitive), in SQL."""
    default: ColumnElement[str | None] = literal(program.catalogue.default_zone, String)
    lowered = func.lower(store)
    whens = [
        (lowered.in_([s.lower() for s in z.stores]), literal(z.code, String))
        for z in program.catalogue.zones
        if z.stores
    ]
    return case(*whens, else_=default) if whens else default


def segment_of(program: Program) -> ColumnElement[str | None]:
    default = next((s.code for s in program.segments if s.default), None)
    if default is None:
        return customers.c.segment
    return func.coalesce(customers.c.segment, literal(default, String))


def narrowed(query: Select[tuple[object, ...]], program: Program, filters: Filters) -> Select[tuple[object, ...]]:
    """Apply the store/zone and segment filters to a query that joins receipts and customers."""
    if filters.stores is not None:
        query = query.where(func.lower(receipts.c.store).in_([s.lower() for s in filters.stores]))
    if filters.segment:
        query = query.where(segment_of(program) == filters.segment)
    return query


def period_receipts(
    program: Program, filters: Filters, start: datetime | None = None, end: datetime | None = None, name: str = "p"
) -> CTE:
    """Receipts of ``[start, end)`` (the filters' period by default) with ``paid`` = amount after
    discounts minus what was returned of it so far, in kopecks."""
    start = filters.start if start is None else start
    end = filters.end if end is None else end
    # Correlated sums: each is an index lookup by receipt (the lines' primary key, the refunds'
    # index), so only the period's receipts are visited, never every line ever sold.
    discount = (
        select(func.coalesce(func.sum(receipt_lines.c.discount_kopecks), 0))
        .where(receipt_lines.c.receipt_txn_id == receipts.c.id)
        .scalar_subquery()
    )
    returned = (
        select(func.coalesce(func.sum(refunds.c.amount_kopecks), 0))
        .where(refunds.c.receipt_txn_id == receipts.c.id)
        .scalar_subquery()
    )
    query = (
        select(
            receipts.c.id,
            receipts.c.account_id,
            accounts.c.customer_id,
            receipts.c.card_number,
            receipts.c.store,
            receipts.c.client_id,
            purchase_time().label("at"),
            receipts.c.total_kopecks.label("gross"),
            discount.label("discount"),
            returned.label("returned"),
            receipts.c.points_spent,
            receipts.c.points_accrued,
            receipts.c.point_value_kopecks,
            segment_of(program).label("segment"),
            customers.c.tier,
            zone_of(program, receipts.c.store).label("zone"),
        )
        .select_from(receipts)
        .join(accounts, accounts.c.id == receipts.c.account_id)
        .join(customers, customers.c.id == accounts.c.customer_id)
        .where(in_period(program, start, end))
    )
    # Materialized, so that each correlated sum runs once per receipt (inlined, SQLite evaluates it
    # again wherever ``paid`` refers to it).
    raw = narrowed(query, program, filters).cte(f"{name}_raw").prefix_with("MATERIALIZED")
    return select(*raw.c, (raw.c.gross - raw.c.discount - raw.c.returned).label("paid")).cte(name)

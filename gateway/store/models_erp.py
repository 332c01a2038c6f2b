"""Tables of the ERP order sync and of the throttle that spares the ERP.

* ``erp_sync_state``: per ERP, the durable change-feed cursor (advanced only after a page was
  applied) and the lease that lets one replica sync at a time;
* ``erp_orders``: per ERP order, the last state seen (its opaque marker, change moment and the
  version the gateway derived for it) and, for orders that could not be applied, why;
* ``erp_throttle`` and ``erp_throttle_calls``: the budget shared by every replica — the
  adaptive rate factor and the ERP's latency (EWMA), and the calls in flight or recently made
  (a call in flight holds a concurrency slot with a lease, so a dead process frees it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Float, Index, Text
from sqlmodel import Field, SQLModel

from gateway.store.models import _pk, _ts


class ErpSyncState(SQLModel, table=True):
    __tablename__ = "erp_sync_state"

    erp: str = Field(primary_key=True, max_length=32)
    cursor: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_run_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_success_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = Field(default=None, max_length=1000)
    backlog: int | None = Field(default=None, sa_type=BigInteger)
    pages: int = Field(default=0, sa_type=BigInteger)
    changes_seen: int = Field(default=0, sa_type=BigInteger)
    orders_applied: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(sa_column=_ts())


class ErpOrder(SQLModel, table=True):
    """The last state of one ERP order the sync saw, and what became of it.

    ``state``: ``applied`` (the ledger has this version), ``unchanged`` (read again, nothing
    new), ``skipped`` (nothing to apply yet, e.g. not posted), ``failed`` (could not be mapped
    or applied; retried after ``next_retry_at`` and whenever it changes at the ERP)."""

    __tablename__ = "erp_orders"
    __table_args__ = (Index("ix_erp_orders_state_retry", "erp", "state", "next_retry_at"),)

    erp: str = Field(primary_key=True, max_length=32)
    order_ref: str = Field(primary_key=True, max_length=128)
    number: str | None = Field(default=None, max_length=64)
    marker: str = Field(max_length=64, description="Hash of the ERP's data versions of the order's documents")
    changed_at: datetime = Field(sa_column=_ts())
    version: int = Field(sa_type=BigInteger, description="Version derived for this state (0: never applied)")
    applied_version: int = Field(default=0, sa_type=BigInteger)
    state: str = Field(max_length=16)
    error_code: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, max_length=1000)
    failures: int = Field(default=0)
    next_retry_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    first_seen_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class ErpThrottle(SQLModel, table=True):
    """The adaptive part of one ERP's budget. Its row is locked by every grant and release, so
    replicas update it one at a time."""

    __tablename__ = "erp_throttle"

    erp: str = Field(primary_key=True, max_length=32)
    factor: float = Field(default=1.0, sa_column=Column(Float, nullable=False))
    latency_ewma_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    last_adjust_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_decrease_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    next_at: datetime | None = Field(
        default=None, sa_column=_ts(nullable=True), description="When the smoothed schedule allows the next call"
    )
    calls: int = Field(default=0, sa_type=BigInteger)
    failures: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(sa_column=_ts())


class ErpThrottleCall(SQLModel, table=True):
    """A call granted by the throttle: in flight (``finished_at`` null, slot leased until
    ``lease_until``) or recently finished (it still counts against the rate window)."""

    __tablename__ = "erp_throttle_calls"
    __table_args__ = (
        Index("ix_erp_throttle_calls_finished", "erp", "finished_at"),
        Index("ix_erp_throttle_calls_lease", "erp", "lease_until"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    erp: str = Field(max_length=32)
    holder: str = Field(max_length=64)
    kind: str = Field(max_length=8)  # pull | push
    granted_at: datetime = Field(sa_column=_ts())
    lease_until: datetime = Field(sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    latency_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    outcome: str | None = Field(default=None, max_length=16)  # ok | failed | rejected

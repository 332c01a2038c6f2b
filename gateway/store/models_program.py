"""Tables of the loyalty program engine: what changed a customer's segment or tier and why,
bonus grants (each once, by a unique key), and the progress of the daily program job.

The customer's current segment, tier and referrer are columns of ``customers``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from gateway.store.models import _pk, _ts


class StatusChange(SQLModel, table=True):
    """A customer's segment or tier changed: from what, to what, why, on which turnover."""

    __tablename__ = "program_status_changes"
    __table_args__ = (Index("ix_program_status_changes_customer", "customer_id", "id"),)

    id: int | None = Field(default=None, sa_column=_pk())
    customer_id: str = Field(foreign_key="customers.id", max_length=36)
    attribute: str = Field(max_length=16)  # segment | tier
    old_value: str | None = Field(default=None, max_length=64)
    new_value: str | None = Field(default=None, max_length=64)
    reason: str = Field(max_length=16)  # registration | purchase | order | schedule | transition
    turnover_kopecks: int | None = Field(default=None, sa_type=BigInteger)
    transaction_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_column=_ts())


class BonusGrant(SQLModel, table=True):
    """Points granted by a bonus (birthday, referral). ``key`` makes each grant happen once:
    ``birthday:<customer>:<year>``, ``referral:<receipt transaction>``."""

    __tablename__ = "program_bonus_grants"

    key: str = Field(primary_key=True, max_length=128)
    kind: str = Field(max_length=16)  # birthday | referral
    customer_id: str = Field(foreign_key="customers.id", max_length=36, index=True)
    account_id: str = Field(foreign_key="accounts.id", max_length=36)
    points: int = Field(sa_type=BigInteger)
    lot_id: int | None = Field(default=None, sa_type=BigInteger)
    transaction_id: str | None = Field(default=None, max_length=36, index=True)
    source_customer_id: str | None = Field(default=None, max_length=36, description="referral: who bought")
    lines_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # referral: line id -> points
    reversed_points: int = Field(default=0, sa_type=BigInteger)
    description: str = Field(max_length=256)
    created_at: datetime = Field(sa_column=_ts())


class GrantReversal(SQLModel, table=True):
    """Referral points taken back because of one refund (once per refund and grant)."""

    __tablename__ = "program_grant_reversals"

    refund_txn_id: str = Field(primary_key=True, max_length=36)
    grant_key: str = Field(primary_key=True, max_length=128)
    points: int = Field(sa_type=BigInteger)
    shortfall: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())


class ProgramJobRun(SQLModel, table=True):
    """One day's pass of a program job over the customers, resumable: ``cursor`` is the last
    customer id done. A worker leases the next batch (``leased_by`` until ``lease_until``), so
    replicas take turns; a batch whose worker died is taken over when its lease runs out."""

    __tablename__ = "program_job_runs"

    job: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    cursor: str = Field(default="", max_length=36)
    processed: int = Field(default=0, sa_type=BigInteger)
    changed: int = Field(default=0, sa_type=BigInteger)
    leased_by: str | None = Field(default=None, max_length=36)
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_at: datetime = Field(sa_column=_ts())

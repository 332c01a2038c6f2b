"""Tables of the migration imports (``gateway import balances|lots|history``).

Each records what an import wrote, keyed so that running an import again (after an
interruption, or twice) writes nothing twice, and so that the reconciliation can re-count it.
Points themselves live in the ledger (lots and entries written by the client
``import:<batch>``); ``import_history`` is a record only and never moves points.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ColumnElement, Index, case
from sqlmodel import Field, SQLModel, col

from gateway.store.models import _ts


class ImportedBalance(SQLModel, table=True):
    """A balance set or adjusted by a ``balances`` import: at most once per account and batch."""

    __tablename__ = "import_balances"

    batch: str = Field(primary_key=True, max_length=48)
    account_id: str = Field(primary_key=True, foreign_key="accounts.id", max_length=36)
    card_number: str = Field(max_length=64)
    line: int
    mode: str = Field(max_length=8)  # set | adjust
    value: int = Field(sa_type=BigInteger, description="The target balance (set) or the adjustment (adjust)")
    balance_before: int = Field(sa_type=BigInteger)
    delta: int = Field(sa_type=BigInteger, description="Points posted: 0 when the card was already at its target")
    entry_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())


class ImportedLot(SQLModel, table=True):
    """A lot of points brought over from the old system, once per the old system's id."""

    __tablename__ = "import_lots"

    external_id: str = Field(primary_key=True, max_length=128)
    batch: str = Field(max_length=48, index=True)
    card_number: str = Field(max_length=64)
    account_id: str = Field(foreign_key="accounts.id", max_length=36, index=True)
    lot_id: int = Field(foreign_key="lots.id", sa_type=BigInteger)
    points: int = Field(sa_type=BigInteger)
    accrued_at: datetime = Field(sa_column=_ts())
    available_at: datetime = Field(sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(sa_column=_ts())


class ImportedOperation(SQLModel, table=True):
    """A past receipt or operation of the old system, kept for the record and for tier turnover.

    ``kind``: ``purchase`` and ``return`` (``amount_kopecks`` is the money paid / given back,
    never negative), ``accrual``, ``redemption``, ``expiry``, ``adjustment``. The points columns
    say what the old system did; the ledger is not touched (the points arrive through the
    ``cards``, ``balances`` or ``lots`` imports). Read it with
    :func:`gateway.importer.history.turnover`."""

    __tablename__ = "import_history"
    __table_args__ = (Index("ix_import_history_account_occurred", "account_id", "occurred_at"),)

    external_id: str = Field(primary_key=True, max_length=128)
    batch: str = Field(max_length=48, index=True)
    card_number: str = Field(max_length=64)
    account_id: str = Field(foreign_key="accounts.id", max_length=36)
    occurred_at: datetime = Field(sa_column=_ts())
    kind: str = Field(max_length=16)
    amount_kopecks: int = Field(sa_type=BigInteger)
    points_accrued: int = Field(sa_type=BigInteger)
    points_spent: int = Field(sa_type=BigInteger)
    receipt: str | None = Field(default=None, max_length=128)
    store: str | None = Field(default=None, max_length=128)
    note: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(sa_column=_ts())


def signed_amount() -> ColumnElement[int]:
    """An imported operation's part of the turnover: a purchase's money adds, a return's takes
    away, the other kinds count nothing."""
    return case(
        (col(ImportedOperation.kind) == "purchase", col(ImportedOperation.amount_kopecks)),
        (col(ImportedOperation.kind) == "return", -col(ImportedOperation.amount_kopecks)),
        else_=0,
    )

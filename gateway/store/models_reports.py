"""Pre-aggregated sales and point flows per hour, folded from the ledger by the rollup job
(``gateway/reports/rollups.py``), and the watermark up to which they hold every row.

Hours are UTC hours since the epoch: a period of local days of any whole-hour time zone is a
range of them, and a change of the program's time zone does not invalidate what was folded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from gateway.store.models import Receipt, Refund, _ts


class ReceiptHour(SQLModel, table=True):
    """Receipts whose purchase happened in ``hour`` at ``store`` (``""``: none given) through
    ``client_id``; ``returned_kopecks`` grows with later refunds of them."""

    __tablename__ = "report_receipt_hours"

    hour: int = Field(primary_key=True, sa_type=BigInteger)
    store: str = Field(primary_key=True, max_length=128)
    client_id: str = Field(primary_key=True, max_length=64)
    receipts: int = Field(sa_type=BigInteger)
    gross_kopecks: int = Field(sa_type=BigInteger)
    discount_kopecks: int = Field(sa_type=BigInteger)
    returned_kopecks: int = Field(sa_type=BigInteger)
    paid_by_points_kopecks: int = Field(sa_type=BigInteger)
    points_spent: int = Field(sa_type=BigInteger)
    points_accrued: int = Field(sa_type=BigInteger)


class LedgerHour(SQLModel, table=True):
    """Ledger entries of one kind booked in ``hour``: their signed sum and the sum of their sizes."""

    __tablename__ = "report_ledger_hours"

    hour: int = Field(primary_key=True, sa_type=BigInteger)
    kind: str = Field(primary_key=True, max_length=16)
    entries: int = Field(sa_type=BigInteger)
    points: int = Field(sa_type=BigInteger)
    magnitude: int = Field(sa_type=BigInteger)


class RollupWatermark(SQLModel, table=True):
    """Every receipt, refund and ledger entry booked before ``folded_until`` is in the rollups;
    none booked at or after it is."""

    __tablename__ = "report_rollup_watermark"

    name: str = Field(primary_key=True, max_length=32)
    folded_until: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


# The distinct buyers of a period (and of each store and channel) are counted from this index
# alone: they do not add up over hours, so they cannot be rolled up.
Index(
    "ix_receipts_buyers",
    Receipt.__table__.c.created_at,  # type: ignore[attr-defined]
    Receipt.__table__.c.occurred_at,  # type: ignore[attr-defined]
    Receipt.__table__.c.account_id,  # type: ignore[attr-defined]
    Receipt.__table__.c.store,  # type: ignore[attr-defined]
    Receipt.__table__.c.client_id,  # type: ignore[attr-defined]
)
# The refunds booked after the rollups' watermark (the tail every report reads).
Index("ix_refunds_created_at", Refund.__table__.c.created_at)  # type: ignore[attr-defined]

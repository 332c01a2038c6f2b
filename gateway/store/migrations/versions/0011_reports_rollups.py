"""reports rollups: sales and point flows per hour, the watermark of the rollup job, and a
covering index for counting a period's distinct buyers, refunds by the time they were booked

Revision ID: 0011_reports
Revises: 0010_profiles
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from gateway.store.types import UTCDateTime

revision: str = "0011_reports"
down_revision: str | Sequence[str] | None = "0010_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEASURES = (
    "receipts",
    "gross_kopecks",
    "discount_kopecks",
    "returned_kopecks",
    "paid_by_points_kopecks",
    "points_spent",
    "points_accrued",
)
BUYERS_INDEX = ("ix_receipts_buyers", "receipts", ["created_at", "occurred_at", "account_id", "store", "client_id"])


def upgrade() -> None:
    op.create_table(
        "report_receipt_hours",
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("store", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _MEASURES),
        sa.PrimaryKeyConstraint("hour", "store", "client_id"),
    )
    op.create_table(
        "report_ledger_hours",
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("magnitude", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "kind"),
    )
    op.create_table(
        "report_rollup_watermark",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("folded_until", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    name, table, columns = BUYERS_INDEX
    op.create_index(name, table, columns, unique=False)
    op.create_index("ix_refunds_created_at", "refunds", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_refunds_created_at", table_name="refunds")
    op.drop_index(BUYERS_INDEX[0], table_name=BUYERS_INDEX[1])
    op.drop_table("report_rollup_watermark")
    op.drop_table("report_ledger_hours")
    op.drop_table("report_receipt_hours")

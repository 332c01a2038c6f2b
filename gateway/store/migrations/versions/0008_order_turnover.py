"""order turnover: what shipped and returned order goods add to their customers' turnover

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_turnover",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_pk", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("document", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("occurred_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount_kopecks", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["order_pk"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_pk", "document", name="uq_order_turnover_document"),
    )
    with op.batch_alter_table("order_turnover", schema=None) as batch_op:
        batch_op.create_index("ix_order_turnover_account_occurred", ["account_id", "occurred_at"], unique=False)

    # Orders applied before this revision count from now on, as if they had always been booked.
    from gateway.ledger.order_turnover import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("order_turnover", schema=None) as batch_op:
        batch_op.drop_index("ix_order_turnover_account_occurred")
    op.drop_table("order_turnover")

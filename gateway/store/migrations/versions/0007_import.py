"""import: what the migration imports wrote (balances set or adjusted, lots, past operations)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_balances",
        sa.Column("batch", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("card_number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("balance_before", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("batch", "account_id"),
    )
    op.create_table(
        "import_history",
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("batch", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("card_number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("occurred_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("amount_kopecks", sa.BigInteger(), nullable=False),
        sa.Column("points_accrued", sa.BigInteger(), nullable=False),
        sa.Column("points_spent", sa.BigInteger(), nullable=False),
        sa.Column("receipt", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("store", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("external_id"),
    )
    with op.batch_alter_table("import_history", schema=None) as batch_op:
        batch_op.create_index("ix_import_history_account_occurred", ["account_id", "occurred_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_import_history_batch"), ["batch"], unique=False)

    op.create_table(
        "import_lots",
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("batch", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("card_number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("accrued_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("available_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"]),
        sa.PrimaryKeyConstraint("external_id"),
    )
    with op.batch_alter_table("import_lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_lots_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_import_lots_batch"), ["batch"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("import_lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_lots_batch"))
        batch_op.drop_index(batch_op.f("ix_import_lots_account_id"))
    op.drop_table("import_lots")
    with op.batch_alter_table("import_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_history_batch"))
        batch_op.drop_index("ix_import_history_account_occurred")
    op.drop_table("import_history")
    op.drop_table("import_balances")

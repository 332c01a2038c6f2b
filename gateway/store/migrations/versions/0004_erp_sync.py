"""ERP order sync: cursor, per-order sync state, shared throttle

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erp_orders",
        sa.Column("erp", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("order_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("marker", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("changed_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("applied_version", sa.BigInteger(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("erp", "order_ref"),
    )
    with op.batch_alter_table("erp_orders", schema=None) as batch_op:
        batch_op.create_index("ix_erp_orders_state_retry", ["erp", "state", "next_retry_at"], unique=False)

    op.create_table(
        "erp_sync_state",
        sa.Column("erp", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("lease_until", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("backlog", sa.BigInteger(), nullable=True),
        sa.Column("pages", sa.BigInteger(), nullable=False),
        sa.Column("changes_seen", sa.BigInteger(), nullable=False),
        sa.Column("orders_applied", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("erp"),
    )
    op.create_table(
        "erp_throttle",
        sa.Column("erp", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("factor", sa.Float(), nullable=False),
        sa.Column("latency_ewma_ms", sa.Float(), nullable=True),
        sa.Column("last_adjust_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_decrease_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("erp"),
    )
    op.create_table(
        "erp_throttle_calls",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("erp", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("granted_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", gateway.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("erp_throttle_calls", schema=None) as batch_op:
        batch_op.create_index("ix_erp_throttle_calls_finished", ["erp", "finished_at"], unique=False)
        batch_op.create_index("ix_erp_throttle_calls_lease", ["erp", "lease_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("erp_throttle_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_erp_throttle_calls_lease")
        batch_op.drop_index("ix_erp_throttle_calls_finished")
    op.drop_table("erp_throttle_calls")
    op.drop_table("erp_throttle")
    op.drop_table("erp_sync_state")
    with op.batch_alter_table("erp_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_erp_orders_state_retry")
    op.drop_table("erp_orders")

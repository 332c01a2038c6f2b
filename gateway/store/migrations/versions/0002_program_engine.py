"""program engine: customers' segment, tier and referrer; status history, bonus grants, job runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, gateway.store.types.UTCDateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=nullable)


def upgrade() -> None:
    op.add_column("customers", _str("segment", 64, nullable=True))
    op.add_column("customers", sa.Column("segment_since", sa.Date(), nullable=True))
    op.add_column("customers", _str("tier", 64, nullable=True))
    op.add_column("customers", sa.Column("tier_since", sa.Date(), nullable=True))
    op.add_column("customers", _str("referrer_id", 36, nullable=True))
    op.create_index(op.f("ix_customers_referrer_id"), "customers", ["referrer_id"], unique=False)

    op.create_table(
        "program_status_changes",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        _str("customer_id", 36),
        _str("attribute", 16),
        _str("old_value", 64, nullable=True),
        _str("new_value", 64, nullable=True),
        _str("reason", 16),
        sa.Column("turnover_kopecks", sa.BigInteger(), nullable=True),
        _str("transaction_id", 36, nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_program_status_changes_customer", "program_status_changes", ["customer_id", "id"])

    op.create_table(
        "program_bonus_grants",
        _str("key", 128),
        _str("kind", 16),
        _str("customer_id", 36),
        _str("account_id", 36),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=True),
        _str("transaction_id", 36, nullable=True),
        _str("source_customer_id", 36, nullable=True),
        sa.Column("lines_json", sa.Text(), nullable=False),
        sa.Column("reversed_points", sa.BigInteger(), nullable=False),
        _str("description", 256),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(op.f("ix_program_bonus_grants_customer_id"), "program_bonus_grants", ["customer_id"])
    op.create_index(op.f("ix_program_bonus_grants_transaction_id"), "program_bonus_grants", ["transaction_id"])

    op.create_table(
        "program_grant_reversals",
        _str("refund_txn_id", 36),
        _str("grant_key", 128),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("shortfall", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("refund_txn_id", "grant_key"),
    )

    op.create_table(
        "program_job_runs",
        _str("job", 32),
        sa.Column("day", sa.Date(), nullable=False),
        _str("cursor", 36),
        sa.Column("processed", sa.BigInteger(), nullable=False),
        sa.Column("changed", sa.BigInteger(), nullable=False),
        _str("leased_by", 36, nullable=True),
        _ts("lease_until", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("job", "day"),
    )


def downgrade() -> None:
    op.drop_table("program_job_runs")
    op.drop_table("program_grant_reversals")
    op.drop_index(op.f("ix_program_bonus_grants_transaction_id"), table_name="program_bonus_grants")
    op.drop_index(op.f("ix_program_bonus_grants_customer_id"), table_name="program_bonus_grants")
    op.drop_table("program_bonus_grants")
    op.drop_index("ix_program_status_changes_customer", table_name="program_status_changes")
    op.drop_table("program_status_changes")
    with op.batch_alter_table("customers", schema=None) as batch:
        batch.drop_index("ix_customers_referrer_id")
        batch.drop_column("referrer_id")
        batch.drop_column("tier_since")
        batch.drop_column("tier")
        batch.drop_column("segment_since")
        batch.drop_column("segment")

"""profiles: gender and advertising consent on customers, the profile change history; merges the
0009 heads

Revision ID: 0010_profiles
Revises: 0009_cml, 0009_discount_server, 0009_reports_indexes, 0009_request_id
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from gateway.store.types import UTCDateTime

revision: str = "0010_profiles"
down_revision: str | Sequence[str] | None = (
    "0009_cml",
    "0009_discount_server",
    "0009_reports_indexes",
    "0009_request_id",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gender", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.add_column(sa.Column("ad_consent", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("ad_consent_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ad_consent_channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.create_table(
        "customer_profile_changes",
        sa.Column("id", _BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("field", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("old_value", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("new_value", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
    )
    op.create_index(
        "ix_customer_profile_changes_customer", "customer_profile_changes", ["customer_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_customer_profile_changes_customer", table_name="customer_profile_changes")
    op.drop_table("customer_profile_changes")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("ad_consent_channel")
        batch_op.drop_column("ad_consent_at")
        batch_op.drop_column("ad_consent")
        batch_op.drop_column("gender")

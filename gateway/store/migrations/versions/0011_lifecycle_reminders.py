"""lifecycle reminders: balance alerts (armed again once the balance fell below the threshold)
and the referrer named with a phone code request

Revision ID: 0011_lifecycle
Revises: 0010_profiles
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from gateway.store.types import UTCDateTime

revision: str = "0011_lifecycle"
down_revision: str | Sequence[str] | None = "0010_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "balance_alerts",
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("last_sent_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "verification_code_referrers",
        sa.Column("code_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("referrer_customer_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["code_id"], ["verification_codes.id"]),
        sa.ForeignKeyConstraint(["referrer_customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("code_id"),
    )


def downgrade() -> None:
    op.drop_table("verification_code_referrers")
    op.drop_table("balance_alerts")

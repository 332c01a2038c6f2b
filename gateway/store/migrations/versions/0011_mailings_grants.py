"""mailings: mailings to an audience with their planned recipients and holdout, one-off grants of
points to an audience

Revision ID: 0011_mailings
Revises: 0010_profiles
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from gateway.store.types import UTCDateTime

revision: str = "0011_mailings"
down_revision: str | Sequence[str] | None = "0010_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int) -> AutoString:
    return AutoString(length=length)


def _ts() -> UTCDateTime:
    return UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mailings",
        sa.Column("id", _s(16), primary_key=True),
        sa.Column("created_by", _s(64), nullable=False),
        sa.Column("idempotency_key", _s(255), nullable=False),
        sa.Column("request_hash", _s(64), nullable=False),
        sa.Column("name", _s(128), nullable=False),
        sa.Column("kind", _s(16), nullable=False),
        sa.Column("channel", _s(16), nullable=False),
        sa.Column("subject", _s(200), nullable=True),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("audience_json", sa.Text(), nullable=False),
        sa.Column("holdout_percent", sa.Integer(), nullable=False),
        sa.Column("promo_mode", _s(16), nullable=False),
        sa.Column("campaign_id", _s(36), nullable=True),
        sa.Column("shared_code", _s(64), nullable=True),
        sa.Column("gift_points", sa.BigInteger(), nullable=False),
        sa.Column("gift_expires_at", _ts(), nullable=True),
        sa.Column("conversion_days", sa.Integer(), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column("start_at", _ts(), nullable=True),
        sa.Column("state", _s(16), nullable=False),
        sa.Column("cursor", _s(36), nullable=False),
        sa.Column("slot_at", _ts(), nullable=True),
        sa.Column("slot_used", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.BigInteger(), nullable=False),
        sa.Column("holdout", sa.BigInteger(), nullable=False),
        sa.Column("skipped_consent", sa.BigInteger(), nullable=False),
        sa.Column("skipped_contact", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("sending_at", _ts(), nullable=True),
        sa.Column("queued_at", _ts(), nullable=True),
        sa.UniqueConstraint("created_by", "idempotency_key", name="uq_mailings_created_by_key"),
    )
    op.create_table(
        "mailing_recipients",
        sa.Column("mailing_id", _s(16), primary_key=True),
        sa.Column("customer_id", _s(36), primary_key=True),
        sa.Column("cohort", _s(16), nullable=False),
        sa.Column("notification_id", _s(64), nullable=True),
        sa.Column("promo_hint", _s(32), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_index("ix_mailing_recipients_notification", "mailing_recipients", ["notification_id"], unique=False)
    op.create_table(
        "points_grants",
        sa.Column("id", _s(16), primary_key=True),
        sa.Column("created_by", _s(64), nullable=False),
        sa.Column("idempotency_key", _s(255), nullable=False),
        sa.Column("request_hash", _s(64), nullable=False),
        sa.Column("description", _s(256), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=True),
        sa.Column("audience_json", sa.Text(), nullable=False),
        sa.Column("state", _s(16), nullable=False),
        sa.Column("cursor", _s(36), nullable=False),
        sa.Column("customers", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.UniqueConstraint("created_by", "idempotency_key", name="uq_points_grants_created_by_key"),
    )


def downgrade() -> None:
    op.drop_table("points_grants")
    op.drop_index("ix_mailing_recipients_notification", table_name="mailing_recipients")
    op.drop_table("mailing_recipients")
    op.drop_table("mailings")

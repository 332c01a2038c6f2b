"""bots: notifications delivered into bot chats, read or sent on by the next provider

Revision ID: 0012_bots
Revises: 0011_bots
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from gateway.store.types import UTCDateTime

revision: str = "0012_bots"
down_revision: str | Sequence[str] | None = "0011_bots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_deliveries",
        sa.Column("notification_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("fallback_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notification_id"),
    )
    op.create_index("ix_bot_deliveries_unread", "bot_deliveries", ["read_at", "fallback_at", "sent_at"], unique=False)
    op.create_index("ix_bot_deliveries_chat", "bot_deliveries", ["channel", "chat_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bot_deliveries_chat", table_name="bot_deliveries")
    op.drop_index("ix_bot_deliveries_unread", table_name="bot_deliveries")
    op.drop_table("bot_deliveries")

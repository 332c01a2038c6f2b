"""bots: chats of the Telegram and VK bots and the updates already handled

Revision ID: 0011_bots
Revises: 0010_profiles
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from gateway.store.types import UTCDateTime

revision: str = "0011_bots"
down_revision: str | Sequence[str] | None = "0010_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_chats",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("referrer_card", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("answers_json", sa.Text(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "chat_id"),
    )
    op.create_index("ix_bot_chats_phone", "bot_chats", ["channel", "phone"], unique=False)
    op.create_index(op.f("ix_bot_chats_customer_id"), "bot_chats", ["customer_id"], unique=False)
    op.create_table(
        "bot_updates",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("update_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("handled_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "update_id"),
    )
    op.create_index("ix_bot_updates_handled_at", "bot_updates", ["handled_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bot_updates_handled_at", table_name="bot_updates")
    op.drop_table("bot_updates")
    op.drop_index(op.f("ix_bot_chats_customer_id"), table_name="bot_chats")
    op.drop_index("ix_bot_chats_phone", table_name="bot_chats")
    op.drop_table("bot_chats")

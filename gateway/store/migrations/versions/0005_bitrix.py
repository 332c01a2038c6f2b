"""bitrix: site event ids, Bitrix24 events, CommerceML exchange sessions, files and export cursor

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, gateway.store.types.UTCDateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "bitrix_site_events",
        _str("client_id", 64),
        _str("event_id", 128),
        _str("event", 64),
        _str("request_hash", 64),
        sa.Column("response_json", sa.Text(), nullable=False),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("client_id", "event_id"),
    )
    op.create_index(op.f("ix_bitrix_site_events_received_at"), "bitrix_site_events", ["received_at"], unique=False)

    op.create_table(
        "bitrix24_events",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        _str("member_id", 64),
        _str("event", 64),
        _str("entity_id", 64, nullable=True),
        _str("event_ts", 32, nullable=True),
        _str("status", 16),
        _str("detail", 1000, nullable=True),
        sa.Column("payload_json", sa.Text(), nullable=False),
        _ts("received_at"),
        _ts("processed_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bitrix24_events_entity", "bitrix24_events", ["member_id", "entity_id", "status"], unique=False)
    op.create_index("ix_bitrix24_events_status_received", "bitrix24_events", ["status", "received_at"], unique=False)

    op.create_table(
        "bitrix_exchange_sessions",
        _str("id", 64),
        _str("sessid", 64),
        _str("client_id", 64),
        sa.Column("zip", sa.Boolean(), nullable=False),
        _str("version", 16, nullable=True),
        _ts("created_at"),
        _ts("last_seen_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_bitrix_exchange_sessions_last_seen_at"), "bitrix_exchange_sessions", ["last_seen_at"], unique=False
    )

    op.create_table(
        "bitrix_exchange_files",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        _str("session_id", 64),
        _str("filename", 255),
        _str("archive", 255, nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("extracted", sa.Boolean(), nullable=False),
        sa.Column("validated", sa.Boolean(), nullable=False),
        sa.Column("documents_done", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["session_id"], ["bitrix_exchange_sessions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "filename", name="uq_bitrix_exchange_files_name"),
    )
    op.create_index(op.f("ix_bitrix_exchange_files_session_id"), "bitrix_exchange_files", ["session_id"], unique=False)

    op.create_table(
        "bitrix_exchange_chunks",
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["bitrix_exchange_files.id"]),
        sa.PrimaryKeyConstraint("file_id", "seq"),
    )

    op.create_table(
        "bitrix_export_cursors",
        _str("name", 64),
        sa.Column("committed_sequence", sa.BigInteger(), nullable=False),
        sa.Column("pending_sequence", sa.BigInteger(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("bitrix_export_cursors")
    op.drop_table("bitrix_exchange_chunks")
    op.drop_index(op.f("ix_bitrix_exchange_files_session_id"), table_name="bitrix_exchange_files")
    op.drop_table("bitrix_exchange_files")
    op.drop_index(op.f("ix_bitrix_exchange_sessions_last_seen_at"), table_name="bitrix_exchange_sessions")
    op.drop_table("bitrix_exchange_sessions")
    op.drop_index("ix_bitrix24_events_status_received", table_name="bitrix24_events")
    op.drop_index("ix_bitrix24_events_entity", table_name="bitrix24_events")
    op.drop_table("bitrix24_events")
    op.drop_index(op.f("ix_bitrix_site_events_received_at"), table_name="bitrix_site_events")
    op.drop_table("bitrix_site_events")

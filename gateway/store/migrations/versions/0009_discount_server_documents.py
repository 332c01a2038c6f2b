"""discount server: 1C:Розница card references, store documents, their sales lines, coupons

Revision ID: 0009_discount_server
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0009_discount_server"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _str(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _ts() -> gateway.store.types.UTCDateTime:
    return gateway.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "discount_server_cards",
        sa.Column("ref", _str(36), nullable=False),
        sa.Column("card_number", _str(64), nullable=False),
        sa.Column("name", _str(256), nullable=True),
        sa.Column("imported_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("ref"),
    )
    op.create_index("ix_discount_server_cards_card_number", "discount_server_cards", ["card_number"])
    op.create_table(
        "discount_server_documents",
        sa.Column("id", _str(36), nullable=False),
        sa.Column("client_id", _str(64), nullable=False),
        sa.Column("document_type", _str(64), nullable=False),
        sa.Column("document_ref", _str(36), nullable=False),
        sa.Column("card_number", _str(64), nullable=True),
        sa.Column("account_id", _str(36), nullable=True),
        sa.Column("occurred_at", _ts(), nullable=True),
        sa.Column("sales_hash", _str(64), nullable=True),
        sa.Column("bonuses_hash", _str(64), nullable=True),
        sa.Column("total_kopecks", sa.BigInteger(), nullable=False),
        sa.Column("points_accrued", sa.BigInteger(), nullable=False),
        sa.Column("points_spent", sa.BigInteger(), nullable=False),
        sa.Column("points_shortfall", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("error_code", _str(64), nullable=True),
        sa.Column("error_message", _str(1024), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("document_type", "document_ref", name="uq_discount_server_documents_ref"),
    )
    op.create_index("ix_discount_server_documents_status", "discount_server_documents", ["status", "updated_at"])
    op.create_table(
        "discount_server_sales",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("document_id", _str(36), nullable=False),
        sa.Column("card_number", _str(64), nullable=False),
        sa.Column("period", _ts(), nullable=False),
        sa.Column("item_ref", _str(36), nullable=True),
        sa.Column("characteristic_ref", _str(36), nullable=True),
        sa.Column("amount_kopecks", sa.BigInteger(), nullable=False),
        sa.Column("quantity_thousandths", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["discount_server_documents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_discount_server_sales_document_id", "discount_server_sales", ["document_id"])
    op.create_index("ix_discount_server_sales_card_period", "discount_server_sales", ["card_number", "period"])
    op.create_table(
        "discount_server_coupons",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("discount_ref", _str(36), nullable=False),
        sa.Column("code", _str(128), nullable=False),
        sa.Column("state", _str(16), nullable=False),
        sa.Column("period", _ts(), nullable=False),
        sa.Column("valid_until", _ts(), nullable=True),
        sa.Column("store_ref", _str(36), nullable=True),
        sa.Column("document_id", _str(36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("discount_ref", "code", name="uq_discount_server_coupons_code"),
    )
    op.create_index("ix_discount_server_coupons_document_id", "discount_server_coupons", ["document_id"])


def downgrade() -> None:
    op.drop_table("discount_server_coupons")
    op.drop_table("discount_server_sales")
    op.drop_table("discount_server_documents")
    op.drop_table("discount_server_cards")

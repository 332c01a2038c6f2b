"""accounts: gift certificate batches/refunds/status log, promo campaigns and codes, customer
merges, company accounts and their members

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, gateway.store.types.UTCDateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=nullable)


def _index(table: str, *columns: str, unique: bool = False) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=unique)


def upgrade() -> None:
    op.add_column("customers", _str("merged_into", 36, nullable=True))
    _index("customers", "merged_into")
    op.add_column("gift_cards", _str("batch_id", 36, nullable=True))
    _index("gift_cards", "batch_id")

    op.create_table(
        "gift_card_batches",
        _str("id", 36),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("nominal_kopecks", sa.BigInteger(), nullable=False),
        _str("name", 150),
        _str("prefix", 6),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        _ts("expires_at", nullable=True),
        _str("issued_by", 64),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "gift_card_refunds",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        _str("client_id", 64),
        _str("refund_id", 128),
        _str("number", 64),
        _str("receipt_id", 128, nullable=True),
        sa.Column("amount_kopecks", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["number"], ["gift_cards.number"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "refund_id", name="uq_gift_card_refunds_client_refund"),
    )
    _index("gift_card_refunds", "number")
    op.create_table(
        "gift_card_status_changes",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        _str("number", 64),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        _str("reason", 256, nullable=True),
        _str("client_id", 64),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["number"], ["gift_cards.number"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("gift_card_status_changes", "number")

    op.create_table(
        "promo_campaigns",
        _str("id", 36),
        _str("name", 128),
        _str("description", 256),
        _str("discount_percent", 16, nullable=True),
        sa.Column("discount_kopecks", sa.BigInteger(), nullable=True),
        _ts("valid_from", nullable=True),
        _ts("valid_to", nullable=True),
        sa.Column("min_amount_kopecks", sa.BigInteger(), nullable=True),
        sa.Column("uses_per_code", sa.BigInteger(), nullable=True),
        sa.Column("per_customer", sa.Integer(), nullable=True),
        sa.Column("return_on_refund", sa.Boolean(), nullable=False),
        _str("prefix", 12),
        _str("shared_hint", 32, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _str("created_by", 64),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "promo_code_batches",
        _str("id", 36),
        _str("campaign_id", 36),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("code_length", sa.Integer(), nullable=False),
        _str("created_by", 64),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["campaign_id"], ["promo_campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("promo_code_batches", "campaign_id")
    op.create_table(
        "campaign_codes",
        sa.Column("id", _BIGINT_PK, autoincrement=True, nullable=False),
        _str("campaign_id", 36),
        _str("batch_id", 36, nullable=True),
        sa.Column("code_index", sa.Integer(), nullable=True),
        _str("code_hash", 64),
        _str("hint", 32),
        sa.Column("max_uses", sa.BigInteger(), nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["batch_id"], ["promo_code_batches.id"]),
        sa.ForeignKeyConstraint(["campaign_id"], ["promo_campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    _index("campaign_codes", "campaign_id")
    _index("campaign_codes", "batch_id")
    op.create_table(
        "promo_reservations",
        _str("id", 36),
        sa.Column("code_id", sa.BigInteger(), nullable=False),
        _str("campaign_id", 36),
        _str("client_id", 64),
        _str("account_id", 36, nullable=True),
        _str("tag", 64, nullable=True),
        _str("status", 16),
        _str("transaction_id", 36, nullable=True),
        _ts("expires_at"),
        _ts("created_at"),
        _ts("resolved_at", nullable=True),
        sa.ForeignKeyConstraint(["code_id"], ["campaign_codes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_promo_reservations_code_status", "promo_reservations", ["code_id", "status"], unique=False)
    _index("promo_reservations", "expires_at")
    op.create_table(
        "campaign_code_uses",
        _str("transaction_id", 36),
        sa.Column("code_id", sa.BigInteger(), nullable=False),
        _str("campaign_id", 36),
        _str("account_id", 36),
        _str("client_id", 64),
        _str("reservation_id", 36, nullable=True),
        _ts("used_at"),
        sa.ForeignKeyConstraint(["code_id"], ["campaign_codes.id"]),
        sa.PrimaryKeyConstraint("transaction_id"),
    )
    _index("campaign_code_uses", "code_id")
    _index("campaign_code_uses", "campaign_id")
    _index("campaign_code_uses", "account_id")

    op.create_table(
        "customer_merges",
        _str("id", 36),
        _str("survivor_customer_id", 36),
        _str("merged_customer_id", 36),
        _str("survivor_account_id", 36),
        _str("merged_account_id", 36),
        sa.Column("points_moved", sa.BigInteger(), nullable=False),
        sa.Column("lots_moved", sa.Integer(), nullable=False),
        sa.Column("cards_json", sa.Text(), nullable=False),
        sa.Column("receipts_moved", sa.Integer(), nullable=False),
        sa.Column("orders_moved", sa.Integer(), nullable=False),
        _str("reason", 256, nullable=True),
        _str("client_id", 64),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["merged_customer_id"], ["customers.id"]),
        sa.ForeignKeyConstraint(["survivor_customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merged_customer_id"),
    )
    _index("customer_merges", "survivor_customer_id")

    op.create_table(
        "companies",
        _str("customer_id", 36),
        _str("name", 256),
        _str("inn", 12, nullable=True),
        _str("kpp", 9, nullable=True),
        _str("created_by", 64),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    _index("companies", "inn")
    op.create_table(
        "account_members",
        _str("account_id", 36),
        _str("customer_id", 36),
        _str("role", 16),
        _str("added_by", 64),
        _ts("added_at"),
        _ts("removed_at", nullable=True),
        sa.CheckConstraint("role IN ('buyer', 'earner', 'viewer')", name="ck_account_members_role"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("account_id", "customer_id"),
    )
    _index("account_members", "customer_id")


def downgrade() -> None:
    op.drop_table("account_members")
    op.drop_table("companies")
    op.drop_table("customer_merges")
    op.drop_table("campaign_code_uses")
    op.drop_table("promo_reservations")
    op.drop_table("campaign_codes")
    op.drop_table("promo_code_batches")
    op.drop_table("promo_campaigns")
    op.drop_table("gift_card_status_changes")
    op.drop_table("gift_card_refunds")
    op.drop_table("gift_card_batches")
    with op.batch_alter_table("gift_cards") as batch:
        batch.drop_index("ix_gift_cards_batch_id")
        batch.drop_column("batch_id")
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_merged_into")
        batch.drop_column("merged_into")

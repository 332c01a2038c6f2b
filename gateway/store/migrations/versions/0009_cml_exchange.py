"""cml exchange: why a file of 1C could not be applied, and the order versions 1C itself made

Revision ID: 0009_cml
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import gateway.store.types

revision: str = "0009_cml"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bitrix_exchange_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    op.create_table(
        "bitrix_cml_order_versions",
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "order_id", "version"),
    )


def downgrade() -> None:
    op.drop_table("bitrix_cml_order_versions")
    with op.batch_alter_table("bitrix_exchange_files", schema=None) as batch_op:
        batch_op.drop_column("error")

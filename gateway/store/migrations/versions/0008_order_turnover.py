"""order turnover: what shipped and returned order goods add to their customers' turnover

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from pydantic import TypeAdapter
from sqlalchemy import Connection, column, delete, insert, table
from sqlalchemy import select as core_select

import gateway.store.types
from contracts.orders import OrderRequest
from gateway.core.orders import PricedOrderLine, shares_of
from gateway.store.types import UTCDateTime

_PRICED = TypeAdapter(list[PricedOrderLine])

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_turnover",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_pk", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("document", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("occurred_at", gateway.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount_kopecks", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["order_pk"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_pk", "document", name="uq_order_turnover_document"),
    )
    with op.batch_alter_table("order_turnover", schema=None) as batch_op:
        batch_op.create_index("ix_order_turnover_account_occurred", ["account_id", "occurred_at"], unique=False)

    # Orders applied before this revision count from now on, as if they had always been booked.
    rebuild(op.get_bind())


def rebuild(connection: Connection) -> int:
    """Write every order's turnover rows from its stored snapshot. Reads and writes only the
    columns it names, so later changes of the models do not break this migration; uses only
    ``contracts`` and ``gateway.core`` (no ledger code). Returns the number of orders read."""
    orders = table(
        "orders",
        column("id"),
        column("account_id"),
        column("status"),
        column("snapshot_json"),
        column("priced_json"),
        column("updated_at", UTCDateTime()),
    )
    turnover = table(
        "order_turnover",
        column("order_pk"),
        column("account_id"),
        column("document"),
        column("occurred_at", UTCDateTime()),
        column("amount_kopecks"),
    )
    connection.execute(delete(turnover))
    count = 0
    for row in connection.execute(core_select(orders).where(orders.c.status != "cancelled")):
        count += 1
        request = OrderRequest.model_validate_json(row.snapshot_json)
        shares = shares_of(request, _PRICED.validate_json(row.priced_json))
        if shares:
            connection.execute(
                insert(turnover),
                [
                    {
                        "order_pk": row.id,
                        "account_id": row.account_id,
                        "document": share.document,
                        "occurred_at": share.at or row.updated_at,
                        "amount_kopecks": share.amount_kopecks,
                    }
                    for share in shares
                ],
            )
    return count


def downgrade() -> None:
    with op.batch_alter_table("order_turnover", schema=None) as batch_op:
        batch_op.drop_index("ix_order_turnover_account_occurred")
    op.drop_table("order_turnover")

"""reports indexes: receipts, ledger entries, cards and customers by the time they were booked

Revision ID: 0009_reports_indexes
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009_reports_indexes"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_receipts_created_at", "receipts", ["created_at"]),
    # covering: the point flows and the liability of a period are read from the index alone
    ("ix_ledger_entries_created_kind", "ledger_entries", ["created_at", "kind", "points"]),
    ("ix_cards_created_at", "cards", ["created_at"]),
    ("ix_customers_created_at", "customers", ["created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

"""Tables of orders (web shop and ERP orders): the last snapshot applied and what was posted.

``orders.points_*`` record what the ledger holds for the order (the invariant checker proves
it); each applied change appends an ``order_history`` row with what it posted, and takes the
next number of its client's change feed (``order_feeds``), which exporters resume from.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import _pk, _ts


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("client_id", "order_id", name="uq_orders_client_order"),
        Index("ix_orders_client_sequence", "client_id", "sequence"),
    )

    id: str = Field(primary_key=True, max_length=36, description="Transaction id of the order's ledger rows")
    client_id: str = Field(max_length=64)
    order_id: str = Field(max_length=128)
    account_id: str = Field(foreign_key="accounts.id", max_length=36, index=True)
    card_number: str = Field(max_length=64)
    version: int = Field(sa_type=BigInteger)
    sequence: int = Field(sa_type=BigInteger)
    status: str = Field(max_length=20)  # placed | paid | partially_shipped | shipped | cancelled
    content_hash: str = Field(max_length=64)
    pricing_hash: str = Field(max_length=64)
    snapshot_json: str = Field(sa_column=Column(Text, nullable=False))
    priced_json: str = Field(sa_column=Column(Text, nullable=False))
    explanation_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    hold_id: str | None = Field(default=None, max_length=36, description="The checkout hold the order took")
    total_kopecks: int = Field(sa_type=BigInteger)
    discount_kopecks: int = Field(sa_type=BigInteger)
    points_spent: int = Field(sa_type=BigInteger)
    points_pending: int = Field(sa_type=BigInteger)
    points_available: int = Field(sa_type=BigInteger)
    points_shortfall: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class OrderHistory(SQLModel, table=True):
    """One applied change of an order and what it posted (``change_id`` marks its ledger rows)."""

    __tablename__ = "order_history"

    id: int | None = Field(default=None, sa_column=_pk())
    order_pk: str = Field(foreign_key="orders.id", max_length=36, index=True)
    change_id: str = Field(max_length=36)
    version: int = Field(sa_type=BigInteger)
    sequence: int = Field(sa_type=BigInteger)
    status: str = Field(max_length=20)
    account_id: str = Field(max_length=36)
    spent_delta: int = Field(sa_type=BigInteger)
    pending_delta: int = Field(sa_type=BigInteger)
    available_delta: int = Field(sa_type=BigInteger)
    shortfall_delta: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())


class OrderFeed(SQLModel, table=True):
    """The last change number of a client's order feed. Its row is locked while a change takes
    the next number, so numbers are committed in order and a feed reader never skips one."""

    __tablename__ = "order_feeds"

    client_id: str = Field(primary_key=True, max_length=64)
    last_sequence: int = Field(default=0, sa_type=BigInteger)


class OrderTurnover(SQLModel, table=True):
    """What an order adds to its customer's turnover, one row per shipment (positive) and per
    return (negative), dated when the goods left or came back. Derived from the order's last
    applied snapshot and rewritten with it; tier rules read it beside till receipts."""

    __tablename__ = "order_turnover"
    __table_args__ = (
        UniqueConstraint("order_pk", "document", name="uq_order_turnover_document"),
        Index("ix_order_turnover_account_occurred", "account_id", "occurred_at"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    order_pk: str = Field(foreign_key="orders.id", max_length=36)
    account_id: str = Field(foreign_key="accounts.id", max_length=36)
    document: str = Field(max_length=140, description="shipment:ID or return:ID at the source")
    occurred_at: datetime = Field(sa_column=_ts())
    amount_kopecks: int = Field(sa_type=BigInteger, description="Goods shipped (+) or returned (-), after discounts")

"""Tables of the 1C:Розница «Дисконтный сервер» adapter (``adapters/onec/discountserver``).

* ``discount_server_cards``: the store bases' card references (GUIDs of ``ИнформационныеКарты``)
  and the card numbers they stand for, imported from the 1C catalogue;
* ``discount_server_documents``: each store document (receipt, return) booked into the ledger:
  what it posted (``points_accrued``/``points_spent``, the ledger rows carry ``id`` as their
  transaction id), and whether its last update was refused;
* ``discount_server_sales``: the document's sales lines as the store last sent them (a resend
  replaces them), the base of accumulations and of the last purchase;
* ``discount_server_coupons``: coupon states (the register ``СостоянияОднократныхСкидокИКупонов``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import _pk, _ts


class DiscountServerCard(SQLModel, table=True):
    __tablename__ = "discount_server_cards"

    ref: str = Field(primary_key=True, max_length=36, description="GUID of the 1C ИнформационныеКарты item, lower case")
    card_number: str = Field(max_length=64, index=True)
    name: str | None = Field(default=None, max_length=256)
    imported_at: datetime = Field(sa_column=_ts())


class DiscountServerDocument(SQLModel, table=True):
    __tablename__ = "discount_server_documents"
    __table_args__ = (
        UniqueConstraint("document_type", "document_ref", name="uq_discount_server_documents_ref"),
        Index("ix_discount_server_documents_status", "status", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=36, description="Transaction id of the document's ledger rows")
    client_id: str = Field(max_length=64)
    document_type: str = Field(max_length=64, description="1C metadata name: ЧекККМ, ВозвратТоваровОтПокупателя…")
    document_ref: str = Field(max_length=36, description="GUID of the 1C document, lower case")
    card_number: str | None = Field(default=None, max_length=64, description="Card the points were booked on")
    account_id: str | None = Field(default=None, max_length=36)
    occurred_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    sales_hash: str | None = Field(default=None, max_length=64)
    bonuses_hash: str | None = Field(default=None, max_length=64)
    total_kopecks: int = Field(default=0, sa_type=BigInteger)
    points_accrued: int = Field(default=0, sa_type=BigInteger)
    points_spent: int = Field(default=0, sa_type=BigInteger)
    points_shortfall: int = Field(default=0, sa_type=BigInteger)
    revision: int = Field(default=0)
    status: str = Field(default="booked", max_length=16)  # booked | refused
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=1024)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class DiscountServerSale(SQLModel, table=True):
    __tablename__ = "discount_server_sales"
    __table_args__ = (Index("ix_discount_server_sales_card_period", "card_number", "period"),)

    id: int | None = Field(default=None, sa_column=_pk())
    document_id: str = Field(foreign_key="discount_server_documents.id", max_length=36, index=True)
    card_number: str = Field(max_length=64)
    period: datetime = Field(sa_column=_ts())
    item_ref: str | None = Field(default=None, max_length=36)
    characteristic_ref: str | None = Field(default=None, max_length=36)
    amount_kopecks: int = Field(sa_type=BigInteger)
    quantity_thousandths: int = Field(sa_type=BigInteger)


class DiscountServerCoupon(SQLModel, table=True):
    __tablename__ = "discount_server_coupons"
    __table_args__ = (UniqueConstraint("discount_ref", "code", name="uq_discount_server_coupons_code"),)

    id: int | None = Field(default=None, sa_column=_pk())
    discount_ref: str = Field(max_length=36, description="GUID of the 1C СкидкиНаценки item")
    code: str = Field(max_length=128)
    state: str = Field(max_length=16, description="Активна | Применена | empty")
    period: datetime = Field(sa_column=_ts())
    valid_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    store_ref: str | None = Field(default=None, max_length=36)
    document_id: str | None = Field(default=None, max_length=36, index=True)

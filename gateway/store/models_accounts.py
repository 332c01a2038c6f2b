"""Tables of certificates batches and refunds, promo campaigns and their codes, customer merges
and company (B2B) accounts.

Promo codes are stored only as a keyed hash (HMAC-SHA256 with the installation's secret): the
table of a hundred thousand unused codes is worth nothing to whoever reads it. The gateway can
re-derive the codes of a batch from that secret to export them again (``campaign_codes``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import _pk, _ts

# -- gift certificates -------------------------------------------------------------------------


class GiftCardBatch(SQLModel, table=True):
    """Certificates issued together (a print run); ``gift_cards.batch_id`` points here."""

    __tablename__ = "gift_card_batches"

    id: str = Field(primary_key=True, max_length=36)
    count: int
    nominal_kopecks: int = Field(sa_type=BigInteger)
    name: str = Field(max_length=150)
    prefix: str = Field(max_length=6)
    blocked: bool = False
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    issued_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class GiftCardRefund(SQLModel, table=True):
    """Money put back on a certificate by a return; once per (client, refund id)."""

    __tablename__ = "gift_card_refunds"
    __table_args__ = (UniqueConstraint("client_id", "refund_id", name="uq_gift_card_refunds_client_refund"),)

    id: int | None = Field(default=None, sa_column=_pk())
    client_id: str = Field(max_length=64)
    refund_id: str = Field(max_length=128)
    number: str = Field(foreign_key="gift_cards.number", max_length=64, index=True)
    receipt_id: str | None = Field(default=None, max_length=128)
    amount_kopecks: int = Field(sa_type=BigInteger)
    entry_id: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())


class GiftCardStatusChange(SQLModel, table=True):
    """A certificate blocked or unblocked, by whom and why."""

    __tablename__ = "gift_card_status_changes"

    id: int | None = Field(default=None, sa_column=_pk())
    number: str = Field(foreign_key="gift_cards.number", max_length=64, index=True)
    blocked: bool
    reason: str | None = Field(default=None, max_length=256)
    client_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


# -- promo campaigns ---------------------------------------------------------------------------


class PromoCampaign(SQLModel, table=True):
    __tablename__ = "promo_campaigns"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=128)
    description: str = Field(max_length=256)
    discount_percent: str | None = Field(default=None, max_length=16, description="Exact decimal text")
    discount_kopecks: int | None = Field(default=None, sa_type=BigInteger)
    valid_from: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    valid_to: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    min_amount_kopecks: int | None = Field(default=None, sa_type=BigInteger)
    uses_per_code: int | None = Field(default=None, sa_type=BigInteger)
    per_customer: int | None = None
    return_on_refund: bool = False
    prefix: str = Field(default="", max_length=12)
    shared_hint: str | None = Field(default=None, max_length=32, description="Masked shared code")
    active: bool = True
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class PromoCodeBatch(SQLModel, table=True):
    __tablename__ = "promo_code_batches"

    id: str = Field(primary_key=True, max_length=36)
    campaign_id: str = Field(foreign_key="promo_campaigns.id", max_length=36, index=True)
    count: int
    code_length: int
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class CampaignCode(SQLModel, table=True):
    """One code of a campaign, by its keyed hash. A generated code is re-derivable from its
    batch and ``code_index``; a shared code (``batch_id`` null) only from what the operator typed.
    Its row is locked while the code is reserved or consumed."""

    __tablename__ = "campaign_codes"

    id: int | None = Field(default=None, sa_column=_pk())
    campaign_id: str = Field(foreign_key="promo_campaigns.id", max_length=36, index=True)
    batch_id: str | None = Field(default=None, foreign_key="promo_code_batches.id", max_length=36, index=True)
    code_index: int | None = None
    code_hash: str = Field(max_length=64, unique=True)
    hint: str = Field(max_length=32, description="Prefix and last characters, for people")
    max_uses: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())


class PromoReservation(SQLModel, table=True):
    """A code reserved for a receipt at a till: it counts as used until it is consumed by the
    receipt, released, or its deadline passes (then it simply stops counting)."""

    __tablename__ = "promo_reservations"
    __table_args__ = (Index("ix_promo_reservations_code_status", "code_id", "status"),)

    id: str = Field(primary_key=True, max_length=36)
    code_id: int = Field(foreign_key="campaign_codes.id", sa_type=BigInteger)
    campaign_id: str = Field(max_length=36)
    client_id: str = Field(max_length=64)
    account_id: str | None = Field(default=None, max_length=36)
    tag: str | None = Field(default=None, max_length=64)
    status: str = Field(default="open", max_length=16)  # open | consumed | released | expired
    transaction_id: str | None = Field(default=None, max_length=36)
    expires_at: datetime = Field(sa_column=_ts(index=True))
    created_at: datetime = Field(sa_column=_ts())
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class CampaignCodeUse(SQLModel, table=True):
    """A receipt (or an order) that used a campaign code. The use is given back when the
    campaign returns codes on refund and the receipt is refunded in full (derived, never stored)."""

    __tablename__ = "campaign_code_uses"

    transaction_id: str = Field(primary_key=True, max_length=36)
    code_id: int = Field(foreign_key="campaign_codes.id", sa_type=BigInteger, index=True)
    campaign_id: str = Field(max_length=36, index=True)
    account_id: str = Field(max_length=36, index=True)
    client_id: str = Field(max_length=64)
    reservation_id: str | None = Field(default=None, max_length=36)
    used_at: datetime = Field(sa_column=_ts())


# -- merges ------------------------------------------------------------------------------------


class CustomerMerge(SQLModel, table=True):
    """A duplicate customer merged into a survivor: what moved. The merged customer is kept
    (``customers.merged_into``); its ledger entries stay on its own account, followed by the
    ``merge_out`` entries that moved its points."""

    __tablename__ = "customer_merges"

    id: str = Field(primary_key=True, max_length=36)
    survivor_customer_id: str = Field(foreign_key="customers.id", max_length=36, index=True)
    merged_customer_id: str = Field(foreign_key="customers.id", max_length=36, unique=True)
    survivor_account_id: str = Field(max_length=36)
    merged_account_id: str = Field(max_length=36)
    points_moved: int = Field(sa_type=BigInteger)
    lots_moved: int
    cards_json: str = Field(sa_column=Column(Text, nullable=False))
    receipts_moved: int
    orders_moved: int
    reason: str | None = Field(default=None, max_length=256)
    client_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


# -- company accounts --------------------------------------------------------------------------


class Company(SQLModel, table=True):
    """A customer that is a company: its account is shared by its contacts (``account_members``)."""

    __tablename__ = "companies"

    customer_id: str = Field(foreign_key="customers.id", primary_key=True, max_length=36)
    name: str = Field(max_length=256)
    inn: str | None = Field(default=None, max_length=12, index=True)
    kpp: str | None = Field(default=None, max_length=9)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class AccountMember(SQLModel, table=True):
    """A contact of a company account and the role that decides what their card may do."""

    __tablename__ = "account_members"
    __table_args__ = (CheckConstraint("role IN ('buyer', 'earner', 'viewer')", name="ck_account_members_role"),)

    account_id: str = Field(foreign_key="accounts.id", primary_key=True, max_length=36)
    customer_id: str = Field(foreign_key="customers.id", primary_key=True, max_length=36, index=True)
    role: str = Field(max_length=16)
    added_by: str = Field(max_length=64)
    added_at: datetime = Field(sa_column=_ts())
    removed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

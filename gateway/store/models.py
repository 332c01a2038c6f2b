"""Tables of the points ledger.

The ledger's truth is ``ledger_entries`` (append-only; a balance is the sum of an account's
entries). ``lots`` and ``allocations`` record *which* points an entry or a hold used, so that
spending takes the soonest-expiring points first and refunds and expiry stay exact. The invariant
checker proves at any time that both views agree.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.types import UTCDateTime

# BIGINT on PostgreSQL; SQLite needs exactly INTEGER for an auto-incrementing row id.
_BIGINT_PK = BigInteger().with_variant(Integer(), "sqlite")


def _pk() -> Column[int]:
    return Column(_BIGINT_PK, primary_key=True, autoincrement=True)


def _ts(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_created_at", "created_at"),)  # reports: registrations per period

    id: str = Field(primary_key=True, max_length=36)
    phone: str | None = Field(default=None, max_length=32, unique=True)
    email: str | None = Field(default=None, max_length=254, unique=True)
    name: str | None = Field(default=None, max_length=256)
    birth_date: date | None = None
    external_ref: str | None = Field(default=None, max_length=128, index=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    merged_into: str | None = Field(default=None, max_length=36, index=True, description="Survivor of a merge")
    # The loyalty program's view of the customer (gateway/core/rules; history in models_program).
    segment: str | None = Field(default=None, max_length=64, description="Null: the program's default segment")
    segment_since: date | None = Field(default=None, description="When the customer joined the segment")
    tier: str | None = Field(default=None, max_length=64, description="Null: not yet set by a purchase or the job")
    tier_since: date | None = None
    referrer_id: str | None = Field(default=None, max_length=36, index=True, description="Who referred the customer")
    # Profile upkeep (gateway/ledger/profiles.py; who changed what: models_profiles).
    gender: str | None = Field(default=None, max_length=8, description="male | female")
    ad_consent: bool | None = Field(default=None, description="Agreed to advertising (None: never asked)")
    ad_consent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    ad_consent_channel: str | None = Field(default=None, max_length=32, description="Where the consent was given")


class Account(SQLModel, table=True):
    """A points account. Its row is the lock that serializes debits on PostgreSQL."""

    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=36)
    customer_id: str = Field(foreign_key="customers.id", unique=True, max_length=36)
    created_at: datetime = Field(sa_column=_ts())


class Card(SQLModel, table=True):
    __tablename__ = "cards"
    __table_args__ = (Index("ix_cards_created_at", "created_at"),)  # reports: cards issued per period

    number: str = Field(primary_key=True, max_length=64)
    ref: str = Field(max_length=36, unique=True, description="Stable GUID of the card for 1C (CardRef)")
    customer_id: str = Field(foreign_key="customers.id", index=True, max_length=36)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=36)
    status: str = Field(default="active", max_length=16)  # active | blocked | replaced
    replaced_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class LedgerEntry(SQLModel, table=True):
    """Append-only. Never updated, never deleted."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account", "account_id", "id"),
        # reports: point flows and liability per period, read from the index alone
        Index("ix_ledger_entries_created_kind", "created_at", "kind", "points"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    account_id: str = Field(foreign_key="accounts.id", max_length=36)
    # accrual | welcome | spend | expire | reverse | return | adjustment
    kind: str = Field(max_length=16)
    points: int = Field(sa_type=BigInteger)
    lot_id: int | None = Field(default=None, sa_type=BigInteger)
    hold_id: str | None = Field(default=None, max_length=36)
    transaction_id: str | None = Field(default=None, max_length=36, index=True)
    refund_id: str | None = Field(default=None, max_length=36)
    client_id: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(sa_column=_ts())


class Lot(SQLModel, table=True):
    """Points that arrived together and expire together; ``remaining`` is what is left unused."""

    __tablename__ = "lots"
    __table_args__ = (Index("ix_lots_account_open", "account_id", "expires_at"),)

    id: int | None = Field(default=None, sa_column=_pk())
    account_id: str = Field(foreign_key="accounts.id", max_length=36)
    source: str = Field(max_length=16)  # accrual | welcome | return | adjustment
    points: int = Field(sa_type=BigInteger)
    remaining: int = Field(sa_type=BigInteger)
    available_at: datetime = Field(sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True, index=True))
    transaction_id: str | None = Field(default=None, max_length=36)
    origin_lot_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())


class Allocation(SQLModel, table=True):
    """Points taken out of a lot: by a hold (``held``, then ``spent`` or ``released``), by expiry,
    or by the reversal of earned points on a refund. ``returned`` counts spent points given
    back by refunds."""

    __tablename__ = "allocations"

    id: int | None = Field(default=None, sa_column=_pk())
    account_id: str = Field(foreign_key="accounts.id", max_length=36, index=True)
    lot_id: int = Field(foreign_key="lots.id", sa_type=BigInteger, index=True)
    state: str = Field(max_length=16)  # held | spent | released | expired | reversed
    points: int = Field(sa_type=BigInteger)
    returned: int = Field(default=0, sa_type=BigInteger)
    hold_id: str | None = Field(default=None, max_length=36, index=True)
    entry_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())


class Hold(SQLModel, table=True):
    __tablename__ = "holds"
    __table_args__ = (
        Index("ix_holds_open_deadline", "status", "expires_at"),
        Index("ix_holds_card_tag", "card_number", "tag"),
    )

    id: str = Field(primary_key=True, max_length=36)
    account_id: str = Field(foreign_key="accounts.id", max_length=36, index=True)
    card_number: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    points: int = Field(sa_type=BigInteger)
    status: str = Field(default="open", max_length=16)  # open | captured | committed | voided
    captured_points: int | None = Field(default=None, sa_type=BigInteger)
    tag: str | None = Field(default=None, max_length=64)
    cart_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    receipt_id: str | None = Field(default=None, max_length=128)
    transaction_id: str | None = Field(default=None, max_length=36)
    void_reason: str | None = Field(default=None, max_length=32)  # cancelled | expired | released
    attention: str | None = Field(default=None, max_length=1000, description="Why the sweeper gave up on it")
    sweep_failures: int = Field(default=0)
    expires_at: datetime = Field(sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts())
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Receipt(SQLModel, table=True):
    """A committed receipt (our transaction)."""

    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("client_id", "receipt_id", name="uq_receipts_client_receipt"),
        Index("ix_receipts_created_at", "created_at"),  # reports: the receipts of a period
    )

    id: str = Field(primary_key=True, max_length=36)
    client_id: str = Field(max_length=64)
    receipt_id: str = Field(max_length=128)
    account_id: str = Field(foreign_key="accounts.id", max_length=36, index=True)
    card_number: str = Field(max_length=64)
    hold_id: str | None = Field(default=None, max_length=36)
    store: str | None = Field(default=None, max_length=128)
    total_kopecks: int = Field(sa_type=BigInteger)
    points_spent: int = Field(sa_type=BigInteger)
    points_accrued: int = Field(sa_type=BigInteger)
    points_released: int = Field(default=0, sa_type=BigInteger)
    point_value_kopecks: int
    content_hash: str = Field(max_length=64)
    explanation_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    occurred_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(sa_column=_ts())


class ReceiptLine(SQLModel, table=True):
    __tablename__ = "receipt_lines"

    receipt_txn_id: str = Field(foreign_key="receipts.id", primary_key=True, max_length=36)
    line_id: str = Field(primary_key=True, max_length=128)
    position: int
    item: str = Field(max_length=128)
    quantity: str = Field(max_length=32)
    amount_kopecks: int = Field(sa_type=BigInteger, description="What the customer pays for the line")
    discount_kopecks: int = Field(default=0, sa_type=BigInteger)
    points_spent: int = Field(sa_type=BigInteger)
    points_accrued: int = Field(sa_type=BigInteger)
    refunded_quantity: str = Field(default="0", max_length=32)
    refunded_kopecks: int = Field(default=0, sa_type=BigInteger)
    points_returned: int = Field(default=0, sa_type=BigInteger)
    points_reversed: int = Field(default=0, sa_type=BigInteger)


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("client_id", "refund_id", name="uq_refunds_client_refund"),)

    id: str = Field(primary_key=True, max_length=36)
    client_id: str = Field(max_length=64)
    refund_id: str = Field(max_length=128)
    receipt_txn_id: str = Field(foreign_key="receipts.id", max_length=36, index=True)
    amount_kopecks: int = Field(sa_type=BigInteger)
    points_returned: int = Field(sa_type=BigInteger)
    points_returned_expired: int = Field(sa_type=BigInteger)
    points_reversed: int = Field(sa_type=BigInteger)
    points_shortfall: int = Field(sa_type=BigInteger)
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class IdempotencyKey(SQLModel, table=True):
    """One row per (client, key): the request fingerprint and, once done, the stored result."""

    __tablename__ = "idempotency_keys"

    client_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    operation: str = Field(max_length=32)
    request_hash: str = Field(max_length=64)
    state: str = Field(max_length=16)  # in_flight | done
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    locked_until: datetime = Field(sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts(index=True))


class UnmappedRef(SQLModel, table=True):
    """A reference an outside system sent that the integrator's mapping does not know
    (a 1C GUID of goods, a store, a card type…). Reported to the integrator, never a crash."""

    __tablename__ = "unmapped_refs"

    source: str = Field(primary_key=True, max_length=32)  # e.g. "onec"
    kind: str = Field(primary_key=True, max_length=32)  # goods | store | card_type | discount
    ref: str = Field(primary_key=True, max_length=128)
    name: str | None = Field(default=None, max_length=256)
    seen: int = Field(default=1, sa_type=BigInteger)
    first_seen: datetime = Field(sa_column=_ts())
    last_seen: datetime = Field(sa_column=_ts())


class JournalEntry(SQLModel, table=True):
    """Every mutating operation, from the moment it is received to its outcome, with the
    messages exchanged. Queryable by card, receipt, hold, client and time."""

    __tablename__ = "journal"
    __table_args__ = (
        Index("ix_journal_client_created", "client_id", "created_at"),
        Index("ix_journal_state_updated", "state", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    client_id: str = Field(max_length=64)
    operation: str = Field(max_length=32)
    idempotency_key: str = Field(max_length=255)
    # received | held | captured | committed | cancelled | refunded | registered | failed | abandoned
    state: str = Field(max_length=16)
    card_number: str | None = Field(default=None, max_length=64, index=True)
    receipt_id: str | None = Field(default=None, max_length=128, index=True)
    hold_id: str | None = Field(default=None, max_length=36, index=True)
    transaction_id: str | None = Field(default=None, max_length=36, index=True)
    request_json: str = Field(sa_column=Column(Text, nullable=False))
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=1000)
    request_id: str | None = Field(default=None, max_length=128, index=True)  # X-Request-ID of the call
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class OutboxMessage(SQLModel, table=True):
    """An outbound call, written in the same transaction as the ledger change that causes it and
    delivered afterwards by the relay (at least once, with a stable id receivers dedupe on)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, sa_column=_pk())
    destination: str = Field(max_length=64)  # webhook:<id>, sms, erp…
    kind: str = Field(max_length=64)  # the event, e.g. receipt.committed
    dedupe_key: str = Field(max_length=255, unique=True)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=16)  # pending | delivering | delivered | dead
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=_ts())
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    leased_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=1000)
    request_id: str | None = Field(default=None, max_length=128)  # the request that caused it
    created_at: datetime = Field(sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Notification(SQLModel, table=True):
    """A message to a customer (a code, an accrual, points about to expire…), sent through the
    outbox by the provider cascade; ``status``/``provider``/``cost`` track its delivery."""

    __tablename__ = "notifications"

    id: str = Field(primary_key=True, max_length=64)  # stable: also the dedupe key
    kind: str = Field(max_length=16)  # verification | notification
    topic: str = Field(max_length=32)  # verification, points_accrued, points_expiring, birthday…
    phone: str = Field(max_length=32)
    chat_id: str | None = Field(default=None, max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    code: str | None = Field(default=None, max_length=16)
    ttl_seconds: int | None = None
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    provider: str | None = Field(default=None, max_length=32)
    provider_message_id: str | None = Field(default=None, max_length=128)
    cost: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=_ts(index=True))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class NotificationAttempt(SQLModel, table=True):
    """One call to one provider. Written *before* the call, so an attempt whose outcome was
    lost in a crash is known (``unknown``) and is not repeated on a provider that cannot dedupe."""

    __tablename__ = "notification_attempts"

    id: int | None = Field(default=None, sa_column=_pk())
    notification_id: str = Field(max_length=64, index=True)
    provider: str = Field(max_length=32)
    outcome: str = Field(default="unknown", max_length=16)  # unknown | sent | duplicate | retryable | terminal
    provider_message_id: str | None = Field(default=None, max_length=128)
    cost: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, max_length=500)
    started_at: datetime = Field(sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class VerificationCode(SQLModel, table=True):
    """A phone confirmation code: stored only as an HMAC, with its expiry and attempts left."""

    __tablename__ = "verification_codes"

    id: str = Field(primary_key=True, max_length=36)
    phone: str = Field(max_length=32, index=True)
    code_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=_ts())
    attempts_left: int
    client_ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=_ts(index=True))
    used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class GatewaySecret(SQLModel, table=True):
    """Secrets the gateway makes for itself (e.g. the key that hashes verification codes),
    shared by every replica through the database."""

    __tablename__ = "gateway_secrets"

    name: str = Field(primary_key=True, max_length=32)
    value: str = Field(max_length=128)
    created_at: datetime = Field(sa_column=_ts())


class GiftCard(SQLModel, table=True):
    """A gift certificate: money on a number. Its balance is the sum of its entries."""

    __tablename__ = "gift_cards"

    number: str = Field(primary_key=True, max_length=64)
    ref: str = Field(max_length=36, unique=True)
    name: str = Field(max_length=150)
    nominal_kopecks: int = Field(sa_type=BigInteger)
    blocked: bool = False
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    issued_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    batch_id: str | None = Field(default=None, max_length=36, index=True)


class GiftCardEntry(SQLModel, table=True):
    """Append-only: issue (+nominal), redeem (-amount), refund (+amount)."""

    __tablename__ = "gift_card_entries"

    id: int | None = Field(default=None, sa_column=_pk())
    number: str = Field(foreign_key="gift_cards.number", max_length=64, index=True)
    kind: str = Field(max_length=16)
    amount_kopecks: int = Field(sa_type=BigInteger)
    hold_id: str | None = Field(default=None, max_length=36)
    receipt_id: str | None = Field(default=None, max_length=128)
    client_id: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class GiftCardHold(SQLModel, table=True):
    __tablename__ = "gift_card_holds"

    id: str = Field(primary_key=True, max_length=36)
    number: str = Field(foreign_key="gift_cards.number", max_length=64, index=True)
    client_id: str = Field(max_length=64)
    tag: str | None = Field(default=None, max_length=64)
    amount_kopecks: int = Field(sa_type=BigInteger)
    redeemed_kopecks: int | None = Field(default=None, sa_type=BigInteger)
    status: str = Field(default="open", max_length=16)  # open | committed | voided
    expires_at: datetime = Field(sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts())
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class PromoCodeUse(SQLModel, table=True):
    """A receipt that used a promo code (limits count these)."""

    __tablename__ = "promo_code_uses"

    transaction_id: str = Field(primary_key=True, max_length=36)
    code: str = Field(max_length=64, index=True)
    account_id: str = Field(max_length=36, index=True)
    used_at: datetime = Field(sa_column=_ts())


# Tables of other areas live in modules of their own; importing them here registers them with the
# metadata that the migrations and the schema test compare against.
from gateway.store import (  # noqa: E402
    models_accounts,  # noqa: F401
    models_bitrix,  # noqa: F401
    models_bots,  # noqa: F401
    models_discountserver,  # noqa: F401
    models_erp,  # noqa: F401
    models_import,  # noqa: F401
    models_lifecycle,  # noqa: F401
    models_mailings,  # noqa: F401
    models_orders,  # noqa: F401
    models_profiles,  # noqa: F401
    models_program,  # noqa: F401
    models_reports,  # noqa: F401
)

"""Tables of mailings to an audience and of one-off grants of points to an audience (issues 19, 20).

A mailing is planned in batches: each planned customer gets one ``mailing_recipients`` row (in the
recipient group with the id of its message, or in the holdout group that gets nothing), so a
re-run of the planner finds who is planned already and never queues a message twice. A grant is
booked per customer as a ``program_bonus_grants`` row keyed ``grant:<grant id>:<customer>``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import _ts


class Mailing(SQLModel, table=True):
    __tablename__ = "mailings"
    __table_args__ = (UniqueConstraint("created_by", "idempotency_key", name="uq_mailings_created_by_key"),)

    id: str = Field(primary_key=True, max_length=16)
    created_by: str = Field(max_length=64, description="The client (operator, marketer) that created it")
    idempotency_key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    name: str = Field(max_length=128)
    kind: str = Field(max_length=16)  # advertising | service
    channel: str = Field(max_length=16)  # sms | email
    subject: str | None = Field(default=None, max_length=200)
    template: str = Field(sa_column=Column(Text, nullable=False))
    audience_json: str = Field(sa_column=Column(Text, nullable=False))
    holdout_percent: int = Field(default=0)
    promo_mode: str = Field(default="none", max_length=16)  # none | shared | personal
    campaign_id: str | None = Field(default=None, max_length=36)
    shared_code: str | None = Field(default=None, max_length=64)
    gift_points: int = Field(default=0, sa_type=BigInteger)
    gift_expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    conversion_days: int = Field(default=14)
    per_minute: int = Field(default=600)
    start_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    state: str = Field(default="draft", max_length=16)  # draft | sending | queued | cancelled
    cursor: str = Field(default="", max_length=36, description="The last customer id planned")
    slot_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True), description="The send slot filling")
    slot_used: int = Field(default=0)
    recipients: int = Field(default=0, sa_type=BigInteger)
    holdout: int = Field(default=0, sa_type=BigInteger)
    skipped_consent: int = Field(default=0, sa_type=BigInteger)
    skipped_contact: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())
    sending_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    queued_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class MailingRecipient(SQLModel, table=True):
    """A customer planned into a mailing: ``recipient`` (with its message) or ``holdout``."""

    __tablename__ = "mailing_recipients"
    __table_args__ = (Index("ix_mailing_recipients_notification", "notification_id"),)

    mailing_id: str = Field(primary_key=True, max_length=16)
    customer_id: str = Field(primary_key=True, max_length=36)
    cohort: str = Field(max_length=16)  # recipient | holdout
    notification_id: str | None = Field(default=None, max_length=64)
    promo_hint: str | None = Field(default=None, max_length=32, description="The personal code's hint, never the code")
    created_at: datetime = Field(sa_column=_ts())


class PointsGrant(SQLModel, table=True):
    """Points to every customer of an audience, with their own expiry, booked in batches."""

    __tablename__ = "points_grants"
    __table_args__ = (UniqueConstraint("created_by", "idempotency_key", name="uq_points_grants_created_by_key"),)

    id: str = Field(primary_key=True, max_length=16)
    created_by: str = Field(max_length=64)
    idempotency_key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    description: str = Field(max_length=256, description="What the customer sees in the history")
    points: int = Field(sa_type=BigInteger)
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    audience_json: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="granting", max_length=16)  # granting | done
    cursor: str = Field(default="", max_length=36, description="The last customer id granted")
    customers: int = Field(default=0, sa_type=BigInteger, description="Customers granted so far")
    created_at: datetime = Field(sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

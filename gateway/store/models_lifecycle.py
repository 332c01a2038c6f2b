"""State of the lifecycle reminders that a message alone cannot carry: whether a customer's
balance alert is armed again (their balance fell below the threshold since the last one), and
the referrer a registration by phone code named when the code was requested."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from gateway.store.models import _ts


class BalanceAlert(SQLModel, table=True):
    """One row per account that was ever told its balance is high (gateway/notify/reminders.py)."""

    __tablename__ = "balance_alerts"

    account_id: str = Field(primary_key=True, foreign_key="accounts.id", max_length=36)
    sent: int = Field(description="Alerts sent so far: the next one's message id is built from it")
    armed: bool = Field(description="The balance fell below the threshold since the last alert")
    last_sent_at: datetime = Field(sa_column=_ts())


class CodeReferrer(SQLModel, table=True):
    """The referrer named with a phone code request, used when the code is confirmed."""

    __tablename__ = "verification_code_referrers"

    code_id: str = Field(primary_key=True, foreign_key="verification_codes.id", max_length=36)
    referrer_customer_id: str = Field(foreign_key="customers.id", max_length=36)
    created_at: datetime = Field(sa_column=_ts())

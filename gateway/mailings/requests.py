"""What a caller sends to create a mailing or a grant, and what it reads back."""

from __future__ import annotations

import string
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gateway.audience import Audience
from gateway.mailings.config import Channel

MailingKind = Literal["advertising", "service"]
PromoMode = Literal["none", "shared", "personal"]
MailingState = Literal["draft", "sending", "queued", "cancelled"]

# The fields a mailing's template may name.
TEMPLATE_FIELDS = frozenset({"name", "card", "balance", "promo_code", "gift_points", "gift_expires", "unsubscribe_url"})


def template_problems(text: str) -> list[str]:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        return [str(exc)]
    return [
        f"{{{name}}} is not a field of a mailing (it has: {', '.join(sorted(TEMPLATE_FIELDS))})"
        for name in fields
        if name not in TEMPLATE_FIELDS
    ]


class MailingRequest(BaseModel):
    """A mailing: to whom (``audience``), what (``template``), through which ``channel``, and
    whether it advertises (only to customers who agreed) or serves (to everyone reachable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    kind: MailingKind
    channel: Channel
    subject: str | None = Field(default=None, max_length=200, description="E-mail: the subject line")
    template: str = Field(
        min_length=1,
        max_length=4000,
        description="Fields: {name} {card} {balance} {promo_code} {gift_points} {gift_expires} {unsubscribe_url}",
    )
    audience: Audience = Field(default_factory=Audience)
    holdout_percent: int | None = Field(default=None, ge=0, le=50, description="Default: mailings.holdout_percent")
    promo_mode: PromoMode = "none"
    campaign_id: str | None = Field(default=None, max_length=36, description="personal: the campaign to make codes of")
    shared_code: str | None = Field(default=None, max_length=64, description="shared: the code printed to everyone")
    gift_points: int = Field(default=0, ge=0, le=1_000_000, description="Points granted to each recipient")
    gift_expiry_days: int | None = Field(default=30, ge=1, le=3650, description="None: the gift never expires")
    conversion_days: int | None = Field(default=None, ge=1, le=365, description="Report window after sending")
    per_minute: int | None = Field(default=None, ge=1, le=1_000_000, description="Default: mailings.per_minute")
    start_at: AwareDatetime | None = Field(default=None, description="Not before (default: when sent)")

    @model_validator(mode="after")
    def _consistent(self) -> MailingRequest:
        problems = template_problems(self.template)
        if problems:
            raise ValueError("template: " + "; ".join(problems))
        if self.channel == "email" and not self.subject:
            raise ValueError("an e-mail mailing needs a subject")
        if self.promo_mode == "personal" and not self.campaign_id:
            raise ValueError("personal promo codes need campaign_id")
        if self.promo_mode == "shared" and not self.shared_code:
            raise ValueError("a shared promo code needs shared_code")
        if self.promo_mode != "none" and "{promo_code}" not in self.template:
            raise ValueError("the template must show {promo_code}")
        if self.promo_mode == "none" and "{promo_code}" in self.template:
            raise ValueError("{promo_code} needs promo_mode shared or personal")
        if self.gift_points == 0 and ("{gift_points}" in self.template or "{gift_expires}" in self.template):
            raise ValueError("{gift_points} and {gift_expires} need gift_points")
        return self


class ChannelPreview(BaseModel):
    channel: Channel
    reachable: int = Field(description="In the audience with a phone (sms) or an e-mail address (email)")
    allowed: int = Field(description="Of those, who may receive this mailing (advertising: agreed to it)")
    holdout: int = Field(description="Expected to be held out (nothing sent)")
    messages: int = Field(description="Expected messages")
    parts_per_message: int = Field(description="SMS parts of one message (e-mail: 1)")
    price: Decimal | None = Field(description="Roubles per message part (mailings.prices)")
    cost: Decimal | None = Field(description="Expected cost, roubles")


class MailingPreview(BaseModel):
    audience: int = Field(description="Customers the audience selects (merged ones excluded)")
    audience_text: str
    advertising_allowed: int = Field(description="Of them, agreed to advertising")
    channels: list[ChannelPreview]


class MailingResult(BaseModel):
    mailing_id: str
    name: str
    kind: MailingKind
    channel: Channel
    state: MailingState
    audience_text: str
    holdout_percent: int
    recipients: int = Field(description="Messages queued so far")
    holdout: int
    skipped_consent: int = Field(description="Not sent: no consent to advertising")
    skipped_contact: int = Field(description="Not sent: no phone / e-mail address")
    created_by: str
    created_at: datetime
    sending_at: datetime | None
    queued_at: datetime | None


class CohortOutcome(BaseModel):
    customers: int
    buyers: int
    purchases: int
    revenue: Decimal = Field(description="Roubles paid in the window")
    conversion_percent: Decimal
    revenue_per_customer: Decimal


class MailingReport(BaseModel):
    mailing_id: str
    name: str
    state: MailingState
    window_days: int
    window_start: datetime | None
    window_end: datetime | None
    queued: int
    delivered: int
    failed: int
    pending: int
    opted_out: int = Field(description="Recipients who unsubscribed through this mailing's link")
    recipients: CohortOutcome
    holdout: CohortOutcome
    uplift_points: Decimal = Field(description="Conversion of recipients minus holdout, percentage points")
    incremental_revenue: Decimal = Field(
        description="(revenue per recipient - revenue per held-out customer) x recipients, roubles"
    )


class GrantRequest(BaseModel):
    """Points to every customer of an audience, with their own expiry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1, max_length=256, description="What the customer sees")
    points: int = Field(ge=1, le=1_000_000)
    expires_at: AwareDatetime | None = Field(default=None, description="None: the points never expire")
    audience: Audience = Field(default_factory=Audience)


class GrantResult(BaseModel):
    grant_id: str
    description: str
    points: int
    expires_at: datetime | None
    audience_text: str
    state: Literal["granting", "done"]
    customers: int = Field(description="Customers granted so far")
    points_total: int
    created_by: str
    created_at: datetime
    finished_at: datetime | None

"""Profile upkeep: change a registered customer and read who changed what.

``UpdateCustomerRequest`` is a patch: a field left out (or ``null``) stays as it is; ``clear``
names the fields to empty. Personal values in the change history are masked."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from contracts.operations import CardNumber, CustomerResult, Email, Identifier, Name, Operation

Gender = Literal["male", "female"]
ClearableField = Literal["name", "email", "birth_date", "gender", "segment", "referrer"]


class ProfilePatch(Operation):
    """The body of ``PATCH /api/v1/customers/{customer_id}``."""

    name: Name | None = None
    email: Email | None = None
    birth_date: date | None = None
    gender: Gender | None = None
    segment: Identifier | None = Field(default=None, description="Prices the customer's next receipts")
    ad_consent: bool | None = Field(default=None, description="Agreed (true) or refused (false) advertising")
    ad_consent_at: AwareDatetime | None = Field(default=None, description="When the customer answered (default: now)")
    ad_consent_channel: Identifier | None = Field(default=None, description="Where: site, till, sms, bot, paper…")
    referrer_card: CardNumber | None = None
    referrer_customer_id: Identifier | None = None
    clear: list[ClearableField] = Field(default_factory=list, max_length=6, description="Fields to empty")

    @model_validator(mode="after")
    def _consistent(self) -> ProfilePatch:
        if self.referrer_card is not None and self.referrer_customer_id is not None:
            raise ValueError("give the referrer's card or customer id, not both")
        if self.ad_consent is None and (self.ad_consent_at is not None or self.ad_consent_channel is not None):
            raise ValueError("ad_consent_at and ad_consent_channel go with ad_consent")
        if self.ad_consent is not None and self.ad_consent_channel is None:
            raise ValueError("ad_consent needs ad_consent_channel: the law asks where it was given")
        given = {
            name for name in ("name", "email", "birth_date", "gender", "segment") if getattr(self, name) is not None
        }
        if self.referrer_card is not None or self.referrer_customer_id is not None:
            given.add("referrer")
        both = given & set(self.clear)
        if both:
            raise ValueError(f"a field is both set and cleared: {', '.join(sorted(both))}")
        return self

    def changes_segment(self) -> bool:
        return self.segment is not None or "segment" in self.clear

    def changes_referrer(self) -> bool:
        return self.referrer_card is not None or self.referrer_customer_id is not None or "referrer" in self.clear


class UpdateCustomerRequest(ProfilePatch):
    customer_id: Identifier


class ProfileResult(BaseModel):
    customer: CustomerResult
    gender: Gender | None = None
    ad_consent: bool | None = None
    ad_consent_at: datetime | None = None
    ad_consent_channel: str | None = None
    changed: list[str] = Field(default_factory=list, description="Fields this request changed")


class ProfileChangesRequest(Operation):
    customer_id: Identifier
    limit: int = Field(default=100, ge=1, le=1000)


class ProfileChangeInfo(BaseModel):
    field: str
    old_value: str | None
    new_value: str | None
    client_id: str
    changed_at: datetime


class ProfileChangesResult(BaseModel):
    customer_id: str
    changes: list[ProfileChangeInfo]

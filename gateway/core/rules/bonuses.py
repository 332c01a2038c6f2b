"""``bonuses:`` — points not tied to one line's price: birthday and referral.

* **birthday**: a grant of ``points`` on the customer's birthday, given by the daily program job
  (at most once a year per customer, even when the job runs twice or on several replicas; a job
  that was down catches up for ``grace_days``). Double points *on purchases* around the birthday
  are an accrual rule with ``when: {birthday_within_days: N}``.
* **referral**: an intermediary (a foreman, a designer) who brought a customer earns
  ``percent`` of what the customer pays with money, for ``months`` after the customer joined.
  The rule with the highest priority among those whose ``referrer_segments`` hold the
  intermediary's segment applies; its ``when`` filters the customer's purchase and lines.

* **referral_welcome**: the friend who registers naming a referrer (their card or customer id)
  gets ``points`` of their own at registration, once, in whatever channel they register; the
  referrer still earns the ``referral`` share of the friend's purchases.

The welcome bonus (``welcome_bonus``) is granted at registration.
"""

from __future__ import annotations

from pydantic import Field

from gateway.core.rules.base import Code, Percent, Priority, Section
from gateway.core.rules.conditions import When


class BirthdayBonus(Section):
    points: int = Field(ge=1, le=10**9)
    description: str = Field(default="Birthday bonus", min_length=1, max_length=256)
    expiry_days: int | None = Field(default=None, ge=1, le=36500, description="Default: the program's expiry")
    grace_days: int = Field(default=7, ge=0, le=60, description="A late job still grants this many days after")
    segments: list[Code] = Field(default_factory=list, description="Only customers of these segments (empty: all)")


class ReferralRule(Section):
    id: Code
    description: str = Field(min_length=1, max_length=256)
    referrer_segments: list[Code] = Field(default_factory=list, description="Segments of the intermediary (empty: any)")
    percent: Percent = Field(description="Points per 100 roubles the referred customer pays with money")
    months: int | None = Field(default=None, ge=1, le=1200, description="For this long after the customer joined")
    when: When = When()
    expiry_days: int | None = Field(default=None, ge=1, le=36500, description="Default: the program's expiry")
    priority: Priority = 0


class ReferralWelcome(Section):
    points: int = Field(ge=1, le=10**9)
    description: str = Field(default="Бонус приглашённому другу", min_length=1, max_length=256)
    expiry_days: int | None = Field(default=None, ge=1, le=36500, description="Default: the program's expiry")


class Bonuses(Section):
    birthday: BirthdayBonus | None = None
    referral: list[ReferralRule] = Field(default_factory=list)
    referral_welcome: ReferralWelcome | None = Field(
        default=None, description="The referred friend's own bonus at registration"
    )

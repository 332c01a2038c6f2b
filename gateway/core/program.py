"""The loyalty program definition an integrator writes (YAML), validated with pydantic.

The foundation covers a percentage accrual, a cap on the share of a receipt payable by points,
point expiry, a welcome bonus and hold timing. Every section is its own model with
``extra="forbid"``, so a misspelt key is reported instead of silently ignored, and new mechanics
are added as new sections without breaking existing files.

The rules engine's sections live in ``gateway/core/rules/`` (one module per concept): the
``catalogue`` (price types, kinds of goods, zones of stores), ``segments``, ``tiers``, the
``discounts`` tree, ``accrual.rules`` and ``bonuses`` (birthday, referral). Every section is
optional: a file without them prices exactly as the foundation does. References between sections
are checked by ``gateway/core/rules/validation.py``, each problem reported at its own key.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from gateway.core.rules.accrual import AccrualRule
from gateway.core.rules.base import Percent, Section
from gateway.core.rules.bonuses import Bonuses
from gateway.core.rules.catalogue import Catalogue
from gateway.core.rules.conditions import When
from gateway.core.rules.discounts import DiscountPolicy
from gateway.core.rules.ladders import Ladder
from gateway.core.rules.reward import RewardChoice
from gateway.core.rules.segments import Segment
from gateway.core.rules.tiers import TierLadder, TierLevel, TierPolicy, TierWindow
from gateway.core.rules.validation import validate_program
from gateway.core.timezones import TimeZoneName

__all__ = ["Percent", "Section"]


class AccrualPolicy(Section):
    percent: Percent = Field(description="Points accrued per 100 roubles of the accrual base (x point value)")
    on_amount_paid_by_points: bool = Field(
        default=False, description="Whether the part of a receipt paid with points also earns points"
    )
    pending_days: int = Field(
        default=0, ge=0, le=3650, description="Accrued points become spendable after this many days"
    )
    rules: list[AccrualRule] = Field(
        default_factory=list, description="Rules that replace, add to or multiply the rate (see rules/accrual.py)"
    )


class RedemptionPolicy(Section):
    max_share_percent: Percent = Field(description="At most this share of a receipt may be paid by points")
    min_points: int = Field(default=1, ge=1, description="Smallest number of points that can be spent")
    allow_on_first_purchase: bool = Field(
        default=True, description="false: points cannot pay for any part of a customer's first purchase"
    )


class ExpiryPolicy(Section):
    days: int | None = Field(default=365, ge=1, le=36500, description="Lifetime of accrued points; null = never")
    refund_of_expired_points: Literal["expire", "renew"] = Field(
        default="expire",
        description="Points a customer spent, given back by a refund after their lot expired: "
        "'expire' keeps them expired; 'renew' gives them a fresh lifetime of `days`",
    )


class WelcomeBonus(Section):
    points: int = Field(default=0, ge=0, le=10**9)
    expiry_days: int | None = Field(default=None, ge=1, le=36500)


class HoldPolicy(Section):
    ttl_seconds: int = Field(default=900, ge=5, le=7 * 24 * 3600)
    capture_window_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        le=30 * 24 * 3600,
        description="How long captured (written-off) points wait for their receipt before the gateway books it",
    )
    sweep_batch: int = Field(default=500, ge=1, le=100_000)


class OfflinePolicy(Section):
    max_age_days: int = Field(
        default=30, ge=1, le=3650, description="Oldest offline receipt a till may still post for accrual"
    )


class OrderPolicy(Section):
    """How orders (web shop, ERP) earn points: they stay pending until the goods ship
    (``shipment``: each shipment unlocks the points of what it shipped) or until the order is
    paid (``payment``). Returns and cancellation take them back either way."""

    accrue_on: Literal["shipment", "payment"] = "shipment"


class PromoCode(Section):
    """A promo code: a discount on the receipt, valid for a period, limited in uses."""

    code: str = Field(min_length=2, max_length=64, pattern=r"^[0-9A-Za-zА-Яа-яЁё_\-]+$")
    description: str = Field(min_length=1, max_length=256)
    discount_percent: Percent | None = None
    discount_amount: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    valid_from: date | None = None
    valid_to: date | None = None
    min_amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    max_uses: int | None = Field(default=None, ge=1, description="Receipts in all; null = unlimited")
    per_customer: int | None = Field(default=None, ge=1, description="Receipts per customer; null = unlimited")

    @model_validator(mode="after")
    def _one_discount(self) -> PromoCode:
        if (self.discount_percent is None) == (self.discount_amount is None):
            raise ValueError("give exactly one of discount_percent and discount_amount")
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError("valid_from is after valid_to")
        return self

    @property
    def key(self) -> str:
        return self.code.upper()


class Program(Section):
    name: str = Field(min_length=1, max_length=128)
    currency: Literal["RUB"] = "RUB"
    point_value: Decimal = Field(
        default=Decimal("1.00"), gt=0, max_digits=10, decimal_places=2, description="Roubles per point"
    )
    accrual: AccrualPolicy
    redemption: RedemptionPolicy
    expiry: ExpiryPolicy = ExpiryPolicy()
    welcome_bonus: WelcomeBonus = WelcomeBonus()
    holds: HoldPolicy = HoldPolicy()
    offline: OfflinePolicy = OfflinePolicy()
    orders: OrderPolicy = OrderPolicy()
    promo_codes: list[PromoCode] = Field(default_factory=list)
    timezone: TimeZoneName = Field(
        default="Europe/Moscow", description="Dates of purchases, birthdays and windows are local"
    )
    catalogue: Catalogue = Catalogue()
    segments: list[Segment] = Field(default_factory=list)
    tiers: TierPolicy | None = None
    ladders: list[Ladder] = Field(
        default_factory=list, description="Tier ladders of their own segments beside `tiers` (rules/ladders.py)"
    )
    discounts: DiscountPolicy = DiscountPolicy()
    bonuses: Bonuses = Bonuses()
    reward_choice: RewardChoice | None = Field(
        default=None, description="The customer may choose a discount or points (see rules/reward.py)"
    )

    @model_validator(mode="after")
    def _unique_codes(self) -> Program:
        keys = [p.key for p in self.promo_codes]
        if len(keys) != len(set(keys)):
            raise ValueError("promo codes must be unique (case-insensitive)")
        return self

    @model_validator(mode="after")
    def _references(self) -> Program:
        validate_program(self)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def segment(self, code: str | None) -> Segment | None:
        return next((s for s in self.segments if s.code == code), None)

    @property
    def turnover_window(self) -> TierWindow:
        """The window turnover is counted in (tiers and turnover conditions): the tiers' window,
        or a calendar quarter when the program has no tiers."""
        return self.tiers.window if self.tiers is not None else TierWindow()

    def ladder(self, segment: str | None) -> TierLadder | None:
        """The ladder a customer of ``segment`` is placed on: the ladder naming the segment,
        else the retail ``tiers`` when they take it, else none."""
        found = next((ladder for ladder in self.ladders if segment in ladder.segments), None)
        if found is not None:
            return found
        return self.tiers if self.tiers is not None and self.tiers.applies_to(segment) else None

    def window_for(self, segment: str | None) -> TierWindow:
        """The window a customer of ``segment`` has their turnover counted in: their ladder's."""
        ladder = self.ladder(segment)
        return ladder.window if ladder is not None else self.turnover_window

    def all_ladders(self) -> list[TierLadder]:
        return ([self.tiers] if self.tiers is not None else []) + list(self.ladders)

    def tier_level(self, code: str | None) -> TierLevel | None:
        """A level of any ladder by its code (codes are unique across ladders)."""
        return next((level for ladder in self.all_ladders() if (level := ladder.level(code)) is not None), None)

    def conditions(self) -> list[When]:
        """Every ``when`` of the program's rules."""
        return (
            [rule.when for rule in self.discounts.rules]
            + [rule.when for rule in self.accrual.rules]
            + [rule.when for rule in self.bonuses.referral]
        )

    @property
    def uses_turnover(self) -> bool:
        return bool(self.all_ladders()) or any(
            w.turnover_from is not None or w.turnover_below is not None for w in self.conditions()
        )

    @property
    def uses_first_purchase(self) -> bool:
        return not self.redemption.allow_on_first_purchase or any(
            w.first_purchase is not None for w in self.conditions()
        )

    @property
    def default_segment(self) -> str | None:
        return next((s.code for s in self.segments if s.default), None)

    def promo(self, code: str) -> PromoCode | None:
        wanted = code.strip().upper()
        return next((p for p in self.promo_codes if p.key == wanted), None)

    @property
    def point_value_kopecks(self) -> int:
        return int(self.point_value * 100)

    def accrual_rate(self) -> Fraction:
        """Points per kopeck of accrual base."""
        return Fraction(self.accrual.percent) / 100 / self.point_value_kopecks

    def max_share(self) -> Fraction:
        return Fraction(self.redemption.max_share_percent) / 100

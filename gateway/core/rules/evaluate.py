"""The rules applied to one purchase: who the customer is under the program (segment, tier,
zone), each line's limit on points, its accrual rate and its referral share.

Pure functions of the program, the cart and the ``PricingContext``; ``gateway/core/pricing.py``
puts them together into a priced receipt.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from contracts.operations import CartLine
from gateway.core.rules.accrual import AccrualRule
from gateway.core.rules.base import kopecks_text, percent_text
from gateway.core.rules.bonuses import ReferralRule
from gateway.core.rules.context import LineFacts, PricingContext, ReceiptFacts
from gateway.core.rules.experiments import CONTROL, held_out
from gateway.core.rules.segments import add_months
from gateway.core.rules.tiers import TierLevel

if TYPE_CHECKING:
    from gateway.core.program import Program


@dataclass(frozen=True, slots=True)
class Standing:
    """The customer under the program for this purchase."""

    segment: str | None
    zone: str | None
    tier: TierLevel | None
    qualifying_kopecks: int  # turnover that decides the tier
    receipt: ReceiptFacts
    anonymous: bool = False  # no card: no tier, no accrual
    customer_id: str | None = None  # who is in an experiment's control group


def standing(program: Program, context: PricingContext) -> Standing:
    segment = context.segment if program.segment(context.segment) is not None else program.default_segment
    zone = program.catalogue.zone_of(context.store)
    tier: TierLevel | None = None
    # The customer's ladder (retail tiers, or the partner ladder of their segment) decides the
    # window their turnover is counted in and the level; a stored level of another ladder (the
    # customer changed segment) does not count until the ladder's own level is placed.
    window = program.window_for(segment)
    qualifying = window.qualifying(context.turnover_kopecks, context.previous_turnover_kopecks)
    tiers = program.ladder(segment)
    if tiers is not None and not context.anonymous:
        tier = tiers.level(context.tier) or tiers.level_for(qualifying)
    receipt = ReceiptFacts(
        on=context.on,
        store=context.store,
        zone=zone,
        segment=segment,
        tier=tier.code if tier else None,
        turnover_kopecks=qualifying,
        first_purchase=context.first_purchase,
        birth_date=context.birth_date,
    )
    return Standing(segment, zone, tier, qualifying, receipt, context.anonymous, context.customer_id)


def crossed_tier(program: Program, current: Standing, context: PricingContext, purchase: int) -> TierLevel | None:
    """The higher tier this purchase reaches, when the program upgrades on purchase."""
    tiers = program.ladder(current.segment)
    if tiers is None or current.tier is None or not tiers.upgrade_on_purchase or purchase <= 0:
        return None
    after = tiers.window.qualifying(context.turnover_kopecks + purchase, context.previous_turnover_kopecks)
    reached = tiers.level_for(after)
    return reached if tiers.rank(reached.code) > tiers.rank(current.tier.code) else None


def at_tier(current: Standing, level: TierLevel) -> Standing:
    return replace(current, tier=level, receipt=replace(current.receipt, tier=level.code))


def with_receipt_amount(current: Standing, kopecks: int) -> Standing:
    """The standing for a cart whose total before discounts is ``kopecks`` (``receipt_from``)."""
    return replace(current, receipt=replace(current.receipt, receipt_kopecks=kopecks))


def line_facts(program: Program, line: CartLine) -> LineFacts:
    catalogue = program.catalogue
    kind = catalogue.kind_of(line.item)
    return LineFacts(
        item=line.item,
        kinds=frozenset(catalogue.kind_chain(kind)),
        kind=kind,
        price_type=catalogue.price_type_of(line.price_type),
        quantity=line.quantity,
    )


# -- points payable -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShareLimit:
    share: Fraction  # of the line's payable amount
    rule: str
    description: str


def line_share(program: Program, current: Standing, facts: LineFacts) -> ShareLimit:
    """The strictest limit on the share of a line payable by points."""
    percent = program.redemption.max_share_percent
    limits = [ShareLimit(Fraction(percent) / 100, "redemption.max_share_percent", f"at most {percent}% (program)")]
    catalogue = program.catalogue
    price_type = catalogue.price_type(facts.price_type)
    if price_type is not None and price_type.max_share_percent is not None:
        label = price_type.name or price_type.code
        limits.append(
            ShareLimit(
                Fraction(price_type.max_share_percent) / 100,
                f"price_type:{price_type.code}",
                f"at most {price_type.max_share_percent}% for price type {label}",
            )
        )
    for code in catalogue.kind_chain(facts.kind):
        kind = catalogue.kind(code)
        if kind is not None and kind.max_share_percent is not None:
            limits.append(
                ShareLimit(
                    Fraction(kind.max_share_percent) / 100,
                    f"kind:{kind.code}",
                    f"at most {kind.max_share_percent}% for {kind.name or kind.code}",
                )
            )
    segment = program.segment(current.segment)
    if segment is not None and segment.max_share_percent is not None:
        limits.append(
            ShareLimit(
                Fraction(segment.max_share_percent) / 100,
                f"segment:{segment.code}",
                f"at most {segment.max_share_percent}% for segment {segment.name or segment.code}",
            )
        )
    if current.tier is not None and current.tier.max_share_percent is not None:
        limits.append(
            ShareLimit(
                Fraction(current.tier.max_share_percent) / 100,
                # not ``tier:<code>``: that is the tier's cashback on the same line, and one
                # explanation step per rule and line would swallow the limit into it
                f"tier_share:{current.tier.code}",
                f"at most {current.tier.max_share_percent}% for tier {current.tier.label}",
            )
        )
    if current.receipt.first_purchase and not program.redemption.allow_on_first_purchase:
        limits.append(
            ShareLimit(Fraction(0), "redemption.allow_on_first_purchase", "no points on the customer's first purchase")
        )
    return min(limits, key=lambda limit: limit.share)  # the first of equal limits: the program's


# -- accrual --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatePart:
    rule: str
    description: str
    percent: Fraction  # points per 100 roubles of the base, already multiplied by the factors
    pending_days: int | None = None  # the rule's own activation delay (None: the program's)


@dataclass(frozen=True, slots=True)
class LineRate:
    parts: tuple[RatePart, ...]
    pending: bool


def line_rate(program: Program, current: Standing, facts: LineFacts) -> LineRate:
    """``R × F + A`` (see ``rules/accrual.py``), split into the parts that explain it."""
    if current.anonymous:
        return LineRate((), False)  # no card, no account: nothing is earned, nothing to explain
    rules = [rule for rule in program.accrual.rules if rule.when.matches(current.receipt, facts)]
    control = [r for r in rules if held_out(r.id, r.experiment, current.customer_id, current.receipt.on)]
    rules = [rule for rule in rules if rule not in control]
    price_type = program.catalogue.price_type(facts.price_type)
    replacing = [rule for rule in rules if rule.combine == "replace"]
    base: tuple[str, str, Fraction]
    if replacing:
        top = max(replacing, key=lambda rule: rule.priority)
        base = (
            f"accrual:{top.id}",
            f"{percent_text(top.percent or Decimal(0))}%: {top.description}{_why(top, current, facts)}",
            Fraction(top.percent or Decimal(0)),
        )
    elif price_type is not None and price_type.accrual_percent is not None:
        label = price_type.name or price_type.code
        base = (
            f"price_type:{price_type.code}",
            f"{percent_text(price_type.accrual_percent)}% for price type {label}",
            Fraction(price_type.accrual_percent),
        )
    elif current.tier is not None:
        tier = current.tier
        base = (
            f"tier:{tier.code}",
            f"{percent_text(tier.cashback_percent)}% cashback of tier {tier.label}",
            Fraction(tier.cashback_percent),
        )
    else:
        percent = program.accrual.percent
        paid = "" if program.accrual.on_amount_paid_by_points else " with money"
        base = ("accrual.percent", f"{percent}% of the amount paid{paid}", Fraction(percent))
    factors: list[tuple[Fraction, str]] = []
    if price_type is not None and price_type.accrual_factor is not None and not replacing:
        factors.append((Fraction(price_type.accrual_factor), f"price type {price_type.name or price_type.code}"))
    factors += [
        (Fraction(rule.factor or 0), rule.description + _why(rule, current, facts))
        for rule in rules
        if rule.combine == "multiply"
    ]
    rule_id, description, percent_value = base
    for factor, label in factors:
        percent_value *= factor
        description += f" × {percent_text(factor_decimal(factor))} ({label})"
    # The base rate waits as long as the longest delay of the rules that set or multiply it.
    shaping = [top] if replacing else []
    shaping += [rule for rule in rules if rule.combine == "multiply"]
    delays = [rule.pending_days for rule in shaping if rule.pending_days is not None]
    base_delay = max(delays) if delays else None
    parts = [RatePart(rule_id, description + delay_text(base_delay), percent_value, base_delay)]
    parts += [
        RatePart(
            f"accrual:{rule.id}",
            f"+{percent_text(rule.percent or Decimal(0))}%: {rule.description}{_why(rule, current, facts)}"
            + delay_text(rule.pending_days),
            Fraction(rule.percent or Decimal(0)),
            rule.pending_days,
        )
        for rule in rules
        if rule.combine == "add"
    ]
    parts += [RatePart(f"experiment:{rule.id}", f"{rule.description}: {CONTROL}", Fraction(0)) for rule in control]
    pending = any(rule.pending_until_shipment for rule in rules) or any(
        (kind := program.catalogue.kind(code)) is not None and kind.pending_until_shipment
        for code in program.catalogue.kind_chain(facts.kind)
    )
    return LineRate(tuple(parts), pending)


def delay_text(days: int | None) -> str:
    """How a rule's own activation delay reads in the explanation."""
    if days is None:
        return ""
    return "; available at once" if days == 0 else f"; available {days} days after the purchase"


def _why(rule: AccrualRule, current: Standing, facts: LineFacts) -> str:
    """The receipt amount or quantity that made the rule apply, for the line's explanation."""
    text = rule.when.amounts_text(current.receipt, facts)
    return f" ({text})" if text else ""


def factor_decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


# -- referral -------------------------------------------------------------------------------


def referral_rule(program: Program, current: Standing, context: PricingContext) -> ReferralRule | None:
    referrer = context.referrer
    if referrer is None:
        return None
    candidates = []
    for rule in program.bonuses.referral:
        if rule.referrer_segments and referrer.segment not in rule.referrer_segments:
            continue
        if rule.months is not None:
            if referrer.since is None or context.on is None:
                continue
            if context.on >= add_months(referrer.since, rule.months):
                continue
        if not rule.when.matches_receipt(current.receipt):
            continue
        candidates.append(rule)
    return max(candidates, key=lambda rule: rule.priority) if candidates else None


def describe_referral(rule: ReferralRule, money_kopecks: int, label: str) -> str:
    who = f" to {label}" if label else ""
    return f"{rule.description}: {percent_text(rule.percent)}% of {kopecks_text(money_kopecks)} paid with money{who}"

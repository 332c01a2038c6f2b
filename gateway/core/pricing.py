"""Pricing of a cart under a program: discounts, points payable, points spent and accrued per
line, referral points, and the explanation of every number.

This is the single place where a receipt's numbers are computed; ``calculate`` shows them and
``commit`` books exactly the same numbers, so what the till displayed is what the ledger records.

The steps, each exact (kopecks, ``Fraction``; one rounding per receipt, spread back over lines by
largest remainder so the parts always add up):

1. the customer's standing: segment, zone of the store, tier (``rules/evaluate.py``);
2. discount rules per line (the discount tree, ``rules/discounts.py``) — goods mechanics (N+1)
   are worked out on the whole cart first and spread over their lines, and ``receipt_from`` /
   ``receipt_below`` see the cart's total before any discount; the part of a rule taken as
   points joins the accrual; then a promo code on what is left;
3. a purchase that crosses a tier threshold raises the tier (and, if the program says so, is
   priced again at the new tier);
4. points payable: each line's strictest limit (program, price type, kind, segment, tier, first
   purchase), capped by the whole points the lines can hold; points spent spread within limits;
5. accrual per line at ``R × F + A`` (``rules/accrual.py``), pending flags;
6. referral points for the intermediary on what the customer paid with money.

Goods mechanics (gift with purchase, fixed price, sets) are discount rules (``rules/goods.py``);
points of a rule with its own ``pending_days`` are listed apart (``PricedCart.accrual_lots``) so
the ledger books each delay as a lot of its own; where the program lets the customer choose a
discount or points (``rules/reward.py``), the choice drops the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import money_to_kopecks
from contracts.operations import CartLine
from gateway.core.allocation import split_proportionally
from gateway.core.program import Program, PromoCode
from gateway.core.rules.base import kopecks_text, percent_text
from gateway.core.rules.context import LineFacts, PricingContext
from gateway.core.rules.evaluate import (
    LineRate,
    Standing,
    at_tier,
    crossed_tier,
    delay_text,
    describe_referral,
    line_facts,
    line_rate,
    line_share,
    referral_rule,
    standing,
    with_receipt_amount,
)
from gateway.core.rules.goods import GoodsOffer, fixed_price_text
from gateway.core.rules.reward import Reward
from gateway.core.rules.spending import split_points


@dataclass(frozen=True, slots=True)
class Applied:
    """One step of the explanation: which rule did what, on which line (None: the receipt)."""

    rule: str
    description: str
    line_id: str | None = None
    points: int = 0
    discount_kopecks: int = 0


@dataclass(frozen=True, slots=True)
class PricedLine:
    line_id: str
    item: str
    quantity: str  # decimal text, kept exact
    amount_kopecks: int
    discount_kopecks: int
    points_spent: int
    points_accrued: int
    price_type: str | None = None  # the program's price type code, when known
    kind: str | None = None
    pending: bool = False  # the line's points wait for its shipment (orders)
    max_points: int = 0  # the most points this line may be paid with
    referral_points: int = 0  # the line's share of the intermediary's points


@dataclass(frozen=True, slots=True)
class Referral:
    """Points the intermediary who brought the customer earns on this purchase."""

    account_id: str
    rule: str
    points: int
    expiry_days: int | None
    description: str


@dataclass(frozen=True, slots=True)
class PricedCart:
    lines: list[PricedLine]
    total_kopecks: int
    discount_kopecks: int
    max_points_payable: int
    points_spent: int
    points_accrued: int
    point_value_kopecks: int
    explanation: list[tuple[str, str, int]]  # (rule, description, points), one per rule
    points_cap: int = 0  # what the program allows on this receipt, whatever the balance
    segment: str | None = None
    zone: str | None = None
    tier: str | None = None  # the customer's tier before this purchase
    tier_upgrade: str | None = None  # the tier this purchase raised the customer to (and priced at, if so set)
    turnover_kopecks: int = 0  # the qualifying turnover before this purchase
    referral: Referral | None = None
    applications: list[Applied] = field(default_factory=list)  # the explanation, per rule and line
    # (days until spendable, points) of the accrued points, one per delay, shortest first; the
    # points add up to ``points_accrued``
    accrual_lots: tuple[tuple[int, int], ...] = ()
    reward: Reward | None = None  # what the customer got where the program lets them choose

    @property
    def paid_by_points_kopecks(self) -> int:
        return self.points_spent * self.point_value_kopecks

    @property
    def payable_kopecks(self) -> int:
        return self.total_kopecks - self.discount_kopecks - self.paid_by_points_kopecks

    @property
    def points_pending(self) -> int:
        return sum(line.points_accrued for line in self.lines if line.pending)


def max_points_for(program: Program, payable_kopecks: int) -> int:
    """Points payable on an amount under the program's cap, ignoring the customer's balance and
    any rule (the foundation's cap; ``price_cart`` gives the cap under every rule)."""
    cap_kopecks = Fraction(payable_kopecks) * program.max_share()
    return int(cap_kopecks / program.point_value_kopecks)


def promo_discounts(promo: PromoCode | None, amounts: list[int]) -> list[int]:
    """Kopecks off each line: a percentage (rounded down once per receipt, spread over lines in
    proportion to their amounts) or a fixed amount (at most the receipt, spread the same way)."""
    total = sum(amounts)
    if promo is None or total == 0:
        return [0 for _ in amounts]
    if promo.discount_percent is not None:
        off = int(Fraction(total) * Fraction(promo.discount_percent) / 100)
    else:
        off = min(money_to_kopecks(promo.discount_amount or Decimal(0)), total)
    return split_proportionally(off, amounts)


# ---------------------------------------------------------------------------------------------
# discounts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Discounts:
    money: list[int]  # kopecks off each line (rules + promo)
    promo: list[int]
    by_rule: list[dict[str, int]]  # per line: kopecks off by each rule
    as_points: list[dict[str, Fraction]]  # per line: exact points each rule grants instead
    offers: dict[str, GoodsOffer] = field(default_factory=dict)  # goods mechanics on the cart


def _discounts(
    program: Program,
    current: Standing,
    facts: list[LineFacts],
    amounts: list[int],
    promo: PromoCode | None,
    rules: bool = True,
) -> _Discounts:
    """``rules``: False when the customer chose points over the discount (only a promo code)."""
    pv = program.point_value_kopecks
    by_rule: list[dict[str, int]] = []
    as_points: list[dict[str, Fraction]] = []
    # Goods mechanics (N+1, gifts, sets) look at the whole cart first; each line then gets its share.
    offers = program.discounts.goods_offers(current.receipt, list(zip(facts, amounts, strict=True))) if rules else {}
    for index, (fact, amount) in enumerate(zip(facts, amounts, strict=True)):
        goods = {rule_id: offer.per_line[index] for rule_id, offer in offers.items() if index in offer.per_line}
        values = program.discounts.evaluate(current.receipt, fact, amount, goods) if rules else {}
        money_parts: dict[str, Fraction] = {}
        points_parts: dict[str, Fraction] = {}
        for rule_id, value in values.items():
            rule = program.discounts.rule(rule_id)
            assert rule is not None
            share = rule.points_share()
            if share:
                points_parts[rule_id] = value * share / pv
            if share != 1:
                money_parts[rule_id] = value * (1 - share)
        line_off = int(sum(money_parts.values(), Fraction(0)))  # one rounding per line, down
        split = split_proportionally(line_off, list(money_parts.values())) if money_parts else []
        by_rule.append({rule_id: kop for rule_id, kop in zip(money_parts, split, strict=True) if kop})
        as_points.append(points_parts)
    after_rules = [amount - sum(parts.values()) for amount, parts in zip(amounts, by_rule, strict=True)]
    promo_off = promo_discounts(promo, after_rules)
    money = [sum(parts.values()) + p for parts, p in zip(by_rule, promo_off, strict=True)]
    return _Discounts(money, promo_off, by_rule, as_points, offers)


# ---------------------------------------------------------------------------------------------
# the receipt
# ---------------------------------------------------------------------------------------------


class _Explanation:
    """Collects ``Applied`` steps, merging points and discounts of one rule on one line."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str | None], Applied] = {}

    def add(self, rule: str, description: str, line_id: str | None = None, points: int = 0, discount: int = 0) -> None:
        key = (rule, line_id)
        known = self.items.get(key)
        if known is None:
            self.items[key] = Applied(rule, description, line_id, points, discount)
        else:
            self.items[key] = Applied(
                rule, known.description, line_id, known.points + points, known.discount_kopecks + discount
            )

    def steps(self) -> list[Applied]:
        return list(self.items.values())


def _summary(steps: Sequence[Applied]) -> list[tuple[str, str, int]]:
    """One (rule, description, points) per rule, in order of appearance."""
    order: list[str] = []
    points: dict[str, int] = {}
    discount: dict[str, int] = {}
    described: dict[str, str] = {}
    for step in steps:
        if step.rule not in points:
            order.append(step.rule)
            points[step.rule] = 0
            discount[step.rule] = 0
            described[step.rule] = step.description
        points[step.rule] += step.points
        discount[step.rule] += step.discount_kopecks
    return [
        (rule, described[rule] + (f": -{kopecks_text(discount[rule])}" if discount[rule] else ""), points[rule])
        for rule in order
    ]


def _discount_description(
    program: Program,
    rule_id: str,
    current: Standing,
    fact: LineFacts,
    offers: dict[str, GoodsOffer],
    amount: int = 0,
) -> str:
    """What the rule is and why it applied to this line: its percent (or goods mechanic and how
    many units it freed) and the receipt amount or quantity its conditions were met by."""
    rule = program.discounts.rule(rule_id)
    assert rule is not None
    share = rule.points_share()
    if rule.take_as == "points":
        how = ", as points"
    elif rule.take_as == "split":
        how = f", {percent_text(rule.points_share_percent or Decimal(0))}% of it as points"
    else:
        how = ""
    offer = offers.get(rule_id)
    if rule.every_nth_free is not None and offer is not None:
        what = (
            f"every {rule.every_nth_free.n} units the cheapest free: {offer.free_units} of {offer.units} units, "
            f"{kopecks_text(int(offer.value))} spread over the lines"
        )
    elif offer is not None:  # a gift or a set: the offer says what it counted and gave
        what = offer.text
    elif rule.fixed_price is not None:
        what = fixed_price_text(rule, fact, amount)
    else:
        what = f"{percent_text(rule.percent or Decimal(0))}%"
    why = rule.when.amounts_text(current.receipt, fact)
    if share and rule.pending_days is not None:
        how += delay_text(rule.pending_days)
    return f"{rule.description} ({what}{how}{'; ' + why if why else ''})"


def price_cart(
    program: Program,
    lines: list[CartLine],
    points_to_spend: int,
    available: int,
    promo: PromoCode | None = None,
    *,
    context: PricingContext | None = None,
    reward: Reward | None = None,
) -> PricedCart:
    """Price ``lines`` spending ``points_to_spend`` points.

    ``points_to_spend`` should be within ``max_points_payable`` (the caller reports the error
    codes); a write-off a till already took is booked as it is, spread over the lines without
    making any line's price negative where the lines can hold it. ``context`` says who buys,
    where and when; without it the purchase is anonymous and undated (rules limited to
    segments, tiers, dates… do not apply). ``reward``: the customer's choice of a discount or
    points, where the program offers one (the caller refuses it where it does not).
    """
    context = context or PricingContext()
    pv = program.point_value_kopecks
    amounts = [money_to_kopecks(line.total()) for line in lines]
    facts = [line_facts(program, line) for line in lines]
    # The cart's own total before discounts decides ``receipt_from``/``receipt_below``.
    current = with_receipt_amount(standing(program, context), sum(amounts))
    starting_tier = current.tier
    choice = program.reward_choice
    if reward is not None and choice is None:
        raise LoyaltyError(
            ErrorCode.VALIDATION_ERROR, "the program offers no choice of a discount or points", field="reward"
        )
    chosen = choice.resolve(reward, context.anonymous) if choice is not None else None
    found = _discounts(program, current, facts, amounts, promo, chosen != "points")
    explained = _Explanation()
    if choice is not None and chosen is not None:
        explained.add("reward_choice", choice.text(chosen, reward, context.anonymous))

    upgrade = crossed_tier(program, current, context, sum(amounts) - sum(found.money))
    if current.tier is not None:
        window = program.window_for(current.segment).describe()
        explained.add(
            "tier",
            f"tier {current.tier.label}: turnover {kopecks_text(current.qualifying_kopecks)} in {window}",
        )
    if upgrade is not None and current.tier is not None:
        purchase = sum(amounts) - sum(found.money)
        explained.add(
            "tier.upgrade",
            f"this purchase ({kopecks_text(purchase)}) takes the turnover to "
            f"{kopecks_text(current.qualifying_kopecks + purchase)}: tier {current.tier.label} → {upgrade.label}",
        )
        if program.tiers is not None and program.tiers.crossing_purchase_at_new_tier:
            current = at_tier(current, upgrade)
            found = _discounts(program, current, facts, amounts, promo, chosen != "points")

    payable = [a - d for a, d in zip(amounts, found.money, strict=True)]
    for line, fact, amount, rules in zip(lines, facts, amounts, found.by_rule, strict=True):
        for rule_id, kopecks in rules.items():
            described = _discount_description(program, rule_id, current, fact, found.offers, amount)
            explained.add(f"discount:{rule_id}", described, line.line_id, 0, kopecks)
    if promo is not None:
        for line, kopecks in zip(lines, found.promo, strict=True):
            if kopecks:
                explained.add(f"promo:{promo.key}", promo.description, line.line_id, 0, kopecks)

    # points payable
    limits = [line_share(program, current, fact) for fact in facts]
    weights = [Fraction(p) * limit.share for p, limit in zip(payable, limits, strict=True)]
    bounds = [p // pv for p in payable]
    line_caps = [min(int(w / pv), b) for w, b in zip(weights, bounds, strict=True)]
    # The cap is what the limits allow, but never more whole points than the lines allowed any
    # can hold: points must land on lines, and no line may cost less than nothing.
    cap = min(int(sum(weights, Fraction(0)) / pv), sum(b for b, w in zip(bounds, weights, strict=True) if w > 0))
    max_payable = min(cap, max(available, 0))
    spent = split_points(points_to_spend, weights, bounds, payable)

    # accrual: every part of every line exact, one rounding for the receipt
    rates = [line_rate(program, current, fact) for fact in facts]
    if chosen == "discount":  # the customer took the discount: the receipt earns nothing
        rates = [LineRate((), rate.pending) for rate in rates]
    # (line index, rule, description, exact points, the rule's own delay or None)
    parts: list[tuple[int, str, str, Fraction, int | None]] = []
    for index, (line_payable, line_spent, rate) in enumerate(zip(payable, spent, rates, strict=True)):
        for rule_id, points in found.as_points[index].items() if chosen != "discount" else ():
            described = _discount_description(program, rule_id, current, facts[index], found.offers, amounts[index])
            giving = program.discounts.rule(rule_id)
            delay = giving.pending_days if giving is not None else None
            parts.append((index, f"discount:{rule_id}", described, points, delay))
        base = line_payable if program.accrual.on_amount_paid_by_points else line_payable - line_spent * pv
        base_points = Fraction(max(base, 0)) / pv / 100
        for part in rate.parts:
            parts.append((index, part.rule, part.description, base_points * part.percent, part.pending_days))
    accrued_total = int(sum((p[3] for p in parts), Fraction(0)))
    accrued_parts = split_proportionally(accrued_total, [p[3] for p in parts]) if parts else []
    accrued_lines = [0] * len(lines)
    by_delay: dict[int, int] = {}
    for (index, rule_id, description, _, delay), share in zip(parts, accrued_parts, strict=True):
        accrued_lines[index] += share
        days = program.accrual.pending_days if delay is None else delay
        by_delay[days] = by_delay.get(days, 0) + share
        if share or rule_id.startswith("experiment:"):  # a control group's rule is explained at 0
            explained.add(rule_id, description, lines[index].line_id, share)

    # points payable, explained
    program_share = Fraction(program.redemption.max_share_percent) / 100
    for line, limit in zip(lines, limits, strict=True):
        if limit.share < program_share:
            receipt_wide = limit.rule == "redemption.allow_on_first_purchase"
            explained.add(limit.rule, limit.description, None if receipt_wide else line.line_id)
    stricter = any(limit.share < program_share for limit in limits)
    explained.add(
        "redemption.max_share_percent",
        f"at most {program.redemption.max_share_percent}% payable by points"
        + (" (stricter limits on some lines)" if stricter else ""),
        None,
        cap,
    )

    # referral
    referral: Referral | None = None
    referral_lines = [0] * len(lines)
    rule = referral_rule(program, current, context)
    if rule is not None and context.referrer is not None:
        money = [
            p - s * pv if rule.when.matches_line(fact) else 0 for p, s, fact in zip(payable, spent, facts, strict=True)
        ]
        exact = [Fraction(max(m, 0)) * Fraction(rule.percent) / 100 / pv for m in money]
        total = int(sum(exact, Fraction(0)))
        if total:
            referral_lines = split_proportionally(total, exact)
            description = describe_referral(rule, sum(max(m, 0) for m in money), context.referrer.label)
            referral = Referral(
                context.referrer.account_id, f"referral:{rule.id}", total, rule.expiry_days, description
            )
            explained.add(referral.rule, description, None, total)

    priced = [
        PricedLine(
            line_id=line.line_id,
            item=line.item,
            quantity=str(line.quantity),
            amount_kopecks=amount,
            discount_kopecks=discount,
            points_spent=spent_points,
            points_accrued=accrued,
            price_type=fact.price_type,
            kind=fact.kind,
            pending=rate.pending,
            max_points=line_cap,
            referral_points=ref_points,
        )
        for line, amount, discount, spent_points, accrued, fact, rate, line_cap, ref_points in zip(
            lines, amounts, found.money, spent, accrued_lines, facts, rates, line_caps, referral_lines, strict=True
        )
    ]
    steps = explained.steps()
    return PricedCart(
        lines=priced,
        total_kopecks=sum(amounts),
        discount_kopecks=sum(found.money),
        max_points_payable=max_payable,
        points_spent=points_to_spend,
        points_accrued=accrued_total,
        point_value_kopecks=pv,
        explanation=_summary(steps),
        points_cap=cap,
        segment=current.segment,
        zone=current.zone,
        tier=starting_tier.code if starting_tier else None,
        tier_upgrade=upgrade.code if upgrade else None,
        turnover_kopecks=current.qualifying_kopecks,
        referral=referral,
        applications=steps,
        accrual_lots=tuple((days, points) for days, points in sorted(by_delay.items()) if points),
        reward=chosen,
    )

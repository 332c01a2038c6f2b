"""``discounts:`` — the discount tree: rules, groups, priorities and how they combine.

A **rule** gives a percentage of a line's amount when its ``when`` holds. A **group** combines
its ``members`` (rules or other groups):

* ``best_of`` — the member giving the largest discount (a tie goes to the higher priority,
  then to the member listed first);
* ``sum`` — all applicable members add up (never above the line's amount);
* ``exclusive`` — only the applicable member with the highest ``priority``, whatever it gives
  (members of an exclusive group must have distinct priorities).

Rules and groups that are no group's member form the root, combined by ``discounts.combine``.
A rule's value is taken as a discount off the price (``take_as: discount``), as points
(``points``: one point per ``point_value`` of discount) or split between both (``split``,
``points_share_percent`` of it as points) — the way a partner discount is often granted.

A rule gives either ``percent`` of the line or a goods mechanic over the whole cart:

* ``every_nth_free: {n: 3}`` (N+1, «третий в подарок») — of every ``n`` units of the goods the
  rule's ``when`` matches, the cheapest is free. Only whole units count (a line of 2.5 kg is 2
  units); the value of the free units (the cheapest unit prices first) is spread over the
  matching lines in proportion to their amounts, so a return of any of them gives back its own
  share. On each line the mechanic then combines in the tree like any other rule.
* ``gift_with_purchase``, ``fixed_price`` and ``bundle`` (a set) — see ``rules/goods.py``.

A rule whose value is taken as points may set its own ``pending_days``: those points become
spendable that many days after the purchase (booked as a lot of their own), whatever the
program's ``accrual.pending_days``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pydantic import Field, model_validator

from gateway.core.allocation import split_proportionally
from gateway.core.rules.base import Code, Percent, Priority, Section
from gateway.core.rules.conditions import When
from gateway.core.rules.context import LineFacts, ReceiptFacts
from gateway.core.rules.goods import (
    Bundle,
    FixedPrice,
    GiftWithPurchase,
    GoodsOffer,
    bundle_offer,
    fixed_price_value,
    gift_offer,
)

Combine = Literal["best_of", "sum", "exclusive"]
TakeAs = Literal["discount", "points", "split"]


class EveryNthFree(Section):
    n: int = Field(ge=2, le=1000, description="Of every n units of the matching goods the cheapest is free")


class DiscountRule(Section):
    id: Code
    description: str = Field(min_length=1, max_length=256)
    when: When = When()
    percent: Percent | None = Field(default=None, description="Percent of the line's amount")
    every_nth_free: EveryNthFree | None = Field(default=None, description="N+1: every n-th unit free")
    gift_with_purchase: GiftWithPurchase | None = Field(default=None, description="Buy goods, a gift free")
    fixed_price: FixedPrice | None = Field(default=None, description="The goods at a fixed price a unit")
    bundle: Bundle | None = Field(default=None, description="A set of goods at a set price or percent off")
    take_as: TakeAs = "discount"
    points_share_percent: Percent | None = Field(default=None, description="split: the share taken as points")
    pending_days: int | None = Field(
        default=None, ge=0, le=3650, description="Points of this rule become spendable after this many days"
    )
    priority: Priority = 0

    @model_validator(mode="after")
    def _split(self) -> DiscountRule:
        if (self.take_as == "split") != (self.points_share_percent is not None):
            raise ValueError("points_share_percent is required with take_as: split, and only with it")
        given = [
            value is not None
            for value in (self.percent, self.every_nth_free, self.gift_with_purchase, self.fixed_price, self.bundle)
        ]
        if sum(given) != 1:
            raise ValueError(
                "a discount rule gives exactly one of `percent`, `every_nth_free`, `gift_with_purchase`, "
                "`fixed_price` and `bundle`"
            )
        if self.pending_days is not None and self.take_as == "discount":
            raise ValueError("pending_days is for a rule taken as points (take_as: points or split)")
        return self

    @property
    def per_cart(self) -> bool:
        """A mechanic worked out on the whole cart first (N+1, gift, set)."""
        return self.every_nth_free is not None or self.gift_with_purchase is not None or self.bundle is not None

    def kind_text(self) -> str:
        """``10%`` or ``every 3rd unit free`` (explanations and ``check-config``)."""
        if self.every_nth_free is not None:
            return f"every {_ordinal(self.every_nth_free.n)} unit free"
        if self.gift_with_purchase is not None:
            return f"gift with purchase: {self.gift_with_purchase.text()}"
        if self.fixed_price is not None:
            return self.fixed_price.text()
        if self.bundle is not None:
            return self.bundle.text()
        return f"{self.percent}%"

    def points_share(self) -> Fraction:
        if self.take_as == "points":
            return Fraction(1)
        if self.take_as == "split" and self.points_share_percent is not None:
            return Fraction(self.points_share_percent) / 100
        return Fraction(0)


class DiscountGroup(Section):
    id: Code
    description: str | None = Field(default=None, max_length=256)
    combine: Combine
    members: list[Code] = Field(min_length=1, description="Ids of rules and groups")
    priority: Priority = 0


class DiscountPolicy(Section):
    combine: Combine = Field(default="best_of", description="How the rules and groups at the root combine")
    rules: list[DiscountRule] = Field(default_factory=list)
    groups: list[DiscountGroup] = Field(default_factory=list)

    def node_ids(self) -> list[str]:
        return [r.id for r in self.rules] + [g.id for g in self.groups]

    def roots(self) -> list[str]:
        members = {m for g in self.groups for m in g.members}
        return [node for node in self.node_ids() if node not in members]

    def rule(self, rule_id: str) -> DiscountRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def group(self, group_id: str) -> DiscountGroup | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def goods_offers(self, receipt: ReceiptFacts, lines: Sequence[tuple[LineFacts, int]]) -> dict[str, GoodsOffer]:
        """What each goods mechanic worked out on the whole cart (``every_nth_free``, gifts,
        sets) gives on this cart, by rule id; rules that give nothing are left out."""
        offers: dict[str, GoodsOffer] = {}
        for rule in self.rules:
            offer: GoodsOffer | None = None
            if rule.every_nth_free is not None:
                offer = _every_nth_free(rule, rule.every_nth_free.n, receipt, lines)
            elif rule.gift_with_purchase is not None:
                offer = gift_offer(rule, receipt, lines)
            elif rule.bundle is not None:
                offer = bundle_offer(rule, receipt, lines)
            if offer is not None:
                offers[rule.id] = offer
        return offers

    def evaluate(
        self,
        receipt: ReceiptFacts,
        line: LineFacts,
        amount_kopecks: int,
        goods: Mapping[str, Fraction] | None = None,
    ) -> dict[str, Fraction]:
        """The value (exact kopecks) each rule contributes to this line; the values add up to at
        most the line's amount. ``goods``: this line's share of each goods offer, by rule id."""
        if amount_kopecks <= 0 or not self.rules:
            return {}
        evaluator = _Evaluator(self, receipt, line, amount_kopecks, goods or {})
        result = evaluator.combine(self.combine, self.roots())
        return dict(result.parts) if result is not None else {}

    def tree(self) -> Iterator[tuple[int, str]]:
        """(depth, text) of every node, root first: what ``check-config`` prints."""
        yield 0, f"discounts ({self.combine})"
        yield from self._tree(self.roots(), 1, set())

    def _tree(self, ids: list[str], depth: int, seen: set[str]) -> Iterator[tuple[int, str]]:
        for node in ids:
            if node in seen:  # pragma: no cover - validation rejects cycles
                continue
            rule = self.rule(node)
            if rule is not None:
                take = "" if rule.take_as == "discount" else f", as {rule.take_as}"
                if rule.take_as == "split":
                    take += f" ({rule.points_share_percent}% points)"
                scale = rule.when.amounts_text_static()
                scale = f" ({scale})" if scale else ""
                yield (
                    depth,
                    f"{rule.id}: {rule.kind_text()}{take}{scale}, priority {rule.priority} — {rule.description}",
                )
                continue
            group = self.group(node)
            if group is not None:
                yield depth, f"[{group.id}] {group.combine}, priority {group.priority}"
                yield from self._tree(group.members, depth + 1, seen | {node})


def _every_nth_free(
    rule: DiscountRule, n: int, receipt: ReceiptFacts, lines: Sequence[tuple[LineFacts, int]]
) -> GoodsOffer | None:
    # (unit price, index, whole units) of every matching line with at least one whole unit
    counted: list[tuple[Fraction, int, int]] = []
    for index, (facts, amount) in enumerate(lines):
        units = int(facts.quantity)  # whole units only: 2.5 kg is two units
        if amount > 0 and units > 0 and rule.when.matches(receipt, facts):
            counted.append((Fraction(amount) / Fraction(facts.quantity), index, units))
    total_units = sum(units for _, _, units in counted)
    free = total_units // n
    if free == 0:
        return None
    value = Fraction(0)
    left = free
    for unit_price, _, units in sorted(counted):  # the cheapest units first; ties: the earlier line
        taken = min(units, left)
        value += unit_price * taken
        left -= taken
        if left == 0:
            break
    # Rounded down once per cart and spread by largest remainder, so the lines' shares add up to
    # exactly the free units' value (no kopeck lost line by line). A free unit costs at most its
    # line's amount / quantity, so the value is at most the counted lines' amounts together and
    # each line's share (at most the ceiling of its exact share) at most its own amount.
    whole = int(value)
    shares = split_proportionally(whole, [lines[index][1] for _, index, _ in counted])
    per_line = {index: Fraction(share) for (_, index, _), share in zip(counted, shares, strict=True)}
    return GoodsOffer(total_units, free, Fraction(whole), per_line)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True, slots=True)
class _Result:
    value: Fraction
    priority: int
    parts: tuple[tuple[str, Fraction], ...]


class _Evaluator:
    def __init__(
        self,
        policy: DiscountPolicy,
        receipt: ReceiptFacts,
        line: LineFacts,
        amount: int,
        goods: Mapping[str, Fraction],
    ) -> None:
        self.policy = policy
        self.receipt = receipt
        self.line = line
        self.amount = Fraction(amount)
        self.goods = goods

    def node(self, node_id: str, depth: int = 0) -> _Result | None:
        if depth > 64:  # pragma: no cover - validation rejects cycles
            raise ValueError("discount groups nest too deep")
        rule = self.policy.rule(node_id)
        if rule is not None:
            if not rule.when.matches(self.receipt, self.line):
                return None
            if rule.per_cart:
                value = min(self.goods.get(rule.id, Fraction(0)), self.amount)
                if value <= 0:
                    return None  # nothing free on this cart: the mechanic does not apply here
            elif rule.fixed_price is not None:
                value = fixed_price_value(rule, self.line, int(self.amount))
                if value <= 0:
                    return None  # the line is at or below the fixed price already
            else:
                value = self.amount * Fraction(rule.percent or 0) / 100
            return _Result(value, rule.priority, ((rule.id, value),))
        group = self.policy.group(node_id)
        if group is None:  # pragma: no cover - validation rejects unknown members
            return None
        combined = self.combine(group.combine, group.members, depth + 1)
        if combined is None:
            return None
        return _Result(combined.value, group.priority, combined.parts)

    def combine(self, how: Combine, members: list[str], depth: int = 0) -> _Result | None:
        found = [(index, r) for index, m in enumerate(members) if (r := self.node(m, depth)) is not None]
        if not found:
            return None
        if how == "best_of":
            _, best = max(found, key=lambda pair: (pair[1].value, pair[1].priority, -pair[0]))
            return best
        if how == "exclusive":
            _, first = max(found, key=lambda pair: (pair[1].priority, -pair[0]))
            return first
        total = sum((r.value for _, r in found), Fraction(0))
        scale = min(Fraction(1), self.amount / total) if total else Fraction(1)
        merged: dict[str, Fraction] = {}
        for _, result in found:
            for rule_id, value in result.parts:
                merged[rule_id] = merged.get(rule_id, Fraction(0)) + value * scale
        return _Result(min(total, self.amount), 0, tuple(merged.items()))

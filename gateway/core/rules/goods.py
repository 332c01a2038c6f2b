"""Goods mechanics of the discount tree: gift with purchase, fixed price, set (bundle).

Each is a kind of discount rule (``discounts.rules[]``), given instead of ``percent``; the rule's
``when`` still decides *when* it applies (segment, tier, dates, store or zone, receipt amount),
and on each line the mechanic then combines in the tree like any other rule.

* ``gift_with_purchase`` — buy goods (``buy``: items and/or kinds, with ``quantity`` whole units
  or ``amount`` roubles) and earn ``gifts`` units of the gift goods (``gift``) per step bought; a
  gift must be in the cart, and only as many gift units as were earned are discounted, the
  cheapest gift units first, to ``price`` a unit (0: free). Lines of gift goods never count as
  bought (a cup given with tea is not itself "tea bought"); for "buy N, get one of the same
  free" use ``every_nth_free``. The rule's ``when`` may only hold receipt conditions: the goods
  are named in ``buy`` and ``gift``.
* ``fixed_price`` — the goods the rule's ``when`` selects (items, kinds, ``quantity_from``…) cost
  ``price`` a unit while the rule applies: the line is discounted down to ``price × quantity``,
  and a line already at or below that price is left as it is (a fixed price never raises one).
* ``bundle`` — a set of goods (each component: items and/or kinds with a ``quantity``) at a set
  ``price`` or ``percent`` off; as many complete sets as the cart holds, each component's
  cheapest units first. The set discount is rounded down once per cart and spread over the
  lines in the sets in proportion to their value in them (largest remainder,
  ``gateway/core/allocation.py``), so the lines' shares add up to it to the kopeck. A line
  belongs to the first component whose goods it matches.

Only whole units count (a line of 2.5 kg is two units); a line's unit price is its amount over
its quantity, so a till's own line discount is respected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from gateway.core.allocation import split_proportionally
from gateway.core.rules.base import (
    Code,
    Percent,
    Ref,
    Roubles,
    Section,
    kopecks_text,
    percent_text,
    roubles_to_kopecks,
)
from gateway.core.rules.context import LineFacts, ReceiptFacts

if TYPE_CHECKING:
    from gateway.core.program import Program
    from gateway.core.rules.discounts import DiscountRule

Loc = tuple[str | int, ...]


class Goods(Section):
    """Goods by exact item code and/or kind (a kind includes its sub-kinds): a line matches when
    it is one of ``items`` or of one of ``kinds``."""

    items: list[Ref] = Field(default_factory=list, description="Exact item codes")
    kinds: list[Code] = Field(default_factory=list, description="Product kinds (with their sub-kinds)")

    @model_validator(mode="after")
    def _some_goods(self) -> Goods:
        if not self.items and not self.kinds:
            raise ValueError("name the goods: `items` and/or `kinds`")
        return self

    def matches(self, line: LineFacts) -> bool:
        return line.item in self.items or any(kind in line.kinds for kind in self.kinds)

    def text(self) -> str:
        return ", ".join([*self.kinds, *self.items])


class GiftBuy(Goods):
    quantity: int | None = Field(default=None, ge=1, le=100_000, description="Whole units bought per step")
    amount: Roubles | None = Field(default=None, gt=0, description="Roubles spent on these goods per step")

    @model_validator(mode="after")
    def _one_step(self) -> GiftBuy:
        if (self.quantity is None) == (self.amount is None):
            raise ValueError("give exactly one of `quantity` and `amount`")
        return self


class GiftWithPurchase(Section):
    buy: GiftBuy
    gift: Goods
    gifts: int = Field(default=1, ge=1, le=1000, description="Gift units earned per step bought")
    price: Roubles = Field(default=Decimal(0), description="What a gift unit costs (0: free)")

    def text(self) -> str:
        step = f"{self.buy.quantity} units" if self.buy.quantity is not None else f"{self.buy.amount} roubles"
        price = "free" if not self.price else f"at {self.price}"
        return f"{self.gifts} × {self.gift.text()} {price} per {step} of {self.buy.text()}"


class FixedPrice(Section):
    price: Roubles = Field(description="The price of a unit while the rule applies (roubles)")

    def text(self) -> str:
        return f"fixed price {self.price} a unit"


class SetPart(Goods):
    quantity: int = Field(default=1, ge=1, le=1000, description="Units of these goods in one set")


class Bundle(Section):
    components: list[SetPart] = Field(min_length=1, max_length=20)
    price: Roubles | None = Field(default=None, description="The price of one complete set (roubles)")
    percent: Percent | None = Field(default=None, description="Percent off a complete set")

    @model_validator(mode="after")
    def _one_price(self) -> Bundle:
        if (self.price is None) == (self.percent is None):
            raise ValueError("give exactly one of `price` and `percent`")
        if sum(part.quantity for part in self.components) < 2:
            raise ValueError("a set holds at least two units")
        return self

    def parts_text(self) -> str:
        return " + ".join(f"{part.quantity} × {part.text()}" for part in self.components)

    def text(self) -> str:
        how = f"at {self.price}" if self.price is not None else f"{percent_text(self.percent or Decimal(0))}% off"
        return f"set {self.parts_text()} {how}"


@dataclass(frozen=True, slots=True)
class GoodsOffer:
    """A goods mechanic on one cart: how many units it counted, how many it freed (gifts, sets),
    what they are worth (exact kopecks), each line's share (by index in the cart) and the words
    that explain it."""

    units: int
    free_units: int
    value: Fraction
    per_line: dict[int, Fraction]
    text: str = ""


Lines = Sequence[tuple[LineFacts, int]]


def _unit_prices(lines: Lines, index: int) -> Fraction:
    facts, amount = lines[index]
    return Fraction(amount) / Fraction(facts.quantity)


def _cheapest(lines: Lines, indexes: Sequence[int], wanted: int) -> dict[int, int]:
    """Whole units taken, cheapest first (ties: the earlier line), up to ``wanted``: by line."""
    taken: dict[int, int] = {}
    left = wanted
    for _, index in sorted((_unit_prices(lines, i), i) for i in indexes):
        if left <= 0:
            break
        take = min(int(lines[index][0].quantity), left)
        if take > 0:
            taken[index] = take
            left -= take
    return taken


def _countable(lines: Lines, index: int) -> bool:
    facts, amount = lines[index]
    return amount > 0 and int(facts.quantity) > 0


def gift_offer(rule: DiscountRule, receipt: ReceiptFacts, lines: Lines) -> GoodsOffer | None:
    mechanic = rule.gift_with_purchase
    if mechanic is None or not rule.when.matches_receipt(receipt):
        return None
    gift_lines = [i for i, (facts, _) in enumerate(lines) if mechanic.gift.matches(facts) and _countable(lines, i)]
    bought = [i for i, (facts, amount) in enumerate(lines) if mechanic.buy.matches(facts) and amount > 0]
    bought = [i for i in bought if not mechanic.gift.matches(lines[i][0])]
    if mechanic.buy.quantity is not None:
        units = sum(int(lines[i][0].quantity) for i in bought)
        steps = units // mechanic.buy.quantity
        bought_text = f"{units} units of {mechanic.buy.text()} bought"
    else:
        spent = sum(lines[i][1] for i in bought)
        steps = spent // roubles_to_kopecks(mechanic.buy.amount or Decimal(0))
        units = steps
        bought_text = f"{kopecks_text(spent)} of {mechanic.buy.text()} bought"
    earned = steps * mechanic.gifts
    if earned == 0 or not gift_lines:
        return None
    price = Fraction(roubles_to_kopecks(mechanic.price))
    per_line: dict[int, Fraction] = {}
    given = 0
    for index, count in _cheapest(lines, gift_lines, earned).items():
        off = (_unit_prices(lines, index) - price) * count
        given += count
        if off > 0:
            per_line[index] = Fraction(int(off))  # whole kopecks, rounded down on the line
    value = sum(per_line.values(), Fraction(0))
    if value <= 0:
        return None
    at = "free" if not price else f"at {kopecks_text(int(price))} a unit"
    text = f"{bought_text}: {earned} gift(s) earned, {given} in the cart given {at}"
    return GoodsOffer(units, given, value, per_line, text)


def bundle_offer(rule: DiscountRule, receipt: ReceiptFacts, lines: Lines) -> GoodsOffer | None:
    mechanic = rule.bundle
    if mechanic is None or not rule.when.matches_receipt(receipt):
        return None
    owners: list[list[int]] = [[] for _ in mechanic.components]
    for index, (facts, _) in enumerate(lines):
        if not _countable(lines, index):
            continue
        owner = next((k for k, part in enumerate(mechanic.components) if part.matches(facts)), None)
        if owner is not None:
            owners[owner].append(index)
    sets = min(
        sum(int(lines[i][0].quantity) for i in owned) // part.quantity
        for part, owned in zip(mechanic.components, owners, strict=True)
    )
    if sets == 0:
        return None
    in_sets: dict[int, Fraction] = {}
    units = 0
    for part, owned in zip(mechanic.components, owners, strict=True):
        for index, count in _cheapest(lines, owned, part.quantity * sets).items():
            in_sets[index] = in_sets.get(index, Fraction(0)) + _unit_prices(lines, index) * count
            units += count
    worth = sum(in_sets.values(), Fraction(0))
    if mechanic.price is not None:
        exact = max(worth - sets * roubles_to_kopecks(mechanic.price), Fraction(0))
        how = f"at {kopecks_text(roubles_to_kopecks(mechanic.price))} a set"
    else:
        exact = worth * Fraction(mechanic.percent or 0) / 100
        how = f"{percent_text(mechanic.percent or Decimal(0))}% off"
    whole = int(exact)  # rounded down once per cart, then spread to the kopeck
    if whole <= 0:
        return None
    order = list(in_sets)
    shares = split_proportionally(whole, [in_sets[i] for i in order])
    per_line = {index: Fraction(share) for index, share in zip(order, shares, strict=True) if share}
    text = (
        f"{sets} set(s) of {mechanic.parts_text()} {how}: {kopecks_text(int(worth))} of goods in sets, "
        f"{kopecks_text(whole)} spread over their lines"
    )
    return GoodsOffer(units, sets, Fraction(whole), per_line, text)


def fixed_price_value(rule: DiscountRule, line: LineFacts, amount: int) -> Fraction:
    """What brings the line down to the fixed price (0 when it is already there or below)."""
    if rule.fixed_price is None or line.quantity <= 0:
        return Fraction(0)
    target = Fraction(roubles_to_kopecks(rule.fixed_price.price)) * Fraction(line.quantity)
    return max(Fraction(amount) - target, Fraction(0))


def fixed_price_text(rule: DiscountRule, line: LineFacts, amount: int) -> str:
    assert rule.fixed_price is not None
    unit = Fraction(amount) / Fraction(line.quantity) if line.quantity > 0 else Fraction(0)
    price = kopecks_text(roubles_to_kopecks(rule.fixed_price.price))
    return f"fixed price {price} a unit instead of {kopecks_text(int(unit))}"


# -- check-config ------------------------------------------------------------------------------

_LINE_CONDITIONS = ("kinds", "price_types", "items", "quantity_from")


def check_goods(program: Program, add: Callable[[Loc, str, Any], None]) -> None:
    """Errors of the goods mechanics, each at its key: unknown kinds, and line conditions in the
    ``when`` of a gift or a set (their goods are named in the mechanic itself)."""
    kinds = {kind.code for kind in program.catalogue.kinds}
    for i, rule in enumerate(program.discounts.rules):
        base: Loc = ("discounts", "rules", i)
        selectors: list[tuple[Loc, Goods]] = []
        if rule.gift_with_purchase is not None:
            selectors += [
                ((*base, "gift_with_purchase", "buy"), rule.gift_with_purchase.buy),
                ((*base, "gift_with_purchase", "gift"), rule.gift_with_purchase.gift),
            ]
        if rule.bundle is not None:
            selectors += [((*base, "bundle", "components", j), part) for j, part in enumerate(rule.bundle.components)]
        for loc, goods in selectors:
            for j, kind in enumerate(goods.kinds):
                if kind not in kinds:
                    hint = f"; known: {', '.join(sorted(kinds))}" if kinds else "; the program defines no kinds"
                    add((*loc, "kinds", j), f"unknown kind {kind!r}{hint}", kind)
        if rule.gift_with_purchase is not None or rule.bundle is not None:
            what = "gift_with_purchase" if rule.gift_with_purchase is not None else "bundle"
            for key in _LINE_CONDITIONS:
                value = getattr(rule.when, key)
                if value:
                    add(
                        (*base, "when", key),
                        f"a {what} rule names its goods in `{what}`; its `when` may hold only receipt "
                        f"conditions (segments, tiers, zones, stores, dates, receipt amount), not `{key}`",
                        value,
                    )


def goods_warnings(program: Program) -> list[tuple[Loc, str]]:
    """Goods rules that can never apply (valid, but nothing in any cart would trigger them)."""
    found: list[tuple[Loc, str]] = []
    for i, rule in enumerate(program.discounts.rules):
        base: Loc = ("discounts", "rules", i)
        gift = rule.gift_with_purchase
        if gift is not None and _covers(program, gift.gift, gift.buy):
            found.append(
                (
                    (*base, "gift_with_purchase", "gift"),
                    f"rule {rule.id!r}: every buy good is also a gift good, and gift goods never count as "
                    "bought: this rule never applies (for 'buy N, get one of the same free' use every_nth_free)",
                )
            )
        if rule.bundle is not None:
            parts = rule.bundle.components
            for j, part in enumerate(parts):
                earlier = next((k for k in range(j) if _covers(program, parts[k], part)), None)
                if earlier is not None:
                    found.append(
                        (
                            (*base, "bundle", "components", j),
                            f"rule {rule.id!r}: every good of this component is taken by component {earlier} "
                            "first (a line belongs to the first component it matches): no set is ever complete",
                        )
                    )
    return found


def _covers(program: Program, wide: Goods, narrow: Goods) -> bool:
    """Whether every good ``narrow`` names is also one of ``wide``: its items are named by
    ``wide`` or are of its kinds, and each of its kinds is one of ``wide``'s or under one."""
    catalogue = program.catalogue

    def in_wide(kind: str | None) -> bool:
        return any(code in wide.kinds for code in catalogue.kind_chain(kind))

    return all(item in wide.items or in_wide(catalogue.kind_of(item)) for item in narrow.items) and all(
        in_wide(kind) for kind in narrow.kinds
    )

"""``when:`` — the conditions under which a rule applies.

Every listed condition must hold (AND); a list matches when the purchase has any of its values
(OR); an empty list or a missing key does not restrict. A kind matches its sub-kinds too.

``receipt_from``/``receipt_below`` (roubles) are checked against the cart's own total *before any
program discount* — the sum of the lines as the till or the site sent them. Taking the total
before discounts means a rule's own discount can never push the cart back under its threshold
(a 10 % step from 5 000 roubles still applies to a 5 000-rouble cart), and every rule of a
scale sees the same amount, so steps in a ``best_of`` group never contradict each other.
``quantity_from`` is a line condition: the line's quantity is at least this.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import Field, model_validator

from gateway.core.rules.base import Code, Ref, Roubles, Section, kopecks_text, roubles_to_kopecks
from gateway.core.rules.context import LineFacts, ReceiptFacts

Weekday = Annotated[int, Field(ge=1, le=7, description="1 = Monday … 7 = Sunday")]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]


class When(Section):
    segments: list[Code] = Field(default_factory=list, description="Customer segments")
    tiers: list[Code] = Field(default_factory=list, description="Customer tiers")
    zones: list[Code] = Field(default_factory=list, description="Zones of the store")
    stores: list[Ref] = Field(default_factory=list, description="Store codes (after the 1C mapping)")
    kinds: list[Code] = Field(default_factory=list, description="Product kinds (a kind includes its sub-kinds)")
    price_types: list[Code] = Field(default_factory=list, description="Price types of the line")
    items: list[Ref] = Field(default_factory=list, description="Exact item codes")
    turnover_from: Roubles | None = Field(default=None, description="Qualifying turnover at least this")
    turnover_below: Roubles | None = Field(default=None, description="Qualifying turnover below this")
    receipt_from: Roubles | None = Field(
        default=None, description="The cart's total before discounts is at least this (roubles)"
    )
    receipt_below: Roubles | None = Field(
        default=None, description="The cart's total before discounts is below this (roubles)"
    )
    quantity_from: Quantity | None = Field(default=None, description="The line's quantity is at least this")
    weekdays: list[Weekday] = Field(default_factory=list)
    valid_from: date | None = None
    valid_to: date | None = Field(default=None, description="Last day the rule applies (inclusive)")
    first_purchase: bool | None = Field(default=None, description="true: only the first purchase; false: never it")
    birthday_within_days: int | None = Field(
        default=None, ge=0, le=31, description="The purchase is at most this many days from the birthday"
    )

    @model_validator(mode="after")
    def _ranges(self) -> When:
        low, high = self.turnover_from, self.turnover_below
        if low is not None and high is not None and low >= high:
            raise ValueError("turnover_from must be below turnover_below")
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError("valid_from is after valid_to")
        return self

    @property
    def is_empty(self) -> bool:
        return self == When()

    def matches(self, receipt: ReceiptFacts, line: LineFacts | None = None) -> bool:
        """Whether the rule applies to ``line`` of the receipt (or to the receipt as a whole when
        ``line`` is None: line conditions then only hold if they are absent)."""
        return self.matches_receipt(receipt) and self.matches_line(line)

    def matches_receipt(self, receipt: ReceiptFacts) -> bool:
        checks = (
            not self.segments or receipt.segment in self.segments,
            not self.tiers or receipt.tier in self.tiers,
            not self.zones or receipt.zone in self.zones,
            not self.stores or receipt.store in self.stores,
            self.turnover_from is None or receipt.turnover_kopecks >= roubles_to_kopecks(self.turnover_from),
            self.turnover_below is None or receipt.turnover_kopecks < roubles_to_kopecks(self.turnover_below),
            self.first_purchase is None or receipt.first_purchase == self.first_purchase,
            self.receipt_from is None or receipt.receipt_kopecks >= roubles_to_kopecks(self.receipt_from),
            self.receipt_below is None or receipt.receipt_kopecks < roubles_to_kopecks(self.receipt_below),
        )
        return all(checks) and self._matches_date(receipt)

    def _matches_date(self, receipt: ReceiptFacts) -> bool:
        dated = self.weekdays or self.valid_from or self.valid_to or self.birthday_within_days is not None
        if not dated:
            return True
        on = receipt.on
        if on is None:
            return False
        if self.weekdays and on.isoweekday() not in self.weekdays:
            return False
        if self.valid_from and on < self.valid_from:
            return False
        if self.valid_to and on > self.valid_to:
            return False
        if self.birthday_within_days is not None:
            if receipt.birth_date is None:
                return False
            return days_from_birthday(receipt.birth_date, on) <= self.birthday_within_days
        return True

    def matches_line(self, line: LineFacts | None) -> bool:
        if line is None:
            return not (self.kinds or self.price_types or self.items or self.quantity_from is not None)
        return (
            (not self.kinds or any(kind in line.kinds for kind in self.kinds))
            and (not self.price_types or line.price_type in self.price_types)
            and (not self.items or line.item in self.items)
            and (self.quantity_from is None or line.quantity >= self.quantity_from)
        )

    def amounts_text_static(self) -> str:
        """The amount and quantity conditions as written (``check-config``'s tree)."""
        parts: list[str] = []
        if self.receipt_from is not None:
            parts.append(f"receipt from {kopecks_text(roubles_to_kopecks(self.receipt_from))}")
        if self.receipt_below is not None:
            parts.append(f"receipt below {kopecks_text(roubles_to_kopecks(self.receipt_below))}")
        if self.quantity_from is not None:
            parts.append(f"quantity from {_number(self.quantity_from)}")
        return ", ".join(parts)

    def amounts_text(self, receipt: ReceiptFacts, line: LineFacts | None = None) -> str:
        """Why the amount and quantity conditions held, for the explanation of a line
        (``receipt 12 000.00 from 5 000.00 below 20 000.00; quantity 3 from 3``); empty when the
        rule has none."""
        parts: list[str] = []
        if self.receipt_from is not None or self.receipt_below is not None:
            text = f"receipt {kopecks_text(receipt.receipt_kopecks)}"
            if self.receipt_from is not None:
                text += f" from {kopecks_text(roubles_to_kopecks(self.receipt_from))}"
            if self.receipt_below is not None:
                text += f" below {kopecks_text(roubles_to_kopecks(self.receipt_below))}"
            parts.append(text)
        if self.quantity_from is not None and line is not None:
            parts.append(f"quantity {_number(line.quantity)} from {_number(self.quantity_from)}")
        return "; ".join(parts)


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def birthday_in(year: int, born: date) -> date:
    """The birthday in ``year`` (29 February is celebrated on 28 February in common years)."""
    try:
        return born.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def days_from_birthday(born: date, on: date) -> int:
    """Days between ``on`` and the nearest birthday (before or after it, across New Year)."""
    return min(abs((on - birthday_in(year, born)).days) for year in (on.year - 1, on.year, on.year + 1))


def birthday_passed_within(born: date, on: date, grace_days: int) -> date | None:
    """This year's birthday if it is ``on`` or at most ``grace_days`` before it, else None."""
    for year in (on.year, on.year - 1):
        day = birthday_in(year, born)
        if day <= on <= day + timedelta(days=grace_days):
            return day
    return None

"""Pricing of a cart under a program: points payable, points spent per line, points accrued.

This is the single place where a receipt's numbers are computed; ``calculate`` shows them and
``commit`` books exactly the same numbers, so what the till displayed is what the ledger records.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from contracts.money import money_to_kopecks
from contracts.operations import CartLine
from gateway.core.allocation import split_proportionally
from gateway.core.program import Program, PromoCode


@dataclass(frozen=True, slots=True)
class PricedLine:
    line_id: str
    item: str
    quantity: str  # decimal text, kept exact
    amount_kopecks: int
    discount_kopecks: int
    points_spent: int
    points_accrued: int


@dataclass(frozen=True, slots=True)
class PricedCart:
    lines: list[PricedLine]
    total_kopecks: int
    discount_kopecks: int
    max_points_payable: int
    points_spent: int
    points_accrued: int
    point_value_kopecks: int
    explanation: list[tuple[str, str, int]]  # (rule, description, points)

    @property
    def paid_by_points_kopecks(self) -> int:
        return self.points_spent * self.point_value_kopecks

    @property
    def payable_kopecks(self) -> int:
        return self.total_kopecks - self.discount_kopecks - self.paid_by_points_kopecks


def max_points_for(program: Program, payable_kopecks: int) -> int:
    """Points payable on an amount under the program's cap, ignoring the customer's balance."""
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


def price_cart(
    program: Program,
    lines: list[CartLine],
    points_to_spend: int,
    available: int,
    promo: PromoCode | None = None,
) -> PricedCart:
    """Price ``lines`` spending ``points_to_spend`` points.

    ``points_to_spend`` must already be within ``max_points_payable`` and ``available``; the
    caller reports the error codes. Points spent are spread over lines in proportion to their
    payable amounts; accrual is computed per line on what is paid with money (unless the program
    accrues on points too) and rounded once per receipt (floor), then spread back to lines.
    """
    amounts = [money_to_kopecks(line.total()) for line in lines]
    discounts = promo_discounts(promo, amounts)
    payable = [a - d for a, d in zip(amounts, discounts, strict=True)]
    total = sum(amounts)
    cap = max_points_for(program, sum(payable))
    max_payable = min(cap, max(available, 0))

    spent_parts = split_proportionally(points_to_spend, payable)
    pv = program.point_value_kopecks
    rate = program.accrual_rate()
    bases: list[Fraction] = []
    for line_payable, line_spent in zip(payable, spent_parts, strict=True):
        base = line_payable if program.accrual.on_amount_paid_by_points else line_payable - line_spent * pv
        bases.append(Fraction(max(base, 0)) * rate)
    accrued_total = int(sum(bases, Fraction(0)))
    accrued_parts = split_proportionally(accrued_total, bases)

    priced = [
        PricedLine(
            line_id=line.line_id,
            item=line.item,
            quantity=str(line.quantity),
            amount_kopecks=amount,
            discount_kopecks=discount,
            points_spent=spent,
            points_accrued=accrued,
        )
        for line, amount, discount, spent, accrued in zip(
            lines, amounts, discounts, spent_parts, accrued_parts, strict=True
        )
    ]
    explanation: list[tuple[str, str, int]] = []
    discount_total = sum(discounts)
    if promo is not None and discount_total:
        explanation.append((f"promo:{promo.key}", f"{promo.description}: -{discount_total / 100:.2f}", 0))
    if accrued_total:
        explanation.append(
            (
                "accrual.percent",
                f"{program.accrual.percent}% of the amount paid"
                + ("" if program.accrual.on_amount_paid_by_points else " with money"),
                accrued_total,
            )
        )
    explanation.append(
        (
            "redemption.max_share_percent",
            f"at most {program.redemption.max_share_percent}% payable by points",
            cap,
        )
    )
    return PricedCart(
        lines=priced,
        total_kopecks=total,
        discount_kopecks=sum(discounts),
        max_points_payable=max_payable,
        points_spent=points_to_spend,
        points_accrued=accrued_total,
        point_value_kopecks=pv,
        explanation=explanation,
    )

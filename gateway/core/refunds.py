"""What a refund returns, line by line: pure arithmetic over a receipt's lines, no database.

A refund names lines and quantities, or an amount of money (spread over the lines in proportion
to what is left of each), or the whole receipt. Each line's refunded quantity and money are
tracked *cumulatively*: points to give back (spent) and to take back (accrued) are the line's
cumulative share after this refund minus what earlier refunds already moved, so a receipt
returned in any number of steps moves exactly its points once it is fully returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import RefundRequest
from gateway.core.allocation import cumulative_share, split_proportionally


@dataclass(frozen=True, slots=True)
class ReceiptLineState:
    """A receipt line as a refund sees it: what was sold, and what earlier refunds took back."""

    line_id: str
    quantity: Decimal
    amount_kopecks: int  # paid in money and points, after discounts
    points_spent: int
    points_accrued: int
    refunded_quantity: Decimal = Decimal(0)
    refunded_kopecks: int = 0
    points_returned: int = 0
    points_reversed: int = 0


@dataclass(frozen=True, slots=True)
class LineRefund:
    """One line after this refund (cumulative figures) and what this refund moves on it."""

    line_id: str
    refunded_quantity: Decimal
    refunded_kopecks: int
    points_returned: int
    points_reversed: int
    kopecks: int  # refunded by this refund
    to_return: int  # spent points this refund gives back
    to_reverse: int  # accrued points this refund takes back


def round_half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))


def refund_targets(req: RefundRequest, lines: Sequence[ReceiptLineState]) -> dict[str, tuple[Decimal, int]]:
    """Per line: (refunded quantity after this refund, refunded kopecks after this refund).

    Raises ``validation_error`` for a line the receipt does not have and
    ``refund_exceeds_receipt`` for more than is left to refund."""
    by_id = {line.line_id: line for line in lines}
    targets = {line.line_id: (line.refunded_quantity, line.refunded_kopecks) for line in lines}
    if req.lines is not None:
        for refund_line in req.lines:
            line = by_id.get(refund_line.line_id)
            if line is None:
                raise LoyaltyError(
                    ErrorCode.VALIDATION_ERROR, "no such line on the receipt", line_id=refund_line.line_id
                )
            qty_before, _ = targets[line.line_id]
            qty_after = qty_before + refund_line.quantity
            if qty_after > line.quantity:
                raise LoyaltyError(
                    ErrorCode.REFUND_EXCEEDS_RECEIPT,
                    line_id=line.line_id,
                    quantity=str(line.quantity),
                    already_refunded=str(qty_before),
                    requested=str(refund_line.quantity),
                )
            share = Fraction(qty_after) / Fraction(line.quantity)
            kopecks = line.amount_kopecks if qty_after == line.quantity else round_half_up(line.amount_kopecks * share)
            targets[line.line_id] = (qty_after, max(kopecks, line.refunded_kopecks))
        return targets
    remaining = [line.amount_kopecks - line.refunded_kopecks for line in lines]
    left_total = sum(remaining)
    amount = left_total if req.full else money_to_kopecks(req.amount or Decimal(0))
    if amount > left_total or (req.full and left_total == 0):
        raise LoyaltyError(
            ErrorCode.REFUND_EXCEEDS_RECEIPT,
            refundable=str(kopecks_to_money(left_total)),
            requested=str(kopecks_to_money(amount)),
        )
    for line, part in zip(lines, split_proportionally(amount, remaining), strict=True):
        kopecks_after = line.refunded_kopecks + part
        qty_after = (
            line.quantity
            if kopecks_after == line.amount_kopecks
            else line.refunded_quantity
            if line.amount_kopecks == 0
            else (line.quantity * kopecks_after / line.amount_kopecks).quantize(Decimal("0.001"))
        )
        targets[line.line_id] = (min(qty_after, line.quantity), kopecks_after)
    return targets


def refund_lines(req: RefundRequest, lines: Sequence[ReceiptLineState]) -> list[LineRefund]:
    """Every line of the receipt after this refund, with the money and points it moves.

    Raises ``validation_error`` when the refund returns nothing (besides ``refund_targets``'s
    errors)."""
    targets = refund_targets(req, lines)
    result: list[LineRefund] = []
    for line in lines:
        qty_after, kopecks_after = targets[line.line_id]
        whole = Fraction(line.amount_kopecks)
        returned_after = cumulative_share(line.points_spent, Fraction(kopecks_after), whole)
        reversed_after = cumulative_share(line.points_accrued, Fraction(kopecks_after), whole)
        if qty_after == line.quantity:  # a fully returned line gives back everything
            returned_after, reversed_after = line.points_spent, line.points_accrued
        result.append(
            LineRefund(
                line_id=line.line_id,
                refunded_quantity=qty_after,
                refunded_kopecks=kopecks_after,
                points_returned=returned_after,
                points_reversed=reversed_after,
                kopecks=kopecks_after - line.refunded_kopecks,
                to_return=returned_after - line.points_returned,
                to_reverse=reversed_after - line.points_reversed,
            )
        )
    if sum(line.kopecks for line in result) <= 0:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the refund returns nothing")
    return result

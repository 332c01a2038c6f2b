"""Refund arithmetic without a database (gateway.core.refunds): what each line gives back."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import pytest

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import RefundLine, RefundRequest
from gateway.core.refunds import LineRefund, ReceiptLineState, refund_lines


def line(line_id: str, quantity: str, kopecks: int, spent: int, accrued: int) -> ReceiptLineState:
    return ReceiptLineState(
        line_id=line_id, quantity=Decimal(quantity), amount_kopecks=kopecks, points_spent=spent, points_accrued=accrued
    )


def after(state: ReceiptLineState, moved: LineRefund) -> ReceiptLineState:
    """The line as the next refund sees it."""
    return ReceiptLineState(
        line_id=state.line_id,
        quantity=state.quantity,
        amount_kopecks=state.amount_kopecks,
        points_spent=state.points_spent,
        points_accrued=state.points_accrued,
        refunded_quantity=moved.refunded_quantity,
        refunded_kopecks=moved.refunded_kopecks,
        points_returned=moved.points_returned,
        points_reversed=moved.points_reversed,
    )


def by_lines(refund_id: str, *lines: tuple[str, str]) -> RefundRequest:
    return RefundRequest(
        receipt_id="R-1", refund_id=refund_id, lines=[RefundLine(line_id=i, quantity=Decimal(q)) for i, q in lines]
    )


def test_one_of_three_units_returns_a_third_of_the_line_money_and_points_rounded_down() -> None:
    receipt = [line("1", "3", 30000, spent=100, accrued=10), line("2", "1", 5500, spent=0, accrued=2)]
    first, second = refund_lines(by_lines("R1", ("1", "1")), receipt)
    assert (first.kopecks, first.to_return, first.to_reverse) == (10000, 33, 3)
    assert first.refunded_quantity == Decimal(1)
    assert (second.kopecks, second.to_return, second.to_reverse) == (0, 0, 0)


def test_a_line_returned_unit_by_unit_gives_back_exactly_its_points() -> None:
    receipt = [line("1", "3", 29990, spent=100, accrued=7)]
    returned = reversed_ = kopecks = 0
    for n in range(3):
        (moved,) = refund_lines(by_lines(f"R{n}", ("1", "1")), receipt)
        returned, reversed_, kopecks = returned + moved.to_return, reversed_ + moved.to_reverse, kopecks + moved.kopecks
        receipt = [after(receipt[0], moved)]
    assert (returned, reversed_, kopecks) == (100, 7, 29990)
    with pytest.raises(LoyaltyError) as more:
        refund_lines(by_lines("R3", ("1", "1")), receipt)
    assert more.value.code == ErrorCode.REFUND_EXCEEDS_RECEIPT


def test_an_amount_is_spread_over_the_lines_in_proportion_to_what_is_left_of_them() -> None:
    receipt = [line("1", "2", 10000, spent=40, accrued=5), line("2", "1", 30000, spent=0, accrued=15)]
    moved = refund_lines(RefundRequest(receipt_id="R-1", refund_id="A", amount=Decimal("100.00")), receipt)
    assert [m.kopecks for m in moved] == [2500, 7500]
    assert [m.refunded_quantity for m in moved] == [Decimal("0.500"), Decimal("0.250")]
    assert [(m.to_return, m.to_reverse) for m in moved] == [(10, 1), (0, 3)]


def test_partial_amounts_then_the_rest_add_up_to_the_whole_receipt() -> None:
    receipt = [line("1", "1", 3333, spent=17, accrued=3), line("2", "1", 6667, spent=33, accrued=7)]
    totals = [0, 0, 0]
    for request in (
        RefundRequest(receipt_id="R-1", refund_id="P1", amount=Decimal("12.34")),
        RefundRequest(receipt_id="R-1", refund_id="P2", amount=Decimal("0.01")),
        RefundRequest(receipt_id="R-1", refund_id="P3", full=True),
    ):
        moved = refund_lines(request, receipt)
        totals = [
            totals[0] + sum(m.kopecks for m in moved),
            totals[1] + sum(m.to_return for m in moved),
            totals[2] + sum(m.to_reverse for m in moved),
        ]
        receipt = [after(s, m) for s, m in zip(receipt, moved, strict=True)]
    assert totals == [10000, 50, 10]
    assert all(s.refunded_quantity == s.quantity for s in receipt)


def test_cumulative_figures_never_go_down_from_one_refund_to_the_next() -> None:
    receipt = [line("1", "7", 70001, spent=99, accrued=13)]
    seen = []
    for n in range(7):
        (moved,) = refund_lines(by_lines(f"U{n}", ("1", "1")), receipt)
        seen.append((moved.refunded_kopecks, moved.points_returned, moved.points_reversed))
        receipt = [after(receipt[0], moved)]
    assert all(a <= b for x, y in pairwise(seen) for a, b in zip(x, y, strict=True))
    assert seen[-1] == (70001, 99, 13)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (by_lines("X", ("9", "1")), ErrorCode.VALIDATION_ERROR),
        (by_lines("X", ("1", "2")), ErrorCode.REFUND_EXCEEDS_RECEIPT),
        (RefundRequest(receipt_id="R-1", refund_id="X", amount=Decimal("100.01")), ErrorCode.REFUND_EXCEEDS_RECEIPT),
    ],
)
def test_a_refund_beyond_the_receipt_is_refused(request_: RefundRequest, code: ErrorCode) -> None:
    with pytest.raises(LoyaltyError) as refused:
        refund_lines(request_, [line("1", "1", 10000, spent=10, accrued=1)])
    assert refused.value.code == code


def test_a_full_refund_of_a_fully_refunded_receipt_is_refused() -> None:
    done = ReceiptLineState(
        line_id="1",
        quantity=Decimal(1),
        amount_kopecks=10000,
        points_spent=10,
        points_accrued=1,
        refunded_quantity=Decimal(1),
        refunded_kopecks=10000,
        points_returned=10,
        points_reversed=1,
    )
    with pytest.raises(LoyaltyError) as refused:
        refund_lines(RefundRequest(receipt_id="R-1", refund_id="F", full=True), [done])
    assert refused.value.code == ErrorCode.REFUND_EXCEEDS_RECEIPT

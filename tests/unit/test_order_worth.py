"""Properties of an order's worth (pure arithmetic): shipping and returning in any parts never
creates or loses a point."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.allocation import cumulative_share
from gateway.core.orders import OrderDocument, PricedOrderLine, order_turnover, order_worth

quantities = st.integers(min_value=1, max_value=50)


@st.composite
def priced_lines(draw: st.DrawFn) -> list[PricedOrderLine]:
    count = draw(st.integers(min_value=1, max_value=5))
    return [
        PricedOrderLine(
            line_id=str(i),
            quantity=Decimal(draw(quantities)),
            amount_kopecks=draw(st.integers(min_value=0, max_value=10**7)),
            discount_kopecks=0,
            points_spent=draw(st.integers(min_value=0, max_value=10**5)),
            points_accrued=draw(st.integers(min_value=0, max_value=10**5)),
        )
        for i in range(count)
    ]


@given(lines=priced_lines(), data=st.data())
@settings(max_examples=300, deadline=None)
def test_parts_always_add_up(lines: list[PricedOrderLine], data: st.DataObject) -> None:
    # ship each line in a few steps, returning part of what was shipped; check every step
    shipped = {line.line_id: Decimal(0) for line in lines}
    returned = {line.line_id: Decimal(0) for line in lines}
    previous_unlocked_plus_returned = [0] * len(lines)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        for line in lines:
            room = int(line.quantity - shipped[line.line_id])
            shipped[line.line_id] += data.draw(st.integers(min_value=0, max_value=room))
            back = int(shipped[line.line_id] - returned[line.line_id])
            returned[line.line_id] += data.draw(st.integers(min_value=0, max_value=back))
        worth = order_worth(lines, shipped, returned, paid=True, cancelled=False, accrue_on="shipment")
        for index, (line, part) in enumerate(zip(lines, worth.lines, strict=True)):
            assert min(part.spent, part.earned, part.pending, part.available) >= 0
            assert part.pending + part.available == part.earned <= line.points_accrued
            assert part.spent <= line.points_spent
            taken_back = line.points_accrued - part.earned
            # what was unlocked (still available or taken back by a return) never shrinks
            assert part.available + taken_back >= previous_unlocked_plus_returned[index]
            previous_unlocked_plus_returned[index] = part.available + taken_back
    for line in lines:  # ship and return everything: nothing is left, nothing was lost
        shipped[line.line_id] = line.quantity
    all_shipped = order_worth(lines, shipped, returned, paid=True, cancelled=False, accrue_on="shipment")
    assert all_shipped.pending == 0
    all_returned = order_worth(lines, shipped, shipped, paid=True, cancelled=False, accrue_on="shipment")
    assert (all_returned.spent, all_returned.pending, all_returned.available) == (0, 0, 0)
    nothing = order_worth(lines, shipped, {}, paid=True, cancelled=True, accrue_on="shipment")
    assert (nothing.spent, nothing.pending, nothing.available) == (0, 0, 0)


@given(lines=priced_lines(), paid=st.booleans())
def test_accrual_on_payment_unlocks_everything_at_once(lines: list[PricedOrderLine], paid: bool) -> None:
    worth = order_worth(lines, {}, {}, paid=paid, cancelled=False, accrue_on="payment")
    total = sum(line.points_accrued for line in lines)
    assert (worth.available, worth.pending) == ((total, 0) if paid else (0, total))


@given(lines=priced_lines(), data=st.data())
@settings(max_examples=300, deadline=None)
def test_turnover_of_shipments_and_returns_adds_up_to_the_goods_kept(
    lines: list[PricedOrderLine], data: st.DataObject
) -> None:
    """However the goods ship and come back, in whatever parts, the turnover is exactly what the
    goods kept are worth — and every full shipment of a line counts its whole amount."""
    documents: list[OrderDocument] = []
    left = {line.line_id: line.quantity for line in lines}
    kept = {line.line_id: Decimal(0) for line in lines}
    for number in range(data.draw(st.integers(min_value=1, max_value=4))):
        shipped = {
            line_id: Decimal(data.draw(st.integers(min_value=0, max_value=int(rest)))) for line_id, rest in left.items()
        }
        documents.append(OrderDocument("shipment", f"S{number}", None, shipped))
        for line_id, quantity in shipped.items():
            left[line_id] -= quantity
            kept[line_id] += quantity
    returned = {line_id: Decimal(data.draw(st.integers(0, int(q)))) for line_id, q in kept.items()}
    documents.append(OrderDocument("return", "R", None, returned))
    documents.append(OrderDocument("shipment", "last", None, dict(left)))  # the rest ships last
    shares = order_turnover(lines, documents, cancelled=False)
    assert all(share.amount_kopecks != 0 for share in shares)
    assert all(share.amount_kopecks < 0 for share in shares if share.document == "return:R")
    whole = sum(line.amount_kopecks for line in lines)
    taken_back = sum(
        cumulative_share(line.amount_kopecks, Fraction(returned[line.line_id]), Fraction(line.quantity))
        for line in lines
    )
    assert sum(share.amount_kopecks for share in shares) == whole - taken_back
    assert order_turnover(lines, documents, cancelled=True) == []

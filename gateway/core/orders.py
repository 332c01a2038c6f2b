"""What an order is worth in a given state: per line, the points it spends and earns, and how
many of the earned points are still pending, unlocked, or taken back.

Pure arithmetic (the ledger posts the difference between two worths). Shares of a line are
cumulative (``cumulative_share``), so shipping or returning a line in several parts always adds
up to exactly the whole line, whatever the parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from contracts.orders import OrderRequest, line_totals
from gateway.core.allocation import cumulative_share

AccrueOn = Literal["shipment", "payment"]
DocumentKind = Literal["shipment", "return"]


@dataclass(frozen=True, slots=True)
class PricedOrderLine:
    """One order line as priced when the order (or its last edit) was placed."""

    line_id: str
    quantity: Decimal
    amount_kopecks: int  # what the customer pays for the whole line, in money and points
    discount_kopecks: int
    points_spent: int  # points paying for the whole line
    points_accrued: int  # points the whole line earns
    waits_for_shipment: bool = False  # the program keeps this line's points until it ships, even when paid


@dataclass(frozen=True, slots=True)
class LineWorth:
    line_id: str
    quantity: Decimal
    shipped: Decimal
    returned: Decimal
    spent: int  # points paying for the line, net of returns
    earned: int  # points the line earns, net of returns (pending + available)
    pending: int
    available: int


@dataclass(frozen=True, slots=True)
class OrderWorth:
    lines: tuple[LineWorth, ...]

    @property
    def spent(self) -> int:
        return sum(line.spent for line in self.lines)

    @property
    def pending(self) -> int:
        return sum(line.pending for line in self.lines)

    @property
    def available(self) -> int:
        return sum(line.available for line in self.lines)


NOTHING = OrderWorth(lines=())


def _share(points: int, part: Decimal, whole: Decimal) -> int:
    return cumulative_share(points, Fraction(part), Fraction(whole))


def order_worth(
    lines: Sequence[PricedOrderLine],
    shipped: Mapping[str, Decimal],
    returned: Mapping[str, Decimal],
    *,
    paid: bool,
    cancelled: bool,
    accrue_on: AccrueOn,
) -> OrderWorth:
    """The worth of an order whose lines were priced as ``lines``.

    * Returned quantities give back their share of the points spent and lose their share of the
      points earned.
    * With ``accrue_on="shipment"`` a line's earned points unlock in proportion to its shipped
      quantity; with ``"payment"`` all of them unlock when the order is paid, except on lines the
      program keeps until shipment (``waits_for_shipment``).
    * A cancelled order is worth nothing.
    """
    worth: list[LineWorth] = []
    for line in lines:
        quantity = line.quantity
        shipped_qty = min(shipped.get(line.line_id, Decimal(0)), quantity)
        returned_qty = min(returned.get(line.line_id, Decimal(0)), shipped_qty)
        if cancelled:
            worth.append(LineWorth(line.line_id, quantity, shipped_qty, returned_qty, 0, 0, 0, 0))
            continue
        spent = line.points_spent - _share(line.points_spent, returned_qty, quantity)
        taken_back = _share(line.points_accrued, returned_qty, quantity)
        earned = line.points_accrued - taken_back
        if accrue_on == "shipment" or line.waits_for_shipment:
            unlocked = _share(line.points_accrued, shipped_qty, quantity) - taken_back
        else:
            unlocked = earned if paid else 0
        worth.append(
            LineWorth(
                line_id=line.line_id,
                quantity=quantity,
                shipped=shipped_qty,
                returned=returned_qty,
                spent=spent,
                earned=earned,
                pending=earned - unlocked,
                available=unlocked,
            )
        )
    return OrderWorth(lines=tuple(worth))


@dataclass(frozen=True, slots=True)
class OrderDocument:
    """A shipment or a return of an order: which quantities of which lines, and when."""

    kind: DocumentKind
    document_id: str
    at: datetime | None
    quantities: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class TurnoverShare:
    """What one shipment (positive) or return (negative) adds to the customer's turnover."""

    document: str  # "shipment:ID" or "return:ID"
    at: datetime | None
    amount_kopecks: int


def order_turnover(
    lines: Sequence[PricedOrderLine], documents: Sequence[OrderDocument], *, cancelled: bool
) -> list[TurnoverShare]:
    """The turnover an order makes: each shipment adds what the customer pays for the goods it
    ships (after discounts, including the part paid with points), each return takes its goods'
    part back. Shares are cumulative per line and kind, so all shipments of a line add up to
    exactly the line's amount. A cancelled order makes none; documents worth nothing are left out.
    """
    if cancelled:
        return []
    by_id = {line.line_id: line for line in lines}
    done: dict[tuple[DocumentKind, str], Decimal] = {}
    shares: list[TurnoverShare] = []
    for document in documents:
        amount = 0
        for line_id, quantity in document.quantities.items():
            line = by_id.get(line_id)
            if line is None or line.quantity <= 0:
                continue
            before = done.get((document.kind, line_id), Decimal(0))
            after = min(before + quantity, line.quantity)
            done[(document.kind, line_id)] = after
            amount += _share(line.amount_kopecks, after, line.quantity) - _share(
                line.amount_kopecks, before, line.quantity
            )
        if amount:
            sign = 1 if document.kind == "shipment" else -1
            shares.append(TurnoverShare(f"{document.kind}:{document.document_id}", document.at, sign * amount))
    return shares


def documents_of(request: OrderRequest) -> list[OrderDocument]:
    """The order's shipments, then its returns, in the order the source listed them."""
    shipments = [OrderDocument("shipment", s.shipment_id, s.shipped_at, line_totals([s])) for s in request.shipments]
    returns = [OrderDocument("return", r.return_id, r.returned_at, line_totals([r])) for r in request.returns]
    return shipments + returns


def shares_of(request: OrderRequest, priced: Sequence[PricedOrderLine]) -> list[TurnoverShare]:
    """What the order's shipments and returns add to its customer's turnover."""
    return order_turnover(priced, documents_of(request), cancelled=request.cancelled)

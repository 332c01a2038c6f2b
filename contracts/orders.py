"""Orders: receipts that live for days (web shop orders, ERP customer orders).

A till receipt is final when it is committed. An order is not: it is placed (points may be paid
at checkout), edited by a manager, paid, shipped in parts, partly returned or cancelled, and the
news of each change may arrive late, twice, or out of order — from the site plugin, from the
ERP sync, from the CommerceML exchange.

So the gateway is told the *whole state* of an order each time (``OrderRequest``, a snapshot
with a version that grows with every change at the source) and posts to the ledger only the
difference between what that state is worth and what was already posted:

* points paid with the order (``points_to_spend``) are spent when it is placed; an edit that
  pays fewer gives the difference back, one that pays more spends more;
* points earned by the order are *pending* until the goods ship: each shipment unlocks the
  points of the shipped quantities (``accrue_on: shipment``, the default), or all of them when
  the order is paid (``accrue_on: payment``);
* a return takes back the earned points of the returned quantities and gives back the points
  that paid for them, in proportion;
* a cancelled order is worth nothing: everything it spent comes back, everything it earned
  goes.

A snapshot whose version is not newer than the one applied changes nothing (``applied`` is
false): an order never moves backwards. The same version with other content is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from contracts.money import Points, Quantity
from contracts.operations import BalanceResult, CardNumber, CartLine, Identifier, Operation, Result, RuleApplication


class OrderQuantity(Operation):
    """A quantity of one order line (shipped or returned)."""

    line_id: Identifier
    quantity: Quantity


class OrderShipment(Operation):
    shipment_id: Identifier = Field(description="Id of the shipment at the source (1C: the sales document)")
    lines: list[OrderQuantity] = Field(min_length=1, max_length=1000)
    shipped_at: AwareDatetime | None = None


class OrderReturn(Operation):
    return_id: Identifier = Field(description="Id of the return at the source")
    lines: list[OrderQuantity] = Field(min_length=1, max_length=1000)
    returned_at: AwareDatetime | None = None


class OrderRequest(Operation):
    """The whole current state of an order at its source (site, ERP), with its version."""

    order_id: Identifier = Field(description="The order's id at the source, unique per client")
    version: int = Field(ge=0, le=2**62, description="Grows with every change of the order at the source")
    card_number: CardNumber
    lines: list[CartLine] = Field(min_length=1, max_length=1000)
    store: Identifier | None = None
    promo_codes: list[Identifier] = Field(default_factory=list, max_length=5)
    points_to_spend: Points = Field(default=0, description="Points the customer pays with for this order")
    hold_id: Identifier | None = Field(
        default=None, description="A hold made at checkout; the order's first spend takes its points"
    )
    placed_at: AwareDatetime | None = None
    paid: bool = False
    cancelled: bool = False
    shipments: list[OrderShipment] = Field(
        default_factory=list, max_length=1000, description="Every shipment so far (cumulative)"
    )
    returns: list[OrderReturn] = Field(
        default_factory=list, max_length=1000, description="Every return so far (cumulative)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> OrderRequest:
        ids = [line.line_id for line in self.lines]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate line_id in lines")
        quantities = {line.line_id: line.quantity for line in self.lines}
        for label, documents in (("shipments", self.shipments), ("returns", self.returns)):
            doc_ids = [d.shipment_id if isinstance(d, OrderShipment) else d.return_id for d in documents]
            if len(doc_ids) != len(set(doc_ids)):
                raise ValueError(f"duplicate id in {label}")
        shipped = line_totals(self.shipments)
        returned = line_totals(self.returns)
        for line_id in shipped.keys() | returned.keys():
            if line_id not in quantities:
                raise ValueError(f"line {line_id!r} is shipped or returned but not in lines")
            if shipped.get(line_id, Decimal(0)) > quantities[line_id]:
                raise ValueError(f"line {line_id!r}: shipped {shipped[line_id]} of {quantities[line_id]}")
            if returned.get(line_id, Decimal(0)) > shipped.get(line_id, Decimal(0)):
                raise ValueError(f"line {line_id!r}: returned more than was shipped")
        return self

    def shipped(self) -> dict[str, Decimal]:
        return line_totals(self.shipments)

    def returned(self) -> dict[str, Decimal]:
        return line_totals(self.returns)


def line_totals(documents: Sequence[OrderShipment] | Sequence[OrderReturn]) -> dict[str, Decimal]:
    """Quantities per line over shipment or return documents."""
    totals: dict[str, Decimal] = {}
    for document in documents:
        for line in document.lines:
            totals[line.line_id] = totals.get(line.line_id, Decimal(0)) + line.quantity
    return totals


OrderStatus = Literal["placed", "paid", "partially_shipped", "shipped", "cancelled"]


class OrderLineResult(Result):
    line_id: str
    quantity: Decimal
    shipped: Decimal
    returned: Decimal
    amount: Decimal = Field(description="What the customer pays for the line in money and points")
    discount: Decimal
    points_spent: int = Field(description="Points paying for this line, net of returns")
    points_accrued: int = Field(description="Points the line earns in all (pending and available)")
    points_pending: int
    points_available: int = Field(description="Earned points unlocked by shipments, net of returns")


class OrderResult(Result):
    order_id: str
    version: int = Field(description="The version now applied (may be newer than the one sent)")
    applied: bool = Field(description="False when the snapshot was not newer than what was applied")
    status: OrderStatus
    card_number: str
    total_amount: Decimal
    total_discount: Decimal
    points_spent: int = Field(description="Points spent on the order, net of what was given back")
    points_pending: int = Field(description="Earned points waiting for shipment (or payment)")
    points_available: int = Field(description="Earned points already unlocked, net of returns")
    points_shortfall: int = Field(
        description="Earned points that could not be taken back because the customer had spent them"
    )
    lines: list[OrderLineResult]
    explanation: list[RuleApplication]
    updated_at: datetime
    balance: BalanceResult


class OrderRecord(Result):
    """An order as the gateway keeps it: the last snapshot applied and what it is worth.

    ``sequence`` grows with every applied change of any order of the client, so an exporter
    (the CommerceML ``query``) can resume a change feed after the last sequence it delivered."""

    sequence: int
    snapshot: OrderRequest
    result: OrderResult

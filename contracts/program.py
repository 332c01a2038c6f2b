"""Dry runs of the loyalty program: sample carts with the customer, store and date they are
priced for, and what the program makes of them (``gateway simulate``,
``POST /api/v1/program/simulate``). Nothing is booked."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import ConfigDict, Field, model_validator

from contracts.money import Money, Points
from contracts.operations import CartLine, Identifier, Operation, Result, Reward, RuleApplication


class SimulatedReferrer(Operation):
    """The intermediary who brought the customer."""

    segment: Identifier | None = None
    since: date | None = Field(default=None, description="When the customer was referred")
    label: str = Field(default="the intermediary", max_length=64)


class SimulatedCustomer(Operation):
    segment: Identifier | None = None
    tier: Identifier | None = Field(default=None, description="Stored tier (default: from the turnover)")
    birth_date: date | None = None
    first_purchase: bool = False
    turnover: Money = Field(default=Decimal(0), description="Turnover of the current tier window so far")
    previous_turnover: Money = Field(default=Decimal(0), description="Turnover of the last complete window")
    referrer: SimulatedReferrer | None = None
    available_points: Points | None = Field(default=None, description="Balance (default: as much as the cap)")


class SimulationCart(Operation):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = Field(default=None, max_length=200)
    on: date | None = Field(default=None, alias="date", description="Date of the purchase")
    store: Identifier | None = None
    customer: SimulatedCustomer = SimulatedCustomer()
    promo_code: Identifier | None = None
    points_to_spend: Points = 0
    reward: Reward | None = Field(
        default=None, description="The customer's choice of a discount or points (program's reward_choice)"
    )
    lines: list[CartLine] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _unique_lines(self) -> SimulationCart:
        ids = [line.line_id for line in self.lines]
        if len(ids) != len(set(ids)):
            raise ValueError("line_id values must be unique within a cart")
        return self


class SimulationRequest(Operation):
    carts: list[SimulationCart] = Field(min_length=1, max_length=500)


class SimulatedLine(Result):
    line_id: str
    item: str
    price_type: str | None
    kind: str | None
    amount: Decimal
    discount: Decimal
    points_spent: int
    points_accrued: int
    pending: bool
    max_points: int
    referral_points: int


class SimulationResult(Result):
    name: str | None
    segment: str | None
    zone: str | None
    tier: str | None
    tier_upgrade: str | None
    total_amount: Decimal
    total_discount: Decimal
    points_to_spend: int
    max_points_payable: int
    points_to_accrue: int
    points_pending: int
    referral_points: int
    amount_payable: Decimal
    lines: list[SimulatedLine]
    explanation: list[RuleApplication]


class SimulationResponse(Result):
    program: str
    results: list[SimulationResult]

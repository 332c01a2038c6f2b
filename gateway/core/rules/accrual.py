"""``accrual.rules`` — how many points a line earns, and whether they wait for the shipment.

A line's rate is ``R × F + A`` percent of what it is paid with money (or of its whole amount
when ``accrual.on_amount_paid_by_points``):

* ``R`` — the applicable ``replace`` rule with the highest priority; else the line's price type
  ``accrual_percent``; else the customer's tier ``cashback_percent``; else ``accrual.percent``;
* ``F`` — the price type's ``accrual_factor`` times the ``factor`` of every applicable
  ``multiply`` rule (e.g. double points in the birthday week);
* ``A`` — the ``percent`` of every applicable ``add`` rule.

``replace`` rules must have distinct priorities, so which one wins is never left to chance.

A rule may set its own ``pending_days``: the points it gives become spendable that many days
after the purchase instead of the program's ``accrual.pending_days`` (each delay is a lot of its
own, shown in the balance as ``pending`` until then). For ``add`` that is the rule's own
``+percent``; for ``replace`` and ``multiply`` it is the line's base rate they set or multiply
(the longest delay among them wins).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.core.rules.base import Code, Factor, Percent, Priority, Section
from gateway.core.rules.conditions import When
from gateway.core.rules.experiments import Experiment

AccrualCombine = Literal["replace", "add", "multiply"]


class AccrualRule(Section):
    id: Code
    description: str = Field(min_length=1, max_length=256)
    when: When = When()
    combine: AccrualCombine = Field(description="replace the rate, add to it, or multiply it")
    percent: Percent | None = Field(default=None, description="replace / add: points per 100 roubles")
    factor: Factor | None = Field(default=None, description="multiply: the rate is multiplied by this")
    priority: Priority = 0
    pending_days: int | None = Field(
        default=None, ge=0, le=3650, description="Points of this rule become spendable after this many days"
    )
    pending_until_shipment: bool = Field(
        default=False, description="Points of matching lines wait for their shipment (orders)"
    )
    experiment: Experiment | None = Field(
        default=None, description="Hold a share of customers out of the rule (a control group) to measure it"
    )

    @model_validator(mode="after")
    def _shape(self) -> AccrualRule:
        if self.combine == "multiply":
            if self.factor is None or self.percent is not None:
                raise ValueError("a multiply rule gives `factor` (and no `percent`)")
        elif self.percent is None or self.factor is not None:
            raise ValueError(f"a {self.combine} rule gives `percent` (and no `factor`)")
        return self

"""``experiment`` of an accrual rule: a share of customers held out of the rule (the control
group) from a date, to measure what the rule changes in their purchases.

Who is held out is decided by a hash of the salt, the rule's id and the customer's id: the same
customer is in the same group on every purchase, on every replica of the gateway and in the
``experiment`` report, with nothing stored. A new salt deals the groups again.
"""

from __future__ import annotations

import hashlib
from datetime import date

from pydantic import Field

from gateway.core.rules.base import Section

BUCKETS = 10_000
CONTROL = "контрольная группа"


class Experiment(Section):
    control_percent: int = Field(ge=1, le=50, description="Share of customers held out of the rule, percent")
    since: date = Field(description="The first day the control group is held out")
    until: date | None = Field(default=None, description="The last day of the experiment (none: open-ended)")
    salt: str = Field(default="", max_length=64, description="Change it to deal the groups again")

    def running_on(self, on: date | None) -> bool:
        return on is not None and on >= self.since and (self.until is None or on <= self.until)


def bucket(salt: str, rule_id: str, customer_id: str) -> int:
    """The customer's place (0..9999) in the rule's experiment, the same everywhere."""
    digest = hashlib.sha256(f"{salt}\x1f{rule_id}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_control(experiment: Experiment, rule_id: str, customer_id: str) -> bool:
    return bucket(experiment.salt, rule_id, customer_id) < experiment.control_percent * BUCKETS // 100


def held_out(rule_id: str, experiment: Experiment | None, customer_id: str | None, on: date | None) -> bool:
    """Whether the customer does not get the rule on day ``on``: in its control group while it runs."""
    if experiment is None or customer_id is None or not experiment.running_on(on):
        return False
    return in_control(experiment, rule_id, customer_id)

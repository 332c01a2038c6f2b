"""``segments:`` — kinds of customers (retail, partner, wholesale, new-home owner…).

A customer has one segment; new customers get the ``default`` one unless registration names
another. A segment may turn into another after some months (``becomes`` + ``after_months``: a
new-home owner becomes a retail customer a year after joining the segment); the daily program
job moves them.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date

from pydantic import Field, model_validator

from gateway.core.rules.base import Code, Percent, Section


class Segment(Section):
    code: Code
    name: str | None = Field(default=None, max_length=150)
    default: bool = Field(default=False, description="The segment of customers registered without one")
    becomes: Code | None = Field(default=None, description="The segment a customer moves to after `after_months`")
    after_months: int | None = Field(default=None, ge=1, le=1200)
    max_share_percent: Percent | None = Field(default=None, description="At most this share payable by points")

    @model_validator(mode="after")
    def _transition(self) -> Segment:
        if (self.becomes is None) != (self.after_months is None):
            raise ValueError("give both `becomes` and `after_months`, or neither")
        if self.becomes == self.code:
            raise ValueError("a segment cannot become itself")
        return self

    def transition_due(self, since: date, on: date) -> bool:
        """Whether a customer in this segment since ``since`` moves on by ``on``."""
        if self.after_months is None:
            return False
        return on >= add_months(since, self.after_months)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when that month is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))

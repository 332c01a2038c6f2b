"""``tiers:`` — levels of a customer by turnover over a window, each with its cashback.

Turnover is what the customer paid for goods (after discounts, net of returns) in the window.
For calendar windows (month, quarter, half-year, year) the *qualifying* turnover is the larger of
the last complete window and the current one so far: a customer keeps a level for the whole
window after the one that earned it, and rises as soon as the current window crosses a
threshold. A rolling window counts the last ``days`` days. Levels are ranges of turnover
``[from_turnover, to_turnover)`` that must tile ``[0, ∞)`` without gaps or overlaps.

The card number never changes with the level: the tier is a property of the customer. ``tiers:``
is the retail ladder; ``ladders:`` (``rules/ladders.py``) adds ladders of their own segments
(partners by quarterly turnover), each a ``TierLadder`` with its own window and levels.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field, model_validator

from gateway.core.rules.base import Code, Percent, Roubles, Section, roubles_to_kopecks
from gateway.core.rules.segments import add_months

WindowKind = Literal["month", "quarter", "half_year", "year", "rolling"]
_MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


class TierWindow(Section):
    kind: WindowKind = "quarter"
    days: int | None = Field(default=None, ge=1, le=3660, description="Length of a rolling window")

    @model_validator(mode="after")
    def _days(self) -> TierWindow:
        if (self.kind == "rolling") != (self.days is not None):
            raise ValueError("`days` is required for a rolling window and only for it")
        return self

    def bounds(self, on: date) -> tuple[date, date, date]:
        """(start of the previous window, start of the current one, end of the current one —
        exclusive) for a purchase on ``on``. A rolling window has no previous one."""
        if self.kind == "rolling":
            assert self.days is not None
            start = on - timedelta(days=self.days - 1)
            return start, start, on + timedelta(days=1)
        months = _MONTHS[self.kind]
        first_month = (on.month - 1) // months * months + 1
        start = date(on.year, first_month, 1)
        return add_months(start, -months), start, add_months(start, months)

    @property
    def calendar(self) -> bool:
        return self.kind != "rolling"

    def qualifying(self, current_kopecks: int, previous_kopecks: int) -> int:
        """The turnover that decides tiers and turnover conditions."""
        return max(current_kopecks, previous_kopecks) if self.calendar else current_kopecks

    def describe(self) -> str:
        return f"the last {self.days} days" if self.kind == "rolling" else f"the {self.kind.replace('_', '-')}"


class TierLevel(Section):
    code: Code
    name: str | None = Field(default=None, max_length=150)
    from_turnover: Roubles = Field(description="The level starts at this turnover (roubles)")
    to_turnover: Roubles | None = Field(default=None, description="…and ends below this one (the next level's start)")
    cashback_percent: Percent = Field(description="Points accrued per 100 roubles (replaces accrual.percent)")
    max_share_percent: Percent | None = Field(default=None, description="At most this share payable by points")

    @model_validator(mode="after")
    def _range(self) -> TierLevel:
        if self.to_turnover is not None and self.to_turnover <= self.from_turnover:
            raise ValueError("to_turnover must be above from_turnover")
        return self

    @property
    def label(self) -> str:
        return self.name or self.code


class TierLadder(Section):
    """What every ladder has: a window, levels tiling the turnover, the segments placed on it,
    and when a level changes. The retail ``tiers:`` and each of ``ladders:`` are one."""

    window: TierWindow = TierWindow()
    levels: list[TierLevel] = Field(min_length=1)
    segments: list[Code] = Field(default_factory=list, description="Segments that have tiers (empty: every customer)")
    upgrade_on_purchase: bool = Field(
        default=True, description="A purchase that crosses a threshold raises the tier at once (not at the next job)"
    )
    downgrade: bool = Field(default=True, description="The daily job lowers the tier when the turnover falls")

    def ordered(self) -> list[TierLevel]:
        return sorted(self.levels, key=lambda level: level.from_turnover)

    def level(self, code: str | None) -> TierLevel | None:
        return next((level for level in self.levels if level.code == code), None)

    def level_for(self, turnover_kopecks: int) -> TierLevel:
        """The level whose range holds the turnover (validation guarantees exactly one)."""
        found = self.ordered()[0]
        for level in self.ordered():
            if turnover_kopecks >= roubles_to_kopecks(level.from_turnover):
                found = level
        return found

    def rank(self, code: str | None) -> int:
        """Position of a level from the lowest (0); -1 for none or an unknown one."""
        codes = [level.code for level in self.ordered()]
        return codes.index(code) if code in codes else -1

    def applies_to(self, segment: str | None) -> bool:
        return not self.segments or segment in self.segments

    @property
    def ladder_code(self) -> str:
        """How tier progress and explanations name the ladder (``tiers`` for the retail one)."""
        return "tiers"

    @property
    def ladder_name(self) -> str | None:
        return None


class TierPolicy(TierLadder):
    """``tiers:`` — the retail ladder (customers of ``segments``, or everyone no other ladder takes)."""

    crossing_purchase_at_new_tier: bool = Field(
        default=True,
        description="The purchase that crosses a threshold already earns at the new tier (every ladder)",
    )

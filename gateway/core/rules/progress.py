"""A customer's progress through the tiers: the tier held, the qualifying turnover, the next tier
and what remains to it, and the window the turnover is counted in
(``GET /api/v1/cards/{number}/tier``) — on the customer's own ladder: the retail tiers, or the
ladder of their segment (partners by quarterly turnover), each with its window.

The tier is decided exactly as a purchase is priced (``evaluate.standing``): the tier the
ledger stored for the customer, else the one the qualifying turnover reaches. For calendar
windows the qualifying turnover is the larger of the last complete window and the current one,
but only the *current* window can still grow — so what remains to the next tier is its
threshold less the current window's turnover (nothing once the qualifying turnover is there).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from contracts.money import kopecks_to_money
from gateway.core.rules.base import roubles_to_kopecks
from gateway.core.rules.context import PricingContext
from gateway.core.rules.evaluate import standing
from gateway.core.rules.tiers import TierLevel

if TYPE_CHECKING:  # gateway.core.program imports the rules
    from gateway.core.program import Program


class TierName(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name: str = Field(description="The level's name (its code when the program names none)")
    cashback_percent: Decimal


class TierProgress(BaseModel):
    model_config = ConfigDict(frozen=True)

    card_number: str
    ladder: str | None = Field(description="The customer's ladder: `tiers` (retail) or a `ladders` code; null: none")
    ladder_name: str | None = Field(default=None, description="The ladder's name from the program file")
    tier: TierName | None = Field(description="The tier held now; null: the program has no tiers for this customer")
    qualifying_turnover: Decimal = Field(description="The turnover that decides the tier (roubles)")
    window_turnover: Decimal = Field(description="Turnover in the current window so far (roubles)")
    previous_window_turnover: Decimal | None = Field(
        description="Turnover in the last complete window (calendar windows only)"
    )
    next_tier: TierName | None = Field(description="The next tier up; null at the top")
    next_tier_from: Decimal | None = Field(description="The turnover the next tier starts at (roubles)")
    remaining: Decimal | None = Field(description="What the customer still has to buy in this window to reach it")
    window: str = Field(description="month, quarter, half_year, year or rolling")
    window_start: date
    window_end: date = Field(description="The last day of the current window (inclusive)")


def _name(level: TierLevel) -> TierName:
    return TierName(code=level.code, name=level.label, cashback_percent=level.cashback_percent)


def tier_progress(program: Program, card_number: str, context: PricingContext, on: date) -> TierProgress:
    current = standing(program, context)
    tiers = program.ladder(current.segment)
    window = program.window_for(current.segment)
    previous_start, start, end = window.bounds(on)
    next_level: TierLevel | None = None
    remaining: int | None = None
    if tiers is not None and current.tier is not None:
        ordered = tiers.ordered()
        rank = tiers.rank(current.tier.code)
        if rank + 1 < len(ordered):
            next_level = ordered[rank + 1]
            threshold = roubles_to_kopecks(next_level.from_turnover)
            reached = current.qualifying_kopecks >= threshold
            remaining = 0 if reached else threshold - context.turnover_kopecks
    return TierProgress(
        card_number=card_number,
        ladder=tiers.ladder_code if tiers is not None else None,
        ladder_name=tiers.ladder_name if tiers is not None else None,
        tier=_name(current.tier) if current.tier is not None else None,
        qualifying_turnover=kopecks_to_money(current.qualifying_kopecks),
        window_turnover=kopecks_to_money(context.turnover_kopecks),
        previous_window_turnover=kopecks_to_money(context.previous_turnover_kopecks) if window.calendar else None,
        next_tier=_name(next_level) if next_level is not None else None,
        next_tier_from=kopecks_to_money(roubles_to_kopecks(next_level.from_turnover)) if next_level else None,
        remaining=kopecks_to_money(remaining) if remaining is not None else None,
        window=window.kind,
        window_start=start if window.calendar else previous_start,
        window_end=end - timedelta(days=1),
    )

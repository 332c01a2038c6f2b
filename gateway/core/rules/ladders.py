"""``ladders:`` — tier ladders beside the retail ``tiers:``, each for its own segments.

A plumbing retailer ranks installers and wholesale buyers by *quarterly* turnover («Партнёр»,
«Партнёр Серебро», «Партнёр Золото») while retail customers climb by the turnover of the last
twelve months. Each ladder names the ``segments`` placed on it and has its own window,
thresholds and benefits (cashback, share payable by points); a customer of any other segment is
on the retail ``tiers:`` (when it takes their segment). A customer is on one ladder at a time:
moving to a partner segment moves them to the partner ladder at the next placement (a purchase
or the daily job), starting from the level their turnover in *that* ladder's window reaches.

Level codes are unique across all ladders, so a customer's tier names its ladder too and a
rule conditions on a ladder's level as on any tier: ``when: {tiers: [partner_gold]}``. A
discount of a level is such a rule (``discounts.rules``), its cashback and share are the level's
own ``cashback_percent`` and ``max_share_percent``. Whether the purchase that crosses a threshold
already earns at the new level is ``tiers.crossing_purchase_at_new_tier`` for every ladder.
"""

from __future__ import annotations

from pydantic import Field

from gateway.core.rules.base import Code
from gateway.core.rules.tiers import TierLadder


class Ladder(TierLadder):
    code: Code = Field(description="How tier progress names the ladder (e.g. partner)")
    name: str | None = Field(default=None, max_length=150)
    segments: list[Code] = Field(min_length=1, description="The segments whose customers are on this ladder")

    @property
    def ladder_code(self) -> str:
        return self.code

    @property
    def ladder_name(self) -> str | None:
        return self.name

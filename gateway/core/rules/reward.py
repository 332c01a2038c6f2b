"""``reward_choice:`` — the customer chooses a discount *or* points on a purchase.

Where the program declares it, a calculation (and the receipt that follows it) may carry
``reward: discount`` or ``reward: points``:

* ``discount`` — the discount rules apply as usual and the receipt earns no points at all (no
  accrual, no discount taken as points);
* ``points`` — no discount rule applies and the receipt earns its points as usual.

A calculation without ``reward`` gets the program's ``default``. Promo codes are the customer's
own coupons and apply either way. A purchase without a card earns nothing, so it always gets
the discount. A program without ``reward_choice`` prices every receipt with both, and a request
that names a ``reward`` there is refused (``validation_error``): nothing to choose from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.core.rules.base import Section

Reward = Literal["discount", "points"]


class RewardChoice(Section):
    default: Reward = Field(description="What a purchase gets when the customer does not say")
    description: str = Field(
        default="Выбор покупателя: скидка или баллы", min_length=1, max_length=256, description="Shown in explanations"
    )

    def resolve(self, asked: Reward | None, anonymous: bool) -> Reward:
        if anonymous:
            return "discount"  # without a card nothing is earned: points would give nothing
        return asked or self.default

    def text(self, chosen: Reward, asked: Reward | None, anonymous: bool) -> str:
        who = "the customer chose" if asked is not None else "the program's default"
        if anonymous:
            who = "no card, so"
        if chosen == "discount":
            return f"{self.description}: {who} the discount, no points are accrued"
        return f"{self.description}: {who} points, no discount rule applies"

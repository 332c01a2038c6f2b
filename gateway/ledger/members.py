"""Who may do what with a company's points: the check the points operations call.

A card reaches the points of its account. On a personal account the card's holder is the
account's owner and may do everything. On a company account each contact holds a card of their
own, and their role decides: a ``buyer`` earns and spends, an ``earner`` only earns (their
purchases accrue to the company), a ``viewer`` (the accountant) only sees the balance. A refusal
is raised before anything is written, so it changes nothing.
"""

from __future__ import annotations

from typing import Final

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import CommitRequest
from gateway.ledger.context import Ctx
from gateway.store.models import Account, Card
from gateway.store.models_accounts import AccountMember, Company

RIGHTS: Final[dict[str, frozenset[str]]] = {
    "buyer": frozenset({"earn", "spend"}),
    "earner": frozenset({"earn"}),
    "viewer": frozenset(),
}
EVERYTHING: Final = frozenset({"earn", "spend"})


def rights_of(ctx: Ctx, card: Card) -> frozenset[str]:
    """What the holder of ``card`` may do with its account's points."""
    account = ctx.session.get(Account, card.account_id)
    if account is None or account.customer_id == card.customer_id:
        return EVERYTHING  # the account's own customer
    member = ctx.session.get(AccountMember, (card.account_id, card.customer_id))
    if member is not None and member.removed_at is None:
        return RIGHTS.get(member.role, frozenset())
    if ctx.session.get(Company, account.customer_id) is not None:
        return frozenset()  # a company card of someone who is no longer its contact
    return EVERYTHING


def authorize(ctx: Ctx, card: Card, *, spend: bool = False, earn: bool = False) -> None:
    """Refuse (``member_may_not_spend`` / ``member_may_not_earn``) what the card's role forbids."""
    if not (spend or earn):
        return
    rights = rights_of(ctx, card)
    if spend and "spend" not in rights:
        raise LoyaltyError(ErrorCode.MEMBER_MAY_NOT_SPEND, card_number=card.number)
    if earn and "earn" not in rights:
        raise LoyaltyError(ErrorCode.MEMBER_MAY_NOT_EARN, card_number=card.number)


def authorize_receipt(ctx: Ctx, card: Card, req: CommitRequest) -> None:
    """A receipt earns; it also spends if it names points or a hold whose points it takes."""
    spends = bool(req.points_to_spend) or (req.hold_id is not None and req.points_to_spend is None)
    authorize(ctx, card, spend=spends, earn=True)

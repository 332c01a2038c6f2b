"""``GET /api/v1/cards/{number}/tier`` — where the card's owner stands on their ladder (the retail
tiers, or the ladder of their segment, e.g. partners by quarterly turnover; a company card: the
company's): the tier held (code, name, cashback), the qualifying turnover, the next tier and what
remains to it, and the window the turnover is counted in (its first and last day). Read only; the phone is the card
here as everywhere a card number is accepted."""

from __future__ import annotations

from fastapi import APIRouter

from contracts.operations import CardNumber
from gateway.api.v1 import ERRORS, Client, Service
from gateway.core.rules.progress import TierProgress

router = APIRouter(prefix="/api/v1", tags=["loyalty"])


@router.get("/cards/{card_number}/tier", response_model=TierProgress, responses=ERRORS)
def card_tier(card_number: CardNumber, client: Client, service: Service) -> TierProgress:
    """The tier and the way to the next one. ``remaining`` is what must still be bought in the
    current window (for calendar windows the last complete window keeps the tier, but only the
    current one can still grow); null at the top tier or without tiers."""
    return service.tier_progress(client.id, card_number)

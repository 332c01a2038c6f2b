"""Demo seed: the cards listed under ``demo:`` in the configuration, with opening balances.

Idempotent: a card that already exists is left alone, so ``gateway serve`` can seed on every start.
"""

from __future__ import annotations

from contracts.errors import LoyaltyError
from contracts.operations import RegisterCustomerRequest
from gateway.config import GatewayConfig
from gateway.ledger.accounts import add_lot
from gateway.ledger.context import Ctx
from gateway.ledger.customers import register_customer
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Card

SEED_CLIENT = "system:demo-seed"


def seed_demo(service: LoyaltyService, config: GatewayConfig) -> int:
    """Create the demo cards that do not exist yet; returns how many were created."""
    if config.demo is None:
        return 0
    created = 0
    for demo in config.demo.cards:
        now = service.clock()
        with service.db.write() as session:
            if session.get(Card, demo.card_number) is not None:
                continue
            ctx = Ctx(service.db, session, service.program, now, SEED_CLIENT)
            try:
                customer = register_customer(
                    ctx, RegisterCustomerRequest(phone=demo.phone, name=demo.name, card_number=demo.card_number)
                )
            except LoyaltyError:
                continue  # the phone is taken by a real customer: do not touch it
            if demo.points:
                card = session.get(Card, demo.card_number)
                assert card is not None and card.number in {c.card_number for c in customer.cards}
                add_lot(
                    ctx,
                    card.account_id,
                    "adjustment",
                    demo.points,
                    entry_kind="adjustment",
                    available_at=now,
                    expires_at=None,
                )
            created += 1
    return created

"""Periodic jobs of the accounts area: booking what is left on expired gift certificates, and
marking promo-code reservations past their deadline. Both work in bounded batches, are
idempotent and safe with several workers (a certificate is locked before it expires; an
expired certificate has nothing left to expire; a reservation past its deadline already stopped
counting, marking it only tidies it)."""

from __future__ import annotations

from gateway.ledger.service import LoyaltyService
from gateway.workers.runner import PeriodicJob

GIFT_CARD_EXPIRY_EVERY = 600.0
PROMO_RESERVATIONS_EVERY = 60.0
BATCH = 500


def build_jobs(service: LoyaltyService) -> list[PeriodicJob]:
    return [
        PeriodicJob("gift-card-expiry", GIFT_CARD_EXPIRY_EVERY, lambda: {"expired": service.expire_gift_cards(BATCH)}),
        PeriodicJob(
            "promo-reservations",
            PROMO_RESERVATIONS_EVERY,
            lambda: {"expired": service.sweep_promo_reservations(BATCH)},
        ),
    ]

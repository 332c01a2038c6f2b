"""What the rules engine knows about a purchase besides the cart: who buys, where, when.

The ledger reads it from the database (``gateway/ledger/pricing_context.py``); ``gateway
simulate`` and the simulation endpoint take it from the integrator's sample carts. The engine
itself never reads a clock or a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Referrer:
    """The intermediary (a foreman, a designer) who brought the customer."""

    account_id: str  # opaque to the engine: where the ledger books the referral points
    segment: str | None
    since: date | None  # when the customer was referred (their registration)
    label: str = ""  # how explanations name the intermediary (a masked card number)


@dataclass(frozen=True, slots=True)
class PricingContext:
    """The customer, the store and the date of one purchase.

    Without a date (``on`` is None) rules limited to dates, weekdays or birthdays do not apply.
    ``turnover_kopecks`` is the customer's turnover in the current tier window so far (before
    this purchase); ``previous_turnover_kopecks`` in the last complete window (calendar windows).
    """

    on: date | None = None
    store: str | None = None
    segment: str | None = None
    tier: str | None = None
    birth_date: date | None = None
    first_purchase: bool = False
    turnover_kopecks: int = 0
    previous_turnover_kopecks: int = 0
    referrer: Referrer | None = None
    # No card at all (a till's calculation before the card is shown): nobody earns points and
    # nobody has a tier, so the explanation must not list cashback the receipt does not give.
    anonymous: bool = False
    # Opaque to the engine but for one use: the control groups of experimenting accrual rules.
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptFacts:
    """The receipt-level facts conditions are checked against (resolved by the engine)."""

    on: date | None
    store: str | None
    zone: str | None
    segment: str | None
    tier: str | None
    turnover_kopecks: int  # the qualifying turnover of the tier window
    first_purchase: bool
    birth_date: date | None
    # The cart's own total before any program discount (``receipt_from``/``receipt_below``);
    # set by ``pricing.price_cart`` once it has the cart.
    receipt_kopecks: int = 0


@dataclass(frozen=True, slots=True)
class LineFacts:
    """One cart line as the catalogue sees it."""

    item: str
    kinds: frozenset[str]  # the line's kind and every kind above it
    kind: str | None
    price_type: str | None
    quantity: Decimal = Decimal(0)  # ``quantity_from``; whole units count for ``every_nth_free``

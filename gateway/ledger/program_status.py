"""A customer's standing in the program: segment and tier, every change recorded with its
reason (``program_status_changes``), and what a booked purchase changes (tier upgrade,
referral points)."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import RegisterCustomerRequest
from gateway.core.pricing import PricedCart
from gateway.core.program import Program
from gateway.ledger import referrals
from gateway.ledger.context import Ctx
from gateway.ledger.phones import card_for_phone
from gateway.ledger.pricing_context import local_day, window_turnover
from gateway.store.models import Account, Card, Customer
from gateway.store.models_program import StatusChange


def record_change(
    ctx: Ctx,
    customer: Customer,
    attribute: str,
    old: str | None,
    new: str | None,
    reason: str,
    *,
    turnover_kopecks: int | None = None,
    transaction_id: str | None = None,
) -> None:
    ctx.session.add(
        StatusChange(
            customer_id=customer.id,
            attribute=attribute,
            old_value=old,
            new_value=new,
            reason=reason,
            turnover_kopecks=turnover_kopecks,
            transaction_id=transaction_id,
            created_at=ctx.now,
        )
    )


def set_segment(ctx: Ctx, customer: Customer, segment: str | None, since: date, reason: str) -> bool:
    if customer.segment == segment:
        return False
    record_change(ctx, customer, "segment", customer.segment, segment, reason)
    customer.segment = segment
    customer.segment_since = since
    ctx.session.add(customer)
    return True


def set_tier(
    ctx: Ctx,
    customer: Customer,
    tier: str | None,
    since: date,
    reason: str,
    *,
    turnover_kopecks: int | None = None,
    transaction_id: str | None = None,
) -> bool:
    if customer.tier == tier:
        return False
    record_change(
        ctx,
        customer,
        "tier",
        customer.tier,
        tier,
        reason,
        turnover_kopecks=turnover_kopecks,
        transaction_id=transaction_id,
    )
    customer.tier = tier
    customer.tier_since = since
    ctx.session.add(customer)
    return True


def effective_segment(program: Program, customer: Customer) -> str | None:
    return segment_in_effect(program, customer.segment)


def segment_in_effect(program: Program, stored: str | None) -> str | None:
    """The segment a stored code prices by: itself if the program knows it, else the default."""
    return stored if program.segment(stored) is not None else program.default_segment


def tier_decision(
    program: Program, segment: str | None, stored_tier: str | None, current: int, previous: int, *, only_up: bool
) -> tuple[str | None, int] | None:
    """The tier a customer moves to and the turnover that qualifies them, or None when the tier
    stays: up always, down if the program downgrades (never with ``only_up``: what a purchase
    books may only raise a tier, the daily job lowers it). Pure: the daily job decides a whole
    batch with it before it locks anyone. The ladder is the segment's (``program.ladder``): a
    level stored from another ladder (the customer changed segment) gives way to this one's."""
    tiers = program.ladder(segment)  # the retail tiers or the ladder of the customer's segment
    if tiers is None:
        return None if only_up or stored_tier is None else (None, 0)
    qualifying = tiers.window.qualifying(current, previous)
    target = tiers.level_for(qualifying)
    stored = tiers.level(stored_tier)
    rising = stored is None or tiers.rank(target.code) > tiers.rank(stored.code)
    falling = stored is not None and tiers.rank(target.code) < tiers.rank(stored.code) and tiers.downgrade
    if rising or (falling and not only_up):
        return None if target.code == stored_tier else (target.code, qualifying)
    return None


def recalculate_tier(
    ctx: Ctx,
    customer: Customer,
    account_id: str,
    day: date,
    reason: str = "schedule",
    *,
    only_up: bool = False,
    transaction_id: str | None = None,
) -> int:
    """Set the tier the window's turnover gives (``tier_decision``), in the window of the
    customer's ladder."""
    if not ctx.program.all_ladders():
        return 0
    segment = effective_segment(ctx.program, customer)
    current, previous = (0, 0)
    if ctx.program.ladder(segment) is not None:
        window = ctx.program.window_for(segment)
        current, previous = window_turnover(ctx.session, ctx.program, account_id, ctx.now, window)
    decided = tier_decision(ctx.program, segment, customer.tier, current, previous, only_up=only_up)
    if decided is None:
        return 0
    tier, qualifying = decided
    turnover = qualifying if tier is not None else None
    return int(set_tier(ctx, customer, tier, day, reason, turnover_kopecks=turnover, transaction_id=transaction_id))


def settle_priced_tier(ctx: Ctx, account_id: str, tier: str | None, transaction_id: str) -> None:
    """A customer with no tier yet takes the tier their booked purchase was priced and explained
    at (the lowest level, by the window's turnover): otherwise ``tier`` read ``null`` while the
    explanation already named the level. Only fills an empty tier; changes go through
    ``recalculate_tier``. A level of another ladder (the customer changed segment) is an empty
    tier here: the purchase was priced on the segment's own ladder."""
    if tier is None or not ctx.program.all_ladders():
        return
    account = ctx.session.get(Account, account_id)
    customer = ctx.session.get(Customer, account.customer_id) if account is not None else None
    if customer is None or (customer.tier is not None and _same_ladder(ctx.program, customer.tier, tier)):
        return
    set_tier(ctx, customer, tier, local_day(ctx.program, ctx.now), "purchase", transaction_id=transaction_id)


def _same_ladder(program: Program, stored: str, priced: str) -> bool:
    ladders = program.all_ladders()
    return any(ladder.level(stored) is not None and ladder.level(priced) is not None for ladder in ladders)


def after_order(ctx: Ctx, account_id: str, transaction_id: str) -> None:
    """What an applied order change does to its customer's standing: goods it shipped may take
    their turnover into a higher tier at once, as a till purchase does when the program says
    ``upgrade_on_purchase`` (returns lower it at the next daily job)."""
    if not ctx.program.all_ladders():
        return
    account = ctx.session.get(Account, account_id)
    customer = ctx.session.get(Customer, account.customer_id) if account is not None else None
    ladder = ctx.program.ladder(effective_segment(ctx.program, customer)) if customer is not None else None
    if customer is not None and ladder is not None and ladder.upgrade_on_purchase:
        recalculate_tier(
            ctx,
            customer,
            account_id,
            local_day(ctx.program, ctx.now),
            "order",
            only_up=True,
            transaction_id=transaction_id,
        )


def referrer_named(ctx: Ctx, referrer_card: str | None, referrer_customer_id: str | None) -> Customer | None:
    """The referrer a registration or a profile change names, by card or by customer id (None
    when it names none); an unknown one is ``referrer_not_found``."""
    if referrer_card is not None:
        # The phone is the card everywhere a card number is accepted (issue 19).
        card = ctx.session.get(Card, referrer_card) or card_for_phone(ctx.session, referrer_card)
        if card is None:
            raise LoyaltyError(ErrorCode.REFERRER_NOT_FOUND, referrer_card=referrer_card)
        return ctx.session.get(Customer, card.customer_id)
    if referrer_customer_id is not None:
        found = ctx.session.get(Customer, referrer_customer_id)
        if found is None:
            raise LoyaltyError(ErrorCode.REFERRER_NOT_FOUND, referrer_customer_id=referrer_customer_id)
        return found
    return None


def check_registration(ctx: Ctx, req: RegisterCustomerRequest) -> None:
    """Refuse a registration naming an unknown segment or referrer before anything is written."""
    if req.segment is not None and ctx.program.segment(req.segment) is None:
        known = ", ".join(s.code for s in ctx.program.segments) or "none"
        raise LoyaltyError(
            ErrorCode.VALIDATION_ERROR, f"unknown segment (known: {known})", field="segment", segment=req.segment
        )
    referrer_named(ctx, req.referrer_card, req.referrer_customer_id)


def on_registration(ctx: Ctx, customer: Customer, req: RegisterCustomerRequest) -> None:
    """Place a new customer in their segment and remember who referred them."""
    check_registration(ctx, req)
    segment = req.segment or ctx.program.default_segment
    if segment is not None:
        set_segment(ctx, customer, segment, local_day(ctx.program, ctx.now), "registration")
    referrer = referrer_named(ctx, req.referrer_card, req.referrer_customer_id)
    if referrer is not None and referrer.id != customer.id:
        customer.referrer_id = referrer.id
        ctx.session.add(customer)
    ctx.session.flush()


def after_purchase(ctx: Ctx, priced: PricedCart, account_id: str, transaction_id: str) -> None:
    """What a booked receipt changes beyond its own points: the tier it crossed into and the
    intermediary's referral points — in the receipt's transaction."""
    if priced.tier_upgrade is None:
        settle_priced_tier(ctx, account_id, priced.tier, transaction_id)
    else:
        account = ctx.session.get(Account, account_id)
        customer = ctx.session.get(Customer, account.customer_id) if account is not None else None
        if customer is not None:
            purchase = priced.total_kopecks - priced.discount_kopecks
            set_tier(
                ctx,
                customer,
                priced.tier_upgrade,
                local_day(ctx.program, ctx.now),
                "purchase",
                turnover_kopecks=priced.turnover_kopecks + purchase,
                transaction_id=transaction_id,
            )
    if priced.referral is not None:
        buyer = ctx.session.exec(select(Account.customer_id).where(Account.id == account_id)).first()
        referrals.book(ctx, priced, transaction_id, buyer)

"""Dry-run sample carts under a program (what ``gateway simulate`` and the simulation endpoint
show an integrator before launch). Pure: nothing is read from or written to a database."""

from __future__ import annotations

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import RuleApplication
from contracts.program import SimulatedLine, SimulationCart, SimulationResult
from gateway.core.pricing import Applied, PricedCart, price_cart
from gateway.core.program import Program, PromoCode
from gateway.core.rules.context import PricingContext, Referrer


def context_of(cart: SimulationCart) -> PricingContext:
    customer = cart.customer
    referrer = None
    if customer.referrer is not None:
        ref = customer.referrer
        referrer = Referrer(account_id="simulated-referrer", segment=ref.segment, since=ref.since, label=ref.label)
    return PricingContext(
        on=cart.on,
        store=cart.store,
        segment=customer.segment,
        tier=customer.tier,
        birth_date=customer.birth_date,
        first_purchase=customer.first_purchase,
        turnover_kopecks=money_to_kopecks(customer.turnover),
        previous_turnover_kopecks=money_to_kopecks(customer.previous_turnover),
        referrer=referrer,
    )


def rule_applications(steps: list[Applied]) -> list[RuleApplication]:
    return [
        RuleApplication(
            rule=step.rule,
            description=step.description,
            line_id=step.line_id,
            points=step.points,
            discount=kopecks_to_money(step.discount_kopecks),
        )
        for step in steps
    ]


def simulate(program: Program, cart: SimulationCart) -> SimulationResult:
    """Price one sample cart; errors are the ones ``calculate`` would report."""
    lines = list(cart.lines)
    promo = _promo(program, cart, sum(money_to_kopecks(line.total()) for line in lines))
    context = context_of(cart)
    probe = price_cart(program, lines, 0, 0, promo, context=context, reward=cart.reward)
    available = cart.customer.available_points
    balance = probe.points_cap if available is None else available
    if cart.points_to_spend > min(probe.points_cap, balance):
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            "more points than the program allows for this cart"
            if cart.points_to_spend > probe.points_cap
            else "more points than the customer has",
            cart_name=cart.name,
            requested=cart.points_to_spend,
            max_points_payable=min(probe.points_cap, balance),
        )
    priced = price_cart(program, lines, cart.points_to_spend, balance, promo, context=context, reward=cart.reward)
    return result_of(cart.name, priced)


def _promo(program: Program, cart: SimulationCart, total_kopecks: int) -> PromoCode | None:
    """The cart's promo code from the program file, refused as the ledger would refuse it for its
    dates and minimum amount (its use limits need the ledger: a dry run does not count uses)."""
    if cart.promo_code is None:
        return None
    promo = program.promo(cart.promo_code)
    if promo is None:
        raise LoyaltyError(ErrorCode.PROMOCODE_NOT_FOUND, promo_code=cart.promo_code)
    reason = None
    if cart.on is not None and promo.valid_from and cart.on < promo.valid_from:
        reason = "not_yet_valid"
    elif cart.on is not None and promo.valid_to and cart.on > promo.valid_to:
        reason = "expired"
    elif promo.min_amount is not None and total_kopecks < money_to_kopecks(promo.min_amount):
        reason = "min_amount"
    if reason is not None:
        raise LoyaltyError(ErrorCode.PROMOCODE_UNAVAILABLE, promo_code=promo.code, reason=reason)
    return promo


def result_of(name: str | None, priced: PricedCart) -> SimulationResult:
    return SimulationResult(
        name=name,
        segment=priced.segment,
        zone=priced.zone,
        tier=priced.tier,
        tier_upgrade=priced.tier_upgrade,
        total_amount=kopecks_to_money(priced.total_kopecks),
        total_discount=kopecks_to_money(priced.discount_kopecks),
        points_to_spend=priced.points_spent,
        max_points_payable=priced.max_points_payable,
        points_to_accrue=priced.points_accrued,
        points_pending=priced.points_pending,
        referral_points=priced.referral.points if priced.referral else 0,
        amount_payable=kopecks_to_money(priced.payable_kopecks),
        lines=[
            SimulatedLine(
                line_id=line.line_id,
                item=line.item,
                price_type=line.price_type,
                kind=line.kind,
                amount=kopecks_to_money(line.amount_kopecks),
                discount=kopecks_to_money(line.discount_kopecks),
                points_spent=line.points_spent,
                points_accrued=line.points_accrued,
                pending=line.pending,
                max_points=line.max_points,
                referral_points=line.referral_points,
            )
            for line in priced.lines
        ],
        explanation=rule_applications(priced.applications),
    )

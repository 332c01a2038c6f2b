"""Calculate: a cart priced under the program for a card, and the checks a spend must pass.

A read: nothing is written, no lock is taken."""

from __future__ import annotations

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import (
    BalanceResult,
    CalculateRequest,
    CalculateResult,
    LineResult,
    RuleApplication,
)
from gateway.core.pricing import PricedCart, price_cart
from gateway.core.simulation import rule_applications
from gateway.ledger import members, promos
from gateway.ledger.accounts import balance_of, find_card_with_owner
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import HoldStatus
from gateway.ledger.pricing_context import pricing_context
from gateway.store.models import Card, Hold


def check_spend(ctx: Ctx, priced_cap: int, points: int, available: int) -> None:
    if points == 0:
        return
    if points < ctx.program.redemption.min_points:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            f"at least {ctx.program.redemption.min_points} points must be spent at once",
            requested=points,
        )
    if points > priced_cap:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            "more points than the program allows for this receipt",
            requested=points,
            max_points_payable=priced_cap,
        )
    if points > available:
        raise LoyaltyError(ErrorCode.INSUFFICIENT_POINTS, requested=points, available=available)


def line_results(priced: PricedCart) -> list[LineResult]:
    return [
        LineResult(
            line_id=line.line_id,
            amount=kopecks_to_money(line.amount_kopecks),
            discount=kopecks_to_money(line.discount_kopecks),
            points_spent=line.points_spent,
            points_accrued=line.points_accrued,
        )
        for line in priced.lines
    ]


def explain(priced: PricedCart) -> list[RuleApplication]:
    return rule_applications(priced.applications)


def _reserved_by(ctx: Ctx, hold_id: str, account_id: str) -> int:
    row = ctx.session.get(Hold, hold_id)
    if row is None:
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, hold_id=hold_id)
    if row.account_id != account_id:
        raise LoyaltyError(ErrorCode.HOLD_CARD_MISMATCH, hold_id=hold_id)
    if row.status == HoldStatus.CAPTURED:
        return row.captured_points or 0
    if row.status == HoldStatus.OPEN and row.expires_at > ctx.now:
        return row.points
    return 0


def calculate(ctx: Ctx, req: CalculateRequest) -> CalculateResult:
    card: Card | None = None
    balance: BalanceResult | None = None
    available = 0
    if req.card_number is not None:
        card = find_card_with_owner(ctx, req.card_number)
        if card.status != "active":
            raise LoyaltyError(ErrorCode.CARD_BLOCKED, card_number=card.number, status=card.status)
        members.authorize(ctx, card, spend=req.points_to_spend > 0)
        balance = balance_of(ctx, card)
        available = balance.available
        if req.hold_id is not None:
            available += _reserved_by(ctx, req.hold_id, card.account_id)
    amounts = [money_to_kopecks(line.total()) for line in req.lines]
    promo = promos.applicable(ctx, list(req.promo_codes), card.account_id if card else None, sum(amounts))
    context = pricing_context(ctx, card.account_id if card else None, req.store)
    priced = price_cart(
        ctx.program, list(req.lines), req.points_to_spend, available, promo, context=context, reward=req.reward
    )
    check_spend(ctx, priced.points_cap, req.points_to_spend, available)
    return CalculateResult(
        card_number=req.card_number,
        total_amount=kopecks_to_money(priced.total_kopecks),
        total_discount=kopecks_to_money(priced.discount_kopecks),
        points_to_spend=priced.points_spent,
        max_points_payable=priced.max_points_payable if card is not None else 0,
        points_to_accrue=priced.points_accrued if card is not None else 0,
        amount_payable=kopecks_to_money(priced.payable_kopecks),
        lines=line_results(priced),
        explanation=explain(priced),
        balance=balance,
        reward=priced.reward,
    )

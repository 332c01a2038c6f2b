"""Promo codes: which code applies to a receipt, and whether it may be used now.

Two kinds answer to the same calls. Codes declared in the program file (``program.promo``)
are looked up first and keep their behaviour; otherwise the code may belong to a campaign
(``gateway.ledger.campaign_uses``: generated single-use codes, shared codes, reservations at
the till). A code that cannot be used is refused with ``promocode_unavailable`` and a stable
``reason`` (``not_yet_valid``, ``expired``, ``used_up``, ``reserved``, ``customer_limit``,
``min_amount``, ``inactive``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select

from contracts.accounts import PromoCheckRequest, PromoCodeInfo, PromoReason, PromoReleaseRequest, PromoReserveRequest
from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import money_to_kopecks
from gateway.core.program import PromoCode
from gateway.ledger import campaign_uses
from gateway.ledger.accounts import find_card
from gateway.ledger.context import Ctx
from gateway.store.models import PromoCodeUse


@dataclass(frozen=True)
class PromoStatus:
    promo: PromoCode | None
    available: bool
    reason: str  # for people: «Действует», «Истёк», …
    reason_code: PromoReason = "ok"


def _program_status(ctx: Ctx, promo: PromoCode, account_id: str | None, total_kopecks: int | None) -> PromoStatus:
    today = ctx.now.date()
    if promo.valid_from and today < promo.valid_from:
        return PromoStatus(promo, False, f"Действует с {promo.valid_from:%d.%m.%Y}", "not_yet_valid")
    if promo.valid_to and today > promo.valid_to:
        return PromoStatus(promo, False, "Срок действия истёк", "expired")
    if promo.max_uses is not None:
        used = ctx.session.exec(
            select(func.count()).select_from(PromoCodeUse).where(PromoCodeUse.code == promo.key)
        ).one()
        if int(used) >= promo.max_uses:
            return PromoStatus(promo, False, "Исчерпан", "used_up")
    if promo.per_customer is not None and account_id is not None:
        mine = ctx.session.exec(
            select(func.count())
            .select_from(PromoCodeUse)
            .where(PromoCodeUse.code == promo.key, PromoCodeUse.account_id == account_id)
        ).one()
        if int(mine) >= promo.per_customer:
            return PromoStatus(promo, False, "Уже использован этим покупателем", "customer_limit")
    if (
        promo.min_amount is not None
        and total_kopecks is not None
        and total_kopecks < money_to_kopecks(promo.min_amount)
    ):
        return PromoStatus(promo, False, f"Сумма чека меньше {promo.min_amount}", "min_amount")
    return PromoStatus(promo, True, "Действует")


def status(ctx: Ctx, code: str, account_id: str | None = None, total_kopecks: int | None = None) -> PromoStatus:
    promo = ctx.program.promo(code)
    if promo is not None:
        return _program_status(ctx, promo, account_id, total_kopecks)
    state = campaign_uses.state_of(ctx, code, account_id, total_kopecks)
    if state is None:
        return PromoStatus(None, False, "Не найден", "not_found")
    return PromoStatus(state.promo(), state.available, state.text, state.reason)


def applicable(ctx: Ctx, codes: list[str], account_id: str | None, total_kopecks: int) -> PromoCode | None:
    """The promo code of a receipt (the first one given; codes do not combine yet). A code that
    cannot be used is an error, so the till shows why instead of silently charging full price."""
    if not codes:
        return None
    result = status(ctx, codes[0], account_id, total_kopecks)
    if result.promo is None:
        raise LoyaltyError(ErrorCode.PROMOCODE_NOT_FOUND, promo_code=_shown(result, codes[0]))
    if not result.available:
        raise LoyaltyError(
            ErrorCode.PROMOCODE_UNAVAILABLE,
            result.reason,
            promo_code=_shown(result, codes[0]),
            reason=result.reason_code,
        )
    return result.promo


def _shown(result: PromoStatus, typed: str) -> str:
    """How a code appears in an error: a campaign code only masked (error details are logged and
    journaled, and the code may still be worth something)."""
    if isinstance(result.promo, campaign_uses.CampaignPromo):
        return result.promo.key
    return result.promo.code if result.promo is not None else typed


def record_use(ctx: Ctx, promo: PromoCode, transaction_id: str, account_id: str) -> None:
    """The receipt (or order) ``transaction_id`` used ``promo``. A campaign code is re-checked
    under its lock and consumed; this raises ``promocode_unavailable`` if another till took its
    last use meanwhile, which rolls the whole receipt back."""
    if isinstance(promo, campaign_uses.CampaignPromo):
        campaign_uses.consume(ctx, promo, transaction_id, account_id)
        return
    ctx.session.add(PromoCodeUse(transaction_id=transaction_id, code=promo.key, account_id=account_id, used_at=ctx.now))


def recorded_use(ctx: Ctx, transaction_id: str) -> PromoCode | None:
    """The promo code a transaction already used, of either kind (to price an order again with
    it without counting its own use against the limits)."""
    program_use = ctx.session.get(PromoCodeUse, transaction_id)
    if program_use is not None:
        return ctx.program.promo(program_use.code)
    return campaign_uses.recorded(ctx, transaction_id)


def check(ctx: Ctx, req: PromoCheckRequest) -> PromoCodeInfo:
    """How a code of either kind stands for a till: available or why not, and its discount."""
    promo = ctx.program.promo(req.code)
    if promo is None:
        found = campaign_uses.check(ctx, req)
        if found is None:
            raise LoyaltyError(ErrorCode.PROMOCODE_NOT_FOUND)
        return found
    account_id = None
    if req.card_number is not None:
        account_id = find_card(ctx, req.card_number).account_id
    total = money_to_kopecks(req.amount) if req.amount is not None else None
    result = _program_status(ctx, promo, account_id, total)
    return PromoCodeInfo(
        code=promo.code,
        available=result.available,
        reason=result.reason_code,
        status=result.reason,
        description=promo.description,
        discount_percent=promo.discount_percent,
        discount_amount=promo.discount_amount,
    )


def reserve(ctx: Ctx, req: PromoReserveRequest) -> PromoCodeInfo:
    """Reserve a code for a receipt being rung up. A campaign code is reserved for this client
    (refused with its reason if it cannot be used); a program-file code needs no reservation
    and is only checked."""
    if ctx.program.promo(req.code) is None:
        reserved = campaign_uses.reserve(ctx, req)
        if reserved is None:
            raise LoyaltyError(ErrorCode.PROMOCODE_NOT_FOUND)
        return reserved
    info = check(ctx, PromoCheckRequest(code=req.code, card_number=req.card_number))
    if not info.available:
        raise LoyaltyError(ErrorCode.PROMOCODE_UNAVAILABLE, info.status, promo_code=info.code, reason=info.reason)
    return info


def release(ctx: Ctx, req: PromoReleaseRequest) -> PromoCodeInfo:
    """Release a reservation, or this client's reservations of a code (none for program codes)."""
    if req.code is not None and ctx.program.promo(req.code) is not None:
        return check(ctx, PromoCheckRequest(code=req.code))
    released = campaign_uses.release(ctx, req)
    if released is None:
        raise LoyaltyError(ErrorCode.PROMOCODE_NOT_FOUND)
    return released

"""Promo codes: which code applies to a receipt, and whether it may be used now."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import money_to_kopecks
from gateway.core.program import PromoCode
from gateway.ledger.context import Ctx
from gateway.store.models import PromoCodeUse


@dataclass(frozen=True)
class PromoStatus:
    promo: PromoCode | None
    available: bool
    reason: str  # for people: «Действует», «Истёк», …


def status(ctx: Ctx, code: str, account_id: str | None = None, total_kopecks: int | None = None) -> PromoStatus:
    promo = ctx.program.promo(code)
    if promo is None:
        return PromoStatus(None, False, "Не найден")
    today = ctx.now.date()
    if promo.valid_from and today < promo.valid_from:
        return PromoStatus(promo, False, f"Действует с {promo.valid_from:%d.%m.%Y}")
    if promo.valid_to and today > promo.valid_to:
        return PromoStatus(promo, False, "Срок действия истёк")
    if promo.max_uses is not None:
        used = ctx.session.exec(
            select(func.count()).select_from(PromoCodeUse).where(PromoCodeUse.code == promo.key)
        ).one()
        if int(used) >= promo.max_uses:
            return PromoStatus(promo, False, "Исчерпан")
    if promo.per_customer is not None and account_id is not None:
        mine = ctx.session.exec(
            select(func.count())
            .select_from(PromoCodeUse)
            .where(PromoCodeUse.code == promo.key, PromoCodeUse.account_id == account_id)
        ).one()
        if int(mine) >= promo.per_customer:
            return PromoStatus(promo, False, "Уже использован этим покупателем")
    if (
        promo.min_amount is not None
        and total_kopecks is not None
        and total_kopecks < money_to_kopecks(promo.min_amount)
    ):
        return PromoStatus(promo, False, f"Сумма чека меньше {promo.min_amount}")
    return PromoStatus(promo, True, "Действует")


def applicable(ctx: Ctx, codes: list[str], account_id: str | None, total_kopecks: int) -> PromoCode | None:
    """The promo code of a receipt (the first one given; codes do not combine yet). A code that
    cannot be used is an error, so the till shows why instead of silently charging full price."""
    if not codes:
        return None
    result = status(ctx, codes[0], account_id, total_kopecks)
    if result.promo is None:
        raise LoyaltyError(ErrorCode.PROMOCODE_NOT_FOUND, promo_code=codes[0])
    if not result.available:
        raise LoyaltyError(ErrorCode.PROMOCODE_UNAVAILABLE, result.reason, promo_code=codes[0])
    return result.promo


def record_use(ctx: Ctx, promo: PromoCode, transaction_id: str, account_id: str) -> None:
    ctx.session.add(PromoCodeUse(transaction_id=transaction_id, code=promo.key, account_id=account_id, used_at=ctx.now))

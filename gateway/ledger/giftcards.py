"""Gift certificates: issue, look up, hold, redeem, release.

Money in kopecks; the balance is the sum of the certificate's entries (issue +, redeem -), and
what can be spent is the balance less open holds. A hold resolves once (redeemed, released, or
voided by the sweeper at its deadline). The certificate's row is locked (PostgreSQL) or the
database write lock is held (SQLite) while money moves.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import (
    GiftCardHoldRequest,
    GiftCardInfoRequest,
    GiftCardIssueRequest,
    GiftCardRedeemRequest,
    GiftCardReleaseRequest,
    GiftCardResult,
)
from gateway.ledger.context import Ctx
from gateway.store.models import GiftCard, GiftCardEntry, GiftCardHold

GIFT_REF_NAMESPACE = uuid.UUID("9b3d1f0e-6a2c-5e47-8d1f-3c5b7a9e0f12")
DEFAULT_HOLD_SECONDS = 900


def gift_ref(number: str) -> str:
    return str(uuid.uuid5(GIFT_REF_NAMESPACE, number))


def _get(ctx: Ctx, number: str, *, lock: bool = False) -> GiftCard:
    stmt = select(GiftCard).where(GiftCard.number == number)
    if lock and not ctx.db.is_sqlite:
        stmt = stmt.with_for_update()
    card = ctx.session.exec(stmt).first()
    if card is None:
        raise LoyaltyError(ErrorCode.GIFT_CARD_NOT_FOUND, number=number)
    return card


def _amounts(ctx: Ctx, number: str) -> tuple[int, int]:
    balance = ctx.session.exec(
        select(func.coalesce(func.sum(GiftCardEntry.amount_kopecks), 0)).where(GiftCardEntry.number == number)
    ).one()
    held = ctx.session.exec(
        select(func.coalesce(func.sum(GiftCardHold.amount_kopecks), 0)).where(
            GiftCardHold.number == number, GiftCardHold.status == "open", col(GiftCardHold.expires_at) > ctx.now
        )
    ).one()
    return int(balance), int(held)


def _result(ctx: Ctx, card: GiftCard, hold: GiftCardHold | None = None) -> GiftCardResult:
    balance, held = _amounts(ctx, card.number)
    return GiftCardResult(
        number=card.number,
        ref=card.ref,
        name=card.name,
        nominal=kopecks_to_money(card.nominal_kopecks),
        balance=kopecks_to_money(balance),
        available=kopecks_to_money(max(balance - held, 0)),
        blocked=card.blocked,
        expired=card.expires_at is not None and card.expires_at <= ctx.now,
        expires_at=card.expires_at,
        hold_id=hold.id if hold else None,
        held=kopecks_to_money(hold.amount_kopecks) if hold and hold.status == "open" else None,
        redeemed=kopecks_to_money(hold.redeemed_kopecks or 0) if hold and hold.status == "committed" else None,
    )


def _usable(ctx: Ctx, card: GiftCard) -> None:
    if card.blocked:
        raise LoyaltyError(ErrorCode.GIFT_CARD_BLOCKED, number=card.number)
    if card.expires_at is not None and card.expires_at <= ctx.now:
        raise LoyaltyError(ErrorCode.GIFT_CARD_EXPIRED, number=card.number)


def issue(ctx: Ctx, req: GiftCardIssueRequest) -> GiftCardResult:
    number = req.number or f"GC{secrets.randbelow(10**12):012d}"
    if ctx.session.get(GiftCard, number) is not None:
        raise LoyaltyError(ErrorCode.CARD_ALREADY_EXISTS, number=number)
    card = GiftCard(
        number=number,
        ref=gift_ref(number),
        name=req.name,
        nominal_kopecks=money_to_kopecks(req.amount),
        expires_at=req.expires_at,
        issued_by=ctx.client_id,
        created_at=ctx.now,
    )
    ctx.session.add(card)
    ctx.session.flush()
    ctx.session.add(
        GiftCardEntry(
            number=number,
            kind="issue",
            amount_kopecks=card.nominal_kopecks,
            client_id=ctx.client_id,
            created_at=ctx.now,
        )
    )
    ctx.session.flush()
    return _result(ctx, card)


def info(ctx: Ctx, req: GiftCardInfoRequest) -> GiftCardResult:
    if req.number is not None:
        return _result(ctx, _get(ctx, req.number))
    card = ctx.session.exec(select(GiftCard).where(GiftCard.ref == req.ref)).first()
    if card is None:
        raise LoyaltyError(ErrorCode.GIFT_CARD_NOT_FOUND, ref=req.ref)
    return _result(ctx, card)


def hold(ctx: Ctx, req: GiftCardHoldRequest) -> GiftCardResult:
    card = _get(ctx, req.number, lock=True)
    _usable(ctx, card)
    amount = money_to_kopecks(req.amount)
    balance, held = _amounts(ctx, card.number)
    if amount > balance - held:
        raise LoyaltyError(ErrorCode.GIFT_CARD_INSUFFICIENT, available=str(kopecks_to_money(balance - held)))
    row = GiftCardHold(
        id=str(uuid.uuid4()),
        number=card.number,
        client_id=ctx.client_id,
        tag=req.tag,
        amount_kopecks=amount,
        expires_at=ctx.now + timedelta(seconds=req.ttl_seconds or DEFAULT_HOLD_SECONDS),
        created_at=ctx.now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    return _result(ctx, card, row)


def _open_hold(ctx: Ctx, hold_id: str) -> GiftCardHold:
    row = ctx.session.get(GiftCardHold, hold_id)
    if row is None:
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, hold_id=hold_id)
    return row


def redeem(ctx: Ctx, req: GiftCardRedeemRequest) -> GiftCardResult:
    card = _get(ctx, req.number, lock=True)
    _usable(ctx, card)
    amount = money_to_kopecks(req.amount)
    row: GiftCardHold | None = None
    if req.hold_id is not None:
        row = _open_hold(ctx, req.hold_id)
        ctx.session.refresh(row)
        if row.number != card.number:
            raise LoyaltyError(ErrorCode.HOLD_CARD_MISMATCH, hold_id=row.id)
        if row.status != "open":
            raise LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, hold_id=row.id, status=row.status)
        if row.expires_at <= ctx.now:
            raise LoyaltyError(ErrorCode.HOLD_EXPIRED, hold_id=row.id)
        if amount > row.amount_kopecks:
            raise LoyaltyError(ErrorCode.GIFT_CARD_INSUFFICIENT, held=str(kopecks_to_money(row.amount_kopecks)))
        row.status = "committed"
        row.redeemed_kopecks = amount
        row.resolved_at = ctx.now
        ctx.session.add(row)
    else:
        balance, held = _amounts(ctx, card.number)
        if amount > balance - held:
            raise LoyaltyError(ErrorCode.GIFT_CARD_INSUFFICIENT, available=str(kopecks_to_money(balance - held)))
    ctx.session.add(
        GiftCardEntry(
            number=card.number,
            kind="redeem",
            amount_kopecks=-amount,
            hold_id=req.hold_id,
            receipt_id=req.receipt_id,
            client_id=ctx.client_id,
            created_at=ctx.now,
        )
    )
    ctx.session.flush()
    return _result(ctx, card, row)


def release(ctx: Ctx, req: GiftCardReleaseRequest) -> GiftCardResult:
    row = _open_hold(ctx, req.hold_id)
    card = _get(ctx, row.number, lock=True)
    ctx.session.refresh(row)
    if row.status != "open":
        raise LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, hold_id=row.id, status=row.status)
    row.status = "voided"
    row.resolved_at = ctx.now
    ctx.session.add(row)
    ctx.session.flush()
    return _result(ctx, card, row)


def sweep(ctx: Ctx, limit: int) -> int:
    """Void gift certificate holds past their deadline (they stop counting as held anyway)."""
    rows = ctx.session.exec(
        select(GiftCardHold)
        .where(GiftCardHold.status == "open", col(GiftCardHold.expires_at) <= ctx.now)
        .order_by(col(GiftCardHold.expires_at))
        .limit(limit)
    ).all()
    for row in rows:
        row.status = "voided"
        row.resolved_at = ctx.now
        ctx.session.add(row)
    return len(rows)


def find_holds(ctx: Ctx, number: str, tag: str | None) -> list[GiftCardHold]:
    return list(
        ctx.session.exec(
            select(GiftCardHold)
            .where(GiftCardHold.number == number, GiftCardHold.client_id == ctx.client_id, GiftCardHold.tag == tag)
            .order_by(col(GiftCardHold.created_at).desc())
            .limit(20)
        ).all()
    )

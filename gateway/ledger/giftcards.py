"""Gift certificates: issue, look up, hold, redeem, release, refund, block, expire.

Money in kopecks; the balance is the sum of the certificate's entries (issue +, redeem -,
refund +, expire -), and what can be spent is the balance less open holds. A hold resolves once
(redeemed, released, or voided by the sweeper at its deadline). A refund puts back at most what
was paid with the certificate, once per refund id. When a certificate expires, the job books
what was left on it as ``expire`` (the retailer's income from then on). The certificate's row is
locked (PostgreSQL) or the database write lock is held (SQLite) while money moves.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from contracts.accounts import GiftCardBlockRequest, GiftCardRefundRequest, GiftCardRefundResult
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
from gateway.store.models_accounts import GiftCardRefund, GiftCardStatusChange

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
    # Another client's hold is unknown to the caller: it may neither redeem nor release it.
    if row is None or row.client_id != ctx.client_id:
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


# -- refunds, blocking, expiry -----------------------------------------------------------------


def _refund_result(ctx: Ctx, row: GiftCardRefund, card: GiftCard) -> GiftCardRefundResult:
    return GiftCardRefundResult(
        refund_id=row.refund_id,
        receipt_id=row.receipt_id,
        amount=kopecks_to_money(row.amount_kopecks),
        card=_result(ctx, card),
    )


def _refundable(ctx: Ctx, number: str, receipt_id: str | None) -> int:
    """Kopecks paid with the certificate (on ``receipt_id``, if given) not yet put back."""
    redeemed = select(func.coalesce(func.sum(GiftCardEntry.amount_kopecks), 0)).where(
        GiftCardEntry.number == number, GiftCardEntry.kind == "redeem"
    )
    refunded = select(func.coalesce(func.sum(GiftCardRefund.amount_kopecks), 0)).where(GiftCardRefund.number == number)
    if receipt_id is not None:
        redeemed = redeemed.where(GiftCardEntry.receipt_id == receipt_id)
        refunded = refunded.where(GiftCardRefund.receipt_id == receipt_id)
    return -int(ctx.session.exec(redeemed).one()) - int(ctx.session.exec(refunded).one())


def refund(ctx: Ctx, req: GiftCardRefundRequest) -> GiftCardRefundResult:
    """Goods paid with the certificate came back: their money goes back onto it.

    Applied once per (client, ``refund_id``): the same refund again returns the first result,
    the same id with other content is ``idempotency_conflict``. A refund never puts back more than
    was paid with the certificate (on ``receipt_id``, when given). An expired certificate takes
    no money back (the till returns it another way); a blocked one does (it stays blocked)."""
    card = _get(ctx, req.number, lock=True)
    amount = money_to_kopecks(req.amount)
    done = ctx.session.exec(
        select(GiftCardRefund).where(
            GiftCardRefund.client_id == ctx.client_id, GiftCardRefund.refund_id == req.refund_id
        )
    ).first()
    if done is not None:
        if (done.number, done.amount_kopecks, done.receipt_id) != (card.number, amount, req.receipt_id):
            raise LoyaltyError(
                ErrorCode.IDEMPOTENCY_CONFLICT,
                "this refund_id was already used for another refund",
                refund_id=req.refund_id,
            )
        return _refund_result(ctx, done, card)
    if card.expires_at is not None and card.expires_at <= ctx.now:
        raise LoyaltyError(ErrorCode.GIFT_CARD_EXPIRED, number=card.number)
    refundable = _refundable(ctx, card.number, req.receipt_id)
    if amount > refundable:
        raise LoyaltyError(
            ErrorCode.GIFT_CARD_REFUND_EXCEEDS,
            refundable=str(kopecks_to_money(max(refundable, 0))),
            requested=str(req.amount),
            receipt_id=req.receipt_id,
        )
    entry = GiftCardEntry(
        number=card.number,
        kind="refund",
        amount_kopecks=amount,
        receipt_id=req.receipt_id,
        client_id=ctx.client_id,
        created_at=ctx.now,
    )
    ctx.session.add(entry)
    ctx.session.flush()
    assert entry.id is not None
    row = GiftCardRefund(
        client_id=ctx.client_id,
        refund_id=req.refund_id,
        number=card.number,
        receipt_id=req.receipt_id,
        amount_kopecks=amount,
        entry_id=entry.id,
        created_at=ctx.now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    return _refund_result(ctx, row, card)


def set_blocked(ctx: Ctx, req: GiftCardBlockRequest) -> GiftCardResult:
    """Block (lost, suspected fraud, printed but not sold yet) or unblock a certificate. A
    blocked certificate cannot be held or redeemed; its open holds stay until they resolve, and
    redeeming from them is refused too. Setting the state it already has changes nothing."""
    card = _get(ctx, req.number, lock=True)
    if card.blocked != req.blocked:
        card.blocked = req.blocked
        ctx.session.add(card)
        ctx.session.add(
            GiftCardStatusChange(
                number=card.number,
                blocked=req.blocked,
                reason=req.reason,
                client_id=ctx.client_id,
                created_at=ctx.now,
            )
        )
        ctx.session.flush()
    return _result(ctx, card)


def expire_due(ctx: Ctx, limit: int) -> int:
    """Book what is left on certificates past their expiry as ``expire`` (at most ``limit`` of
    them); their open holds are voided first. Returns how many certificates expired. Safe to
    run twice or from several workers: an expired certificate has nothing left to expire."""
    balance = func.coalesce(func.sum(GiftCardEntry.amount_kopecks), 0)
    due = ctx.session.exec(
        select(GiftCard.number)
        .join(GiftCardEntry, col(GiftCardEntry.number) == col(GiftCard.number))
        .where(col(GiftCard.expires_at).is_not(None), col(GiftCard.expires_at) <= ctx.now)
        .group_by(col(GiftCard.number))
        .having(balance > 0)
        .order_by(col(GiftCard.number))
        .limit(limit)
    ).all()
    expired = 0
    for number in due:
        card = _get(ctx, number, lock=True)
        for row in ctx.session.exec(
            select(GiftCardHold).where(GiftCardHold.number == number, GiftCardHold.status == "open")
        ).all():
            row.status = "voided"
            row.resolved_at = ctx.now
            ctx.session.add(row)
        left, _held = _amounts(ctx, card.number)
        if left <= 0:  # another worker got here first
            continue
        ctx.session.add(
            GiftCardEntry(
                number=number, kind="expire", amount_kopecks=-left, client_id=ctx.client_id, created_at=ctx.now
            )
        )
        ctx.session.flush()
        expired += 1
    return expired

"""Holds: points reserved for a purchase, captured as a till's payment, or given back.

A hold takes points out of their lots into ``held`` allocations (soonest-expiring first); a
receipt spends what it keeps (``keep_held``), a void gives everything back (``void_hold``). Each
operation runs under the account's lock; the status moves only through ``hold_states.move``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import TypeAdapter
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import (
    BalanceResult,
    CancelRequest,
    CancelResult,
    CaptureRequest,
    CartLine,
    HoldRequest,
    HoldResult,
)
from gateway.ledger import members
from gateway.ledger.accounts import (
    balance_of,
    expire_lot,
    find_card,
    lock_account,
)
from gateway.ledger.booking import Booking
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import UNRESOLVED, HoldStatus, move
from gateway.store.models import Allocation, Card, Hold, Lot

CART_LINES = TypeAdapter(list[CartLine])  # a cart kept on a hold (``Hold.cart_json``)


def hold_result(ctx: Ctx, hold: Hold, card: Card | None = None, balance: BalanceResult | None = None) -> HoldResult:
    return HoldResult(
        hold_id=hold.id,
        card_number=hold.card_number,
        points=hold.points,
        status=hold.status,
        captured_points=hold.captured_points,
        tag=hold.tag,
        receipt_id=hold.receipt_id,
        transaction_id=hold.transaction_id,
        expires_at=hold.expires_at,
        balance=balance or balance_of(ctx, card or find_card(ctx, hold.card_number)),
    )


def hold(ctx: Ctx, req: HoldRequest) -> HoldResult:
    booking = Booking.load(ctx, req.card_number)  # the account locked and read at once
    card = booking.card
    if card.status != "active":
        raise LoyaltyError(
            ErrorCode.CARD_BLOCKED, card_number=req.card_number, status=card.status, replaced_by=card.replaced_by
        )
    members.authorize(ctx, card, spend=True)
    available = booking.available()
    if req.points > available:
        raise LoyaltyError(ErrorCode.INSUFFICIENT_POINTS, requested=req.points, available=available)
    if req.points < ctx.program.redemption.min_points:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            f"at least {ctx.program.redemption.min_points} points must be held",
        )
    ttl = req.ttl_seconds or ctx.program.holds.ttl_seconds
    new_hold = Hold(
        id=str(uuid.uuid4()),
        account_id=booking.account.id,
        card_number=card.number,
        client_id=ctx.client_id,
        points=req.points,
        status=HoldStatus.OPEN,
        receipt_id=req.receipt_id,
        tag=req.tag,
        expires_at=ctx.now + timedelta(seconds=ttl),
        created_at=ctx.now,
    )
    ctx.session.add(new_hold)
    booking.reserve(req.points, hold_id=new_hold.id)
    booking.write()
    return hold_result(ctx, new_hold, card, booking.balance())


def _held_allocations(ctx: Ctx, hold_id: str) -> list[Allocation]:
    allocations = ctx.session.exec(
        select(Allocation).where(Allocation.hold_id == hold_id, Allocation.state == "held")
    ).all()
    lots = {
        lot.id: lot
        for lot in ctx.session.exec(select(Lot).where(col(Lot.id).in_([a.lot_id for a in allocations]))).all()
    }

    def order(a: Allocation) -> tuple[bool, datetime, int]:
        expires = lots[a.lot_id].expires_at
        return (expires is None, expires or datetime.max.replace(tzinfo=ctx.now.tzinfo), a.lot_id)

    return sorted(allocations, key=order)


def _release(ctx: Ctx, allocation: Allocation, points: int) -> None:
    """Give ``points`` of a held allocation back to its lot."""
    lot = ctx.session.get(Lot, allocation.lot_id)
    assert lot is not None
    lot.remaining += points
    ctx.session.add(lot)
    if points == allocation.points:
        allocation.state = "released"
    else:
        allocation.points -= points
        ctx.session.add(
            Allocation(
                account_id=allocation.account_id,
                lot_id=allocation.lot_id,
                state="released",
                points=points,
                hold_id=allocation.hold_id,
                created_at=ctx.now,
            )
        )
    ctx.session.add(allocation)
    # A lot that expired while its points were held expires the moment they come back.
    if lot.expires_at is not None and lot.expires_at <= ctx.now:
        expire_lot(ctx, lot)


def void_hold(ctx: Ctx, hold_row: Hold, reason: str) -> int:
    """Release every held point of an open hold; the hold is resolved for good."""
    released = 0
    for allocation in _held_allocations(ctx, hold_row.id):
        released += allocation.points
        _release(ctx, allocation, allocation.points)
    move(hold_row, HoldStatus.VOIDED, ctx.now)
    hold_row.void_reason = reason
    ctx.session.add(hold_row)
    ctx.session.flush()
    return released


def keep_held(ctx: Ctx, hold_row: Hold, points: int) -> tuple[list[Allocation], int]:
    """Keep ``points`` of a hold (soonest-expiring first) and release the rest.

    Returns the allocations still held and the number of points released."""
    kept: list[Allocation] = []
    released = 0
    left = points
    for allocation in _held_allocations(ctx, hold_row.id):
        if left >= allocation.points:
            left -= allocation.points
            kept.append(allocation)
        elif left > 0:
            released += allocation.points - left
            _release(ctx, allocation, allocation.points - left)
            kept.append(allocation)
            left = 0
        else:
            released += allocation.points
            _release(ctx, allocation, allocation.points)
    return kept, released


def get_hold(ctx: Ctx, hold_id: str) -> Hold:
    row = ctx.session.get(Hold, hold_id)
    if row is None:
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, hold_id=hold_id)
    return row


def own_hold(ctx: Ctx, hold_id: str) -> Hold:
    """A hold the calling client made: another client's hold is reported as unknown, so hold ids
    read elsewhere (a receipt, a history page) neither reveal nor move anyone else's points."""
    row = get_hold(ctx, hold_id)
    if row.client_id != ctx.client_id:
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, hold_id=hold_id)
    return row


def not_usable(row: Hold) -> LoyaltyError:
    """Why a hold can no longer be captured or committed: a hold the sweeper voided at its
    deadline is reported as expired, whoever got there first (the till or the sweeper)."""
    if row.status == HoldStatus.VOIDED and row.void_reason == "expired":
        return LoyaltyError(ErrorCode.HOLD_EXPIRED, hold_id=row.id, expired_at=row.expires_at.isoformat())
    return LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, hold_id=row.id, status=row.status, reason=row.void_reason)


def cancel(ctx: Ctx, req: CancelRequest) -> CancelResult:
    row = own_hold(ctx, req.hold_id)
    lock_account(ctx, row.account_id)
    ctx.session.refresh(row)  # re-read under the lock: another writer may have resolved it
    if row.status not in UNRESOLVED:
        raise LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, hold_id=row.id, status=row.status, reason=row.void_reason)
    released = void_hold(ctx, row, "cancelled")
    card = find_card(ctx, row.card_number)
    return CancelResult(hold_id=row.id, status="voided", points_released=released, balance=balance_of(ctx, card))


def capture(ctx: Ctx, req: CaptureRequest) -> HoldResult:
    row = own_hold(ctx, req.hold_id)
    lock_account(ctx, row.account_id)
    ctx.session.refresh(row)
    if row.status == HoldStatus.CAPTURED and row.captured_points == req.points:
        return hold_result(ctx, row)  # the same write-off sent again
    if row.status != HoldStatus.OPEN:
        raise not_usable(row)
    if row.expires_at <= ctx.now:
        raise LoyaltyError(ErrorCode.HOLD_EXPIRED, hold_id=row.id, expired_at=row.expires_at.isoformat())
    if req.points > row.points:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED, "more points than the hold reserved", requested=req.points, held=row.points
        )
    keep_held(ctx, row, req.points)
    move(row, HoldStatus.CAPTURED, ctx.now)
    row.captured_points = req.points
    row.expires_at = ctx.now + timedelta(seconds=req.window_seconds or ctx.program.holds.capture_window_seconds)
    if req.lines is not None:
        row.cart_json = CART_LINES.dump_json(req.lines).decode()
    ctx.session.add(row)
    ctx.session.flush()
    return hold_result(ctx, row)


def remember_cart(ctx: Ctx, hold_id: str, lines: list[CartLine]) -> None:
    """Keep the last calculated cart on an unresolved hold: if its receipt never arrives, the
    gateway books that cart (what the till showed the customer) instead of a bare payment."""
    row = own_hold(ctx, hold_id)
    if row.status in UNRESOLVED:
        row.cart_json = CART_LINES.dump_json(lines).decode()
        ctx.session.add(row)


def find_holds(ctx: Ctx, card_number: str, tag: str | None, statuses: tuple[str, ...]) -> list[HoldResult]:
    """This client's holds on a card with a given tag and status, newest first."""
    rows = ctx.session.exec(
        select(Hold)
        .where(
            Hold.client_id == ctx.client_id,
            Hold.card_number == card_number,
            Hold.tag == tag,
            col(Hold.status).in_(statuses),
        )
        .order_by(col(Hold.created_at).desc())
        .limit(20)
    ).all()
    return [hold_result(ctx, row) for row in rows]

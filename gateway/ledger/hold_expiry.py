"""Holds past their deadline: open ones are voided (their points come back), captured ones are
booked as the receipt that never arrived (their points were paid at the till)."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import col, select

from contracts.errors import LoyaltyError
from contracts.money import kopecks_to_money
from contracts.operations import CartLine, CommitRequest, CommitResult
from gateway.ledger.accounts import lock_account
from gateway.ledger.booking import Booking
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import UNRESOLVED, HoldStatus
from gateway.ledger.holds import CART_LINES, hold_result, void_hold
from gateway.ledger.receipts import book_receipt
from gateway.outbound.outbox import Event
from gateway.store.models import Hold


def _finalize_captured(ctx: Ctx, row: Hold) -> CommitResult:
    """Book the receipt of a captured hold whose receipt never arrived."""
    points = row.captured_points or 0
    if row.cart_json:
        lines = CART_LINES.validate_json(row.cart_json)
    else:
        value = kopecks_to_money(points * ctx.program.point_value_kopecks)
        lines = [CartLine(line_id="1", item="points-payment", quantity=Decimal(1), price=value)]
    request = CommitRequest(
        receipt_id=f"hold:{row.id}", card_number=row.card_number, hold_id=row.id, points_to_spend=points, lines=lines
    )
    booked = Ctx(ctx.db, ctx.session, ctx.program, ctx.now, row.client_id)
    booking = Booking.load(booked, row.card_number)  # the account is locked (resolve_due_hold)
    return book_receipt(booked, request, booking, canonical_hash("commit", request))


SWEEP_ATTEMPTS = 3


def resolve_due_hold(ctx: Ctx, row: Hold) -> bool:
    """Resolve one hold past its deadline (under its account's lock); True if it was resolved."""
    lock_account(ctx, row.account_id)
    ctx.session.refresh(row)
    if row.expires_at > ctx.now:
        return False
    if row.status == HoldStatus.OPEN:
        void_hold(ctx, row, "expired")
        ctx.events.append(Event("hold.expired", row.id, hold_result(ctx, row).model_dump(mode="json")))
        return True
    if row.status == HoldStatus.CAPTURED:
        booked = _finalize_captured(ctx, row)
        ctx.events.append(Event("receipt.committed", booked.transaction_id, booked.model_dump(mode="json")))
        return True
    return False


def sweep_expired_holds(ctx: Ctx, limit: int) -> int:
    """Resolve holds past their deadline, oldest deadline first, at most ``limit``: open holds are
    voided (their points come back); captured holds are booked (their points were paid).

    A hold whose resolution fails is retried on later passes; after ``SWEEP_ATTEMPTS`` failures
    it is set aside with the reason (``attention``) for an operator instead of being retried
    forever (``gateway tx stuck``)."""
    due = ctx.session.exec(
        select(Hold)
        .where(
            col(Hold.status).in_(UNRESOLVED),
            col(Hold.expires_at) <= ctx.now,
            col(Hold.attention).is_(None),
        )
        .order_by(col(Hold.expires_at))
        .limit(limit)
    ).all()
    resolved = 0
    for row in due:
        events_before = len(ctx.events)
        try:
            with ctx.session.begin_nested():
                resolved += resolve_due_hold(ctx, row)
        except Exception as error:
            del ctx.events[events_before:]
            ctx.session.refresh(row)
            row.sweep_failures += 1
            reason = error.message if isinstance(error, LoyaltyError) else f"{type(error).__name__}: {error}"
            if row.sweep_failures >= SWEEP_ATTEMPTS:
                row.attention = reason[:1000]
            ctx.session.add(row)
    return resolved

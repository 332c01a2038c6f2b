"""Commit: a receipt booked once — the points it spends (from its hold, or from the account)
and the points it earns — and the answer a till gets for it, also when it sends it again."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import TypeAdapter
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import (
    CommitRequest,
    CommitResult,
    LineResult,
    OfflineReceiptRequest,
    RuleApplication,
)
from gateway.core.pricing import price_cart
from gateway.ledger import members, program_status, promos
from gateway.ledger.accounts import (
    add_entry,
    add_lot,
    available_points,
    balance_of,
    expire_due_lots,
    find_card,
    lock_card_account,
)
from gateway.ledger.calculation import check_spend, explain
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import UNRESOLVED, HoldStatus, move
from gateway.ledger.holds import get_hold, keep_held, not_usable, own_hold
from gateway.ledger.movements import allocate
from gateway.ledger.pricing_context import pricing_context
from gateway.store.models import Allocation, Card, Hold, Receipt, ReceiptLine

EXPLANATION = TypeAdapter(list[RuleApplication])


# ---------------------------------------------------------------------------------------------


def commit_result(ctx: Ctx, receipt: Receipt, card: Card) -> CommitResult:
    lines = ctx.session.exec(
        select(ReceiptLine).where(ReceiptLine.receipt_txn_id == receipt.id).order_by(col(ReceiptLine.position))
    ).all()
    paid_by_points = receipt.points_spent * receipt.point_value_kopecks
    discount = sum(line.discount_kopecks for line in lines)
    explanation = EXPLANATION.validate_json(receipt.explanation_json)
    return CommitResult(
        transaction_id=receipt.id,
        receipt_id=receipt.receipt_id,
        card_number=receipt.card_number,
        total_amount=kopecks_to_money(receipt.total_kopecks),
        points_spent=receipt.points_spent,
        points_accrued=receipt.points_accrued,
        points_released=receipt.points_released,
        amount_paid_by_points=kopecks_to_money(paid_by_points),
        total_discount=kopecks_to_money(discount),
        amount_payable=kopecks_to_money(receipt.total_kopecks - discount - paid_by_points),
        lines=[
            LineResult(
                line_id=line.line_id,
                amount=kopecks_to_money(line.amount_kopecks + line.discount_kopecks),
                discount=kopecks_to_money(line.discount_kopecks),
                points_spent=line.points_spent,
                points_accrued=line.points_accrued,
            )
            for line in lines
        ],
        explanation=explanation,
        balance=balance_of(ctx, card),
    )


def find_receipt(ctx: Ctx, receipt_id: str) -> Receipt | None:
    """The calling client's receipt, by its own id or by our transaction id. Another client's
    receipt is not found: its transaction id (shown in a customer's history) gives no right to it."""
    own = ctx.session.exec(
        select(Receipt).where(Receipt.client_id == ctx.client_id, Receipt.receipt_id == receipt_id)
    ).first()
    if own is not None:
        return own
    by_txn = ctx.session.get(Receipt, receipt_id)
    return by_txn if by_txn is not None and by_txn.client_id == ctx.client_id else None


def commit(ctx: Ctx, req: CommitRequest) -> CommitResult:
    content_hash = canonical_hash("commit", req)
    booked = _booked_before(ctx, req.receipt_id, content_hash)
    if booked is not None:
        return booked
    card, account = lock_card_account(ctx, req.card_number)
    # Look again under the account's lock: a concurrent commit of the same receipt (sent to
    # another replica under another key) may have been booked while we waited for it.
    booked = _booked_before(ctx, req.receipt_id, content_hash)
    if booked is not None:
        return booked
    members.authorize_receipt(ctx, card, req)
    return book_receipt(ctx, req, card, account.id, content_hash)


def _booked_before(ctx: Ctx, receipt_id: str, content_hash: str) -> CommitResult | None:
    """The result of this client's receipt ``receipt_id`` if it was booked already (a till retry
    with a new request id: same answer, no change); an error if it was booked with other content."""
    existing = find_receipt(ctx, receipt_id)
    if existing is None or existing.client_id != ctx.client_id:
        return None
    if existing.content_hash != content_hash:
        raise LoyaltyError(ErrorCode.RECEIPT_ALREADY_COMMITTED, receipt_id=receipt_id, transaction_id=existing.id)
    return commit_result(ctx, existing, find_card(ctx, existing.card_number))


def offline_commit(ctx: Ctx, req: OfflineReceiptRequest) -> CommitResult:
    """A receipt a till closed while it was offline: accrued as of its own time, never spending.

    Points of an old receipt live from the receipt's date, so a receipt older than the points'
    lifetime accrues points that expire at once — exactly what the customer would have had."""
    max_age = timedelta(days=ctx.program.offline.max_age_days)
    if req.occurred_at > ctx.now + timedelta(minutes=5):
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "occurred_at is in the future", field="occurred_at")
    if req.occurred_at < ctx.now - max_age:
        raise LoyaltyError(
            ErrorCode.VALIDATION_ERROR,
            f"offline receipts older than {ctx.program.offline.max_age_days} days are not accepted",
            field="occurred_at",
        )
    commit_request = CommitRequest(
        receipt_id=req.receipt_id, card_number=req.card_number, lines=req.lines, store=req.store, points_to_spend=0
    )
    content_hash = canonical_hash("commit", commit_request)
    booked = _booked_before(ctx, req.receipt_id, content_hash)
    if booked is not None:
        return booked
    card, account = lock_card_account(ctx, req.card_number, require_active=False)
    booked = _booked_before(ctx, req.receipt_id, content_hash)
    if booked is not None:
        return booked
    members.authorize(ctx, card, earn=True)
    result = book_receipt(ctx, commit_request, card, account.id, content_hash, occurred_at=req.occurred_at)
    expire_due_lots(ctx, account.id)  # points of a receipt older than their lifetime are gone already
    return commit_result(ctx, ctx.session.get(Receipt, result.transaction_id) or _missing(), card)


def _missing() -> Receipt:  # pragma: no cover - the receipt was written in this transaction
    raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "receipt vanished")


def _matching_capture(ctx: Ctx, account_id: str, points: int | None) -> str | None:
    """A receipt that pays ``points`` without naming a hold, on an account where exactly such a
    payment was captured (a till wrote the points off before the receipt reached us), is that
    payment: booking it against the captured hold keeps the points from being spent twice.
    Only a capture of this client, or of a till client it settles, matches (``till``)."""
    from gateway.ledger import till  # till sessions build on this module

    return till.matching_capture(ctx, account_id, points)


def book_receipt(
    ctx: Ctx,
    req: CommitRequest,
    card: Card,
    account_id: str,
    content_hash: str,
    occurred_at: datetime | None = None,
) -> CommitResult:
    txn_id = str(uuid.uuid4())
    hold_row: Hold | None = None
    captured = False
    if req.hold_id is None:
        from gateway.ledger import till  # till sessions build on this module

        # One purchase, one debit: the gateway already booked this till payment itself.
        booked = till.booked_by_gateway(ctx, account_id, req.receipt_id, req.points_to_spend)
        if booked is not None:
            return booked
    hold_id = req.hold_id or _matching_capture(ctx, account_id, req.points_to_spend)
    if hold_id is not None:
        # A hold named by the receipt must be the caller's; one found by _matching_capture may be
        # a till's capture whose receipt reaches us through the ERP's exchange.
        hold_row = own_hold(ctx, hold_id) if req.hold_id is not None else get_hold(ctx, hold_id)
        ctx.session.refresh(hold_row)
        if hold_row.account_id != account_id:
            raise LoyaltyError(ErrorCode.HOLD_CARD_MISMATCH, hold_id=hold_row.id)
        if hold_row.status not in UNRESOLVED:
            raise not_usable(hold_row)
        if hold_row.status == HoldStatus.OPEN and hold_row.expires_at <= ctx.now:
            raise LoyaltyError(ErrorCode.HOLD_EXPIRED, hold_id=hold_row.id, expired_at=hold_row.expires_at.isoformat())
        captured = hold_row.status == HoldStatus.CAPTURED
        spendable = hold_row.points if hold_row.captured_points is None else hold_row.captured_points
        points = spendable if req.points_to_spend is None else req.points_to_spend
        if hold_row.status == HoldStatus.CAPTURED and points != spendable:
            raise LoyaltyError(
                ErrorCode.POINTS_LIMIT_EXCEEDED,
                "a captured hold is committed with exactly its captured points",
                requested=points,
                captured=spendable,
            )
    else:
        points = req.points_to_spend or 0
        spendable = available_points(ctx, account_id)

    amounts = [money_to_kopecks(line.total()) for line in req.lines]
    promo = promos.applicable(ctx, list(req.promo_codes), account_id, sum(amounts))
    context = pricing_context(ctx, account_id, req.store, occurred_at)
    priced = price_cart(ctx.program, list(req.lines), points, spendable, promo, context=context, reward=req.reward)
    total = priced.total_kopecks - priced.discount_kopecks
    # Captured points were already taken as payment at the till: the receipt books them as they
    # are, and the program's cap applied when they were held, not now.
    cap = total // ctx.program.point_value_kopecks if captured else priced.points_cap
    if hold_row is not None and points > spendable:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            "more points than the hold reserved",
            requested=points,
            held=spendable,
        )
    check_spend(ctx, cap, points, spendable)  # before anything is booked
    if promo is not None:
        promos.record_use(ctx, promo, txn_id, account_id)

    released = 0
    spend_allocations: list[Allocation] = []
    if hold_row is not None:
        spend_allocations, released = keep_held(ctx, hold_row, points)
        move(hold_row, HoldStatus.COMMITTED, ctx.now)
        hold_row.transaction_id = txn_id
        ctx.session.add(hold_row)
    elif points:
        spend_allocations = allocate(ctx, account_id, points, "spent", None)

    if points:
        entry = add_entry(ctx, account_id, "spend", -points, hold_id=hold_id, transaction_id=txn_id)
        for allocation in spend_allocations:
            allocation.state = "spent"
            allocation.entry_id = entry.id
            ctx.session.add(allocation)

    # One lot per activation delay: points of a rule with its own pending_days wait apart.
    for pending_days, lot_points in priced.accrual_lots:
        available_at = (occurred_at or ctx.now) + timedelta(days=pending_days)
        days = ctx.program.expiry.days
        add_lot(
            ctx,
            account_id,
            "accrual",
            lot_points,
            entry_kind="accrual",
            available_at=available_at,
            expires_at=available_at + timedelta(days=days) if days else None,
            transaction_id=txn_id,
        )

    receipt = Receipt(
        id=txn_id,
        client_id=ctx.client_id,
        receipt_id=req.receipt_id,
        account_id=account_id,
        card_number=card.number,
        hold_id=hold_id,
        store=req.store,
        total_kopecks=priced.total_kopecks,
        points_spent=points,
        points_accrued=priced.points_accrued,
        points_released=released,
        point_value_kopecks=priced.point_value_kopecks,
        content_hash=content_hash,
        explanation_json=EXPLANATION.dump_json(explain(priced)).decode(),
        occurred_at=occurred_at,
        created_at=ctx.now,
    )
    ctx.session.add(receipt)
    ctx.session.flush()
    for position, line in enumerate(priced.lines):
        ctx.session.add(
            ReceiptLine(
                receipt_txn_id=txn_id,
                line_id=line.line_id,
                position=position,
                item=line.item,
                quantity=line.quantity,
                amount_kopecks=line.amount_kopecks - line.discount_kopecks,
                discount_kopecks=line.discount_kopecks,
                points_spent=line.points_spent,
                points_accrued=line.points_accrued,
            )
        )
    ctx.session.flush()
    program_status.after_purchase(ctx, priced, account_id, txn_id)  # tier upgrade, referral points
    return commit_result(ctx, receipt, card)

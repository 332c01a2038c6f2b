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
    BalanceResult,
    CommitRequest,
    CommitResult,
    LineResult,
    OfflineReceiptRequest,
    RuleApplication,
)
from gateway.core.pricing import PricedCart, price_cart
from gateway.ledger import members, program_status, promos
from gateway.ledger.accounts import (
    balance_of,
    find_card,
)
from gateway.ledger.booking import Booking
from gateway.ledger.calculation import check_spend, explain, line_results
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import UNRESOLVED, HoldStatus, move
from gateway.ledger.holds import get_hold, keep_held, not_usable, own_hold
from gateway.ledger.pricing_context import pricing_context
from gateway.store.models import Allocation, Card, Hold, Receipt, ReceiptLine

EXPLANATION = TypeAdapter(list[RuleApplication])


def commit_result(ctx: Ctx, receipt: Receipt, card: Card) -> CommitResult:
    lines = ctx.session.exec(
        select(ReceiptLine).where(ReceiptLine.receipt_txn_id == receipt.id).order_by(col(ReceiptLine.position))
    ).all()
    booked = [
        LineResult(
            line_id=line.line_id,
            amount=kopecks_to_money(line.amount_kopecks + line.discount_kopecks),
            discount=kopecks_to_money(line.discount_kopecks),
            points_spent=line.points_spent,
            points_accrued=line.points_accrued,
        )
        for line in lines
    ]
    discount = sum(line.discount_kopecks for line in lines)
    explanation = EXPLANATION.validate_json(receipt.explanation_json)
    return _result(receipt, discount, booked, explanation, balance_of(ctx, card))


def _result(
    receipt: Receipt, discount: int, lines: list[LineResult], explanation: list[RuleApplication], balance: BalanceResult
) -> CommitResult:
    paid_by_points = receipt.points_spent * receipt.point_value_kopecks
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
        lines=lines,
        explanation=explanation,
        balance=balance,
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
    spends_freely = req.hold_id is None and bool(req.points_to_spend)
    booking = Booking.load(
        ctx,
        req.card_number,
        receipt_id=req.receipt_id,
        write_off=(req.points_to_spend or 0, req.receipt_id) if spends_freely else None,
    )
    # Read under the account's lock: a concurrent commit of the same receipt (sent to another
    # replica under another key) has been booked by now or waits for us.
    booked = _booked_before(ctx, booking.booked_receipt_id, req.receipt_id, content_hash)
    if booked is not None:
        return booked
    card = booking.card
    if card.status != "active":
        raise LoyaltyError(
            ErrorCode.CARD_BLOCKED, card_number=req.card_number, status=card.status, replaced_by=card.replaced_by
        )
    members.authorize_receipt(ctx, card, req)
    return book_receipt(ctx, req, booking, content_hash)


def _booked_before(ctx: Ctx, txn_id: str | None, receipt_id: str, content_hash: str) -> CommitResult | None:
    """The result of this client's receipt ``receipt_id`` (booked as ``txn_id``) if it was booked
    already (a till retry with a new request id: same answer, no change); an error if it was
    booked with other content."""
    existing = ctx.session.get(Receipt, txn_id) if txn_id is not None else None
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
    booking = Booking.load(ctx, req.card_number, receipt_id=req.receipt_id)
    booked = _booked_before(ctx, booking.booked_receipt_id, req.receipt_id, content_hash)
    if booked is not None:
        return booked
    members.authorize(ctx, booking.card, earn=True)
    # Points of a receipt older than their lifetime expire as they are booked (``book_receipt``).
    return book_receipt(ctx, commit_request, booking, content_hash, occurred_at=req.occurred_at)


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
    booking: Booking,
    content_hash: str,
    occurred_at: datetime | None = None,
) -> CommitResult:
    """Book ``req`` on the account ``booking`` loaded under its lock: spend (from the receipt's
    hold, a till's capture of the same points, or the available points), accrue, store the
    receipt and its lines; the answer is built from what was booked, not read back."""
    txn_id = str(uuid.uuid4())
    card, account_id = booking.card, booking.account.id
    hold_row: Hold | None = None
    captured = False
    if req.hold_id is None and booking.gateway_booking_id is not None:
        from gateway.ledger import till  # till sessions build on this module

        # One purchase, one debit: the gateway already booked this till payment itself.
        booked = till.booked_by_gateway(ctx, account_id, req.receipt_id, req.points_to_spend)
        if booked is not None:
            return booked
    hold_id = req.hold_id
    # A capture keeps its points held until its receipt: with nothing held, nothing was captured.
    if hold_id is None and req.points_to_spend and booking.held > 0:
        hold_id = _matching_capture(ctx, account_id, req.points_to_spend)
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
        spendable = booking.available()

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
    kept: list[Allocation] = []
    if hold_row is not None:
        kept, released = keep_held(ctx, hold_row, points)
        move(hold_row, HoldStatus.COMMITTED, ctx.now)
        hold_row.transaction_id = txn_id
        ctx.session.add(hold_row)
    if points:
        booking.spend(points, hold_id=hold_id, transaction_id=txn_id, held=kept)

    # One lot per activation delay: points of a rule with its own pending_days wait apart.
    for pending_days, lot_points in priced.accrual_lots:
        available_at = (occurred_at or ctx.now) + timedelta(days=pending_days)
        days = ctx.program.expiry.days
        booking.credit(
            lot_points,
            source="accrual",
            available_at=available_at,
            expires_at=available_at + timedelta(days=days) if days else None,
            transaction_id=txn_id,
        )
    booking.expire_due()  # an offline receipt older than the points' lifetime: they are gone already
    booking.write()

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
    ctx.session.add_all(
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
        for position, line in enumerate(priced.lines)
    )
    program_status.after_purchase(ctx, priced, account_id, txn_id)  # tier upgrade, referral points
    # A hold gives points back to lots this booking did not load, and a referral may credit the
    # buyer's own account: then the balance is read from the database.
    referral = priced.referral
    if hold_row is not None or (referral is not None and referral.account_id == account_id):
        balance = balance_of(ctx, card)
    else:
        balance = booking.balance()
    return _booked(receipt, priced, balance)


def _booked(receipt: Receipt, priced: PricedCart, balance: BalanceResult) -> CommitResult:
    """``commit_result`` of a receipt just booked, from the priced cart rather than read back."""
    discount = sum(line.discount_kopecks for line in priced.lines)
    return _result(receipt, discount, line_results(priced), explain(priced), balance)

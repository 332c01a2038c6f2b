"""Calculate, hold, cancel, commit and refund: the operations that move points."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from pydantic import TypeAdapter
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import (
    BalanceResult,
    CalculateRequest,
    CalculateResult,
    CancelRequest,
    CancelResult,
    CaptureRequest,
    CartLine,
    CommitRequest,
    CommitResult,
    HoldRequest,
    HoldResult,
    LineResult,
    OfflineReceiptRequest,
    RefundRequest,
    RefundResult,
    RuleApplication,
)
from gateway.core.allocation import cumulative_share, split_proportionally
from gateway.core.pricing import PricedCart, price_cart
from gateway.core.simulation import rule_applications
from gateway.ledger import members, program_status, promos
from gateway.ledger.accounts import (
    add_entry,
    add_lot,
    available_points,
    balance_of,
    expire_due_lots,
    expire_lot,
    find_card,
    find_card_with_owner,
    lock_account,
    lock_card_account,
)
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import UNRESOLVED, HoldStatus, move
from gateway.ledger.movements import allocate, return_spent, reverse_earned
from gateway.ledger.pricing_context import pricing_context
from gateway.outbound.outbox import Event
from gateway.store.models import Allocation, Card, Hold, Lot, Receipt, ReceiptLine, Refund


def _new_id() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# calculate
# ---------------------------------------------------------------------------------------------


def _check_spend(ctx: Ctx, priced_cap: int, points: int, available: int) -> None:
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


def _line_results(priced: PricedCart) -> list[LineResult]:
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


def _explanation(priced: PricedCart) -> list[RuleApplication]:
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
    priced = price_cart(ctx.program, list(req.lines), req.points_to_spend, available, promo, context=context)
    _check_spend(ctx, priced.points_cap, req.points_to_spend, available)
    return CalculateResult(
        card_number=req.card_number,
        total_amount=kopecks_to_money(priced.total_kopecks),
        total_discount=kopecks_to_money(priced.discount_kopecks),
        points_to_spend=priced.points_spent,
        max_points_payable=priced.max_points_payable if card is not None else 0,
        points_to_accrue=priced.points_accrued if card is not None else 0,
        amount_payable=kopecks_to_money(priced.payable_kopecks),
        lines=_line_results(priced),
        explanation=_explanation(priced),
        balance=balance,
    )


# ---------------------------------------------------------------------------------------------
# holds
# ---------------------------------------------------------------------------------------------


def hold_result(ctx: Ctx, hold: Hold, card: Card | None = None) -> HoldResult:
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
        balance=balance_of(ctx, card or find_card(ctx, hold.card_number)),
    )


def hold(ctx: Ctx, req: HoldRequest) -> HoldResult:
    card, account = lock_card_account(ctx, req.card_number)
    members.authorize(ctx, card, spend=True)
    available = available_points(ctx, account.id)
    if req.points > available:
        raise LoyaltyError(ErrorCode.INSUFFICIENT_POINTS, requested=req.points, available=available)
    if req.points < ctx.program.redemption.min_points:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            f"at least {ctx.program.redemption.min_points} points must be held",
        )
    ttl = req.ttl_seconds or ctx.program.holds.ttl_seconds
    new_hold = Hold(
        id=_new_id(),
        account_id=account.id,
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
    ctx.session.flush()
    allocate(ctx, account.id, req.points, "held", new_hold.id)
    ctx.session.flush()
    return hold_result(ctx, new_hold, card)


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


def _keep_held(ctx: Ctx, hold_row: Hold, points: int) -> tuple[list[Allocation], int]:
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


def _get_hold(ctx: Ctx, hold_id: str) -> Hold:
    row = ctx.session.get(Hold, hold_id)
    if row is None:
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, hold_id=hold_id)
    return row


def _own_hold(ctx: Ctx, hold_id: str) -> Hold:
    """A hold the calling client made: another client's hold is reported as unknown, so hold ids
    read elsewhere (a receipt, a history page) neither reveal nor move anyone else's points."""
    row = _get_hold(ctx, hold_id)
    if row.client_id != ctx.client_id:
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, hold_id=hold_id)
    return row


def _not_usable(row: Hold) -> LoyaltyError:
    """Why a hold can no longer be captured or committed: a hold the sweeper voided at its
    deadline is reported as expired, whoever got there first (the till or the sweeper)."""
    if row.status == HoldStatus.VOIDED and row.void_reason == "expired":
        return LoyaltyError(ErrorCode.HOLD_EXPIRED, hold_id=row.id, expired_at=row.expires_at.isoformat())
    return LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, hold_id=row.id, status=row.status, reason=row.void_reason)


def cancel(ctx: Ctx, req: CancelRequest) -> CancelResult:
    row = _own_hold(ctx, req.hold_id)
    lock_account(ctx, row.account_id)
    ctx.session.refresh(row)  # re-read under the lock: another writer may have resolved it
    if row.status not in UNRESOLVED:
        raise LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, hold_id=row.id, status=row.status, reason=row.void_reason)
    released = void_hold(ctx, row, "cancelled")
    card = find_card(ctx, row.card_number)
    return CancelResult(hold_id=row.id, status="voided", points_released=released, balance=balance_of(ctx, card))


def capture(ctx: Ctx, req: CaptureRequest) -> HoldResult:
    row = _own_hold(ctx, req.hold_id)
    lock_account(ctx, row.account_id)
    ctx.session.refresh(row)
    if row.status == HoldStatus.CAPTURED and row.captured_points == req.points:
        return hold_result(ctx, row)  # the same write-off sent again
    if row.status != HoldStatus.OPEN:
        raise _not_usable(row)
    if row.expires_at <= ctx.now:
        raise LoyaltyError(ErrorCode.HOLD_EXPIRED, hold_id=row.id, expired_at=row.expires_at.isoformat())
    if req.points > row.points:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED, "more points than the hold reserved", requested=req.points, held=row.points
        )
    _keep_held(ctx, row, req.points)
    move(row, HoldStatus.CAPTURED, ctx.now)
    row.captured_points = req.points
    row.expires_at = ctx.now + timedelta(seconds=req.window_seconds or ctx.program.holds.capture_window_seconds)
    if req.lines is not None:
        row.cart_json = _CART.dump_json(req.lines).decode()
    ctx.session.add(row)
    ctx.session.flush()
    return hold_result(ctx, row)


def remember_cart(ctx: Ctx, hold_id: str, lines: list[CartLine]) -> None:
    """Keep the last calculated cart on an unresolved hold: if its receipt never arrives, the
    gateway books that cart (what the till showed the customer) instead of a bare payment."""
    row = _own_hold(ctx, hold_id)
    if row.status in UNRESOLVED:
        row.cart_json = _CART.dump_json(lines).decode()
        ctx.session.add(row)


def _finalize_captured(ctx: Ctx, row: Hold) -> CommitResult:
    """Book the receipt of a captured hold whose receipt never arrived."""
    points = row.captured_points or 0
    if row.cart_json:
        lines = _CART.validate_json(row.cart_json)
    else:
        value = kopecks_to_money(points * ctx.program.point_value_kopecks)
        lines = [CartLine(line_id="1", item="points-payment", quantity=Decimal(1), price=value)]
    request = CommitRequest(
        receipt_id=f"hold:{row.id}", card_number=row.card_number, hold_id=row.id, points_to_spend=points, lines=lines
    )
    card = find_card(ctx, row.card_number)
    booked = Ctx(ctx.db, ctx.session, ctx.program, ctx.now, row.client_id)
    return _book_receipt(booked, request, card, row.account_id, canonical_hash("commit", request))


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


# ---------------------------------------------------------------------------------------------
# commit
# ---------------------------------------------------------------------------------------------


def _commit_result(ctx: Ctx, receipt: Receipt, card: Card) -> CommitResult:
    lines = ctx.session.exec(
        select(ReceiptLine).where(ReceiptLine.receipt_txn_id == receipt.id).order_by(col(ReceiptLine.position))
    ).all()
    paid_by_points = receipt.points_spent * receipt.point_value_kopecks
    discount = sum(line.discount_kopecks for line in lines)
    explanation = _EXPLANATION.validate_json(receipt.explanation_json)
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


_EXPLANATION = TypeAdapter(list[RuleApplication])
_CART = TypeAdapter(list[CartLine])


def _find_receipt(ctx: Ctx, receipt_id: str) -> Receipt | None:
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
    return _book_receipt(ctx, req, card, account.id, content_hash)


def _booked_before(ctx: Ctx, receipt_id: str, content_hash: str) -> CommitResult | None:
    """The result of this client's receipt ``receipt_id`` if it was booked already (a till retry
    with a new request id: same answer, no change); an error if it was booked with other content."""
    existing = _find_receipt(ctx, receipt_id)
    if existing is None or existing.client_id != ctx.client_id:
        return None
    if existing.content_hash != content_hash:
        raise LoyaltyError(ErrorCode.RECEIPT_ALREADY_COMMITTED, receipt_id=receipt_id, transaction_id=existing.id)
    return _commit_result(ctx, existing, find_card(ctx, existing.card_number))


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
    result = _book_receipt(ctx, commit_request, card, account.id, content_hash, occurred_at=req.occurred_at)
    expire_due_lots(ctx, account.id)  # points of a receipt older than their lifetime are gone already
    return _commit_result(ctx, ctx.session.get(Receipt, result.transaction_id) or _missing(), card)


def _missing() -> Receipt:  # pragma: no cover - the receipt was written in this transaction
    raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "receipt vanished")


def _matching_capture(ctx: Ctx, account_id: str, points: int | None) -> str | None:
    """A receipt that pays ``points`` without naming a hold, on an account where exactly such a
    payment was captured (a till wrote the points off before the receipt reached us), is that
    payment: booking it against the captured hold keeps the points from being spent twice.
    Only a capture of this client, or of a till client it settles, matches (``till``)."""
    from gateway.ledger import till  # till sessions build on this module

    return till.matching_capture(ctx, account_id, points)


def _book_receipt(
    ctx: Ctx,
    req: CommitRequest,
    card: Card,
    account_id: str,
    content_hash: str,
    occurred_at: datetime | None = None,
) -> CommitResult:
    txn_id = _new_id()
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
        hold_row = _own_hold(ctx, hold_id) if req.hold_id is not None else _get_hold(ctx, hold_id)
        ctx.session.refresh(hold_row)
        if hold_row.account_id != account_id:
            raise LoyaltyError(ErrorCode.HOLD_CARD_MISMATCH, hold_id=hold_row.id)
        if hold_row.status not in UNRESOLVED:
            raise _not_usable(hold_row)
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
    priced = price_cart(ctx.program, list(req.lines), points, spendable, promo, context=context)
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
    _check_spend(ctx, cap, points, spendable)  # before anything is booked
    if promo is not None:
        promos.record_use(ctx, promo, txn_id, account_id)

    released = 0
    spend_allocations: list[Allocation] = []
    if hold_row is not None:
        spend_allocations, released = _keep_held(ctx, hold_row, points)
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

    if priced.points_accrued:
        available_at = (occurred_at or ctx.now) + timedelta(days=ctx.program.accrual.pending_days)
        days = ctx.program.expiry.days
        add_lot(
            ctx,
            account_id,
            "accrual",
            priced.points_accrued,
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
        explanation_json=_EXPLANATION.dump_json(_explanation(priced)).decode(),
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
    return _commit_result(ctx, receipt, card)


# ---------------------------------------------------------------------------------------------
# refund
# ---------------------------------------------------------------------------------------------


def _refund_targets(req: RefundRequest, lines: list[ReceiptLine]) -> dict[str, tuple[Decimal, int]]:
    """Per line: (refunded quantity after this refund, refunded kopecks after this refund)."""
    by_id = {line.line_id: line for line in lines}
    targets = {line.line_id: (Decimal(line.refunded_quantity), line.refunded_kopecks) for line in lines}
    if req.lines is not None:
        for refund_line in req.lines:
            line = by_id.get(refund_line.line_id)
            if line is None:
                raise LoyaltyError(
                    ErrorCode.VALIDATION_ERROR, "no such line on the receipt", line_id=refund_line.line_id
                )
            qty_before, _ = targets[line.line_id]
            qty_after = qty_before + refund_line.quantity
            quantity = Decimal(line.quantity)
            if qty_after > quantity:
                raise LoyaltyError(
                    ErrorCode.REFUND_EXCEEDS_RECEIPT,
                    line_id=line.line_id,
                    quantity=str(quantity),
                    already_refunded=str(qty_before),
                    requested=str(refund_line.quantity),
                )
            share = Fraction(qty_after) / Fraction(quantity)
            kopecks = line.amount_kopecks if qty_after == quantity else _round_half_up(line.amount_kopecks * share)
            targets[line.line_id] = (qty_after, max(kopecks, line.refunded_kopecks))
        return targets
    remaining = [line.amount_kopecks - line.refunded_kopecks for line in lines]
    left_total = sum(remaining)
    amount = left_total if req.full else money_to_kopecks(req.amount or Decimal(0))
    if amount > left_total or (req.full and left_total == 0):
        raise LoyaltyError(
            ErrorCode.REFUND_EXCEEDS_RECEIPT,
            refundable=str(kopecks_to_money(left_total)),
            requested=str(kopecks_to_money(amount)),
        )
    for line, part in zip(lines, split_proportionally(amount, remaining), strict=True):
        kopecks_after = line.refunded_kopecks + part
        quantity = Decimal(line.quantity)
        qty_after = (
            quantity
            if kopecks_after == line.amount_kopecks
            else Decimal(line.refunded_quantity)
            if line.amount_kopecks == 0
            else (quantity * kopecks_after / line.amount_kopecks).quantize(Decimal("0.001"))
        )
        targets[line.line_id] = (min(qty_after, quantity), kopecks_after)
    return targets


def _round_half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))


def _refund_result(ctx: Ctx, refund_row: Refund, receipt: Receipt) -> RefundResult:
    card = find_card(ctx, receipt.card_number)
    pv = receipt.point_value_kopecks
    shortfall_kopecks = refund_row.points_shortfall * pv
    money = refund_row.amount_kopecks - refund_row.points_returned * pv - shortfall_kopecks
    return RefundResult(
        refund_id=refund_row.refund_id,
        receipt_id=receipt.receipt_id,
        amount_refunded=kopecks_to_money(refund_row.amount_kopecks),
        points_returned=refund_row.points_returned,
        points_returned_expired=refund_row.points_returned_expired,
        points_reversed=refund_row.points_reversed,
        points_shortfall=refund_row.points_shortfall,
        shortfall_amount=kopecks_to_money(shortfall_kopecks),
        money_to_return=kopecks_to_money(max(money, 0)),
        balance=balance_of(ctx, card),
    )


def _refund_done(ctx: Ctx, req: RefundRequest, content_hash: str, receipt: Receipt) -> RefundResult | None:
    """The result of this return if it was booked already (under any idempotency key)."""
    done = ctx.session.exec(
        select(Refund).where(Refund.client_id == ctx.client_id, Refund.refund_id == req.refund_id)
    ).first()
    if done is None:
        return None
    if done.content_hash != content_hash:
        raise LoyaltyError(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            "this refund_id was already used for another refund",
            refund_id=req.refund_id,
        )
    return _refund_result(ctx, done, receipt)


def refund(ctx: Ctx, req: RefundRequest) -> RefundResult:
    receipt = _find_receipt(ctx, req.receipt_id)
    if receipt is None:
        raise LoyaltyError(ErrorCode.RECEIPT_NOT_FOUND, receipt_id=req.receipt_id)
    content_hash = canonical_hash("refund", req)
    done = _refund_done(ctx, req, content_hash, receipt)
    if done is not None:
        return done

    lock_account(ctx, receipt.account_id)
    # Look again under the account's lock: the same return sent concurrently under another key
    # (a till's retry after a timeout) may have been booked while we waited; it gets that result.
    done = _refund_done(ctx, req, content_hash, receipt)
    if done is not None:
        return done
    lines = list(
        ctx.session.exec(
            select(ReceiptLine).where(ReceiptLine.receipt_txn_id == receipt.id).order_by(col(ReceiptLine.position))
        ).all()
    )
    targets = _refund_targets(req, lines)
    refund_txn = _new_id()
    amount = to_return = to_reverse = 0
    for line in lines:
        qty_after, kopecks_after = targets[line.line_id]
        whole = Fraction(line.amount_kopecks)
        returned_after = cumulative_share(line.points_spent, Fraction(kopecks_after), whole)
        reversed_after = cumulative_share(line.points_accrued, Fraction(kopecks_after), whole)
        if Decimal(qty_after) == Decimal(line.quantity):  # a fully returned line gives back everything
            returned_after, reversed_after = line.points_spent, line.points_accrued
        amount += kopecks_after - line.refunded_kopecks
        to_return += returned_after - line.points_returned
        to_reverse += reversed_after - line.points_reversed
        line.refunded_quantity = str(qty_after)
        line.refunded_kopecks = kopecks_after
        line.points_returned = returned_after
        line.points_reversed = reversed_after
        ctx.session.add(line)
    if amount <= 0:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the refund returns nothing")
    returned, returned_expired = return_spent(ctx, receipt.account_id, receipt.id, refund_txn, to_return)
    reversed_points = reverse_earned(ctx, receipt.account_id, receipt.id, refund_txn, to_reverse)
    refund_row = Refund(
        id=refund_txn,
        client_id=ctx.client_id,
        refund_id=req.refund_id,
        receipt_txn_id=receipt.id,
        amount_kopecks=amount,
        points_returned=returned,
        points_returned_expired=returned_expired,
        points_reversed=reversed_points,
        points_shortfall=to_reverse - reversed_points,
        content_hash=content_hash,
        created_at=ctx.now,
    )
    ctx.session.add(refund_row)
    ctx.session.flush()
    return _refund_result(ctx, refund_row, receipt)

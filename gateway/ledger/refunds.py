"""Refund: a full or partial return of a receipt — spent points given back, earned points taken
back, line by line (``gateway.core.refunds`` does the arithmetic) — booked once per refund id."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money
from contracts.operations import RefundRequest, RefundResult
from gateway.core.refunds import ReceiptLineState, refund_lines
from gateway.ledger.accounts import balance_of, find_card, lock_account
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.context import Ctx
from gateway.ledger.movements import return_spent, reverse_earned
from gateway.ledger.receipts import find_receipt
from gateway.store.models import Receipt, ReceiptLine, Refund


def _state(line: ReceiptLine) -> ReceiptLineState:
    return ReceiptLineState(
        line_id=line.line_id,
        quantity=Decimal(line.quantity),
        amount_kopecks=line.amount_kopecks,
        points_spent=line.points_spent,
        points_accrued=line.points_accrued,
        refunded_quantity=Decimal(line.refunded_quantity),
        refunded_kopecks=line.refunded_kopecks,
        points_returned=line.points_returned,
        points_reversed=line.points_reversed,
    )


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
    receipt = find_receipt(ctx, req.receipt_id)
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
    moved = refund_lines(req, [_state(line) for line in lines])
    for line, after in zip(lines, moved, strict=True):
        line.refunded_quantity = str(after.refunded_quantity)
        line.refunded_kopecks = after.refunded_kopecks
        line.points_returned = after.points_returned
        line.points_reversed = after.points_reversed
        ctx.session.add(line)
    amount = sum(after.kopecks for after in moved)
    to_return = sum(after.to_return for after in moved)
    to_reverse = sum(after.to_reverse for after in moved)
    refund_txn = str(uuid.uuid4())
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

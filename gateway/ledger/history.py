"""A customer's history: ledger entries, receipts and their refunds, including those of every
customer merged into it (recursively), newest first."""

from __future__ import annotations

from sqlmodel import col, select

from contracts.accounts import CustomerHistoryResult, HistoryEntry, HistoryReceipt, HistoryRefund
from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money
from gateway.ledger.context import Ctx
from gateway.ledger.merge import account_of, merge_result
from gateway.store.models import Customer, LedgerEntry, Receipt, Refund
from gateway.store.models_accounts import CustomerMerge

MAX_ROWS = 1000


def _merged_into(ctx: Ctx, customer_id: str) -> list[CustomerMerge]:
    """Every merge into ``customer_id``, and into the customers merged into it."""
    found: list[CustomerMerge] = []
    frontier = [customer_id]
    while frontier:
        rows = ctx.session.exec(
            select(CustomerMerge)
            .where(col(CustomerMerge.survivor_customer_id).in_(frontier))
            .order_by(col(CustomerMerge.created_at))
        ).all()
        found.extend(rows)
        frontier = [r.merged_customer_id for r in rows]
    return found


def customer_history(ctx: Ctx, customer_id: str, limit: int = 200) -> CustomerHistoryResult:
    customer = ctx.session.get(Customer, customer_id)
    if customer is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, customer_id=customer_id)
    limit = max(1, min(limit, MAX_ROWS))
    merges = _merged_into(ctx, customer.id)
    owner = {account_of(ctx, customer.id).id: customer.id}
    owner.update({m.merged_account_id: m.merged_customer_id for m in merges})
    entries = ctx.session.exec(
        select(LedgerEntry)
        .where(col(LedgerEntry.account_id).in_(list(owner)))
        .order_by(col(LedgerEntry.id).desc())
        .limit(limit)
    ).all()
    receipts = ctx.session.exec(
        select(Receipt)
        .where(col(Receipt.account_id).in_(list(owner)))
        .order_by(col(Receipt.created_at).desc(), col(Receipt.id))
        .limit(limit)
    ).all()
    refunds: dict[str, list[HistoryRefund]] = {}
    for refund in ctx.session.exec(
        select(Refund)
        .where(col(Refund.receipt_txn_id).in_([r.id for r in receipts]))
        .order_by(col(Refund.created_at), col(Refund.id))
    ).all():
        refunds.setdefault(refund.receipt_txn_id, []).append(
            HistoryRefund(
                refund_id=refund.refund_id,
                amount=kopecks_to_money(refund.amount_kopecks),
                points_returned=refund.points_returned,
                points_reversed=refund.points_reversed,
                created_at=refund.created_at,
            )
        )
    return CustomerHistoryResult(
        customer_id=customer.id,
        merged_into=customer.merged_into,
        merges=[merge_result(m) for m in merges],
        entries=[
            HistoryEntry(
                entry_id=e.id or 0,
                account_id=e.account_id,
                customer_id=owner[e.account_id],
                kind=e.kind,
                points=e.points,
                lot_id=e.lot_id,
                hold_id=e.hold_id,
                transaction_id=e.transaction_id,
                refund_id=e.refund_id,
                client_id=e.client_id,
                created_at=e.created_at,
            )
            for e in entries
        ],
        receipts=[
            HistoryReceipt(
                transaction_id=r.id,
                receipt_id=r.receipt_id,
                client_id=r.client_id,
                card_number=r.card_number,
                total_amount=kopecks_to_money(r.total_kopecks),
                points_spent=r.points_spent,
                points_accrued=r.points_accrued,
                created_at=r.created_at,
                refunds=refunds.get(r.id, []),
            )
            for r in receipts
        ],
    )

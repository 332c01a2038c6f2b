"""The ledger invariant checker (tests, ``gateway ledger check``, the operator view).

For every account it proves:

1. the balance (sum of its entries) is never negative;
2. the balance equals the points still in its lots plus the points held by open holds —
   entries and lots are two views of the same points;
3. no lot is over-spent: ``0 <= remaining <= points`` and ``remaining`` equals the lot's points
   minus every allocation drawn from it;
4. every spent allocation returned at most what it spent;
5. every hold resolved at most once: an open hold holds exactly its points, a resolved hold holds
   none and has a resolution time, a committed hold belongs to exactly one receipt;
6. every spend entry matches the allocations linked to it; every receipt's lines add up;
7. every order's posted points are where the ledger says: its pending points are exactly what
   its pending lots hold, and the points it spent (net of returns) are what its spend
   allocations took;
8. gift certificates and customer merges keep their own invariants (``giftcard_checks``,
   ``merge.check_merges``).

Each check is one aggregate query over the whole ledger, so it runs in seconds on large bases.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.sql import Executable
from sqlmodel import Session, col, select

from gateway.ledger.accounts import PENDING_UNTIL_SHIPPED
from gateway.ledger.giftcard_checks import check_gift_cards
from gateway.ledger.merge import check_merges
from gateway.store.db import Database
from gateway.store.models import Allocation, Hold, LedgerEntry, Lot, Receipt, ReceiptLine
from gateway.store.models_orders import Order, OrderTurnover

DRAWING_STATES = ("held", "spent", "expired", "reversed", "unlocked", "transferred")  # transferred: merges


@dataclass
class InvariantReport:
    accounts: int = 0
    entries: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _sums(session: Session, stmt: Executable) -> dict[str, int]:
    return {str(k): int(v or 0) for k, v in session.execute(stmt).all()}


def check_ledger(db: Database, limit: int = 200) -> InvariantReport:
    report = InvariantReport()
    bad = report.violations
    with db.read() as session:
        report.accounts = int(session.execute(text("SELECT count(*) FROM accounts")).scalar_one())
        report.entries = int(session.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one())
        entry_sums = _sums(
            session,
            select(LedgerEntry.account_id, func.sum(LedgerEntry.points)).group_by(LedgerEntry.account_id),
        )
        lot_sums = _sums(session, select(Lot.account_id, func.sum(Lot.remaining)).group_by(Lot.account_id))
        held_sums = _sums(
            session,
            select(Allocation.account_id, func.sum(Allocation.points))
            .where(Allocation.state == "held")
            .group_by(Allocation.account_id),
        )
        for account in sorted(set(entry_sums) | set(lot_sums) | set(held_sums)):
            balance = entry_sums.get(account, 0)
            if balance < 0:
                bad.append(f"account {account}: negative balance {balance}")
            in_lots = lot_sums.get(account, 0) + held_sums.get(account, 0)
            if balance != in_lots:
                bad.append(f"account {account}: entries sum to {balance}, lots + holds hold {in_lots}")

        drawn = (
            select(Allocation.lot_id, func.sum(Allocation.points).label("drawn"))
            .where(col(Allocation.state).in_(DRAWING_STATES))
            .group_by(col(Allocation.lot_id))
            .subquery()
        )
        for lot_id, points, remaining, drawn_points in session.execute(
            select(Lot.id, Lot.points, Lot.remaining, func.coalesce(drawn.c.drawn, 0))
            .outerjoin(drawn, drawn.c.lot_id == Lot.id)
            .where(
                (col(Lot.remaining) < 0)
                | (col(Lot.remaining) > col(Lot.points))
                | (col(Lot.remaining) != col(Lot.points) - func.coalesce(drawn.c.drawn, 0))
            )
        ).all():
            bad.append(f"lot {lot_id}: {points} points, {remaining} remaining, {drawn_points} drawn")

        for alloc_id, points, returned, state in session.execute(
            select(Allocation.id, Allocation.points, Allocation.returned, Allocation.state).where(
                (col(Allocation.points) <= 0)
                | (col(Allocation.returned) < 0)
                | (col(Allocation.returned) > col(Allocation.points))
                | ((col(Allocation.returned) > 0) & (col(Allocation.state) != "spent"))
            )
        ).all():
            bad.append(f"allocation {alloc_id} ({state}): {points} points, {returned} returned")

        held_by_hold = _sums(
            session,
            select(Allocation.hold_id, func.sum(Allocation.points))
            .where(Allocation.state == "held", col(Allocation.hold_id).is_not(None))
            .group_by(Allocation.hold_id),
        )
        receipts_by_hold: dict[str, int] = defaultdict(int)
        for (hold_id,) in session.execute(select(Receipt.hold_id).where(col(Receipt.hold_id).is_not(None))).all():
            receipts_by_hold[str(hold_id)] += 1
        for (hold_id,) in session.execute(select(Order.hold_id).where(col(Order.hold_id).is_not(None))).all():
            receipts_by_hold[str(hold_id)] += 1  # an order that took a checkout hold is its receipt
        for hold in session.exec(select(Hold)).all():
            held = held_by_hold.get(hold.id, 0)
            if hold.status in ("open", "captured"):
                expected_held = hold.points if hold.status == "open" else hold.captured_points
                if held != expected_held:
                    bad.append(f"hold {hold.id}: {hold.status} with {expected_held} points but {held} held")
                if receipts_by_hold.get(hold.id):
                    bad.append(f"hold {hold.id}: {hold.status} but used by a receipt")
            else:
                if held:
                    bad.append(f"hold {hold.id}: {hold.status} but still holds {held} points")
                if hold.resolved_at is None:
                    bad.append(f"hold {hold.id}: {hold.status} without a resolution time")
                expected = 1 if hold.status == "committed" else 0
                if receipts_by_hold.get(hold.id, 0) != expected:
                    bad.append(f"hold {hold.id}: {hold.status} and used by {receipts_by_hold.get(hold.id, 0)} receipts")

        spent_by_entry = _sums(
            session,
            select(Allocation.entry_id, func.sum(Allocation.points))
            .where(Allocation.state == "spent")
            .group_by(col(Allocation.entry_id)),
        )
        for entry_id, points in session.execute(
            select(LedgerEntry.id, LedgerEntry.points).where(LedgerEntry.kind == "spend")
        ).all():
            linked = spent_by_entry.get(str(entry_id), 0)
            if linked != -int(points):
                bad.append(f"spend entry {entry_id}: {points} points but allocations spent {linked}")

        line_sums = (
            select(
                ReceiptLine.receipt_txn_id,
                func.sum(ReceiptLine.amount_kopecks).label("amount"),
                func.sum(ReceiptLine.points_spent).label("spent"),
                func.sum(ReceiptLine.points_accrued).label("accrued"),
            )
            .group_by(ReceiptLine.receipt_txn_id)
            .subquery()
        )
        for receipt_id, total, spent, accrued, l_total, l_spent, l_accrued in session.execute(
            sa_select(
                col(Receipt.id),
                col(Receipt.total_kopecks),
                col(Receipt.points_spent),
                col(Receipt.points_accrued),
                line_sums.c.amount,
                line_sums.c.spent,
                line_sums.c.accrued,
            )
            .join(line_sums, line_sums.c.receipt_txn_id == Receipt.id)
            .where(
                ~and_(
                    line_sums.c.spent == Receipt.points_spent,
                    line_sums.c.accrued == Receipt.points_accrued,
                )
            )
        ).all():
            bad.append(
                f"receipt {receipt_id}: totals {total}/{spent}/{accrued} but lines {l_total}/{l_spent}/{l_accrued}"
            )
        for receipt_id, line_id in session.execute(
            select(ReceiptLine.receipt_txn_id, ReceiptLine.line_id).where(
                (col(ReceiptLine.refunded_kopecks) > col(ReceiptLine.amount_kopecks))
                | (col(ReceiptLine.points_returned) > col(ReceiptLine.points_spent))
                | (col(ReceiptLine.points_reversed) > col(ReceiptLine.points_accrued))
            )
        ).all():
            bad.append(f"receipt {receipt_id} line {line_id}: refunded more than it had")
        _check_orders(session, bad)
        bad.extend(check_gift_cards(session))
        bad.extend(check_merges(session))
    del bad[limit:]
    return report


def _check_orders(session: Session, bad: list[str]) -> None:
    pending = _sums(
        session,
        select(Lot.transaction_id, func.sum(Lot.remaining))
        .where(col(Lot.available_at) >= PENDING_UNTIL_SHIPPED)
        .group_by(col(Lot.transaction_id)),
    )
    spent = _sums(
        session,
        select(LedgerEntry.transaction_id, func.sum(Allocation.points - Allocation.returned))
        .join(LedgerEntry, col(LedgerEntry.id) == col(Allocation.entry_id))
        .where(Allocation.state == "spent", LedgerEntry.kind == "spend")
        .group_by(col(LedgerEntry.transaction_id)),
    )
    for order_pk, order_id, posted_pending, posted_spent in session.execute(
        select(Order.id, Order.order_id, Order.points_pending, Order.points_spent)
    ).all():
        if pending.get(str(order_pk), 0) != posted_pending:
            bad.append(
                f"order {order_id}: {posted_pending} points pending, its lots hold {pending.get(str(order_pk), 0)}"
            )
        if spent.get(str(order_pk), 0) != posted_spent:
            bad.append(
                f"order {order_id}: {posted_spent} points spent, its allocations took {spent.get(str(order_pk), 0)}"
            )
    astray = session.execute(
        select(Order.order_id, OrderTurnover.document)
        .join(OrderTurnover, col(OrderTurnover.order_pk) == col(Order.id))
        .where(col(OrderTurnover.account_id) != col(Order.account_id))
        .limit(20)
    ).all()
    for order_id, document in astray:
        bad.append(f"order {order_id}: the turnover of {document} counts for another account than the order's")

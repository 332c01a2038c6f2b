"""Invariants of gift certificates, part of the ledger check (``gateway ledger check``).

For every certificate:

1. it was issued exactly once, for its nominal; entries have the sign of their kind
   (issue +, refund +, redeem -, expire -) and no other kind exists;
2. its balance (sum of entries) is never negative, and open holds never reserve more than it;
3. a committed hold was redeemed by exactly one entry of exactly the redeemed amount, at most
   what it held; a hold that was not committed redeemed nothing; a resolved hold has a time;
4. refunds put back at most what was redeemed (in total and per receipt), each by exactly one
   ``refund`` entry of its amount;
5. an expired-and-booked certificate (one with an ``expire`` entry) has nothing left.

Each check is one aggregate query.
"""

from __future__ import annotations

from sqlalchemy import and_, case, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from gateway.store.models import GiftCard, GiftCardEntry, GiftCardHold
from gateway.store.models_accounts import GiftCardRefund

SIGNS = {"issue": 1, "refund": 1, "redeem": -1, "expire": -1}


def _balances(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(GiftCardEntry.number, func.sum(GiftCardEntry.amount_kopecks)).group_by(col(GiftCardEntry.number))
    ).all()
    return {str(number): int(total or 0) for number, total in rows}


def check_gift_cards(session: Session) -> list[str]:
    bad: list[str] = []
    balances = _balances(session)

    issues = (
        select(
            GiftCardEntry.number,
            func.count().label("n"),
            func.sum(GiftCardEntry.amount_kopecks).label("total"),
        )
        .where(GiftCardEntry.kind == "issue")
        .group_by(col(GiftCardEntry.number))
        .subquery()
    )
    for number, nominal, count, total in session.execute(
        sa_select(col(GiftCard.number), col(GiftCard.nominal_kopecks), issues.c.n, issues.c.total)
        .outerjoin(issues, issues.c.number == GiftCard.number)
        .where(or_(issues.c.n.is_(None), issues.c.n != 1, issues.c.total != GiftCard.nominal_kopecks))
    ).all():
        bad.append(f"gift certificate {number}: issued {count or 0} times for {total or 0}, nominal {nominal}")

    for entry_id, number, kind, amount in session.execute(
        select(GiftCardEntry.id, GiftCardEntry.number, GiftCardEntry.kind, GiftCardEntry.amount_kopecks).where(
            or_(
                col(GiftCardEntry.kind).not_in(list(SIGNS)),
                and_(col(GiftCardEntry.kind).in_(["issue", "refund"]), col(GiftCardEntry.amount_kopecks) <= 0),
                and_(col(GiftCardEntry.kind).in_(["redeem", "expire"]), col(GiftCardEntry.amount_kopecks) >= 0),
            )
        )
    ).all():
        bad.append(f"gift certificate {number}: entry {entry_id} of kind {kind} moves {amount}")

    for number, total in balances.items():
        if total < 0:
            bad.append(f"gift certificate {number}: negative balance {total}")
    for number, held in session.execute(
        select(GiftCardHold.number, func.sum(GiftCardHold.amount_kopecks))
        .where(GiftCardHold.status == "open")
        .group_by(col(GiftCardHold.number))
    ).all():
        if int(held or 0) > balances.get(str(number), 0):
            bad.append(f"gift certificate {number}: {held} held but only {balances.get(str(number), 0)} left")

    redeemed_by_hold = (
        select(
            GiftCardEntry.hold_id,
            func.count().label("n"),
            func.sum(GiftCardEntry.amount_kopecks).label("total"),
        )
        .where(GiftCardEntry.kind == "redeem", col(GiftCardEntry.hold_id).is_not(None))
        .group_by(col(GiftCardEntry.hold_id))
        .subquery()
    )
    for hold_id, status, amount, redeemed, resolved_at, n, total in session.execute(
        sa_select(
            col(GiftCardHold.id),
            col(GiftCardHold.status),
            col(GiftCardHold.amount_kopecks),
            col(GiftCardHold.redeemed_kopecks),
            col(GiftCardHold.resolved_at),
            redeemed_by_hold.c.n,
            redeemed_by_hold.c.total,
        ).outerjoin(redeemed_by_hold, redeemed_by_hold.c.hold_id == GiftCardHold.id)
    ).all():
        count = int(n or 0)
        if status == "committed":
            if count != 1 or redeemed is None or -int(total or 0) != redeemed or redeemed > amount:
                bad.append(
                    f"gift certificate hold {hold_id}: committed for {redeemed} of {amount} "
                    f"but {count} redeem entries took {-int(total or 0)}"
                )
        elif count:
            bad.append(f"gift certificate hold {hold_id}: {status} but redeemed by {count} entries")
        if status != "open" and resolved_at is None:
            bad.append(f"gift certificate hold {hold_id}: {status} without a resolution time")

    for refund_id, number, amount, entry_number, entry_kind, entry_amount in session.execute(
        sa_select(
            col(GiftCardRefund.refund_id),
            col(GiftCardRefund.number),
            col(GiftCardRefund.amount_kopecks),
            col(GiftCardEntry.number),
            col(GiftCardEntry.kind),
            col(GiftCardEntry.amount_kopecks),
        ).outerjoin(GiftCardEntry, col(GiftCardEntry.id) == col(GiftCardRefund.entry_id))
    ).all():
        if (entry_number, entry_kind, entry_amount) != (number, "refund", amount):
            bad.append(f"gift certificate {number}: refund {refund_id} of {amount} has no matching refund entry")
    refund_entries = session.exec(
        select(func.count()).select_from(GiftCardEntry).where(GiftCardEntry.kind == "refund")
    ).one()
    refund_rows = session.exec(select(func.count()).select_from(GiftCardRefund)).one()
    if int(refund_entries) != int(refund_rows):
        bad.append(f"gift certificates: {refund_entries} refund entries but {refund_rows} refunds")

    by_receipt = (
        select(
            GiftCardEntry.number,
            GiftCardEntry.receipt_id,
            func.sum(case((col(GiftCardEntry.kind) == "redeem", -col(GiftCardEntry.amount_kopecks)), else_=0)).label(
                "redeemed"
            ),
            func.sum(case((col(GiftCardEntry.kind) == "refund", col(GiftCardEntry.amount_kopecks)), else_=0)).label(
                "refunded"
            ),
        )
        .group_by(col(GiftCardEntry.number), col(GiftCardEntry.receipt_id))
        .subquery()
    )
    for number, receipt_id, redeemed, refunded in session.execute(
        sa_select(by_receipt).where(by_receipt.c.receipt_id.is_not(None), by_receipt.c.refunded > by_receipt.c.redeemed)
    ).all():
        bad.append(f"gift certificate {number}: receipt {receipt_id} refunded {refunded} of {redeemed} paid")
    totals = (
        select(
            GiftCardEntry.number,
            func.sum(case((col(GiftCardEntry.kind) == "redeem", -col(GiftCardEntry.amount_kopecks)), else_=0)).label(
                "redeemed"
            ),
            func.sum(case((col(GiftCardEntry.kind) == "refund", col(GiftCardEntry.amount_kopecks)), else_=0)).label(
                "refunded"
            ),
            func.sum(case((col(GiftCardEntry.kind) == "expire", 1), else_=0)).label("expired"),
        )
        .group_by(col(GiftCardEntry.number))
        .subquery()
    )
    for number, redeemed, refunded, expired in session.execute(sa_select(totals)).all():
        if int(refunded or 0) > int(redeemed or 0):
            bad.append(f"gift certificate {number}: refunded {refunded} but only {redeemed} was paid with it")
        if int(expired or 0) and balances.get(str(number), 0) != 0:
            bad.append(f"gift certificate {number}: expired with {balances.get(str(number), 0)} still on it")
    return bad

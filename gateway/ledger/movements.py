"""Moving points between lots and entries: the primitives receipts, refunds and orders share.

Each function works inside the caller's transaction on an account the caller has locked, and
writes both views of the ledger at once: the append-only entry and the lot/allocation that says
*which* points moved.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import bindparam
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from gateway.core.allocation import LotView, draw_from_lots
from gateway.ledger.accounts import PENDING_UNTIL_SHIPPED, add_entry, add_lot, expire_lot, spendable_lots, take_from_lot
from gateway.ledger.context import Ctx
from gateway.store.models import Allocation, LedgerEntry, Lot

_SPEND_ORDER = (
    select(col(Lot.id), col(Lot.remaining), col(Lot.expires_at))
    .where(
        col(Lot.account_id) == bindparam("account_id"),
        col(Lot.remaining) > 0,
        col(Lot.available_at) <= bindparam("now"),
        (col(Lot.expires_at).is_(None)) | (col(Lot.expires_at) > bindparam("now")),
    )
    .order_by(col(Lot.expires_at).is_(None), col(Lot.expires_at), col(Lot.id))
)


def allocate(ctx: Ctx, account_id: str, points: int, state: str, hold_id: str | None) -> list[Allocation]:
    """Draw ``points`` from the account's spendable lots, soonest-expiring first. Lots are read
    in spend order only as far as needed: a regular customer has a lot per receipt."""
    views: list[LotView] = []
    covered = 0
    result = ctx.session.execute(_SPEND_ORDER, {"account_id": account_id, "now": ctx.now})
    for lot_id, remaining, expires_at in result:
        views.append(LotView(lot_id=lot_id, remaining=remaining, expires_at=expires_at))
        covered += remaining
        if covered >= points:
            break
    result.close()
    taken = draw_from_lots(views, points)
    lots = {lot.id: lot for lot in ctx.session.exec(select(Lot).where(col(Lot.id).in_([i for i, _ in taken])))}
    return [take_from_lot(ctx, lots[lot_id], amount, state, hold_id=hold_id) for lot_id, amount in taken]


def return_spent(ctx: Ctx, account_id: str, transaction_id: str, refund_txn: str, points: int) -> tuple[int, int]:
    """Give back ``points`` of those spent by ``transaction_id`` (a receipt or an order); returns
    (returned, of which expired).

    Points go back to fresh lots that keep their original lot's expiry; the allocations that
    spent the latest-expiring points are returned first (the customer gets the most valuable
    points back). A point whose lot has expired meanwhile follows the program's policy.
    """
    if points <= 0:
        return 0, 0
    allocations = ctx.session.exec(
        select(Allocation, Lot)
        .join(Lot, col(Lot.id) == col(Allocation.lot_id))
        .join_from(Allocation, LedgerEntry, col(LedgerEntry.id) == col(Allocation.entry_id))
        .where(Allocation.state == "spent", LedgerEntry.transaction_id == transaction_id)
    ).all()
    ordered = sorted(
        allocations,
        key=lambda pair: (pair[1].expires_at is not None, pair[1].expires_at or ctx.now, pair[0].lot_id),
        reverse=True,
    )
    left = points
    expired_total = 0
    policy = ctx.program.expiry
    for allocation, lot in ordered:
        if left == 0:
            break
        take = min(allocation.points - allocation.returned, left)
        if take <= 0:
            continue
        allocation.returned += take
        ctx.session.add(allocation)
        left -= take
        expires_at = lot.expires_at
        is_expired = expires_at is not None and expires_at <= ctx.now
        if is_expired and policy.refund_of_expired_points == "renew":
            expires_at = ctx.now + timedelta(days=policy.days) if policy.days else None
            is_expired = False
        new_lot = add_lot(
            ctx,
            account_id,
            "return",
            take,
            entry_kind="return",
            available_at=ctx.now,
            expires_at=expires_at,
            transaction_id=transaction_id,
            refund_id=refund_txn,
            origin_lot_id=lot.id,
        )
        if is_expired:
            expired_total += expire_lot(ctx, new_lot)
    if left:  # pragma: no cover - callers never return more than was spent
        raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "would return more points than were spent")
    return points, expired_total


def reverse_earned(ctx: Ctx, account_id: str, transaction_id: str, refund_txn: str, points: int) -> int:
    """Take back ``points`` earned by ``transaction_id``: first from its own accrual lots (even
    if still pending by the program's ``pending_days``), then from the account's other live lots
    soonest-expiring first, then from its other pending lots. Points an open order keeps pending
    until shipment are never touched (that order accounts for them). Returns what could be
    taken; the rest is the shortfall, reported to be withheld in money."""
    if points <= 0:
        return 0
    own = ctx.session.exec(
        select(Lot)
        .where(
            Lot.account_id == account_id,
            Lot.transaction_id == transaction_id,
            Lot.source == "accrual",
            col(Lot.remaining) > 0,
            col(Lot.available_at) < PENDING_UNTIL_SHIPPED,
        )
        .order_by(col(Lot.id))
    ).all()
    others = [
        lot
        for lot in spendable_lots(ctx, account_id)
        if lot.transaction_id != transaction_id or lot.source != "accrual"
    ]
    pending_others = pending_lots_except(ctx, account_id, transaction_id)
    taken = 0
    for lot in [*own, *others, *pending_others]:
        if taken == points:
            break
        take = min(lot.remaining, points - taken)
        if take <= 0:
            continue
        entry = add_entry(
            ctx, account_id, "reverse", -take, lot_id=lot.id, transaction_id=transaction_id, refund_id=refund_txn
        )
        take_from_lot(ctx, lot, take, "reversed", entry_id=entry.id)
        taken += take
    return taken


def pending_lots_except(ctx: Ctx, account_id: str, transaction_id: str) -> list[Lot]:
    """The account's points still pending by days (not those waiting for a shipment), of every
    transaction but ``transaction_id``, soonest available first: what a return takes after the
    spendable points."""
    return list(
        ctx.session.exec(
            select(Lot)
            .where(
                Lot.account_id == account_id,
                col(Lot.remaining) > 0,
                col(Lot.available_at) > ctx.now,
                col(Lot.available_at) < PENDING_UNTIL_SHIPPED,
                col(Lot.transaction_id).is_distinct_from(transaction_id),
            )
            .order_by(col(Lot.available_at), col(Lot.id))
        ).all()
    )

"""Referral points: the intermediary (a foreman, a designer) earns on the purchases of the
customers they brought.

The points are booked in the receipt's transaction as a lot on the intermediary's account
(``source = referral``, an entry whose note explains it), recorded once per receipt as a bonus
grant. A refund of the receipt takes back the matching share (line by line, cumulatively, so
several partial refunds add up to exactly the whole) as an ordinary return takes back a
purchase's own points (``_take_back``): from that lot first, then from the intermediary's other
points, pending ones included; what they already spent is recorded as the shortfall
(``GrantReversal``), for receipts and orders alike.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.core.allocation import cumulative_share
from gateway.core.pricing import PricedCart, Referral
from gateway.core.program import Program
from gateway.ledger.accounts import (
    PENDING_UNTIL_SHIPPED,
    add_entry,
    add_lot,
    lock_account,
    spendable_lots,
    take_from_lot,
)
from gateway.ledger.context import Ctx
from gateway.ledger.movements import pending_lots_except
from gateway.outbound.outbox import Event
from gateway.store.db import Database
from gateway.store.models import Account, Lot, ReceiptLine, Refund
from gateway.store.models_program import BonusGrant, GrantReversal


def grant_key(transaction_id: str) -> str:
    return f"referral:{transaction_id}"


def welcome_key(customer_id: str) -> str:
    return f"referral_welcome:{customer_id}"


def welcome_friend(ctx: Ctx, customer_id: str, account_id: str, referrer_id: str | None) -> int:
    """The referred friend's own bonus (``bonuses.referral_welcome``), once per friend: the grant's
    key is the friend, so no retry, channel or second call grants it twice. Returns the points."""
    rule = ctx.program.bonuses.referral_welcome
    if rule is None or referrer_id is None:
        return 0
    key = welcome_key(customer_id)
    if ctx.session.get(BonusGrant, key) is not None:
        return 0
    days = rule.expiry_days or ctx.program.expiry.days
    lot = add_lot(
        ctx,
        account_id,
        "referral_welcome",
        rule.points,
        entry_kind="welcome",  # the reports count it with the welcome points
        available_at=ctx.now,
        expires_at=ctx.now + timedelta(days=days) if days else None,
    )
    ctx.session.add(
        BonusGrant(
            key=key,
            kind="referral_welcome",
            customer_id=customer_id,
            account_id=account_id,
            points=rule.points,
            lot_id=lot.id,
            source_customer_id=referrer_id,
            description=rule.description[:256],
            created_at=ctx.now,
        )
    )
    ctx.session.flush()
    return rule.points


def book(ctx: Ctx, priced: PricedCart, transaction_id: str, buyer_customer_id: str | None) -> BonusGrant | None:
    """Credit the referral points of a booked receipt (once per receipt)."""
    referral = priced.referral
    if referral is None or referral.points <= 0:
        return None
    key = grant_key(transaction_id)
    if ctx.session.get(BonusGrant, key) is not None:
        return None
    account = ctx.session.get(Account, referral.account_id)
    if account is None:
        return None
    program = ctx.program
    available_at = ctx.now + timedelta(days=program.accrual.pending_days)
    days = referral.expiry_days or program.expiry.days
    lot = Lot(
        account_id=account.id,
        source="referral",
        points=referral.points,
        remaining=referral.points,
        available_at=available_at,
        expires_at=available_at + timedelta(days=days) if days else None,
        transaction_id=transaction_id,
        created_at=ctx.now,
    )
    ctx.session.add(lot)
    ctx.session.flush()
    add_entry(
        ctx,
        account.id,
        "referral",
        referral.points,
        lot_id=lot.id,
        transaction_id=transaction_id,
        note=referral.description[:256],
    )
    grant = BonusGrant(
        key=key,
        kind="referral",
        customer_id=account.customer_id,
        account_id=account.id,
        points=referral.points,
        lot_id=lot.id,
        transaction_id=transaction_id,
        source_customer_id=buyer_customer_id,
        lines_json=json.dumps({line.line_id: line.referral_points for line in priced.lines if line.referral_points}),
        description=referral.description[:256],
        created_at=ctx.now,
    )
    ctx.session.add(grant)
    ctx.session.flush()
    return grant


def _owed_back(grant: BonusGrant, lines: Sequence[ReceiptLine]) -> int:
    """Referral points that the refunds of the receipt so far take back, in all."""
    per_line: dict[str, int] = json.loads(grant.lines_json)
    total = 0
    for line in lines:
        points = per_line.get(line.line_id, 0)
        if not points:
            continue
        if Decimal(line.refunded_quantity) >= Decimal(line.quantity):
            total += points
        else:
            total += cumulative_share(points, Fraction(line.refunded_kopecks), Fraction(line.amount_kopecks))
    return total


def reverse_for_refund(ctx: Ctx, refund: Refund) -> int:
    """Take back the referral share of one refund (once per refund); returns the points taken."""
    grant = ctx.session.get(BonusGrant, grant_key(refund.receipt_txn_id))
    if grant is None or ctx.session.get(GrantReversal, (refund.id, grant.key)) is not None:
        return 0
    lock_account(ctx, grant.account_id)
    ctx.session.refresh(grant)
    lines = ctx.session.exec(select(ReceiptLine).where(ReceiptLine.receipt_txn_id == refund.receipt_txn_id)).all()
    owed = min(_owed_back(grant, lines), grant.points) - grant.reversed_points
    assert grant.transaction_id is not None
    note = "referral points of a refunded purchase"
    taken = _take_back(ctx, grant.account_id, grant.transaction_id, owed, refund.id, note) if owed > 0 else 0
    grant.reversed_points += max(owed, 0)
    ctx.session.add(grant)
    ctx.session.add(
        GrantReversal(
            refund_txn_id=refund.id,
            grant_key=grant.key,
            points=taken,
            shortfall=max(owed, 0) - taken,
            created_at=ctx.now,
        )
    )
    ctx.session.flush()
    return taken


def _take_back(ctx: Ctx, account_id: str, own_txn: str, points: int, change_id: str, note: str) -> int:
    """Take back ``points`` of referral credit as ``movements.reverse_earned`` takes back a
    purchase's own points on an ordinary return: the credit's own lots (``own_txn``) first, even
    while pending by the program's ``pending_days``; then the intermediary's other live points,
    soonest-expiring first; then their other points pending by days. Points an open order keeps
    pending until shipment are never touched (that order accounts for them). The account is
    locked by the caller. Returns what could be taken; the rest they already spent."""
    if points <= 0:
        return 0
    own = ctx.session.exec(
        select(Lot)
        .where(
            Lot.account_id == account_id,
            Lot.transaction_id == own_txn,
            col(Lot.remaining) > 0,
            col(Lot.available_at) < PENDING_UNTIL_SHIPPED,
        )
        .order_by(col(Lot.id))
    ).all()
    others = [lot for lot in spendable_lots(ctx, account_id) if lot.transaction_id != own_txn]
    pending_others = pending_lots_except(ctx, account_id, own_txn)
    taken = 0
    for lot in [*own, *others, *pending_others]:
        if taken == points:
            break
        take = min(lot.remaining, points - taken)
        entry = add_entry(
            ctx, account_id, "reverse", -take, lot_id=lot.id, transaction_id=own_txn, refund_id=change_id, note=note
        )
        take_from_lot(ctx, lot, take, "reversed", entry_id=entry.id)
        taken += take
    return taken


class ReferralRefunds:
    """Event hook of the ledger service: a ``receipt.refunded`` event, in the refund's own
    transaction, takes back the intermediary's share of the refunded purchase."""

    def __init__(self, db: Database, program: Program) -> None:
        self.db = db
        self.program = program

    def __call__(self, session: Session, events: list[Event], now: datetime) -> None:
        if not self.program.bonuses.referral:
            return
        for event in events:
            if event.name != "receipt.refunded":
                continue
            client_id = str(event.payload.get("client_id", ""))
            refund_id = str(event.payload.get("refund_id", ""))
            refund = session.exec(
                select(Refund).where(Refund.client_id == client_id, col(Refund.refund_id) == refund_id)
            ).first()
            if refund is not None:
                reverse_for_refund(Ctx(self.db, session, self.program, now, client_id), refund)


# -- orders ---------------------------------------------------------------------------------------
#
# An order (web shop, ERP) earns the intermediary their share of the money the referred customer
# pays, line by line, exactly as the order's own points: pending until the goods ship (or the
# order is paid, as the program accrues), unlocked with them, taken back with returns, edits and
# cancellation. The order's grant (``referral:<order id>``) remembers each line's referral
# points as last priced; its lots carry a transaction id of their own (``order_lots_txn``), so
# they never mix with the buyer's order lots that the order's invariants count.


def order_lots_txn(order_id: str) -> str:
    return str(uuid.uuid5(_ORDER_LOTS, order_id))


_ORDER_LOTS = uuid.UUID("6f1d3a52-8c0e-4b7e-9a43-2d5f0b9e7c11")


def reprice_order(
    ctx: Ctx, order_id: str, referral: Referral | None, lines: dict[str, int], buyer_customer_id: str | None
) -> BonusGrant | None:
    """Remember the referral points of each line of a (re)priced order; ``post_order`` moves the
    intermediary's points to them. An order that no longer earns any keeps its grant at zero."""
    key = grant_key(order_id)
    grant = ctx.session.get(BonusGrant, key)
    if referral is None or referral.points <= 0:
        lines = {}
    if grant is None:
        if not lines or referral is None:
            return None
        account = ctx.session.get(Account, referral.account_id)
        if account is None:
            return None
        grant = BonusGrant(
            key=key,
            kind="referral",
            customer_id=account.customer_id,
            account_id=account.id,
            points=0,
            transaction_id=order_id,
            source_customer_id=buyer_customer_id,
            description=referral.description[:256],
            created_at=ctx.now,
        )
    elif referral is not None and referral.account_id != grant.account_id:
        # The order's referrer changed (the order moved to another customer): the first
        # intermediary's share goes to nothing before the new one's is booked.
        lock_account(ctx, grant.account_id)
        _post_order_worth(ctx, grant, 0, 0, order_id)
        owed = _owed(ctx, grant)
        if owed:  # the first intermediary's debt stays theirs: the new one's credit does not pay it
            ctx.session.add(
                GrantReversal(
                    refund_txn_id=str(uuid.uuid4()), grant_key=grant.key, points=0, shortfall=-owed, created_at=ctx.now
                )
            )
        account = ctx.session.get(Account, referral.account_id)
        if account is None:
            lines = {}
        else:
            grant.account_id, grant.customer_id = account.id, account.customer_id
            grant.points = grant.reversed_points = 0
    grant.lines_json = json.dumps(lines)
    if referral is not None:
        grant.description = referral.description[:256]
    ctx.session.add(grant)
    ctx.session.flush()
    return grant


def order_referral_lines(ctx: Ctx, order_id: str) -> tuple[BonusGrant, dict[str, int]] | None:
    grant = ctx.session.get(BonusGrant, grant_key(order_id))
    if grant is None:
        return None
    return grant, {str(k): int(v) for k, v in json.loads(grant.lines_json).items()}


def post_order(ctx: Ctx, grant: BonusGrant, pending: int, available: int, change_id: str) -> None:
    """Move the intermediary's points from what the order posted to ``pending`` + ``available``."""
    lock_account(ctx, grant.account_id)
    _post_order_worth(ctx, grant, pending, available, change_id)
    ctx.session.add(grant)
    ctx.session.flush()


def _order_pending_lots(ctx: Ctx, grant: BonusGrant) -> list[Lot]:
    assert grant.transaction_id is not None
    return list(
        ctx.session.exec(
            select(Lot)
            .where(
                Lot.account_id == grant.account_id,
                Lot.transaction_id == order_lots_txn(grant.transaction_id),
                col(Lot.remaining) > 0,
                col(Lot.available_at) >= PENDING_UNTIL_SHIPPED,
            )
            .order_by(col(Lot.id))
        ).all()
    )


def _take_order_pending(ctx: Ctx, grant: BonusGrant, points: int, kind: str, change_id: str) -> None:
    assert grant.transaction_id is not None
    left = points
    for lot in _order_pending_lots(ctx, grant):
        if left == 0:
            break
        take = min(lot.remaining, left)
        entry = add_entry(
            ctx,
            grant.account_id,
            kind,
            -take,
            lot_id=lot.id,
            transaction_id=order_lots_txn(grant.transaction_id),
            refund_id=change_id,
            note="referral points of an order",
        )
        take_from_lot(ctx, lot, take, "unlocked" if kind == "unlock" else "reversed", entry_id=entry.id)
        left -= take


def _credit_order(ctx: Ctx, grant: BonusGrant, points: int, change_id: str, *, pending: bool) -> None:
    assert grant.transaction_id is not None
    if pending:
        available_at, expires_at = PENDING_UNTIL_SHIPPED, None
    else:
        available_at = ctx.now + timedelta(days=ctx.program.accrual.pending_days)
        days = ctx.program.expiry.days
        expires_at = available_at + timedelta(days=days) if days else None
    lot = add_lot(
        ctx,
        grant.account_id,
        "referral",
        points,
        entry_kind="referral",
        available_at=available_at,
        expires_at=expires_at,
        transaction_id=order_lots_txn(grant.transaction_id),
        refund_id=change_id,
    )
    grant.lot_id = lot.id


def _owed(ctx: Ctx, grant: BonusGrant) -> int:
    """What the intermediary still owes from the order's earlier take-backs (they had spent it)."""
    total = ctx.session.exec(
        select(func.coalesce(func.sum(GrantReversal.shortfall), 0)).where(GrantReversal.grant_key == grant.key)
    ).one()
    return int(total)


def _post_order_worth(ctx: Ctx, grant: BonusGrant, pending: int, available: int, change_id: str) -> None:
    """``grant.points`` counts what was ever credited (pending or not), ``reversed_points`` what
    was taken back (or is owed); the pending part is what the order's pending lots hold. As
    with the order's own points, points becoming available first settle what the intermediary
    still owes from an earlier return (recorded as a negative shortfall)."""
    posted_pending = sum(lot.remaining for lot in _order_pending_lots(ctx, grant))
    posted_available = grant.points - grant.reversed_points - posted_pending
    d_pending = pending - posted_pending
    d_available = available - posted_available
    moved = min(d_available, -d_pending) if d_available > 0 and d_pending < 0 else 0  # shipped: unlock
    owed = _owed(ctx, grant) if d_available > 0 else 0
    settled = 0
    if moved:
        settled = min(owed, moved)
        if settled:
            _take_order_pending(ctx, grant, settled, "reverse", change_id)
        if moved > settled:
            _take_order_pending(ctx, grant, moved - settled, "unlock", change_id)
            _credit_order(ctx, grant, moved - settled, change_id, pending=False)
        d_pending += moved
        d_available -= moved
    if d_pending < 0:
        _take_order_pending(ctx, grant, -d_pending, "reverse", change_id)
        grant.reversed_points += -d_pending
    elif d_pending > 0:
        _credit_order(ctx, grant, d_pending, change_id, pending=True)
        grant.points += d_pending
    if d_available > 0:
        fresh_settled = min(owed - settled, d_available)
        if d_available > fresh_settled:
            _credit_order(ctx, grant, d_available - fresh_settled, change_id, pending=False)
        grant.points += d_available
        settled += fresh_settled
    if settled:
        ctx.session.add(
            GrantReversal(
                refund_txn_id=change_id, grant_key=grant.key, points=0, shortfall=-settled, created_at=ctx.now
            )
        )
    if d_available < 0:
        assert grant.transaction_id is not None
        note = "referral points of a returned or changed order"
        taken = _take_back(ctx, grant.account_id, order_lots_txn(grant.transaction_id), -d_available, change_id, note)
        grant.reversed_points += -d_available  # what they already spent is owed, not re-credited
        ctx.session.add(
            GrantReversal(
                refund_txn_id=change_id,
                grant_key=grant.key,
                points=taken,
                shortfall=-d_available - taken,
                created_at=ctx.now,
            )
        )

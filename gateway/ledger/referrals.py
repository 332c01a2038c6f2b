"""Referral points: the intermediary (a foreman, a designer) earns on the purchases of the
customers they brought.

The points are booked in the receipt's transaction as a lot on the intermediary's account
(``source = referral``, an entry whose note explains it), recorded once per receipt as a bonus
grant. A refund of the receipt takes back the matching share (line by line, cumulatively, so
several partial refunds add up to exactly the whole), from that lot first, then from the
intermediary's other points; what they already spent is recorded as the shortfall.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlmodel import Session, col, select

from gateway.core.allocation import cumulative_share
from gateway.core.pricing import PricedCart
from gateway.core.program import Program
from gateway.ledger.accounts import add_entry, spendable_lots, take_from_lot
from gateway.ledger.context import Ctx
from gateway.outbound.outbox import Event
from gateway.store.db import Database
from gateway.store.models import Account, Lot, ReceiptLine, Refund
from gateway.store.models_program import BonusGrant, GrantReversal


def grant_key(transaction_id: str) -> str:
    return f"referral:{transaction_id}"


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
    ctx.db.lock_account(ctx.session, grant.account_id)
    ctx.session.refresh(grant)
    lines = ctx.session.exec(select(ReceiptLine).where(ReceiptLine.receipt_txn_id == refund.receipt_txn_id)).all()
    owed = min(_owed_back(grant, lines), grant.points) - grant.reversed_points
    taken = _take_back(ctx, grant, max(owed, 0), refund.id) if owed > 0 else 0
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


def _take_back(ctx: Ctx, grant: BonusGrant, points: int, refund_txn: str) -> int:
    own = ctx.session.get(Lot, grant.lot_id) if grant.lot_id is not None else None
    lots = (
        [own] if own is not None and own.remaining > 0 and (own.expires_at is None or own.expires_at > ctx.now) else []
    )
    lots += [lot for lot in spendable_lots(ctx, grant.account_id) if own is None or lot.id != own.id]
    taken = 0
    for lot in lots:
        if taken == points:
            break
        take = min(lot.remaining, points - taken)
        if take <= 0:
            continue
        entry = add_entry(
            ctx,
            grant.account_id,
            "reverse",
            -take,
            lot_id=lot.id,
            transaction_id=grant.transaction_id,
            refund_id=refund_txn,
            note="referral points of a refunded purchase",
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

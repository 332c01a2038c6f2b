"""What happened to a gift certificate, oldest first: issue, holds, redemptions, refunds,
blocking, expiry — each money movement with the balance it left."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from contracts.accounts import GiftCardHistoryItem, GiftCardHistoryResult
from contracts.money import kopecks_to_money
from contracts.operations import GiftCardInfoRequest
from gateway.ledger import giftcards
from gateway.ledger.context import Ctx
from gateway.store.models import GiftCardEntry, GiftCardHold
from gateway.store.models_accounts import GiftCardRefund, GiftCardStatusChange

# Within one instant: money first (in entry order), then holds, then status changes.
_ORDER = {"money": 0, "hold": 1, "status": 2}


def history(ctx: Ctx, number: str) -> GiftCardHistoryResult:
    card = giftcards.info(ctx, GiftCardInfoRequest(number=number))
    refunds = {
        row.entry_id: row
        for row in ctx.session.exec(select(GiftCardRefund).where(GiftCardRefund.number == card.number)).all()
    }
    keyed: list[tuple[datetime, int, int, GiftCardHistoryItem]] = []
    balance = 0
    for entry in ctx.session.exec(
        select(GiftCardEntry).where(GiftCardEntry.number == card.number).order_by(col(GiftCardEntry.id))
    ).all():
        assert entry.id is not None
        balance += entry.amount_kopecks
        refund = refunds.get(entry.id)
        item = GiftCardHistoryItem(
            at=entry.created_at,
            kind=entry.kind,  # issue | redeem | refund | expire (validated)
            amount=kopecks_to_money(entry.amount_kopecks),
            balance_after=kopecks_to_money(balance),
            hold_id=entry.hold_id,
            receipt_id=entry.receipt_id,
            refund_id=refund.refund_id if refund else None,
            client_id=entry.client_id,
        )
        keyed.append((entry.created_at, _ORDER["money"], entry.id, item))
    for hold in ctx.session.exec(select(GiftCardHold).where(GiftCardHold.number == card.number)).all():
        status = hold.status if hold.status != "open" or hold.expires_at > ctx.now else "expired"
        note = f"held {kopecks_to_money(hold.amount_kopecks)}"
        if hold.redeemed_kopecks is not None:
            note += f", redeemed {kopecks_to_money(hold.redeemed_kopecks)}"
        item = GiftCardHistoryItem(
            at=hold.created_at, kind="hold", hold_id=hold.id, hold_status=status, client_id=hold.client_id, note=note
        )
        keyed.append((hold.created_at, _ORDER["hold"], 0, item))
    for change in ctx.session.exec(
        select(GiftCardStatusChange).where(GiftCardStatusChange.number == card.number)
    ).all():
        assert change.id is not None
        item = GiftCardHistoryItem(
            at=change.created_at,
            kind="block" if change.blocked else "unblock",
            client_id=change.client_id,
            note=change.reason,
        )
        keyed.append((change.created_at, _ORDER["status"], change.id, item))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    return GiftCardHistoryResult(card=card, items=[k[3] for k in keyed])

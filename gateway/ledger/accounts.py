"""Cards, accounts, balances and lot expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, cast

from sqlalchemy import bindparam, case, func
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import BalanceResult, ExpiringPoints
from gateway.ledger.context import Ctx
from gateway.ledger.phones import card_for_phone
from gateway.store.models import Account, Allocation, Card, Customer, LedgerEntry, Lot

CardStatus = Literal["active", "blocked", "replaced"]
EXPIRING_SHOWN = 5
# ``available_at`` of points an open order earned but that wait for its shipment (or payment):
# they are owned (in the balance, shown as pending) but no date makes them spendable; the order
# unlocks them by moving them to a lot of their own.
PENDING_UNTIL_SHIPPED = datetime(9999, 1, 1, tzinfo=UTC)


def find_card(ctx: Ctx, number: str) -> Card:
    """The card by its number — or, the phone being the card, by a phone typed in its place."""
    card = ctx.session.get(Card, number) or card_for_phone(ctx.session, number)
    if card is None:
        raise LoyaltyError(ErrorCode.CARD_NOT_FOUND, card_number=number)
    return card


def lock_card_account(ctx: Ctx, number: str, *, require_active: bool = True) -> tuple[Card, Account]:
    """Find the card, lock its account for the rest of the transaction, expire due lots."""
    card = find_card(ctx, number)
    if require_active and card.status != "active":
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, card_number=number, status=card.status, replaced_by=card.replaced_by)
    account = ctx.db.lock_account(ctx.session, card.account_id)
    if account is None:  # pragma: no cover - foreign keys make this impossible
        raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "card without account")
    expire_due_lots(ctx, account.id)
    return card, account


def lock_account(ctx: Ctx, account_id: str) -> Account:
    account = ctx.db.lock_account(ctx.session, account_id)
    if account is None:  # pragma: no cover
        raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "no such account")
    expire_due_lots(ctx, account.id)
    return account


def add_entry(
    ctx: Ctx,
    account_id: str,
    kind: str,
    points: int,
    *,
    lot_id: int | None = None,
    hold_id: str | None = None,
    transaction_id: str | None = None,
    refund_id: str | None = None,
    note: str | None = None,
) -> LedgerEntry:
    entry = LedgerEntry(
        account_id=account_id,
        kind=kind,
        points=points,
        lot_id=lot_id,
        hold_id=hold_id,
        transaction_id=transaction_id,
        refund_id=refund_id,
        client_id=ctx.client_id,
        note=note,
        created_at=ctx.now,
    )
    ctx.session.add(entry)
    ctx.session.flush()
    return entry


def add_lot(
    ctx: Ctx,
    account_id: str,
    source: str,
    points: int,
    *,
    entry_kind: str,
    available_at: datetime,
    expires_at: datetime | None,
    transaction_id: str | None = None,
    refund_id: str | None = None,
    origin_lot_id: int | None = None,
) -> Lot:
    """Credit ``points`` as a new lot together with its ledger entry."""
    lot = Lot(
        account_id=account_id,
        source=source,
        points=points,
        remaining=points,
        available_at=available_at,
        expires_at=expires_at,
        transaction_id=transaction_id,
        origin_lot_id=origin_lot_id,
        created_at=ctx.now,
    )
    ctx.session.add(lot)
    ctx.session.flush()
    add_entry(
        ctx,
        account_id,
        entry_kind,
        points,
        lot_id=lot.id,
        transaction_id=transaction_id,
        refund_id=refund_id,
    )
    return lot


def take_from_lot(
    ctx: Ctx, lot: Lot, points: int, state: str, *, hold_id: str | None = None, entry_id: int | None = None
) -> Allocation:
    """Draw ``points`` out of ``lot`` and record what drew them (the lot's side of every debit)."""
    assert lot.id is not None and 0 < points <= lot.remaining
    lot.remaining -= points
    ctx.session.add(lot)
    allocation = Allocation(
        account_id=lot.account_id,
        lot_id=lot.id,
        state=state,
        points=points,
        hold_id=hold_id,
        entry_id=entry_id,
        created_at=ctx.now,
    )
    ctx.session.add(allocation)
    return allocation


def expire_lot(ctx: Ctx, lot: Lot) -> int:
    """Expire what is left of ``lot``; returns the points expired."""
    points = lot.remaining
    if points <= 0:
        return 0
    entry = add_entry(ctx, lot.account_id, "expire", -points, lot_id=lot.id)
    take_from_lot(ctx, lot, points, "expired", entry_id=entry.id)
    return points


def expire_due_lots(ctx: Ctx, account_id: str) -> int:
    """Expire every lot of a locked account whose lifetime is over. Safe to repeat."""
    lots = ctx.session.exec(
        select(Lot).where(
            Lot.account_id == account_id,
            col(Lot.remaining) > 0,
            col(Lot.expires_at).is_not(None),
            col(Lot.expires_at) <= ctx.now,
        )
    ).all()
    return sum(expire_lot(ctx, lot) for lot in lots)


def spendable_lots(ctx: Ctx, account_id: str) -> list[Lot]:
    """Lots whose points can be spent now (available, not expired), soonest-expiring first."""
    return list(
        ctx.session.exec(
            select(Lot)
            .where(
                Lot.account_id == account_id,
                col(Lot.remaining) > 0,
                col(Lot.available_at) <= ctx.now,
                (col(Lot.expires_at).is_(None)) | (col(Lot.expires_at) > ctx.now),
            )
            .order_by(col(Lot.expires_at).is_(None), col(Lot.expires_at), col(Lot.id))
        ).all()
    )


# The balance is read on almost every request: its statements are built once, not per call, and
# add up in the database (a regular customer has a lot per receipt of the last year).
_LIVE = (col(Lot.remaining) > 0) & ((col(Lot.expires_at).is_(None)) | (col(Lot.expires_at) > bindparam("now")))
_AVAILABLE_NOW = col(Lot.available_at) <= bindparam("now")
_TOTALS = select(
    func.coalesce(func.sum(case((_AVAILABLE_NOW, Lot.remaining), else_=0)), 0),
    func.coalesce(func.sum(case((_AVAILABLE_NOW, 0), else_=Lot.remaining)), 0),
    select(func.coalesce(func.sum(Allocation.points), 0))
    .where(col(Allocation.account_id) == bindparam("account_id"), col(Allocation.state) == "held")
    .scalar_subquery(),
).where(col(Lot.account_id) == bindparam("account_id"), _LIVE)
_EXPIRING = (
    select(col(Lot.expires_at), func.sum(Lot.remaining))
    .where(col(Lot.account_id) == bindparam("account_id"), _LIVE, _AVAILABLE_NOW, col(Lot.expires_at).is_not(None))
    .group_by(col(Lot.expires_at))
    .order_by(col(Lot.expires_at))
    .limit(EXPIRING_SHOWN)
)
_AVAILABLE = select(func.coalesce(func.sum(Lot.remaining), 0)).where(
    col(Lot.account_id) == bindparam("account_id"), _LIVE, _AVAILABLE_NOW
)
_CARD_WITH_OWNER = (
    select(Card, Account, Customer)
    .join(Account, col(Account.id) == col(Card.account_id))
    .join(Customer, col(Customer.id) == col(Account.customer_id))
    .where(col(Card.number) == bindparam("number"))
)


def find_card_with_owner(ctx: Ctx, number: str) -> Card:
    """``find_card`` that also loads the card's account and its owner in the same statement, for
    paths that read them (pricing, rights): later lookups of both are served from the session."""
    row = ctx.session.execute(_CARD_WITH_OWNER, {"number": number}).first()
    if row is None and (by_phone := card_for_phone(ctx.session, number)) is not None:
        row = ctx.session.execute(_CARD_WITH_OWNER, {"number": by_phone.number}).first()
    if row is None:
        raise LoyaltyError(ErrorCode.CARD_NOT_FOUND, card_number=number)
    card: Card = row[0]
    # The session's identity map holds objects weakly: keep the account and its owner alive for
    # the rest of the transaction so that session.get() finds them without a query.
    ctx.session.info.setdefault("loaded", []).extend(row[1:])
    return card


def available_points(ctx: Ctx, account_id: str) -> int:
    return int(ctx.session.execute(_AVAILABLE, {"account_id": account_id, "now": ctx.now}).scalar_one())


def balance_of(ctx: Ctx, card: Card) -> BalanceResult:
    """The balance as the customer sees it: expired-but-unswept points are already gone."""
    params = {"account_id": card.account_id, "now": ctx.now}
    available, pending, held = (int(x) for x in ctx.session.execute(_TOTALS, params).one())
    expiring = [
        ExpiringPoints(points=int(points), expires_at=expires_at)
        for expires_at, points in ctx.session.execute(_EXPIRING, params).all()
    ]
    return BalanceResult(
        card_number=card.number,
        customer_id=card.customer_id,
        card_status=cast(CardStatus, card.status),
        balance=available + pending + held,
        available=available,
        held=held,
        pending=pending,
        expiring=expiring,
    )


def expire_due_lots_batch(ctx: Ctx, limit: int) -> int:
    """Expire due lots of up to ``limit`` accounts (the scheduled expiry job)."""
    account_ids = ctx.session.exec(
        select(Lot.account_id)
        .where(col(Lot.remaining) > 0, col(Lot.expires_at).is_not(None), col(Lot.expires_at) <= ctx.now)
        .distinct()
        .limit(limit)
    ).all()
    expired = 0
    for account_id in account_ids:
        ctx.db.lock_account(ctx.session, account_id)
        expired += expire_due_lots(ctx, account_id)
    return expired

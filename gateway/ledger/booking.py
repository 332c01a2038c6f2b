"""The account a receipt books on, read in one round trip and written in a few batched statements.

A receipt is the hottest write of the ledger (issue 22), so it does not go row by row through
``accounts.add_entry``/``add_lot`` (a flush per row to learn its id) and re-read what it wrote.
``Booking.load`` reads, under the account's lock, the card, its account and owner, every lot with
points left (soonest-expiring first), the points held by open holds, and what the receipt needs
to know before it books: whether this client booked the receipt already, and whether the
gateway booked a till's write-off of the same points itself. The booking then changes lots in
memory and ``write`` stores the lots, their ledger entries and the allocations linking the two
in three steps (lots, entries, allocations: each step needs the ids of the one before); the
allocations go out with the transaction's last flush.

The rules are those of ``accounts`` and ``movements`` (due lots expire first; spending takes the
soonest-expiring lot first; each debit records the lots it drew from); only the statements differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, func, insert, or_
from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import BalanceResult, ExpiringPoints
from gateway.core.allocation import LotView, draw_from_lots
from gateway.ledger.accounts import EXPIRING_SHOWN, CardStatus
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import HoldStatus
from gateway.ledger.phones import card_for_phone
from gateway.store.models import Account, Allocation, Card, Customer, Hold, LedgerEntry, Lot, Receipt

_HELD = (
    select(func.coalesce(func.sum(Allocation.points), 0))
    .where(col(Allocation.account_id) == col(Account.id), col(Allocation.state) == "held")
    .scalar_subquery()
)
_OWN_RECEIPT = (
    select(col(Receipt.id))
    .where(col(Receipt.client_id) == bindparam("client_id"), col(Receipt.receipt_id) == bindparam("receipt_id"))
    .scalar_subquery()
)
_OWN_TRANSACTION = (
    select(col(Receipt.id))
    .where(col(Receipt.client_id) == bindparam("client_id"), col(Receipt.id) == bindparam("receipt_id"))
    .scalar_subquery()
)
# A till's write-off of exactly these points that the gateway booked itself when its receipt
# did not come in time (``till.booked_by_gateway`` decides what it means for the receipt).
_GATEWAY_BOOKING = (
    select(col(Hold.id))
    .where(
        col(Hold.account_id) == col(Account.id),
        col(Hold.status) == HoldStatus.COMMITTED,
        col(Hold.captured_points) == bindparam("points"),
        col(Hold.client_id).in_(bindparam("settlers", expanding=True)),
        or_(col(Hold.receipt_id) == bindparam("claim"), col(Hold.receipt_id).is_(None)),
    )
    .limit(1)
    .scalar_subquery()
)


def _snapshot(*, by_receipt: bool, by_write_off: bool) -> Select[Any]:
    columns: list[Any] = [Card, Account, Customer, Lot, _HELD.label("held")]
    if by_receipt:
        columns += [_OWN_RECEIPT.label("own_receipt"), _OWN_TRANSACTION.label("own_transaction")]
    if by_write_off:
        columns.append(_GATEWAY_BOOKING.label("gateway_booking"))
    statement: Select[Any] = (
        select(*columns)
        .join(Account, col(Account.id) == col(Card.account_id))
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .outerjoin(Lot, and_(col(Lot.account_id) == col(Account.id), col(Lot.remaining) > 0))
        .where(col(Card.number) == bindparam("number"))
        .order_by(col(Lot.expires_at).is_(None), col(Lot.expires_at), col(Lot.id))
    )
    return statement


_LOCK = (
    select(col(Account.id))
    .join(Card, col(Card.account_id) == col(Account.id))
    .where(col(Card.number) == bindparam("number"))
    .with_for_update(of=Account)
)
# Built once: the statement is the same for every receipt of a kind.
_SNAPSHOTS = {(r, w): _snapshot(by_receipt=r, by_write_off=w) for r in (False, True) for w in (False, True)}


_LOTS = cast(Table, Lot.__table__)  # type: ignore[attr-defined]
_ENTRIES = cast(Table, LedgerEntry.__table__)  # type: ignore[attr-defined]
_ALLOCATIONS = cast(Table, Allocation.__table__)  # type: ignore[attr-defined]


def _insert(session: Session, table: Table, rows: list[dict[str, Any]], *, key: tuple[str, ...]) -> list[int]:
    """Insert ``rows`` in one statement and return their ids, in order. SQLite does not promise
    the order of what ``RETURNING`` gives back, so rows are matched to their ids by ``key``;
    rows that ``key`` cannot tell apart are inserted one by one."""
    if not rows:
        return []
    keys = [tuple(row[k] for k in key) for row in rows]
    if len(set(keys)) < len(keys):
        return [session.execute(insert(table).values(row).returning(table.c.id)).scalar_one() for row in rows]
    returned = session.execute(insert(table).values(rows).returning(table.c.id, *(table.c[k] for k in key)))
    ids = {tuple(row[1:]): int(row[0]) for row in returned}
    return [ids[k] for k in keys]


@dataclass
class _Move:
    """One ledger entry to write, and the points of lots it draws (new allocations) or settles
    (allocations already held for it)."""

    kind: str
    points: int
    lot: Lot | None = None
    hold_id: str | None = None
    transaction_id: str | None = None
    draws: list[tuple[Lot, int, str]] = field(default_factory=list)
    settles: list[Allocation] = field(default_factory=list)


@dataclass
class Booking:
    ctx: Ctx
    card: Card
    account: Account
    lots: list[Lot]  # every lot with points left when loaded, soonest-expiring first
    held: int
    booked_receipt_id: str | None = None
    gateway_booking_id: str | None = None
    new_lots: list[Lot] = field(default_factory=list)
    moves: list[_Move] = field(default_factory=list)
    reserved: list[tuple[Lot, int, str]] = field(default_factory=list)  # (lot, points, hold id) to hold

    @classmethod
    def load(
        cls,
        ctx: Ctx,
        number: str,
        *,
        receipt_id: str | None = None,
        write_off: tuple[int, str] | None = None,
    ) -> Booking:
        """Lock the card's account and read it (see the module); due lots are expired at once.

        ``receipt_id``: also find this client's receipt of that id (or transaction id).
        ``write_off``: (points, receipt id) — also find the gateway's own booking of a till's
        write-off of exactly those points that this receipt may be (``till.booked_by_gateway``)."""
        if not ctx.db.is_sqlite:
            # PostgreSQL reads the lots only once the account is locked: a statement that waited
            # for the lock would otherwise return the lots as they were before the wait.
            # (SQLite's BEGIN IMMEDIATE holds the database's write lock from the start.)
            locked = ctx.session.execute(_LOCK, {"number": number}).first()
            if locked is None and (by_phone := card_for_phone(ctx.session, number)) is not None:
                ctx.db.lock_account(ctx.session, by_phone.account_id)
        params: dict[str, Any] = {"number": number}
        if receipt_id is not None:
            params.update(client_id=ctx.client_id, receipt_id=receipt_id)
        if write_off is not None:
            points, receipt = write_off
            settlers = [ctx.client_id, *sorted(ctx.settles)]
            params.update(points=points, settlers=settlers, claim=f"{ctx.client_id}:{receipt}"[:128])
        statement = _SNAPSHOTS[(receipt_id is not None, write_off is not None)]
        rows = ctx.session.execute(statement, params).all()
        if not rows and (by_phone := card_for_phone(ctx.session, number)) is not None:
            rows = ctx.session.execute(statement, {**params, "number": by_phone.number}).all()
        if not rows:
            raise LoyaltyError(ErrorCode.CARD_NOT_FOUND, card_number=number)
        first = rows[0]
        booking = cls(
            ctx=ctx,
            card=first.Card,
            account=first.Account,
            lots=[row.Lot for row in rows if row.Lot is not None],
            held=int(first.held),
            booked_receipt_id=(first.own_receipt or first.own_transaction) if receipt_id is not None else None,
            gateway_booking_id=first.gateway_booking if write_off is not None else None,
        )
        # The session holds objects weakly: keep the owner for the pricing context's lookups.
        ctx.session.info.setdefault("loaded", []).append(first.Customer)
        booking.expire_due()
        return booking

    # -- points -----------------------------------------------------------------------------

    def _live(self, lot: Lot) -> bool:
        return lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > self.ctx.now)

    def available(self) -> int:
        """Points spendable now (available, not expired), as ``accounts.available_points``."""
        return sum(lot.remaining for lot in self.lots if self._live(lot) and lot.available_at <= self.ctx.now)

    def expire_due(self) -> int:
        """Expire what is left of every lot whose lifetime is over (``accounts.expire_due_lots``)."""
        expired = 0
        for lot in [*self.lots, *self.new_lots]:
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.ctx.now:
                points, lot.remaining = lot.remaining, 0
                self.moves.append(_Move("expire", -points, lot=lot, draws=[(lot, points, "expired")]))
                expired += points
        return expired

    def spend(self, points: int, *, hold_id: str | None, transaction_id: str, held: list[Allocation]) -> None:
        """Debit ``points``: from allocations a hold kept for them (``held``), else from the
        spendable lots, soonest-expiring first (``movements.allocate``)."""
        move = _Move("spend", -points, hold_id=hold_id, transaction_id=transaction_id, settles=held)
        if not held:
            move.draws = [(lot, amount, "spent") for lot, amount in self._draw(points)]
        self.moves.append(move)

    def reserve(self, points: int, *, hold_id: str) -> None:
        """Hold ``points`` for a hold from the spendable lots, soonest-expiring first (held
        allocations, no ledger entry: ``movements.allocate`` with state ``held``)."""
        for lot, amount in self._draw(points):
            self.reserved.append((lot, amount, hold_id))

    def _draw(self, points: int) -> list[tuple[Lot, int]]:
        spendable = [lot for lot in self.lots if self._live(lot) and lot.available_at <= self.ctx.now]
        by_id = {lot.id: lot for lot in spendable}
        views = [
            LotView(lot_id=cast(int, lot.id), remaining=lot.remaining, expires_at=lot.expires_at) for lot in spendable
        ]
        drawn = []
        for lot_id, amount in draw_from_lots(views, points):
            lot = by_id[lot_id]
            lot.remaining -= amount
            drawn.append((lot, amount))
        return drawn

    def credit(
        self, points: int, *, source: str, available_at: datetime, expires_at: datetime | None, transaction_id: str
    ) -> None:
        """Credit ``points`` as a new lot with its ledger entry (``accounts.add_lot``)."""
        lot = Lot(
            account_id=self.account.id,
            source=source,
            points=points,
            remaining=points,
            available_at=available_at,
            expires_at=expires_at,
            transaction_id=transaction_id,
            created_at=self.ctx.now,
        )
        self.new_lots.append(lot)
        self.moves.append(_Move(source, points, lot=lot, transaction_id=transaction_id))

    def write(self) -> None:
        """Store the new lots, then the ledger entries, then the allocations: one statement each
        (see the module); lots this booking drew from are updated with the transaction's flush."""
        session, now, account_id = self.ctx.session, self.ctx.now, self.account.id
        lot_ids = _insert(
            session,
            _LOTS,
            [
                {
                    "account_id": account_id,
                    "source": lot.source,
                    "points": lot.points,
                    "remaining": lot.remaining,
                    "available_at": lot.available_at,
                    "expires_at": lot.expires_at,
                    "transaction_id": lot.transaction_id,
                    "origin_lot_id": None,
                    "created_at": now,
                }
                for lot in self.new_lots
            ],
            key=("source", "points", "available_at", "expires_at"),
        )
        for lot, lot_id in zip(self.new_lots, lot_ids, strict=True):
            lot.id = lot_id
        entry_ids = _insert(
            session,
            _ENTRIES,
            [
                {
                    "account_id": account_id,
                    "kind": move.kind,
                    "points": move.points,
                    "lot_id": move.lot.id if move.lot is not None else None,
                    "hold_id": move.hold_id,
                    "transaction_id": move.transaction_id,
                    "refund_id": None,
                    "client_id": self.ctx.client_id,
                    "note": None,
                    "created_at": now,
                }
                for move in self.moves
            ],
            key=("kind", "lot_id"),
        )
        allocations = []
        for move, entry_id in zip(self.moves, entry_ids, strict=True):
            allocations += [
                {
                    "account_id": account_id,
                    "lot_id": lot.id,
                    "state": state,
                    "points": points,
                    "returned": 0,
                    "hold_id": move.hold_id,
                    "entry_id": entry_id,
                    "created_at": now,
                }
                for lot, points, state in move.draws
            ]
            for allocation in move.settles:
                allocation.state = "spent"
                allocation.entry_id = entry_id
                session.add(allocation)
        allocations += [
            {
                "account_id": account_id,
                "lot_id": lot.id,
                "state": "held",
                "points": points,
                "returned": 0,
                "hold_id": hold_id,
                "entry_id": None,
                "created_at": now,
            }
            for lot, points, hold_id in self.reserved
        ]
        if allocations:
            session.execute(insert(_ALLOCATIONS).values(allocations))
        self.held += sum(points for _, points, _ in self.reserved)
        self.lots += self.new_lots
        self.new_lots, self.moves, self.reserved = [], [], []

    # -- the answer -------------------------------------------------------------------------

    def balance(self, *, held_released: int = 0) -> BalanceResult:
        """The balance after this booking (``accounts.balance_of``), from what it holds in memory:
        ``held_released`` is what this booking took out of held allocations (spent or released)."""
        now = self.ctx.now
        live = [lot for lot in [*self.lots, *self.new_lots] if self._live(lot)]
        available = sum(lot.remaining for lot in live if lot.available_at <= now)
        pending = sum(lot.remaining for lot in live if lot.available_at > now)
        held = self.held - held_released
        by_date: dict[datetime, int] = {}
        for lot in live:
            if lot.available_at <= now and lot.expires_at is not None:
                by_date[lot.expires_at] = by_date.get(lot.expires_at, 0) + lot.remaining
        expiring = [ExpiringPoints(points=by_date[d], expires_at=d) for d in sorted(by_date)[:EXPIRING_SHOWN]]
        return BalanceResult(
            card_number=self.card.number,
            customer_id=self.card.customer_id,
            card_status=cast(CardStatus, self.card.status),
            balance=available + pending + held,
            available=available,
            held=held,
            pending=pending,
            expiring=expiring,
        )

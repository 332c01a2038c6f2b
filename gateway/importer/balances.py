"""``gateway import balances FILE.csv``: set or adjust the balances of existing cards.

The usual use is the cut-over: cards were imported days ago, the old system kept running, and
now every card must end up with the old system's final balance.

Columns (header row required): ``card_number`` (required) and exactly one of

* ``balance`` — *set*: the number of points the card's account must own afterwards (available +
  pending + held). The difference is posted: added as a new lot, or removed from the available
  points, soonest-expiring first;
* ``delta`` — *adjust*: points to add (``25`` or ``+25``) or remove (``-25``);

and optionally ``expires_at`` (when added points expire: a date is the start of that day in the
import's time zone, a date-time may carry an offset; empty = never).

* Once per account and batch: the batch is named by ``--batch`` (default: the file's digest). An
  account set or adjusted by a batch is never touched again by that batch, so running it again —
  after an interruption, twice, or an edited file under the same ``--batch`` — posts nothing
  twice, even if the card was used at a till in between.
* Rejected: unknown card, a row with both or neither of ``balance``/``delta``, a second row for
  the same card or account, a removal larger than the available points (points held by open holds
  or pending until shipment cannot be removed).
* Reconciliation: targets and adjustments in the file = applied + rejected + applied earlier by
  this batch; the points posted (now and by earlier runs of the batch) are re-counted from the
  ledger (entries of the client ``import:balances:<batch>``).

Every posting is an ``adjustment`` entry: added points are a lot of source ``adjustment``;
removed points are drawn from lots (allocations ``reversed``, linked to the entry).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from gateway.core.program import Program
from gateway.importer.common import (
    DEFAULT_TIMEZONE,
    ImportReport,
    RejectCode,
    Rejects,
    RowError,
    among,
    card_number,
    declared_points,
    field_of,
    moment,
    whole,
)
from gateway.importer.runner import Importer, Tallied, chunked
from gateway.ledger.accounts import add_entry, expire_due_lots
from gateway.ledger.context import Ctx
from gateway.ledger.movements import allocate
from gateway.store.db import Database
from gateway.store.models import Account, Allocation, Card, LedgerEntry, Lot
from gateway.store.models_import import ImportedBalance

ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class BalanceRow:
    line: int
    card_number: str
    mode: Literal["set", "adjust"]
    value: int
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Holdings:
    owned: int  # available + pending + held
    available: int


class BalanceImporter(Importer[BalanceRow]):
    kind = "balances"
    required = ("card_number",)
    tallies = (
        Tallied("targets", "target balances (balance rows)"),
        Tallied("adjustments", "adjustments (delta rows)"),
        Tallied("posted", "points posted to the ledger", stated=False),
    )

    def __init__(
        self,
        db: Database,
        program: Program,
        *,
        batch_size: int = 2000,
        now: datetime | None = None,
        timezone: str = DEFAULT_TIMEZONE,
        batch: str | None = None,
    ) -> None:
        super().__init__(db, batch_size=batch_size, now=now, timezone=timezone, batch=batch)
        self.program = program
        self._accounts: set[int] = set()  # accounts this run applied, skipped or refused a row for

    def start(self) -> None:
        self._accounts = set()

    # -- rows -------------------------------------------------------------------------------------

    def parse(self, line: int, raw: dict[str, str]) -> BalanceRow:
        number = card_number(field_of(raw, "card_number"))
        target, delta = field_of(raw, "balance"), field_of(raw, "delta")
        if target and delta:
            raise RowError(RejectCode.AMBIGUOUS_ROW, "give either balance (set) or delta (adjust), not both")
        if not target and not delta:
            raise RowError(RejectCode.MISSING_VALUE, "give balance (set) or delta (adjust)")
        expires_text = field_of(raw, "expires_at")
        expires = moment(expires_text, "expiry date", self.zone) if expires_text else None
        if expires is not None and expires <= self.now:
            raise RowError(RejectCode.ALREADY_EXPIRED, f"expiry {expires_text} is already past")
        if target:
            return BalanceRow(line, number, "set", whole(target, "balance"), expires)
        return BalanceRow(line, number, "adjust", whole(delta, "delta", minimum=None), expires)

    def key_of(self, raw: dict[str, str]) -> str:
        return field_of(raw, "card_number")

    def declared(self, raw: dict[str, str]) -> dict[str, int]:
        target, delta = field_of(raw, "balance"), field_of(raw, "delta")
        return {
            "targets": max(0, declared_points(target)) if target and not delta else 0,
            "adjustments": declared_points(delta) if delta and not target else 0,
        }

    def amounts(self, row: BalanceRow) -> dict[str, int]:
        return {
            "targets": row.value if row.mode == "set" else 0,
            "adjustments": row.value if row.mode == "adjust" else 0,
        }

    def unique(self, row: BalanceRow) -> Sequence[tuple[str, str]]:
        return [("card number", row.card_number)]

    # -- writing ----------------------------------------------------------------------------------

    def write(self, session: Session, rows: list[BalanceRow], report: ImportReport, reject: Rejects) -> None:
        client = self.client_id(report)
        batch = report.import_id
        posted = report.tallies["posted"]
        dialect = session.get_bind().dialect.name
        accounts = dict(
            session.execute(
                select(col(Card.number), col(Card.account_id)).where(
                    among(col(Card.number), [r.card_number for r in rows], dialect)
                )
            ).all()
        )
        done = {
            t.account_id: t
            for t in session.exec(
                select(ImportedBalance).where(
                    col(ImportedBalance.batch) == batch,
                    among(col(ImportedBalance.account_id), set(accounts.values()), dialect),
                )
            ).all()
        }
        todo: list[tuple[BalanceRow, str]] = []
        for row in rows:
            account_id = accounts.get(row.card_number)
            if account_id is None:
                reject(
                    row.line, row.card_number, RowError(RejectCode.CARD_NOT_FOUND, "no such card"), self.amounts(row)
                )
                continue
            tracked = done.get(account_id)
            account_key = uuid.UUID(account_id).int
            if tracked is not None and tracked.card_number == row.card_number:
                self.existing(report, row, True)
                if tracked.entry_id is not None:
                    self.counted.append(tracked.entry_id)
                posted.existing += tracked.delta
                posted.from_earlier_runs += tracked.delta
                self._accounts.add(account_key)
            elif tracked is not None or account_key in self._accounts:
                other = tracked.card_number if tracked is not None else "another card of the file"
                error = RowError(RejectCode.REPEATED_IN_FILE, f"the card's account is also the account of {other}")
                reject(row.line, row.card_number, error, self.amounts(row))
            else:
                self._accounts.add(account_key)
                todo.append((row, account_id))
        if not todo:
            return
        ctx = Ctx(self.db, session, self.program, self.now, client)
        holdings = self._lock_and_count(ctx, sorted({account_id for _, account_id in todo}))
        for row, account_id in todo:
            before = holdings[account_id]
            delta = row.value - before.owned if row.mode == "set" else row.value
            if delta < 0 and -delta > before.available:
                error = RowError(
                    RejectCode.NOT_ENOUGH_POINTS,
                    f"would remove {-delta} points but only {before.available} are available "
                    f"({before.owned - before.available} are held or pending)",
                )
                reject(row.line, row.card_number, error, self.amounts(row))
                continue
            entry_id = self._post(ctx, account_id, delta, row.expires_at)
            session.add(
                ImportedBalance(
                    batch=batch,
                    account_id=account_id,
                    card_number=row.card_number,
                    line=row.line,
                    mode=row.mode,
                    value=row.value,
                    balance_before=before.owned,
                    delta=delta,
                    entry_id=entry_id,
                    created_at=self.now,
                )
            )
            self.imported(report, row)
            if entry_id is not None:
                self.counted.append(entry_id)
            posted.imported += delta
        session.flush()

    def _lock_and_count(self, ctx: Ctx, account_ids: list[str]) -> dict[str, Holdings]:
        """Lock the accounts (in id order: no deadlock with another importer), expire their due
        lots, and count what each owns and what of it could be removed."""
        session = ctx.session
        dialect = session.get_bind().dialect.name
        if not self.db.is_sqlite:  # SQLite: BEGIN IMMEDIATE already serializes every writer
            session.execute(
                select(col(Account.id))
                .where(among(col(Account.id), account_ids, dialect))
                .order_by(col(Account.id))
                .with_for_update()
            ).all()
        due = session.execute(
            select(col(Lot.account_id))
            .where(
                among(col(Lot.account_id), account_ids, dialect),
                col(Lot.remaining) > 0,
                col(Lot.expires_at).is_not(None),
                col(Lot.expires_at) <= ctx.now,
            )
            .distinct()
        ).scalars()
        for account_id in list(due):
            expire_due_lots(ctx, account_id)
        in_lots = {
            account_id: (int(total), int(available))
            for account_id, total, available in session.execute(
                select(
                    col(Lot.account_id),
                    func.sum(Lot.remaining),
                    func.sum(case((col(Lot.available_at) <= ctx.now, col(Lot.remaining)), else_=0)),
                )
                .where(among(col(Lot.account_id), account_ids, dialect), col(Lot.remaining) > 0)
                .group_by(col(Lot.account_id))
            ).all()
        }
        held = dict(
            session.execute(
                select(col(Allocation.account_id), func.sum(Allocation.points))
                .where(among(col(Allocation.account_id), account_ids, dialect), col(Allocation.state) == "held")
                .group_by(col(Allocation.account_id))
            ).all()
        )
        result: dict[str, Holdings] = {}
        for account_id in account_ids:
            total, available = in_lots.get(account_id, (0, 0))
            result[account_id] = Holdings(owned=total + int(held.get(account_id) or 0), available=int(available or 0))
        return result

    def _post(self, ctx: Ctx, account_id: str, delta: int, expires_at: datetime | None) -> int | None:
        if delta == 0:
            return None
        if delta > 0:
            lot = Lot(
                account_id=account_id,
                source=ADJUSTMENT,
                points=delta,
                remaining=delta,
                available_at=ctx.now,
                expires_at=expires_at,
                created_at=ctx.now,
            )
            ctx.session.add(lot)
            ctx.session.flush()
            return add_entry(ctx, account_id, ADJUSTMENT, delta, lot_id=lot.id).id
        entry = add_entry(ctx, account_id, ADJUSTMENT, delta)
        for allocation in allocate(ctx, account_id, -delta, "reversed", None):
            allocation.entry_id = entry.id
            ctx.session.add(allocation)
        return entry.id

    def recount(self, session: Session, report: ImportReport) -> None:
        """The entries this file's rows posted (now or by an earlier run of the batch), summed from
        the ledger — not every entry of the batch, which may span several files."""
        total = 0
        for ids in chunked(self.counted):
            total += int(
                session.execute(
                    select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                        col(LedgerEntry.id).in_(ids),
                        col(LedgerEntry.client_id) == self.client_id(report),
                        col(LedgerEntry.kind) == ADJUSTMENT,
                    )
                ).scalar_one()
            )
        report.tallies["posted"].recounted = total

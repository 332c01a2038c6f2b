"""``gateway import lots FILE.csv``: points with their own accrual date and expiry.

Use it instead of the ``balance`` column of the cards import when the old system knows *which*
points a card has and when each portion expires: the gateway then spends the soonest-expiring
points first and expires each portion on its own date, exactly as the old system would have.

Columns (header row required):

* ``id`` (required) — the old system's id of the accrual; a lot id is imported once, whatever the
  file (prefix ids if the old system numbers several sources separately: ``pos:123``, ``web:123``);
* ``card_number`` (required) — a card imported before (any status: points belong to its account);
* ``points`` (required, whole, > 0);
* ``accrued_at`` (required) — when the points were earned;
* ``available_at`` — when they become spendable (default: ``accrued_at``; a future date makes
  them pending until then);
* ``expires_at`` — when they expire (empty = never); a lot already expired is rejected.

Dates are the start of the day, date-times without an offset are local time of ``--timezone``.

* Idempotent and resumable: lot ids already imported are skipped (the same id with other data is
  rejected, never overwritten).
* Rejected as well: an unknown card, and a card that got an opening balance from the cards
  import — its points would be counted twice; import a card's points either way, not both.
* Reconciliation: points in the file = imported + rejected + already present; the points of this
  batch's lots are re-counted from the ledger.

Each lot is one ``lots`` row (source ``import-lot``) and one ``import`` entry of the client
``import:lots:<batch>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert
from sqlmodel import Session, SQLModel, col, select

from gateway.importer.bulk import BulkInsert
from gateway.importer.cards import OPENING_LOT_SOURCE
from gateway.importer.common import (
    ImportReport,
    RejectCode,
    Rejects,
    RowError,
    among,
    card_number,
    declared_points,
    external_id,
    field_of,
    moment,
    whole,
)
from gateway.importer.runner import Importer, Tallied, chunked
from gateway.store.models import Card, LedgerEntry, Lot
from gateway.store.models_import import ImportedLot

LOT_SOURCE = "import-lot"
TABLES = SQLModel.metadata.tables

_entries = BulkInsert(TABLES["ledger_entries"], ["account_id", "kind", "points", "lot_id", "client_id", "created_at"])
_tracked = BulkInsert(
    TABLES["import_lots"],
    [
        "external_id",
        "batch",
        "card_number",
        "account_id",
        "lot_id",
        "points",
        "accrued_at",
        "available_at",
        "expires_at",
        "created_at",
    ],
)


@dataclass(frozen=True, slots=True)
class LotRow:
    line: int
    external_id: str
    card_number: str
    points: int
    accrued_at: datetime
    available_at: datetime
    expires_at: datetime | None

    def same_as(self, tracked: ImportedLot) -> bool:
        return (
            tracked.card_number,
            tracked.points,
            tracked.accrued_at,
            tracked.available_at,
            tracked.expires_at,
        ) == (self.card_number, self.points, self.accrued_at, self.available_at, self.expires_at)


class LotImporter(Importer[LotRow]):
    kind = "lots"
    required = ("id", "card_number", "points", "accrued_at")
    tallies = (Tallied("points", "points"),)

    def parse(self, line: int, raw: dict[str, str]) -> LotRow:
        lot_id = external_id(field_of(raw, "id"))
        number = card_number(field_of(raw, "card_number"))
        points = whole(field_of(raw, "points"), "points", minimum=1)
        accrued_text = field_of(raw, "accrued_at")
        if not accrued_text:
            raise RowError(RejectCode.MISSING_VALUE, "accrued_at is required")
        accrued = moment(accrued_text, "accrual date", self.zone)
        available_text = field_of(raw, "available_at")
        available = moment(available_text, "availability date", self.zone) if available_text else accrued
        expires_text = field_of(raw, "expires_at")
        expires = moment(expires_text, "expiry date", self.zone) if expires_text else None
        if expires is not None:
            if expires <= available:
                raise RowError(RejectCode.BAD_DATE, f"expires ({expires_text}) before it is available")
            if expires <= self.now:
                raise RowError(RejectCode.ALREADY_EXPIRED, f"expired on {expires_text}, before the import")
        return LotRow(line, lot_id, number, points, accrued, available, expires)

    def key_of(self, raw: dict[str, str]) -> str:
        return field_of(raw, "id") or field_of(raw, "card_number")

    def declared(self, raw: dict[str, str]) -> dict[str, int]:
        return {"points": max(0, declared_points(field_of(raw, "points")))}

    def amounts(self, row: LotRow) -> dict[str, int]:
        return {"points": row.points}

    def unique(self, row: LotRow) -> Sequence[tuple[str, str]]:
        return [("lot id", row.external_id)]

    def write(self, session: Session, rows: list[LotRow], report: ImportReport, reject: Rejects) -> None:
        client = self.client_id(report)
        batch = report.import_id
        dialect = session.get_bind().dialect.name
        accounts = dict(
            session.execute(
                select(col(Card.number), col(Card.account_id)).where(
                    among(col(Card.number), {r.card_number for r in rows}, dialect)
                )
            ).all()
        )
        tracked = {
            t.external_id: t
            for t in session.exec(
                select(ImportedLot).where(among(col(ImportedLot.external_id), [r.external_id for r in rows], dialect))
            ).all()
        }
        opened = set(
            session.execute(
                select(col(Lot.account_id))
                .where(
                    among(col(Lot.account_id), set(accounts.values()), dialect),
                    col(Lot.source) == OPENING_LOT_SOURCE,
                )
                .distinct()
            ).scalars()
        )
        fresh: list[tuple[LotRow, str]] = []
        for row in rows:
            previous = tracked.get(row.external_id)
            account_id = accounts.get(row.card_number)
            if previous is not None:
                if row.same_as(previous):
                    self.existing(report, row, previous.batch == batch)
                    if previous.batch == batch:
                        self.counted.append(previous.lot_id)
                    continue
                error = RowError(
                    RejectCode.ID_USED_FOR_OTHER_DATA,
                    f"lot {row.external_id} was imported before (batch {previous.batch}) with other data",
                )
            elif account_id is None:
                error = RowError(RejectCode.CARD_NOT_FOUND, "no such card: import the cards first")
            elif account_id in opened:
                error = RowError(
                    RejectCode.OPENING_BALANCE_EXISTS,
                    "the card got an opening balance from the cards import; its points would count twice",
                )
            else:
                fresh.append((row, account_id))
                continue
            reject(row.line, row.external_id, error, self.amounts(row))
        if not fresh:
            return
        now = self.now
        lots = TABLES["lots"]
        lot_ids = (
            session.execute(
                insert(lots).returning(lots.c.id, sort_by_parameter_order=True),
                [
                    {
                        "account_id": account_id,
                        "source": LOT_SOURCE,
                        "points": row.points,
                        "remaining": row.points,
                        "available_at": row.available_at,
                        "expires_at": row.expires_at,
                        "transaction_id": None,
                        "origin_lot_id": None,
                        "created_at": now,
                    }
                    for row, account_id in fresh
                ],
            )
            .scalars()
            .all()
        )
        _entries(
            session,
            (
                (account_id, "import", row.points, lot_id, client, now)
                for (row, account_id), lot_id in zip(fresh, lot_ids, strict=True)
            ),
        )
        _tracked(
            session,
            (
                (
                    row.external_id,
                    batch,
                    row.card_number,
                    account_id,
                    lot_id,
                    row.points,
                    row.accrued_at,
                    row.available_at,
                    row.expires_at,
                    now,
                )
                for (row, account_id), lot_id in zip(fresh, lot_ids, strict=True)
            ),
        )
        for row, _ in fresh:
            self.imported(report, row)
        self.counted.extend(lot_ids)

    def recount(self, session: Session, report: ImportReport) -> None:
        """The opening entries of this file's lots (imported now or by an earlier run of the same
        batch), summed from the ledger."""
        total = 0
        for ids in chunked(self.counted):
            total += int(
                session.execute(
                    select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                        col(LedgerEntry.lot_id).in_(ids),
                        col(LedgerEntry.client_id) == self.client_id(report),
                        col(LedgerEntry.kind) == "import",
                    )
                ).scalar_one()
            )
        report.tallies["points"].recounted = total

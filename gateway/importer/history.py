"""``gateway import history FILE.csv``: past receipts and operations of the old system.

Kept in ``import_history`` for the record (support can answer "where did my points go" about
last year) and for tier turnover: a program that ranks customers by what they bought in the last
N months reads :func:`turnover`, which adds the imported purchases to its window. The ledger is
not touched — the points themselves arrive through the cards, balances or lots imports.

Columns (header row required):

* ``id`` (required) — the old system's id of the operation, imported once whatever the file;
* ``card_number`` (required) — a card imported before;
* ``occurred_at`` (required) — a date, or a date-time (local time of ``--timezone`` unless it
  carries an offset);
* ``kind`` (required) — ``purchase``, ``return``, ``accrual``, ``redemption``, ``expiry`` or
  ``adjustment``;
* ``amount`` — money paid (purchase) or given back (return), ``1250.50`` or ``1250,50``, never
  negative; required for purchases and returns, default 0 otherwise;
* ``points_accrued``, ``points_spent`` — whole points, default 0;
* ``receipt``, ``store``, ``note`` — free text (128, 128, 256 characters).

Idempotent and resumable like every import (ids already present are skipped; the same id with
other data is rejected). Reconciliation: money, points accrued and points spent in the file =
imported + rejected + already present, each re-counted from ``import_history`` for this batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from gateway.importer.bulk import BulkInsert
from gateway.importer.common import (
    ImportReport,
    RejectCode,
    Rejects,
    RowError,
    among,
    card_number,
    declared_kopecks,
    declared_points,
    external_id,
    field_of,
    moment,
    money_kopecks,
    whole,
)
from gateway.importer.runner import Importer, Tallied, chunked
from gateway.store.models import Card
from gateway.store.models_import import ImportedOperation, signed_amount

KINDS = ("purchase", "return", "accrual", "redemption", "expiry", "adjustment")
WITH_AMOUNT = ("purchase", "return")
TABLES = SQLModel.metadata.tables

_insert = BulkInsert(
    TABLES["import_history"],
    [
        "external_id",
        "batch",
        "card_number",
        "account_id",
        "occurred_at",
        "kind",
        "amount_kopecks",
        "points_accrued",
        "points_spent",
        "receipt",
        "store",
        "note",
        "created_at",
    ],
)


@dataclass(frozen=True, slots=True)
class OperationRow:
    line: int
    external_id: str
    card_number: str
    occurred_at: datetime
    kind: str
    amount_kopecks: int
    points_accrued: int
    points_spent: int
    receipt: str | None
    store: str | None
    note: str | None

    def same_as(self, stored: ImportedOperation) -> bool:
        fields = ("card_number", "occurred_at", "kind", "amount_kopecks", "points_accrued", "points_spent")
        texts = ("receipt", "store", "note")
        return all(getattr(self, name) == getattr(stored, name) for name in (*fields, *texts))


class HistoryImporter(Importer[OperationRow]):
    kind = "history"
    required = ("id", "card_number", "occurred_at", "kind")
    tallies = (
        Tallied("amount", "money, kopecks"),
        Tallied("accrued", "points accrued"),
        Tallied("spent", "points spent"),
    )

    def parse(self, line: int, raw: dict[str, str]) -> OperationRow:
        operation_id = external_id(field_of(raw, "id"))
        number = card_number(field_of(raw, "card_number"))
        occurred_text = field_of(raw, "occurred_at")
        if not occurred_text:
            raise RowError(RejectCode.MISSING_VALUE, "occurred_at is required")
        occurred = moment(occurred_text, "date of the operation", self.zone)
        kind = field_of(raw, "kind").lower()
        if kind not in KINDS:
            raise RowError(RejectCode.BAD_KIND, f"kind {kind!r} is not one of {', '.join(KINDS)}")
        amount_text = field_of(raw, "amount")
        if kind in WITH_AMOUNT and not amount_text:
            raise RowError(RejectCode.MISSING_VALUE, f"a {kind} needs its amount")
        return OperationRow(
            line=line,
            external_id=operation_id,
            card_number=number,
            occurred_at=occurred,
            kind=kind,
            amount_kopecks=money_kopecks(amount_text, "amount") if amount_text else 0,
            points_accrued=whole(field_of(raw, "points_accrued") or "0", "points accrued"),
            points_spent=whole(field_of(raw, "points_spent") or "0", "points spent"),
            receipt=field_of(raw, "receipt")[:128] or None,
            store=field_of(raw, "store")[:128] or None,
            note=field_of(raw, "note")[:256] or None,
        )

    def key_of(self, raw: dict[str, str]) -> str:
        return field_of(raw, "id") or field_of(raw, "card_number")

    def declared(self, raw: dict[str, str]) -> dict[str, int]:
        return {
            "amount": declared_kopecks(field_of(raw, "amount")),
            "accrued": max(0, declared_points(field_of(raw, "points_accrued"))),
            "spent": max(0, declared_points(field_of(raw, "points_spent"))),
        }

    def amounts(self, row: OperationRow) -> dict[str, int]:
        return {"amount": row.amount_kopecks, "accrued": row.points_accrued, "spent": row.points_spent}

    def unique(self, row: OperationRow) -> Sequence[tuple[str, str]]:
        return [("operation id", row.external_id)]

    def write(self, session: Session, rows: list[OperationRow], report: ImportReport, reject: Rejects) -> None:
        batch = report.import_id
        dialect = session.get_bind().dialect.name
        accounts = dict(
            session.execute(
                select(col(Card.number), col(Card.account_id)).where(
                    among(col(Card.number), {r.card_number for r in rows}, dialect)
                )
            ).all()
        )
        ids = [r.external_id for r in rows]
        stored = {
            s.external_id: s
            for s in session.exec(
                select(ImportedOperation).where(among(col(ImportedOperation.external_id), ids, dialect))
            ).all()
        }
        fresh: list[tuple[OperationRow, str]] = []
        for row in rows:
            previous = stored.get(row.external_id)
            account_id = accounts.get(row.card_number)
            if previous is not None:
                if row.same_as(previous):
                    self.existing(report, row, previous.batch == batch)
                    if previous.batch == batch:
                        self.counted.append(row.external_id)
                    continue
                error = RowError(
                    RejectCode.ID_USED_FOR_OTHER_DATA,
                    f"operation {row.external_id} was imported before (batch {previous.batch}) with other data",
                )
            elif account_id is None:
                error = RowError(RejectCode.CARD_NOT_FOUND, "no such card: import the cards first")
            else:
                fresh.append((row, account_id))
                continue
            reject(row.line, row.external_id, error, self.amounts(row))
        _insert(
            session,
            (
                (
                    row.external_id,
                    batch,
                    row.card_number,
                    account_id,
                    row.occurred_at,
                    row.kind,
                    row.amount_kopecks,
                    row.points_accrued,
                    row.points_spent,
                    row.receipt,
                    row.store,
                    row.note,
                    self.now,
                )
                for row, account_id in fresh
            ),
        )
        for row, _ in fresh:
            self.imported(report, row)
            self.counted.append(row.external_id)

    def recount(self, session: Session, report: ImportReport) -> None:
        """This file's operations (imported now or by an earlier run of the same batch), summed
        from ``import_history``."""
        totals = [0, 0, 0]
        for ids in chunked(self.counted):
            row = session.execute(
                select(
                    func.coalesce(func.sum(ImportedOperation.amount_kopecks), 0),
                    func.coalesce(func.sum(ImportedOperation.points_accrued), 0),
                    func.coalesce(func.sum(ImportedOperation.points_spent), 0),
                ).where(col(ImportedOperation.external_id).in_(ids), col(ImportedOperation.batch) == report.import_id)
            ).one()
            totals = [total + int(value) for total, value in zip(totals, row, strict=True)]
        for name, total in zip(("amount", "accrued", "spent"), totals, strict=True):
            report.tallies[name].recounted = total


def turnover(session: Session, account_ids: Iterable[str], since: datetime, until: datetime) -> dict[str, int]:
    """Imported purchases minus imported returns, in kopecks, per account, of operations with
    ``since <= occurred_at < until`` — what a tier rule adds to the turnover the gateway itself
    recorded in that window. Accounts without imported operations are absent."""
    rows = session.execute(
        select(col(ImportedOperation.account_id), func.sum(signed_amount()))
        .where(
            col(ImportedOperation.account_id).in_(list(account_ids)),
            col(ImportedOperation.occurred_at) >= since,
            col(ImportedOperation.occurred_at) < until,
            col(ImportedOperation.kind).in_(WITH_AMOUNT),
        )
        .group_by(col(ImportedOperation.account_id))
    ).all()
    return {str(account_id): int(total) for account_id, total in rows}

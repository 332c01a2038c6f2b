"""The loop every import runs: stream the CSV, parse and check each row, write batches, report.

A concrete import says which columns it needs, how to parse a row, which values must be unique
in the file, which amounts a row carries (for the reconciliation), how to write a batch (in one
transaction, skipping rows an earlier run already wrote) and how to re-count what is in the
database afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from sqlmodel import Session

from gateway.importer.common import (
    DEFAULT_TIMEZONE,
    ImportReport,
    Progress,
    RejectCode,
    Rejects,
    RowError,
    check_batch,
    compact_key,
    csv_rows,
    file_digest,
    zone,
)
from gateway.store.db import Database

RowT = TypeVar("RowT")
RECOUNT_CHUNK = 2000


def chunked(values: Sequence[Any], size: int = RECOUNT_CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


@dataclass(frozen=True)
class Tallied:
    """A tally of the report: its key, its label, and whether the file states it."""

    name: str
    label: str
    stated: bool = True


class Importer(ABC, Generic[RowT]):
    kind: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
    tallies: ClassVar[tuple[Tallied, ...]]

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 5000,
        now: datetime | None = None,
        timezone: str = DEFAULT_TIMEZONE,
        batch: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.db = db
        self.batch_size = batch_size
        self.now = now or datetime.now(UTC)
        self.zone = zone(timezone)
        self.batch = check_batch(batch) if batch is not None else None
        self._seen: dict[str, set[int | str]] = {}
        # What this run counted as imported now or by an earlier run of this import: the rows the
        # re-count reads back from the database (ids of entries, lots or operations).
        self.counted: list[Any] = []

    # -- what a concrete import defines ----------------------------------------------------------

    @abstractmethod
    def parse(self, line: int, raw: dict[str, str]) -> RowT:
        """The row, or :class:`RowError`."""

    @abstractmethod
    def key_of(self, raw: dict[str, str]) -> str:
        """What names the row in the rejects report (a card number, an id)."""

    @abstractmethod
    def declared(self, raw: dict[str, str]) -> dict[str, int]:
        """The amounts the row states, read leniently (for the reconciliation of rejected rows)."""

    @abstractmethod
    def amounts(self, row: RowT) -> dict[str, int]:
        """The amounts of a parsed row (the same as :meth:`declared` of its text)."""

    def start(self) -> None:
        """Called at the start of every run (reset per-run state here)."""

    def unique(self, row: RowT) -> Sequence[tuple[str, str]]:
        """(what, value) pairs that may appear only once in the file."""
        return ()

    @abstractmethod
    def write(self, session: Session, rows: list[RowT], report: ImportReport, reject: Rejects) -> None:
        """Write one batch in the open transaction: skip what is already there (counting it as
        existing), reject what conflicts with the database, insert the rest."""

    @abstractmethod
    def recount(self, session: Session, report: ImportReport) -> None:
        """Set each tally's ``recounted`` from the database."""

    # -- the loop ---------------------------------------------------------------------------------

    def import_id(self, path: Path) -> str:
        return self.batch or file_digest(path)

    def client_id(self, report: ImportReport) -> str:
        """The ledger's ``client_id`` of every entry this import writes (``created_by`` of the
        customers the cards import creates)."""
        return f"import:{self.kind}:{report.import_id}"

    def existing(self, report: ImportReport, row: RowT, written_by_this_import: bool) -> None:
        report.skipped_existing += 1
        for name, value in self.amounts(row).items():
            tally = report.tallies[name]
            tally.existing += value
            if written_by_this_import:
                tally.from_earlier_runs += value

    def imported(self, report: ImportReport, row: RowT) -> None:
        report.imported += 1
        for name, value in self.amounts(row).items():
            report.tallies[name].imported += value

    def run(self, path: Path, rejects_path: Path | None = None, progress: Progress | None = None) -> ImportReport:
        report = ImportReport(kind=self.kind, import_id=self.import_id(path))
        for spec in self.tallies:
            report.tally(spec.name, spec.label, stated=spec.stated)
        self._seen = {}
        self.counted = []
        self.start()
        batch: list[RowT] = []
        with Rejects(report, rejects_path) as reject, path.open("r", encoding="utf-8-sig", newline="") as handle:
            for line, raw in csv_rows(handle, self.required):
                report.rows += 1
                declared = self.declared(raw)
                for name, value in declared.items():
                    tally = report.tallies[name]
                    if tally.in_file is not None:
                        tally.in_file += value
                try:
                    row = self.parse(line, raw)
                    self._check_unique(row)
                except RowError as error:
                    reject(line, self.key_of(raw), error, declared)
                    continue
                batch.append(row)
                if len(batch) >= self.batch_size:
                    self._flush(batch, report, reject, progress)
                    batch = []
            if batch:
                self._flush(batch, report, reject, progress)
        with self.db.read() as session:
            self.recount(session, report)
        return report

    def _check_unique(self, row: RowT) -> None:
        pairs = self.unique(row)
        keys = [(what, compact_key(value)) for what, value in pairs]
        for (what, key), (_, value) in zip(keys, pairs, strict=True):
            if key in self._seen.setdefault(what, set()):
                raise RowError(RejectCode.REPEATED_IN_FILE, f"{what} {value} repeated in the file")
        for what, key in keys:
            self._seen[what].add(key)

    def _flush(self, rows: list[RowT], report: ImportReport, reject: Rejects, progress: Progress | None) -> None:
        with self.db.write() as session:
            self.write(session, rows, report, reject)
        if progress is not None:
            progress(report.rows)

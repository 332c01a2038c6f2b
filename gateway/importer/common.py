"""What every migration import shares: reading the CSV, parsing fields, rejected rows, tallies.

Every import streams its file row by row, writes it in batches (one transaction each), skips
what an earlier run already wrote (so it resumes after an interruption and is idempotent), writes
every rejected row with a stable reason code to a report CSV, and ends with a reconciliation:
for each quantity (points, money) *in the file = imported + rejected + already present*, and the
imported amount re-counted from the database equals what this run and earlier runs of the same
file wrote.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

from sqlalchemy import String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.timezones import time_zone

DEFAULT_TIMEZONE = "Europe/Moscow"
CARD_RE = re.compile(r"^[0-9A-Za-z\-_]{1,64}$")
EXTERNAL_ID_RE = re.compile(r"^[^\s;,]{1,128}$")
BATCH_RE = re.compile(r"^[A-Za-z0-9._\-]{1,48}$")
WHOLE_RE = re.compile(r"^[+-]?\d{1,15}$")
MONEY_RE = re.compile(r"^\d{1,13}([.,]\d{1,2})?$")
E164_RU = re.compile(r"^\+7\d{10}$")
EMAIL_TEXT_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REJECTS_KEPT = 20  # rejected rows kept in memory for the summary; all of them go to the report file

Progress = Callable[[int], None]


class RejectCode(StrEnum):
    """Stable codes of rejected rows (the ``code`` column of the report). Never renamed."""

    BAD_CARD_NUMBER = "bad_card_number"
    BAD_PHONE = "bad_phone"
    BAD_EMAIL = "bad_email"
    BAD_DATE = "bad_date"
    BAD_POINTS = "bad_points"
    BAD_AMOUNT = "bad_amount"
    BAD_ID = "bad_id"
    BAD_KIND = "bad_kind"
    MISSING_VALUE = "missing_value"
    AMBIGUOUS_ROW = "ambiguous_row"
    REPEATED_IN_FILE = "repeated_in_file"
    CONTACT_TAKEN = "contact_taken"
    CARD_NOT_FOUND = "card_not_found"
    ALREADY_EXPIRED = "already_expired"
    NOT_ENOUGH_POINTS = "not_enough_points"
    OPENING_BALANCE_EXISTS = "opening_balance_exists"
    ID_USED_FOR_OTHER_DATA = "id_used_for_other_data"


class RowError(ValueError):
    """A row that cannot be imported; nothing of it is written."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- reading -----------------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256: names an import of exactly this content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def check_batch(name: str) -> str:
    if not BATCH_RE.match(name):
        raise ValueError("a batch name is 1..48 characters: letters, digits, '.', '_' or '-'")
    return name


def csv_rows(handle: TextIO, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header row; ``;``, ``,`` or tab separated (whichever
    the header uses most). Header names are case-insensitive; blank lines are skipped."""
    sample = handle.readline()
    delimiter = max((";", ",", "\t"), key=sample.count)
    header = [h.strip().lower().lstrip("\ufeff") for h in next(csv.reader([sample], delimiter=delimiter), [])]
    missing = [name for name in required if name not in header]
    if missing:
        raise ValueError(f"the CSV needs a header row with the column(s): {', '.join(missing)}")
    for line, values in enumerate(csv.reader(handle, delimiter=delimiter), start=2):
        if values and any(v.strip() for v in values):
            yield line, dict(zip(header, values, strict=False))


def field_of(row: dict[str, str], name: str) -> str:
    return (row.get(name) or "").strip()


# -- fields ------------------------------------------------------------------------------------


def zone(name: str) -> tzinfo:
    return time_zone(name)


def card_number(text: str) -> str:
    if not CARD_RE.match(text):
        raise RowError(RejectCode.BAD_CARD_NUMBER, f"bad card number {text!r}")
    return text


def external_id(text: str) -> str:
    if not EXTERNAL_ID_RE.match(text):
        raise RowError(RejectCode.BAD_ID, f"bad id {text!r}: 1..128 characters without spaces, ';' or ','")
    return text


def whole(text: str, what: str, *, minimum: int | None = 0) -> int:
    """A whole number of points; ``minimum`` None allows any sign."""
    if not WHOLE_RE.match(text):
        raise RowError(RejectCode.BAD_POINTS, f"{what} {text!r} is not a whole number of points")
    value = int(text)
    if minimum is not None and value < minimum:
        if minimum == 0:
            raise RowError(RejectCode.BAD_POINTS, f"negative {what} {value}")
        raise RowError(RejectCode.BAD_POINTS, f"{what} {value} is below {minimum}")
    return value


def declared_points(text: str) -> int:
    """The points a row declares, for the reconciliation, even when the row is rejected
    (unreadable values count as 0)."""
    return int(text) if WHOLE_RE.match(text) else 0


def money_kopecks(text: str, what: str) -> int:
    """A non-negative amount of money with at most two decimals (``1250.50`` or ``1250,50``)."""
    if not MONEY_RE.match(text):
        raise RowError(RejectCode.BAD_AMOUNT, f"{what} {text!r} is not an amount with at most two decimals")
    try:
        return int(Decimal(text.replace(",", ".")) * 100)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
        raise RowError(RejectCode.BAD_AMOUNT, f"{what} {text!r}") from exc


def declared_kopecks(text: str) -> int:
    return int(Decimal(text.replace(",", ".")) * 100) if MONEY_RE.match(text) else 0


def calendar_date(text: str, what: str) -> date:
    """``YYYY-MM-DD`` or ``DD.MM.YYYY``."""
    try:
        return date.fromisoformat(text)  # the common case, and much faster than strptime
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%d.%m.%Y").date()
    except ValueError:
        raise RowError(RejectCode.BAD_DATE, f"bad {what} {text!r}") from None


def moment(text: str, what: str, local: tzinfo) -> datetime:
    """A point in time, returned in UTC. A date alone means the start of that day; a date and
    time without an offset are local time of the import's time zone (as old 1C bases keep them);
    an ISO date-time with an offset is taken as is. Accepted: ``YYYY-MM-DD[THH:MM[:SS]][±HH:MM]``,
    ``DD.MM.YYYY[ HH:MM[:SS]]``."""
    text = text.strip()
    value: datetime | None = None
    if len(text) == 10:
        value = datetime.combine(calendar_date(text, what), time())
    else:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M"):
                try:
                    value = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
    if value is None:
        raise RowError(RejectCode.BAD_DATE, f"bad {what} {text!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=local)
    return value.astimezone(UTC)


def start_of_day_utc(day: date, local: tzinfo) -> datetime:
    return datetime.combine(day, time(), local).astimezone(UTC)


# -- queries -----------------------------------------------------------------------------------


def among(column: Any, values: Iterable[str], dialect: str) -> ColumnElement[bool]:
    """``column IN (values)``. On PostgreSQL it is sent as ``column = ANY(%s)`` with one array
    parameter: psycopg takes longer to prepare a query with thousands of placeholders than the
    database takes to run it (15 % of a cards import's CPU before this)."""
    if dialect == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(None, list(values), type_=ARRAY(String()))))
    return cast(ColumnElement[bool], column.in_(list(values)))


# -- in-file duplicates ------------------------------------------------------------------------


def compact_key(text: str) -> int | str:
    """A key for the set of values already seen in the file, exact and small: an all-digit value
    (card numbers, ``+7…`` phones) is kept as an int, a third of a short string's size."""
    digits = text[1:] if text.startswith("+") else text
    if digits.isdigit() and not digits.startswith("0") and len(digits) < 19:
        return int(digits) if text[0] != "+" else -int(digits)
    return text


# -- report ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """One reconciled quantity (points, or money in kopecks)."""

    label: str
    in_file: int | None = 0  # None: the file does not state this quantity (e.g. points a `set` posts)
    imported: int = 0
    rejected: int = 0
    existing: int = 0  # in rows already present (imported before, by this file or another)
    from_earlier_runs: int = 0  # of ``existing``: written by an earlier run of this same import
    recounted: int | None = None  # re-counted from the database after the import

    @property
    def balanced(self) -> bool:
        return self.in_file is None or self.in_file == self.imported + self.rejected + self.existing

    @property
    def recount_matches(self) -> bool:
        return self.recounted is None or self.recounted == self.imported + self.from_earlier_runs

    @property
    def reconciled(self) -> bool:
        return self.balanced and self.recount_matches


@dataclass
class ImportReport:
    kind: str
    import_id: str
    rows: int = 0
    imported: int = 0
    skipped_existing: int = 0
    rejected: int = 0
    tallies: dict[str, Tally] = field(default_factory=dict)
    rejects: list[tuple[int, str, str, str]] = field(default_factory=list)  # (line, key, code, reason), first few

    def tally(self, name: str, label: str | None = None, *, stated: bool = True) -> Tally:
        if name not in self.tallies:
            self.tallies[name] = Tally(label or name, 0 if stated else None)
        return self.tallies[name]

    @property
    def reconciled(self) -> bool:
        return all(t.reconciled for t in self.tallies.values())


class Rejects:
    """The rejected-rows report (CSV: line, key, code, reason) and their count in the report."""

    def __init__(self, report: ImportReport, path: Path | None) -> None:
        self.report = report
        self.path = path
        self._handle: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None

    def __enter__(self) -> Rejects:
        if self.path is not None:
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.DictWriter(self._handle, ["line", "key", "code", "reason"])
            self._writer.writeheader()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.close()

    def __call__(self, line: int, key: str, error: RowError, amounts: dict[str, int]) -> None:
        report = self.report
        report.rejected += 1
        for name, value in amounts.items():
            report.tallies[name].rejected += value
        if len(report.rejects) < REJECTS_KEPT:
            report.rejects.append((line, key, error.code.value, str(error)))
        if self._writer is not None:
            self._writer.writerow({"line": line, "key": key, "code": error.code.value, "reason": str(error)})
            if self._handle is not None and report.rejected % 1000 == 0:
                self._handle.flush()

"""What every report is: a titled table of typed columns over a period, with filters.

A report is computed by one read of the database (set-based SQL: aggregates, window functions,
no per-row Python); what it returns is small (a summary, a top-N, a few dozen groups). Money is
kopecks (integers) inside, roubles (Decimal) outside; points are integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from gateway.core.program import Program

Kind = Literal["text", "int", "money", "percent", "date", "datetime", "points"]
Locale = Literal["ru", "en"]


@dataclass(frozen=True)
class Column:
    key: str
    ru: str
    en: str
    kind: Kind = "text"

    def title(self, locale: Locale) -> str:
        return self.ru if locale == "ru" else self.en


@dataclass(frozen=True)
class Filters:
    """A half-open period ``[start, end)`` in UTC (local days of the program's time zone), and
    optional narrowing by stores (a zone is resolved to its stores) and customer segment."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date
    stores: tuple[str, ...] | None = None
    zone: str | None = None
    store: str | None = None
    segment: str | None = None
    limit: int = 100
    now: datetime | None = None  # the service's clock (what is "stuck" depends on it)
    rollups: bool = True  # read the hourly rollups where they apply (False: the ledger tables only)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


class ReportError(ValueError):
    """Bad report parameters (unknown report, zone, an inverted period); the message is for people."""


def local_midnight(day: date, program: Program) -> datetime:
    return datetime.combine(day, time(0), program.zone).astimezone(UTC)


def make_filters(
    program: Program,
    first_day: date,
    last_day: date,
    *,
    store: str | None = None,
    zone: str | None = None,
    segment: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
    rollups: bool = True,
) -> Filters:
    """Filters for the local days ``first_day``..``last_day`` inclusive."""
    if last_day < first_day:
        raise ReportError("конец периода раньше начала / the period ends before it starts")
    if not 1 <= limit <= 10_000:
        raise ReportError("limit must be between 1 and 10000")
    stores: tuple[str, ...] | None = None
    if zone:
        found = next((z for z in program.catalogue.zones if z.code == zone), None)
        if found is None:
            raise ReportError(f"нет зоны {zone!r} / no zone {zone!r}")
        stores = tuple(found.stores)
    if store:
        stores = (store,) if stores is None or store in stores else ()
    if segment and program.segments and program.segment(segment) is None:
        raise ReportError(f"нет сегмента {segment!r} / no segment {segment!r}")
    return Filters(
        start=local_midnight(first_day, program),
        end=local_midnight(last_day + timedelta(days=1), program),
        first_day=first_day,
        last_day=last_day,
        stores=stores,
        zone=zone,
        store=store,
        segment=segment,
        limit=limit,
        now=now,
        rollups=rollups,
    )


@dataclass
class Report:
    name: str
    ru: str
    en: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    notes: list[str] = field(default_factory=list)
    filters: Filters | None = None

    def title(self, locale: Locale) -> str:
        return self.ru if locale == "ru" else self.en

    def column(self, key: str) -> list[Any]:
        index = [c.key for c in self.columns].index(key)
        return [row[index] for row in self.rows]

    def presented(self) -> list[tuple[Any, ...]]:
        """Rows with money as roubles (Decimal) and percents as Decimal, ready for an export."""
        return [tuple(present(c, v) for c, v in zip(self.columns, row, strict=True)) for row in self.rows]


def present(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind == "money":
        return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))
    if column.kind == "percent":
        return Decimal(value).quantize(Decimal("0.01"))
    if column.kind in ("int", "points"):
        return int(value)
    return value


def share_percent(part: int, whole: int) -> Decimal | None:
    """``part`` of ``whole`` in percent, exact to hundredths (None when nothing to share)."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"))


def mask_card(number: str | None) -> str:
    """Cards are shown as the last four digits: reports travel by e-mail."""
    return f"…{number[-4:]}" if number else ""

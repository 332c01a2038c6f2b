"""``gateway report NAME --from … --to …``: a report computed in the database, printed as a
table or written as CSV, XLSX or JSON (to a file with ``--output``, else to standard output)."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import ConfigOption, DatabaseOption, console, service_for
from gateway.reports import FORMATS, REPORTS, ReportError, make_filters, render, run_report
from gateway.reports.base import Locale
from gateway.reports.export import Format

_NAMES = ", ".join(REPORTS)


def _day(text: str | None, default: date) -> date:
    if text is None:
        return default
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise typer.BadParameter(f"{text!r}: дата как 2026-12-31 или 31.12.2026")


def report(
    name: Annotated[str, typer.Argument(help=f"Report: {_NAMES}")],
    first: Annotated[str | None, typer.Option("--from", help="First day (local), default: 30 days ago")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day, inclusive (local), default: today")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | csv | xlsx | json")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file")] = None,
    store: Annotated[str | None, typer.Option(help="Only this store")] = None,
    zone: Annotated[str | None, typer.Option(help="Only the stores of this zone (the program's catalogue)")] = None,
    segment: Annotated[str | None, typer.Option(help="Only customers of this segment")] = None,
    limit: Annotated[int, typer.Option(help="Rows of top lists")] = 100,
    locale: Annotated[str, typer.Option(help="ru | en (column titles)")] = "ru",
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Отчёт программы за период (вычисляется в базе) / a program report for a period."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format: one of {', '.join(FORMATS)}")
    if locale not in ("ru", "en"):
        raise typer.BadParameter("--locale: ru or en")
    service, _ = service_for(config, database_url)
    program = service.program
    today = service.clock().astimezone(program.zone).date()
    try:
        filters = make_filters(
            program,
            _day(first, today - timedelta(days=29)),
            _day(last, today),
            store=store,
            zone=zone,
            segment=segment,
            limit=limit,
            now=service.clock(),
        )
        result = run_report(service.db, program, name, filters)
    except ReportError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    finally:
        service.db.dispose()
    body = render(result, fmt_of(fmt), locale_of(locale))
    if output is not None:
        output.write_bytes(body)
        console.print(f"{result.title(locale_of(locale))}: {len(result.rows)} rows → {output}")
    elif fmt == "xlsx" and sys.stdout.isatty():
        console.print("[red]XLSX is binary: give --output FILE[/red]")
        raise typer.Exit(2)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()


def fmt_of(text: str) -> Format:
    return next(f for f in FORMATS if f == text)


def locale_of(text: str) -> Locale:
    return "en" if text == "en" else "ru"

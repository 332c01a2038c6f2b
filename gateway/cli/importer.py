"""``gateway import …``: migrate a retailer's base from an old system.

``cards`` (customers, cards, opening balances), ``balances`` (set or adjust balances of existing
cards), ``lots`` (points with their own accrual date and expiry), ``history`` (past receipts and
operations, kept for the record and for tier turnover). Every command streams its file in
batches with a progress bar, can be interrupted and run again (nothing is written twice), writes
rejected rows with reasons to ``FILE.rejected.csv`` and ends with a reconciliation; the exit code
is 1 if it does not balance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.cli.common import ConfigOption, DatabaseOption, console, service_for
from gateway.importer.common import DEFAULT_TIMEZONE, ImportReport
from gateway.importer.runner import Importer

app = typer.Typer(help="Migrate a base from an old system.", no_args_is_help=True)
RowT = TypeVar("RowT")

RejectsOption = Annotated[
    Path | None, typer.Option(help="Where to write rejected rows with reasons (default: FILE.rejected.csv)")
]
BatchSizeOption = Annotated[int, typer.Option(min=1, max=100_000, help="Rows per transaction")]
BatchOption = Annotated[
    str | None,
    typer.Option(
        "--batch",
        help="Name of this import (letters, digits, . _ -); default: the file's digest. "
        "Run an edited file under the same name to resume it.",
    ),
]
TimezoneOption = Annotated[str, typer.Option(help="Time zone of dates and times without an offset")]


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1)


def _build(factory: Callable[[], Importer[RowT]]) -> Importer[RowT]:
    try:
        return factory()
    except ValueError as exc:  # an unknown time zone, a bad batch name
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _run(importer: Importer[RowT], path: Path, rejects: Path | None) -> None:
    if not path.is_file():
        console.print(f"[red]no such file: {path}[/red]")
        raise typer.Exit(2)
    rejects_path = rejects or path.with_suffix(".rejected.csv")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,}/{task.total:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"importing {path.name}", total=_lines(path))
        try:
            report = importer.run(path, rejects_path, lambda rows: progress.update(task, completed=rows))
        except ValueError as exc:  # a file without the required header, a bad option
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    _print(report, rejects_path)
    if not report.reconciled:
        console.print("[red]reconciliation failed: points in != points out[/red]")
        raise typer.Exit(1)
    console.print("[green]reconciled: points in = points out[/green]")


def _print(report: ImportReport, rejects_path: Path) -> None:
    table = Table(title=f"import {report.kind} {report.import_id}", show_header=False)
    for label, value in (
        ("rows", report.rows),
        ("imported", report.imported),
        ("already present (skipped)", report.skipped_existing),
        ("rejected", report.rejected),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    tallies = Table("reconciliation", *(t.label for t in report.tallies.values()))

    def number(value: int | None) -> str:
        return "—" if value is None else f"{value:,}"

    values = list(report.tallies.values())
    for label, cells in (
        ("in the file", [number(t.in_file) for t in values]),
        ("imported now", [number(t.imported) for t in values]),
        ("in rejected rows", [number(t.rejected) for t in values]),
        ("already present", [number(t.existing) for t in values]),
        ("  of which by earlier runs", [number(t.from_earlier_runs) for t in values]),
        ("re-counted in the database", [number(t.recounted) for t in values]),
        ("balanced", ["[green]yes[/green]" if t.reconciled else "[red]NO[/red]" for t in values]),
    ):
        tallies.add_row(label, *cells)
    console.print(tallies)
    if report.rejected:
        for line, key, code, reason in report.rejects[:5]:
            console.print(f"  line {line} {key}: {code} — {reason}")
        console.print(f"rejected rows with reasons: {rejects_path}")


@app.command("cards")
def import_cards(
    path: Annotated[Path, typer.Argument(help="CSV: card_number, phone, email, name, birth_date, balance, expires_at")],
    rejects: RejectsOption = None,
    batch_size: BatchSizeOption = 5000,
    timezone: TimezoneOption = DEFAULT_TIMEZONE,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Customers and cards with opening balances (new cards only; existing ones are skipped)."""
    from gateway.importer.cards import CardImporter

    service, _ = service_for(config, database_url)
    _run(_build(lambda: CardImporter(service.db, batch_size=batch_size, timezone=timezone)), path, rejects)
    service.db.dispose()


@app.command("balances")
def import_balances(
    path: Annotated[Path, typer.Argument(help="CSV: card_number, balance (set to) or delta (add/remove), expires_at")],
    rejects: RejectsOption = None,
    batch_size: BatchSizeOption = 2000,
    batch: BatchOption = None,
    timezone: TimezoneOption = DEFAULT_TIMEZONE,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set (column balance) or adjust (column delta) balances of existing cards, once per account and batch."""
    from gateway.importer.balances import BalanceImporter

    service, _ = service_for(config, database_url)
    importer = _build(
        lambda: BalanceImporter(service.db, service.program, batch_size=batch_size, batch=batch, timezone=timezone)
    )
    _run(importer, path, rejects)
    service.db.dispose()


@app.command("lots")
def import_lots(
    path: Annotated[Path, typer.Argument(help="CSV: id, card_number, points, accrued_at, available_at, expires_at")],
    rejects: RejectsOption = None,
    batch_size: BatchSizeOption = 5000,
    batch: BatchOption = None,
    timezone: TimezoneOption = DEFAULT_TIMEZONE,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Points with their own accrual date and expiry, once per lot id."""
    from gateway.importer.lots import LotImporter

    service, _ = service_for(config, database_url)
    importer = _build(lambda: LotImporter(service.db, batch_size=batch_size, batch=batch, timezone=timezone))
    _run(importer, path, rejects)
    service.db.dispose()


@app.command("history")
def import_history(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV: id, card_number, occurred_at, kind, amount, points_accrued, points_spent, receipt, store, note"
        ),
    ],
    rejects: RejectsOption = None,
    batch_size: BatchSizeOption = 5000,
    batch: BatchOption = None,
    timezone: TimezoneOption = DEFAULT_TIMEZONE,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Past receipts and operations, for the record and for tier turnover (the ledger is not changed)."""
    from gateway.importer.history import HistoryImporter

    service, _ = service_for(config, database_url)
    importer = _build(lambda: HistoryImporter(service.db, batch_size=batch_size, batch=batch, timezone=timezone))
    _run(importer, path, rejects)
    service.db.dispose()

"""``gateway discountserver``: the 1C:Розница 2.3 «Дисконтный сервер» (card catalogue import)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import ConfigOption, DatabaseOption, console, service_for

app = typer.Typer(help="1C:Розница 2.3 stores: the «Дисконтный сервер» web service.", no_args_is_help=True)


@app.command("import-cards")
def import_cards(
    path: Annotated[Path, typer.Argument(help="CSV export of Справочник.ИнформационныеКарты", exists=True)],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Learn which 1C card GUID stands for which card number (run again after new cards)."""
    from adapters.onec.discountserver import catalogue

    service, _cfg = service_for(config, database_url)
    try:
        rows = catalogue.read(path.read_bytes())
    except catalogue.CatalogueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    with service.db.write() as session:
        report = catalogue.apply(session, rows, service.clock())
    console.print(f"mapped {report.mapped} cards ({report.changed} moved to another number)")
    if report.unknown_numbers:
        shown = ", ".join(report.unknown_numbers[:10])
        console.print(
            f"[yellow]{len(report.unknown_numbers)} numbers are not cards of the gateway yet[/yellow] "
            f"(import or register them; until then their sales are refused): {shown}"
        )
    for problem in report.rejected[:50]:
        console.print(f"[red]rejected[/red] {problem}")
    if report.rejected:
        raise typer.Exit(1)

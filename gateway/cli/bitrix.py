"""``gateway bitrix``: help for the site module's developer and the operator of the shop's links."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import col, select

from gateway.cli.common import ConfigOption, DatabaseOption, console, service_for, settings_for
from gateway.config import ConfigError, load_config

app = typer.Typer(help="The 1C-Bitrix shop: site events, Bitrix24, CommerceML exchange.", no_args_is_help=True)


@app.command()
def sign(
    body: Annotated[Path, typer.Argument(help="A file with the exact JSON body of a site event", exists=True)],
    config: ConfigOption = None,
    timestamp: Annotated[int | None, typer.Option(help="Unix time to sign with (default: now)")] = None,
) -> None:
    """Print the headers the site module must send with BODY (to check its signing code)."""
    from adapters.bitrix.site.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

    try:
        cfg = load_config(settings_for(config).config)
    except ConfigError as exc:
        console.print(f"[red]configuration error[/red]\n{exc}")
        raise typer.Exit(2) from exc
    if cfg.bitrix is None or cfg.bitrix.site is None:
        console.print("[red]bitrix.site is not configured[/red]")
        raise typer.Exit(2)
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    typer.echo(f"{TIMESTAMP_HEADER}: {stamp}")
    typer.echo(f"{SIGNATURE_HEADER}: {signature(cfg.bitrix.site.secret, stamp, body.read_bytes())}")


@app.command()
def status(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Export cursor of the CommerceML exchange, open exchange sessions, files of 1C not applied, Bitrix24 events."""
    from gateway.store.models_bitrix import Bitrix24Event, BitrixExchangeSession, BitrixExportCursor

    service, _cfg = service_for(config, database_url)
    with service.db.read() as session:
        cursors = session.exec(select(BitrixExportCursor)).all()
        sessions = session.exec(select(BitrixExchangeSession)).all()
        events = session.exec(select(Bitrix24Event.status)).all()
        failed = session.exec(
            select(Bitrix24Event)
            .where(col(Bitrix24Event.status) == "failed")
            .order_by(col(Bitrix24Event.id).desc())
            .limit(10)
        ).all()
    table = Table("export", "committed", "delivered, awaiting success", title="CommerceML order export")
    for cursor in cursors:
        table.add_row(cursor.name, str(cursor.committed_sequence), str(cursor.pending_sequence or "—"))
    console.print(table)
    console.print(f"exchange sessions: {len(sessions)}")
    from adapters.bitrix.maintenance import failed_exchange_files

    for line in failed_exchange_files(service.db):
        console.print(f"  file not applied: {line}", markup=False, highlight=False)
    counts = Counter(events)
    console.print("Bitrix24 events: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    for event in failed:
        console.print(f"  failed #{event.id} {event.member_id} {event.event} {event.entity_id}: {event.detail}")
    service.db.dispose()

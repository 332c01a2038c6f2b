"""The core commands: serve, worker, demo, check-config, db, ledger, tx, mappings, notify."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gateway.cli.common import (
    ConfigOption,
    DatabaseOption,
    console,
    safe_url,
    service_for,
    settings_for,
)
from gateway.config import ConfigError, GatewayConfig, Settings, load_config

WORKER_START_SECONDS = 120  # how long a server process of --processes N may take to start
app = typer.Typer(help="Loyalty integration gateway for 1C tills/ERP and 1C-Bitrix shops.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
mappings_app = typer.Typer(help="Mappings of outside references (1C GUIDs…).", no_args_is_help=True)
app.add_typer(mappings_app, name="mappings")
notify_app = typer.Typer(help="Customer messages (SMS, Telegram).", no_args_is_help=True)
app.add_typer(notify_app, name="notify")
tx_app = typer.Typer(help="Stuck transactions: list, show, replay.", no_args_is_help=True)
app.add_typer(tx_app, name="tx")


@app.command()
def serve(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    workers: Annotated[bool, typer.Option(help="Run the hold sweeper and expiry jobs in this process")] = True,
    processes: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes sharing the port (one per CPU core)")
    ] = 1,
) -> None:
    """Run the gateway (migrates the database, seeds the demo cards, starts the workers).

    With ``--processes N`` the parent migrates and seeds once, then N server processes share the
    port; each runs the workers too (they are safe side by side, as on several hosts)."""
    import os

    import uvicorn

    from gateway.api.app import create_app
    from gateway.api.http_protocol import TolerantHttpToolsProtocol

    settings = settings_for(config, database_url, host=host, port=port, workers=workers)
    try:
        gateway_config = load_config(settings.config)
    except ConfigError as exc:
        console.print(f"[red]configuration error[/red]\n{exc}")
        raise typer.Exit(2) from exc
    console.print(
        f"loyalty gateway on http://{settings.host}:{settings.port}  "
        f"(docs: /docs, database: {safe_url(settings.database_url)}, program: {gateway_config.program.name}"
        f"{f', {processes} processes' if processes > 1 else ''})"
    )
    from gateway.observability.logs import logging_config

    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # request ids in every line, personal data masked (the access log's 1C query strings too)
        "log_config": logging_config(settings.log_level, settings.log_format),
        "http": TolerantHttpToolsProtocol,  # 1C sends unencoded Cyrillic in query strings
    }
    if processes == 1:
        uvicorn.run(create_app(settings, config=gateway_config), **common)  # type: ignore[arg-type]
        return
    _prepare_database(settings, gateway_config)
    # The server processes build the app from the environment: hand them exactly these settings.
    os.environ.update(
        {
            "GATEWAY_CONFIG": str(settings.config),
            "GATEWAY_DATABASE_URL": settings.database_url,
            "GATEWAY_WORKERS": "true" if settings.workers else "false",
            "GATEWAY_AUTO_MIGRATE": "false",
            "GATEWAY_SEED_DEMO": "false",
            "GATEWAY_LOG_FORMAT": settings.log_format,
        }
    )
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the processes share their metrics there
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")
    # A server process imports the whole gateway before it answers its supervisor; on a busy
    # 2-core machine that took 10–15 s, and uvicorn's default 5 s declared it dead and restarted
    # it for ever.
    uvicorn.run(
        "gateway.api.app:create_app",
        factory=True,
        workers=processes,
        timeout_worker_healthcheck=WORKER_START_SECONDS,
        **common,  # type: ignore[arg-type]
    )


def _prepare_database(settings: Settings, gateway_config: GatewayConfig) -> None:
    """Migrate and seed once, before several processes start (they would race to do it)."""
    from gateway.seed import seed_demo
    from gateway.store import migrate
    from gateway.wiring import build_service

    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    if gateway_config.demo is not None and settings.seed_demo:
        service = build_service(settings, gateway_config)
        seed_demo(service, gateway_config)
        service.db.dispose()


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="Configuration file to validate")]) -> None:
    """Validate a configuration file; errors name the line and key."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        console.print(f"[red]invalid[/red]\n{exc}")
        raise typer.Exit(1) from exc
    from rich.markup import escape

    from gateway.cli.program import config_warnings, program_summary

    console.print(f"[green]ok[/green]: {path}")
    for warning in config_warnings(path, cfg):  # valid, but a setting that can never take effect
        console.print(f"[yellow]warning[/yellow]: {escape(warning)}", highlight=False)
    console.print(program_summary(cfg))


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOption = None, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (safe to run on every deploy)."""
    from gateway.store import migrate

    settings = settings_for(database_url=database_url)
    migrate.upgrade(settings.database_url, revision)
    console.print(f"database at revision {migrate.current_revision(settings.database_url)}")


@ledger_app.command("check")
def ledger_check(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Prove the ledger invariants for every account; exit code 1 on any violation."""
    service, _ = service_for(config, database_url)
    report = service.check()
    if report.ok:
        console.print(f"[green]ledger ok[/green]: {report.accounts} accounts, {report.entries} entries")
        return
    console.print(f"[red]{len(report.violations)} violations[/red]")
    for line in report.violations:
        console.print(f"  {line}")
    raise typer.Exit(1)


@ledger_app.command("sweep")
def ledger_sweep(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """One maintenance pass: resolve due holds, expire points, purge old keys, relay the outbox."""
    from gateway.wiring import build_relay
    from gateway.workers.runner import run_once

    service, cfg = service_for(config, database_url)
    console.print(run_once(service, build_relay(service, cfg)))


@app.command()
def worker(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    interval: Annotated[float, typer.Option(help="Seconds between passes")] = 2.0,
) -> None:
    """Run the workers without the API (hold sweeper, expiry, outbox relay) until stopped.

    Safe to run on several hosts against one PostgreSQL database."""
    import signal
    import threading

    from gateway.observability.logs import configure as configure_logging
    from gateway.wiring import build_erp, build_jobs, build_relay
    from gateway.workers.runner import WorkerRunner

    service, cfg = service_for(config, database_url)
    log_settings = Settings()
    configure_logging(log_settings.log_level, log_settings.log_format)  # masked, like the server's
    erp = build_erp(service, cfg)  # one ERP throttle and connection pool, as in serve
    runner = WorkerRunner(
        service, interval=interval, relay=build_relay(service, cfg, erp=erp), jobs=build_jobs(service, cfg, erp)
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"worker running every {interval}s (database: {safe_url(service.db.url)})")
    runner.start()
    stop.wait()
    runner.stop()
    service.db.dispose()


def _stuck(config: Path | None, database_url: str | None):  # type: ignore[no-untyped-def]
    from gateway.wiring import build_relay
    from gateway.workers.stuck import StuckTransactions

    service, cfg = service_for(config, database_url)
    return StuckTransactions(service, build_relay(service, cfg))


@tx_app.command("stuck")
def tx_stuck(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Transactions that should have finished and have not."""
    items = _stuck(config, database_url).list()
    if not items:
        console.print("[green]nothing is stuck[/green]")
        return
    table = Table("id", "kind", "since", "card", "attempts", "detail")
    for item in items:
        table.add_row(
            item.id,
            item.kind,
            item.since.isoformat(timespec="seconds"),
            item.card_number or "",
            str(item.attempts),
            item.detail,
        )
    console.print(table)


@tx_app.command("show")
def tx_show(
    item_id: Annotated[str, typer.Argument(help="hold:<id>, outbox:<id> or journal:<id>")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """One transaction with its history."""
    from gateway.workers.stuck import UnknownItem

    try:
        history = _stuck(config, database_url).show(item_id)
    except UnknownItem as exc:
        console.print(f"[red]no such transaction: {item_id}[/red]")
        raise typer.Exit(1) from exc
    table = Table(show_header=False, title=item_id)
    for key, value in history.item.items():
        table.add_row(key, str(value))
    console.print(table)
    for row in history.journal:
        console.print(f"  {row['at']}  {row['client']}  {row['operation']}  {row['state']}  {row['error'] or ''}")


@tx_app.command("replay")
def tx_replay(
    item_id: Annotated[str | None, typer.Argument(help="hold:<id>, outbox:<id> or journal:<id>")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every stuck transaction")] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Resolve a stuck transaction now (or all of them)."""
    from gateway.workers.stuck import UnknownItem

    stuck = _stuck(config, database_url)
    if replay_all == (item_id is not None):
        console.print("[red]give one transaction id or --all[/red]")
        raise typer.Exit(2)
    if replay_all:
        outcomes = stuck.replay_all()
        for key, outcome in outcomes.items():
            console.print(f"{key}: {outcome}")
        console.print(f"{len(outcomes)} replayed")
        return
    assert item_id is not None
    try:
        console.print(f"{item_id}: {stuck.replay(item_id)}")
    except UnknownItem as exc:
        console.print(f"[red]no such transaction: {item_id}[/red]")
        raise typer.Exit(1) from exc


@mappings_app.command("unmapped")
def mappings_unmapped(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """References that outside systems sent and the mapping does not know yet."""
    service, _ = service_for(config, database_url)
    rows = service.unmapped()
    if not rows:
        console.print("[green]every reference seen so far is mapped[/green]")
        return
    table = Table("source", "kind", "ref", "name", "seen", "last seen")
    for row in rows:
        table.add_row(row.source, row.kind, row.ref, row.name or "", str(row.seen), row.last_seen.isoformat())
    console.print(table)


@notify_app.command("stats")
def notify_stats(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Messages sent, failed attempts and money spent per provider."""
    from gateway.notify.cascade import provider_stats

    service, _ = service_for(config, database_url)
    table = Table("provider", "sent", "failed attempts", "cost")
    for row in provider_stats(service.db):
        table.add_row(row.provider, str(row.sent), str(row.failed_attempts), str(row.cost))
    console.print(table)


@app.command()
def demo(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Walk one purchase through the ledger so a newcomer sees it work (uses the demo program)."""
    from contracts.operations import (
        BalanceRequest,
        CalculateRequest,
        CartLine,
        CommitRequest,
        HoldRequest,
        RefundLine,
        RefundRequest,
    )
    from gateway.seed import seed_demo

    service, cfg = service_for(config, database_url)
    seed_demo(service, cfg)
    if cfg.demo is None or not cfg.demo.cards:
        console.print("[red]the configuration has no demo cards[/red]")
        raise typer.Exit(1)
    card = cfg.demo.cards[0].card_number
    client = "demo"
    run = uuid.uuid4().hex[:8]
    lines = [
        CartLine(line_id="1", item="MILK-1L", item_name="Молоко 1 л", quantity=Decimal(2), price=Decimal("89.90")),
        CartLine(line_id="2", item="BREAD", item_name="Хлеб", quantity=Decimal(1), price=Decimal("55.00")),
    ]

    def show(title: str, rows: dict[str, object]) -> None:
        table = Table(title=title, show_header=False)
        for k, v in rows.items():
            table.add_row(k, str(v))
        console.print(table)

    bal = service.balance(client, BalanceRequest(card_number=card))
    show(f"1. card {card}", {"available": bal.available, "held": bal.held})
    calc = service.calculate(client, CalculateRequest(card_number=card, lines=lines))
    show(
        "2. calculate",
        {
            "total": calc.total_amount,
            "max points payable": calc.max_points_payable,
            "points to accrue": calc.points_to_accrue,
        },
    )
    spend = min(calc.max_points_payable, 50)
    hold = service.hold(client, f"demo-hold-{run}", HoldRequest(card_number=card, points=spend, receipt_id=run))
    show("3. hold", {"hold": hold.hold_id, "points": hold.points, "available now": hold.balance.available})
    commit = service.commit(
        client,
        f"demo-commit-{run}",
        CommitRequest(receipt_id=f"demo-{run}", card_number=card, hold_id=hold.hold_id, lines=lines),
    )
    show(
        "4. commit",
        {
            "paid by points": commit.amount_paid_by_points,
            "to pay": commit.amount_payable,
            "accrued": commit.points_accrued,
            "available": commit.balance.available,
        },
    )
    refund = service.refund(
        client,
        f"demo-refund-{run}",
        RefundRequest(
            receipt_id=f"demo-{run}", refund_id=f"ret-{run}", lines=[RefundLine(line_id="2", quantity=Decimal(1))]
        ),
    )
    show(
        "5. return the bread",
        {
            "points returned": refund.points_returned,
            "points reversed": refund.points_reversed,
            "money back": refund.money_to_return,
            "available": refund.balance.available,
        },
    )
    report = service.check()
    console.print(f"ledger check: {'[green]ok[/green]' if report.ok else report.violations}")

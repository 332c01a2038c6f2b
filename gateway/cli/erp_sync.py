"""``gateway sync``: the order sync with the ERP (``erp:`` in the configuration)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gateway.cli.common import ConfigOption, DatabaseOption, console, service_for

if TYPE_CHECKING:
    from adapters.onec.erp.config import ErpConfig
    from gateway.ledger.service import LoyaltyService

app = typer.Typer(help="Order sync with 1C:ERP: status, one catch-up run.", no_args_is_help=True)


def _erp(config: ConfigOption, database_url: DatabaseOption) -> tuple[LoyaltyService, ErpConfig]:
    service, cfg = service_for(config, database_url)
    if cfg.erp is None:
        console.print("[yellow]no `erp:` section in the configuration: the order sync is off[/yellow]")
        raise typer.Exit(2)
    if cfg.erp.client_id not in {client.id for client in cfg.clients}:
        console.print(f"[red]erp.client_id {cfg.erp.client_id!r} is not one of the configured clients[/red]")
        raise typer.Exit(2)
    return service, cfg.erp


def _when(value: object) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else "—"


@app.command("status")
def status(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    count: Annotated[
        bool, typer.Option(help="Ask the ERP how many changes wait (1-3 calls through the throttle)")
    ] = False,
) -> None:
    """Cursor, backlog, the allowed rate now, the ERP's latency, the orders that fail."""
    from adapters.onec.erp.store import failing_orders, sync_state
    from adapters.onec.erp.wiring import build_runtime
    from gateway.core.erp import ErpError

    service, erp = _erp(config, database_url)
    runtime = build_runtime(service, erp)
    state = sync_state(service, erp.name)
    throttle = runtime.throttle.status()
    budget = throttle.budget
    backlog: object = state.backlog if state is not None and state.backlog is not None else "unknown"
    if count:
        try:
            backlog = runtime.port.backlog(state.cursor if state is not None else None)
        except ErpError as exc:
            backlog = f"cannot ask: {exc}"
    summary = Table(title=f"ERP {erp.name} ({erp.transport}, {erp.base_url})", show_header=False)
    summary.add_column("what")
    summary.add_column("value")
    cursor = state.cursor if state is not None else None
    summary.add_row("cursor", (cursor or "(from the beginning)")[:120])
    summary.add_row("backlog (changes waiting)", str(backlog))
    summary.add_row("last run", _when(state.last_run_at if state else None))
    summary.add_row("last success", _when(state.last_success_at if state else None))
    summary.add_row("last error", (state.last_error if state else None) or "—")
    summary.add_row("running on", (state.lease_owner if state else None) or "—")
    summary.add_row("pages / orders applied", f"{state.pages} / {state.orders_applied}" if state else "0 / 0")
    summary.add_row(
        "budget now",
        "quiet window: no calls"
        if budget.quiet
        else f"{budget.base_rate:g} calls/s, {budget.concurrency} at once ({budget.window})",
    )
    summary.add_row("allowed rate (adaptive)", f"{budget.rate:.2f} calls/s (factor {budget.factor:.2f})")
    latency = f"{throttle.latency_ewma_ms:.0f} ms" if throttle.latency_ewma_ms is not None else "—"
    summary.add_row("ERP latency (EWMA)", f"{latency} (target {erp.throttle.adaptive.target_latency_ms} ms)")
    summary.add_row("calls in flight / last minute", f"{throttle.in_flight} / {throttle.calls_last_minute}")
    summary.add_row("failed calls last minute", str(throttle.failures_last_minute))
    console.print(summary)
    failing = failing_orders(service, erp.name)
    if not failing:
        console.print("[green]no failing orders[/green]")
        return
    table = Table(title=f"{len(failing)} failing orders")
    for column in ("order", "number", "since", "tries", "next try", "reason"):
        table.add_column(column)
    for row in failing:
        table.add_row(
            row.order_ref,
            row.number or "",
            _when(row.first_seen_at),
            str(row.failures),
            _when(row.next_retry_at),
            f"{row.error_code or ''}: {row.error or ''}",
        )
    console.print(table)


@app.command("run")
def run(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    pages: Annotated[
        int | None, typer.Option(help="At most this many pages (default: erp.sync.max_pages_per_run)")
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="Retry every failing order now")] = False,
) -> None:
    """One catch-up run (through the throttle, like the periodic job), with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from adapters.onec.erp.store import retry_now, sync_state
    from adapters.onec.erp.sync import SyncProgress
    from adapters.onec.erp.wiring import build_runtime
    from gateway.core.erp import ErpError

    service, erp = _erp(config, database_url)
    runtime = build_runtime(service, erp)
    if retry_failed:
        console.print(f"{retry_now(service, erp.name)} failing orders will be read again")
    state = sync_state(service, erp.name)
    try:
        total = runtime.port.backlog(state.cursor if state is not None else None)
    except ErpError as exc:
        console.print(f"[yellow]the ERP cannot tell its backlog ({exc}); syncing anyway[/yellow]")
        total = None
    with Progress(
        TextColumn("[bold]sync[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("sync", total=total, detail="")

        def on_page(step: SyncProgress) -> None:
            done = step.changes
            if step.remaining is not None:
                progress.update(task, total=done + step.remaining)
            progress.update(task, completed=done, detail=f"{step.pages} pages, {step.applied} applied")

        report = runtime.sync.run(max_pages=pages, on_page=on_page)
        progress.update(task, total=report.changes or 1, completed=report.changes or 1)
    if report.busy:
        console.print("[yellow]another replica is syncing right now; nothing done[/yellow]")
        raise typer.Exit(1)
    console.print(
        f"{report.pages} pages, {report.changes} orders read: {report.applied} applied, {report.unchanged} unchanged, "
        f"{report.skipped} skipped, {report.stale} older than applied, {report.failed} failed"
        + (f" ({report.retried} retried)" if report.retried else "")
    )
    for order, reason in report.failures[:20]:
        console.print(f"  [red]{order}[/red]: {reason}")
    if report.error:
        console.print(f"[red]stopped: {report.error}[/red]")
        raise typer.Exit(1)

"""``gateway mailing create|preview|send|report|cancel`` and ``gateway grant create|run|show``.

A mailing or a grant is described in a YAML (or JSON) file with the fields of the API's request
(``name``, ``kind``, ``channel``, ``template``, ``audience``…); the commands run as the
configuration's operator (its first marketer when it has no operator)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from contracts.errors import LoyaltyError
from gateway.cli.common import ConfigOption, DatabaseOption, console, service_for
from gateway.config import GatewayConfig
from gateway.ledger.service import LoyaltyService
from gateway.mailings import grants, planner, report, store
from gateway.mailings.requests import GrantRequest, MailingPreview, MailingRequest

app = typer.Typer(help="Рассылки по аудитории: создать, оценить, отправить, отчёт", no_args_is_help=True)
grants_app = typer.Typer(help="Разовое начисление баллов аудитории", no_args_is_help=True)

KeyOption = Annotated[str | None, typer.Option("--key", help="Idempotency key; re-run with it to repeat safely")]
FileArgument = Annotated[Path, typer.Argument(help="YAML or JSON file with the request", exists=True)]


def _who(cfg: GatewayConfig) -> str:
    for kind in ("operator", "marketer"):
        for client in cfg.clients:
            if client.kind == kind:
                return client.id
    console.print("[red]в конфигурации нет клиента operator или marketer[/red]")
    raise typer.Exit(2)


def _key(key: str | None, what: str) -> str:
    if key:
        return key
    made = f"cli:{what}:{uuid.uuid4()}"
    console.print(f"ключ идемпотентности: {made}")
    return made


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        console.print(f"[red]не прочитать {path}[/red]: {exc}")
        raise typer.Exit(2) from exc


def _fail(error: Exception) -> typer.Exit:
    if isinstance(error, LoyaltyError):
        details = f" {error.details}" if error.details else ""
        console.print(f"[red]{error.code.value}[/red]: {error.message}{details}")
    else:
        console.print(f"[red]ошибка в запросе[/red]: {error}")
    return typer.Exit(1)


def _setup(config: Path | None, database_url: str | None) -> tuple[LoyaltyService, GatewayConfig, str]:
    service, cfg = service_for(config, database_url)
    return service, cfg, _who(cfg)


def _print_preview(found: MailingPreview) -> None:
    console.print(
        f"Аудитория: {found.audience} ({found.audience_text}); согласны на рекламу: {found.advertising_allowed}"
    )
    table = Table(
        "Канал", "Достижимы", "Можно отправить", "Контрольная группа", "Сообщений", "Частей SMS", "Стоимость, ₽"
    )
    for ch in found.channels:
        cost = f"{ch.cost}" if ch.cost is not None else "цена не задана"
        table.add_row(
            ch.channel,
            str(ch.reachable),
            str(ch.allowed),
            str(ch.holdout),
            str(ch.messages),
            str(ch.parts_per_message),
            cost,
        )
    console.print(table)


@app.command("create")
def create(
    file: FileArgument, key: KeyOption = None, config: ConfigOption = None, database_url: DatabaseOption = None
) -> None:
    """Create a draft mailing from a file (then `preview` and `send` it)."""
    service, cfg, who = _setup(config, database_url)
    try:
        mailing = store.create(service, cfg, who, _key(key, "mailing"), MailingRequest.model_validate(_read(file)))
    except (LoyaltyError, ValidationError) as error:
        raise _fail(error) from error
    console.print(f"[green]рассылка создана[/green]: {mailing.id} «{mailing.name}» ({mailing.state})")


@app.command("preview")
def preview(
    mailing: Annotated[str, typer.Argument(help="A mailing id, or a request file")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Audience size, consent, expected holdout, SMS parts and cost per channel."""
    service, cfg, _ = _setup(config, database_url)
    try:
        path = Path(mailing)
        request = (
            MailingRequest.model_validate(_read(path))
            if path.exists()
            else store.request_of(store.read(service, mailing))
        )
        found = store.preview(service, cfg, request)
    except (LoyaltyError, ValidationError) as error:
        raise _fail(error) from error
    _print_preview(found)


@app.command("send")
def send(
    mailing_id: Annotated[str, typer.Argument(help="The mailing")],
    wait: Annotated[bool, typer.Option(help="Plan and queue it now, in this process, to the end")] = True,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Approve a mailing for sending and queue its messages (the relay sends them at the pace set)."""
    service, cfg, _ = _setup(config, database_url)
    try:
        started = store.start(service, mailing_id)
        if wait:
            progress = planner.plan(service, cfg, started.id)
            console.print(f"поставлено в очередь сообщений: {progress.queued}")
        mailing = store.read(service, mailing_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    console.print(
        f"рассылка {mailing.id}: {mailing.state}; получателей {mailing.recipients}, контрольная группа "
        f"{mailing.holdout}, без согласия {mailing.skipped_consent}, без контакта {mailing.skipped_contact}"
    )


@app.command("cancel")
def cancel(
    mailing_id: Annotated[str, typer.Argument(help="The mailing")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Stop planning a mailing (messages queued already still go)."""
    service, _, _ = _setup(config, database_url)
    try:
        mailing = store.cancel(service, mailing_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    console.print(f"рассылка {mailing.id}: {mailing.state}")


@app.command("report")
def show_report(
    mailing_id: Annotated[str, typer.Argument(help="The mailing")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delivery, opt-outs, purchases of recipients vs the holdout, the uplift."""
    service, _, _ = _setup(config, database_url)
    try:
        found = report.report(service, mailing_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    console.print(f"Рассылка {found.mailing_id} «{found.name}»: {found.state}")
    console.print(
        f"Сообщений: {found.queued}; доставлено {found.delivered}, ошибок {found.failed}, ждут {found.pending}; "
        f"отписались {found.opted_out}"
    )
    table = Table(f"За {found.window_days} дн.", "Покупателей", "Купили", "Покупок", "Выручка, ₽", "Конверсия, %")
    for title, c in (("Получатели", found.recipients), ("Контрольная группа", found.holdout)):
        table.add_row(
            title, str(c.customers), str(c.buyers), str(c.purchases), f"{c.revenue}", f"{c.conversion_percent}"
        )
    console.print(table)
    console.print(
        f"Прирост конверсии: {found.uplift_points} п.п.; дополнительная выручка: {found.incremental_revenue} ₽"
    )


@grants_app.command("create")
def grant_create(
    file: FileArgument,
    run: Annotated[bool, typer.Option(help="Book it now, in this process, to the end")] = True,
    key: KeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Points to every customer of an audience (description, points, expires_at, audience)."""
    service, _, who = _setup(config, database_url)
    try:
        grant = grants.create(service, who, _key(key, "grant"), GrantRequest.model_validate(_read(file)))
        found = grants.run(service, grant.id) if run else grants.result(service, grant.id)
    except (LoyaltyError, ValidationError) as error:
        raise _fail(error) from error
    console.print(
        f"начисление {found.grant_id}: {found.state}; покупателей {found.customers}, баллов {found.points_total}"
    )


@grants_app.command("run")
def grant_run(
    grant_id: Annotated[str, typer.Argument(help="The grant")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Book what is left of a grant (safe to repeat: nobody gets it twice)."""
    service, _, _ = _setup(config, database_url)
    try:
        found = grants.run(service, grant_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    console.print(
        f"начисление {found.grant_id}: {found.state}; покупателей {found.customers}, баллов {found.points_total}"
    )

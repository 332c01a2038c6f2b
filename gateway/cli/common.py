"""What every ``gateway`` subcommand shares: the console, common options, settings, the service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from gateway.config import ConfigError, GatewayConfig, Settings, load_config

if TYPE_CHECKING:
    from gateway.ledger.service import LoyaltyService

console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Configuration file (default: GATEWAY_CONFIG or the demo)")
]
DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="Database URL (default: GATEWAY_DATABASE_URL or ./gateway.db)")
]


def settings_for(config: Path | None = None, database_url: str | None = None, **extra: object) -> Settings:
    values: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if config is not None:
        values["config"] = config
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)  # type: ignore[arg-type]


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def service_for(config: Path | None, database_url: str | None) -> tuple[LoyaltyService, GatewayConfig]:
    from gateway.store import migrate
    from gateway.wiring import build_service

    settings = settings_for(config, database_url)
    try:
        cfg = load_config(settings.config)
    except ConfigError as exc:
        console.print(f"[red]configuration error[/red]\n{exc}")
        raise typer.Exit(2) from exc
    migrate.upgrade(settings.database_url)
    return build_service(settings, cfg), cfg

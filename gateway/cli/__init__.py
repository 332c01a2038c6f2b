"""The ``gateway`` command. Each area keeps its subcommands in a module of its own and is
registered here."""

from __future__ import annotations

from gateway.cli import accounts, bitrix, discountserver, erp_sync, importer, mailings, program
from gateway.cli.core import app
from gateway.cli.report import report

app.add_typer(erp_sync.app, name="sync")
app.add_typer(importer.app, name="import")
app.add_typer(accounts.customers_app, name="customers")
app.add_typer(accounts.giftcards_app, name="giftcards")
app.add_typer(accounts.campaigns_app, name="campaigns")
app.add_typer(bitrix.app, name="bitrix")
app.add_typer(discountserver.app, name="discountserver")
app.add_typer(mailings.app, name="mailing")
app.add_typer(mailings.grants_app, name="grant")
app.command("simulate")(program.simulate)
app.command("report")(report)

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app(prog_name="gateway")

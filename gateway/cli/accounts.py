"""``gateway customers merge``, ``gateway giftcards issue|export``, ``gateway campaigns
create|generate|show|export``: the operator's account commands.

Each mutating command runs under an idempotency key of the operator client (``--key``, printed
when not given): re-running it with the same key after a crash changes nothing and prints the
first result again.
"""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from contracts.accounts import (
    CampaignCodesResult,
    CampaignGenerateRequest,
    CampaignRequest,
    GiftCardBatchRequest,
    GiftCardBatchResult,
    MergeCustomersRequest,
)
from contracts.errors import LoyaltyError
from gateway.cli.common import ConfigOption, DatabaseOption, console, service_for
from gateway.config import GatewayConfig
from gateway.ledger.service import LoyaltyService

customers_app = typer.Typer(help="Customers: merge duplicates.", no_args_is_help=True)
giftcards_app = typer.Typer(help="Gift certificates: issue printed batches.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Promo campaigns and their single-use codes.", no_args_is_help=True)

KeyOption = Annotated[str | None, typer.Option("--key", help="Idempotency key; re-run with it to repeat safely")]


def _operator(cfg: GatewayConfig) -> str:
    for client in cfg.clients:
        if client.kind == "operator":
            return client.id
    console.print("[red]the configuration has no operator client[/red]")
    raise typer.Exit(2)


def _key(key: str | None, what: str) -> str:
    if key:
        return key
    made = f"cli:{what}:{uuid.uuid4()}"
    console.print(f"idempotency key: {made}")
    return made


def _fail(error: LoyaltyError) -> typer.Exit:
    details = f" {error.details}" if error.details else ""
    console.print(f"[red]{error.code.value}[/red]: {error.message}{details}")
    return typer.Exit(1)


def _end_of_day(day: date | None) -> datetime | None:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC) if day else None


def _service(config: Path | None, database_url: str | None) -> tuple[LoyaltyService, str]:
    service, cfg = service_for(config, database_url)
    return service, _operator(cfg)


# -- customers ---------------------------------------------------------------------------------


@customers_app.command("merge")
def merge(
    survivor: Annotated[str, typer.Argument(help="Id of the customer who stays")],
    duplicate: Annotated[str, typer.Argument(help="Id of the duplicate merged into it")],
    reason: Annotated[str | None, typer.Option(help="Why (kept with the merge)")] = None,
    key: KeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Merge a duplicate customer into another: points (with their expiry), cards and history move."""
    service, operator = _service(config, database_url)
    request = MergeCustomersRequest(survivor_id=survivor, merged_id=duplicate, reason=reason)
    try:
        done = service.merge_customers(operator, key or f"cli:merge:{survivor}:{duplicate}", request)
    except LoyaltyError as error:
        raise _fail(error) from error
    console.print(
        f"[green]merged[/green] {done.merged_customer_id} into {done.survivor_customer_id}: "
        f"{done.points_moved} points in {done.lots_moved} lots, cards {', '.join(done.cards_moved) or '-'}, "
        f"{done.receipts_moved} receipts, {done.orders_moved} orders (merge {done.merge_id})"
    )


# -- gift certificates -------------------------------------------------------------------------


def _write_batch(batch: GiftCardBatchResult, out: Path) -> None:
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "ref", "amount", "expires_at", "blocked", "batch_id"])
        for card in batch.cards:
            expires = batch.expires_at.isoformat() if batch.expires_at else ""
            writer.writerow([card.number, card.ref, str(batch.amount), expires, int(batch.blocked), batch.batch_id])


@giftcards_app.command("issue")
def issue(
    count: Annotated[int, typer.Option(min=1, max=10_000, help="How many certificates")],
    amount: Annotated[Decimal, typer.Option(help="Nominal of each, roubles (e.g. 1000 or 1500.50)")],
    out: Annotated[Path, typer.Option(help="CSV to write: number, ref, amount, expires_at, blocked")],
    name: Annotated[str, typer.Option(help="Name printed on the certificate")] = "Подарочный сертификат",
    prefix: Annotated[str, typer.Option(help="First digits of the numbers")] = "29",
    expires: Annotated[str | None, typer.Option(help="Last day of validity, YYYY-MM-DD (UTC)")] = None,
    blocked: Annotated[bool, typer.Option(help="Issue blocked (printed stock, unblocked when sold)")] = False,
    key: KeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Issue a batch of printed certificates and write their numbers to a CSV file."""
    service, operator = _service(config, database_url)
    try:
        request = GiftCardBatchRequest(
            count=count,
            amount=amount,
            name=name,
            prefix=prefix,
            expires_at=_end_of_day(date.fromisoformat(expires) if expires else None),
            blocked=blocked,
        )
    except ValueError as error:
        console.print(f"[red]invalid[/red]: {error}")
        raise typer.Exit(2) from error
    try:
        batch = service.gift_card_issue_batch(operator, _key(key, "giftcards"), request)
    except LoyaltyError as error:
        raise _fail(error) from error
    _write_batch(batch, out)
    console.print(f"[green]issued[/green] {batch.count} × {batch.amount} (batch {batch.batch_id}) → {out}")


@giftcards_app.command("export")
def export_batch(
    batch_id: Annotated[str, typer.Argument(help="The batch printed by `giftcards issue`")],
    out: Annotated[Path, typer.Option(help="CSV to write")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write the numbers of an issued batch to a CSV file again."""
    service, operator = _service(config, database_url)
    try:
        batch = service.gift_card_batch(operator, batch_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    _write_batch(batch, out)
    console.print(f"{batch.count} certificates → {out}")


# -- campaigns ---------------------------------------------------------------------------------


@campaigns_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Campaign name")],
    description: Annotated[str, typer.Option(help="What the cashier and the customer see")],
    percent: Annotated[Decimal | None, typer.Option(help="Discount, percent")] = None,
    amount: Annotated[Decimal | None, typer.Option(help="Discount, roubles")] = None,
    valid_from: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (UTC)")] = None,
    valid_to: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (UTC)")] = None,
    min_amount: Annotated[Decimal | None, typer.Option(help="Smallest receipt, roubles")] = None,
    uses_per_code: Annotated[int, typer.Option(help="Receipts per code; 0 = unlimited")] = 1,
    per_customer: Annotated[int | None, typer.Option(help="Receipts per customer")] = None,
    return_on_refund: Annotated[bool, typer.Option(help="A fully refunded receipt gives its code back")] = False,
    prefix: Annotated[str, typer.Option(help="Start of generated codes (A-Z, 0-9)")] = "",
    code: Annotated[str | None, typer.Option(help="One shared code (e.g. from an advert)")] = None,
    key: KeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a promo campaign."""
    service, operator = _service(config, database_url)
    try:
        request = CampaignRequest(
            name=name,
            description=description,
            discount_percent=percent,
            discount_amount=amount,
            valid_from=datetime.combine(date.fromisoformat(valid_from), time(), tzinfo=UTC) if valid_from else None,
            valid_to=_end_of_day(date.fromisoformat(valid_to) if valid_to else None),
            min_amount=min_amount,
            uses_per_code=uses_per_code or None,
            per_customer=per_customer,
            return_on_refund=return_on_refund,
            prefix=prefix.upper(),
            code=code,
        )
    except ValueError as error:
        console.print(f"[red]invalid[/red]: {error}")
        raise typer.Exit(2) from error
    try:
        done = service.campaign_create(operator, _key(key, "campaign"), request)
    except LoyaltyError as error:
        raise _fail(error) from error
    console.print(f"[green]campaign[/green] {done.campaign_id}: {done.name}")


def _write_codes(found: CampaignCodesResult, out: Path) -> None:
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "uses", "max_uses"])
        for row in found.codes:
            writer.writerow([row.code, row.uses, "" if row.max_uses is None else row.max_uses])


@campaigns_app.command("generate")
def generate(
    campaign_id: Annotated[str, typer.Argument(help="The campaign")],
    count: Annotated[int, typer.Option(min=1, max=100_000, help="How many codes")],
    out: Annotated[Path, typer.Option(help="CSV to write: code, uses, max_uses")],
    length: Annotated[int, typer.Option(min=8, max=20, help="Random characters per code")] = 10,
    key: KeyOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Generate a batch of unique single-use (or N-use) codes and write them to a CSV file."""
    service, operator = _service(config, database_url)
    request = CampaignGenerateRequest(campaign_id=campaign_id, count=count, length=length)
    try:
        batch = service.campaign_generate(operator, _key(key, "codes"), request)
        found = service.campaign_codes(operator, campaign_id, batch.batch_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    _write_codes(found, out)
    console.print(f"[green]generated[/green] {batch.count} codes (batch {batch.batch_id}) → {out}")


@campaigns_app.command("export")
def export_codes(
    campaign_id: Annotated[str, typer.Argument(help="The campaign")],
    batch_id: Annotated[str, typer.Argument(help="The batch")],
    out: Annotated[Path, typer.Option(help="CSV to write")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write a batch's codes (with their uses) to a CSV file again."""
    service, operator = _service(config, database_url)
    try:
        found = service.campaign_codes(operator, campaign_id, batch_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    _write_codes(found, out)
    console.print(f"{len(found.codes)} codes → {out}")


@campaigns_app.command("show")
def show(
    campaign_id: Annotated[str, typer.Argument(help="The campaign")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """A campaign's terms, counters and batches."""
    service, operator = _service(config, database_url)
    try:
        found = service.campaign(operator, campaign_id)
    except LoyaltyError as error:
        raise _fail(error) from error
    discount = f"{found.discount_percent}%" if found.discount_percent is not None else f"{found.discount_amount} ₽"
    table = Table(title=f"{found.name} ({found.campaign_id})", show_header=False)
    for label, value in (
        ("description", found.description),
        ("discount", discount),
        ("valid", f"{found.valid_from or '…'} – {found.valid_to or '…'}"),
        ("minimum receipt", str(found.min_amount or "-")),
        ("uses per code", str(found.uses_per_code or "unlimited")),
        ("per customer", str(found.per_customer or "unlimited")),
        ("code back on full refund", "yes" if found.return_on_refund else "no"),
        ("active", "yes" if found.active else "paused"),
        ("shared code", found.shared_code or "-"),
        ("codes", f"{found.codes:,} ({found.codes_exhausted:,} used up, {found.reserved:,} reserved now)"),
        ("uses", f"{found.uses:,}"),
    ):
        table.add_row(label, value)
    for batch in found.batches:
        table.add_row(f"batch {batch.batch_id}", f"{batch.count:,} codes of {batch.code_length} characters")
    console.print(table)

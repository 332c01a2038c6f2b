"""``gateway simulate FILE CARTS``: dry-run sample carts under a configuration's program, and the
program summary ``gateway check-config`` prints — "check the discount tree before launch"."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from contracts.errors import LoyaltyError
from contracts.program import SimulationRequest, SimulationResult
from gateway.cli.common import console
from gateway.config import TEMPLATE_FIELDS, ConfigError, GatewayConfig, NotificationsConfig, _line_index, load_config
from gateway.core.program import Program
from gateway.core.rules.base import kopecks_text, roubles_to_kopecks
from gateway.core.rules.ladders import Ladder
from gateway.core.rules.validation import program_warnings
from gateway.core.simulation import simulate as simulate_cart

WIDTH = 160


class CartsError(Exception):
    """The carts file is invalid; the message names the line and key."""


def load_carts(path: Path) -> SimulationRequest:
    """Sample carts from a YAML or JSON file: ``{carts: [...]}`` or a bare list of carts."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except OSError as exc:
        raise CartsError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CartsError(f"{path}: not valid YAML or JSON: {exc}") from exc
    lines = _line_index(node) if node is not None else {}
    if isinstance(data, list):
        data, lines = {"carts": data}, {("carts", *k): v for k, v in lines.items()}
    try:
        return SimulationRequest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
            problems.append(f"{path}:{line or '?'}: {'.'.join(str(p) for p in loc)}: {error['msg']}")
        raise CartsError("\n".join(problems)) from exc


def _money(value: Decimal) -> str:
    return kopecks_text(roubles_to_kopecks(value))


def render_result(result: SimulationResult) -> RenderableType:
    tier = result.tier or "—"
    if result.tier_upgrade:
        tier += f" → {result.tier_upgrade}"
    heading = (
        f"[bold]{result.name or 'cart'}[/bold]  segment {result.segment or '—'}, zone {result.zone or '—'}, tier {tier}"
    )
    lines = Table(show_footer=True, title_justify="left")
    lines.add_column("line", footer="total", no_wrap=True)
    lines.add_column("item", no_wrap=True)
    lines.add_column("kind")
    lines.add_column("price type")
    lines.add_column("amount", justify="right", footer=_money(result.total_amount), no_wrap=True)
    lines.add_column("discount", justify="right", footer=_money(result.total_discount), no_wrap=True)
    lines.add_column("points paid", justify="right", footer=str(result.points_to_spend), no_wrap=True)
    lines.add_column("points earned", justify="right", footer=str(result.points_to_accrue), no_wrap=True)
    lines.add_column("pending", footer=str(result.points_pending) if result.points_pending else "")
    lines.add_column("max points", justify="right", footer=str(result.max_points_payable), no_wrap=True)
    for line in result.lines:
        lines.add_row(
            line.line_id,
            line.item,
            line.kind or "—",
            line.price_type or "—",
            _money(line.amount),
            _money(line.discount),
            str(line.points_spent),
            str(line.points_accrued),
            "until shipment" if line.pending else "",
            str(line.max_points),
        )
    totals = (
        f"payable {_money(result.amount_payable)} · points payable at most {result.max_points_payable} · "
        f"points earned {result.points_to_accrue}"
        + (f" (pending {result.points_pending})" if result.points_pending else "")
        + (f" · referral points {result.referral_points}" if result.referral_points else "")
    )
    why = Table(title="why", title_justify="left")
    why.add_column("rule", no_wrap=True)
    why.add_column("line", no_wrap=True)
    why.add_column("points", justify="right", no_wrap=True)
    why.add_column("discount", justify="right", no_wrap=True)
    why.add_column("what")
    for step in result.explanation:
        why.add_row(
            step.rule,
            step.line_id or "receipt",
            str(step.points) if step.points else "",
            _money(step.discount) if step.discount else "",
            step.description,
        )
    return Group(heading, lines, totals, why, "")


def simulate(
    config_file: Annotated[Path, typer.Argument(help="Gateway configuration file with the program")],
    carts_file: Annotated[Path, typer.Argument(help="Sample carts (YAML or JSON): customer, store, date, lines")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
) -> None:
    """Dry-run sample carts under the program: discounts and points per line, and why. Books nothing."""
    try:
        config = load_config(config_file)
        request = load_carts(carts_file)
    except (ConfigError, CartsError) as exc:
        console.print(f"[red]invalid[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from exc
    out = console if console.is_terminal else Console(width=WIDTH)  # a file or a pipe: wide enough to read
    failed = 0
    results: list[dict[str, Any]] = []
    for index, cart in enumerate(request.carts):
        try:
            result = simulate_cart(config.program, cart)
        except LoyaltyError as exc:
            failed += 1
            name = cart.name or f"cart {index + 1}"
            if as_json:
                results.append({"name": cart.name, "error": exc.to_dict()})
            else:
                out.print(f"[red]{name}: {exc.code.value}[/red]: {exc.message} {exc.details or ''}")
            continue
        if as_json:
            results.append(result.model_dump(mode="json"))
        else:
            out.print(render_result(result))
    if as_json:
        typer.echo(json.dumps({"program": config.program.name, "results": results}, ensure_ascii=False, indent=2))
    if failed:
        raise typer.Exit(1)


# -- the summary check-config prints ----------------------------------------------------------


def config_warnings(path: Path, config: GatewayConfig) -> list[str]:
    """What ``check-config`` warns about (the file is valid): settings that can never take
    effect, each as ``file:line: key: message`` — the shape of its errors."""
    found = [(("program", *loc), message) for loc, message in program_warnings(config.program)]
    found += notification_warnings(config.notifications)
    if not found:
        return []
    lines: dict[tuple[Any, ...], int] = {}
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):  # it was just loaded; a race with an editor loses only lines
        node = None
    if node is not None:
        lines = _line_index(node)
    warnings = []
    for full, message in found:
        line = next((lines[full[:n]] for n in range(len(full), 0, -1) if full[:n] in lines), None)
        warnings.append(f"{path}:{line or '?'}: {'.'.join(str(p) for p in full)}: {message}")
    return warnings


def notification_warnings(notifications: NotificationsConfig) -> list[tuple[tuple[Any, ...], str]]:
    """Notification settings that can never take effect: a template no trigger sends (a typo in
    its name), a ``webhook_only`` trigger that is not switched on."""
    found: list[tuple[tuple[Any, ...], str]] = []
    for topic in notifications.templates:
        if topic not in TEMPLATE_FIELDS:
            known = ", ".join(sorted(TEMPLATE_FIELDS))
            found.append((("notifications", "templates", topic), f"no message uses this template (known: {known})"))
    for index, trigger in enumerate(notifications.webhook_only):
        if trigger not in notifications.triggers:
            where = ("notifications", "webhook_only", index)
            found.append((where, f"{trigger} is not in notifications.triggers: it never fires"))
    return found


def program_summary(config: GatewayConfig) -> RenderableType:
    program = config.program
    parts: list[RenderableType] = []
    parts.append(
        f"program {program.name!r}: point = {program.point_value} RUB, accrual {program.accrual.percent}%, "
        f"at most {program.redemption.max_share_percent}% payable by points"
        + ("" if program.redemption.allow_on_first_purchase else ", none on the first purchase")
        + (f", points live {program.expiry.days} days" if program.expiry.days else ", points never expire")
        + f", {len(config.clients)} clients"
    )
    parts.extend(_catalogue(program))
    if program.segments:
        segments = ", ".join(
            s.code
            + (" (default)" if s.default else "")
            + (f" → {s.becomes} after {s.after_months} months" if s.becomes else "")
            for s in program.segments
        )
        parts.append(f"segments: {segments}")
    if program.tiers is not None:
        tiers = program.tiers
        table = Table(
            title=f"tiers by turnover over {tiers.window.describe()}"
            + (f" (segments {', '.join(tiers.segments)})" if tiers.segments else ""),
            title_justify="left",
        )
        for column in ("tier", "turnover from", "below", "cashback", "max paid by points"):
            table.add_column(column)
        for level in tiers.ordered():
            table.add_row(
                level.label,
                _money(level.from_turnover),
                _money(level.to_turnover) if level.to_turnover is not None else "—",
                f"{level.cashback_percent}%",
                f"{level.max_share_percent}%" if level.max_share_percent is not None else "",
            )
        parts.append(table)
    for ladder in program.ladders:
        parts.append(_ladder_table(ladder))
    if program.discounts.rules:
        tree = Tree(Text(f"discount tree: the root combines by {program.discounts.combine}"))
        stack = [tree]
        for depth, text in list(program.discounts.tree())[1:]:
            del stack[depth:]
            stack.append(stack[-1].add(Text(text)))
        parts.append(tree)
    if program.accrual.rules:
        table = Table(title="accrual rules", title_justify="left")
        for column in ("id", "combine", "value", "priority", "description"):
            table.add_column(column)
        for rule in program.accrual.rules:
            value = f"× {rule.factor}" if rule.combine == "multiply" else f"{rule.percent}%"
            trial = rule.experiment
            held = f" [эксперимент: контроль {trial.control_percent}% с {trial.since}]" if trial else ""
            table.add_row(rule.id, rule.combine, value, str(rule.priority), rule.description + held)
        parts.append(table)
    bonuses = program.bonuses
    if program.welcome_bonus.points or bonuses.birthday or bonuses.referral or bonuses.referral_welcome:
        said = []
        if program.welcome_bonus.points:
            said.append(f"welcome {program.welcome_bonus.points}")
        if bonuses.birthday:
            said.append(f"birthday {bonuses.birthday.points}")
        said += [
            f"referral {r.id}: {r.percent}% to {', '.join(r.referrer_segments) or 'any'}" for r in bonuses.referral
        ]
        if bonuses.referral_welcome:
            said.append(f"referred friend {bonuses.referral_welcome.points}")
        parts.append("bonuses: " + "; ".join(said))
    if program.promo_codes:
        parts.append(f"promo codes: {', '.join(p.code for p in program.promo_codes)}")
    return Group(*parts)


def _ladder_table(ladder: Ladder) -> Table:
    """A ladder beside the retail tiers (partners by quarterly turnover): its levels and benefits."""
    table = Table(
        title=f"ladder {ladder.code}" + (f" «{ladder.name}»" if ladder.name else "")
        + f": segments {', '.join(ladder.segments)}, turnover over {ladder.window.describe()}",
        title_justify="left",
    )
    for column in ("level", "code", "turnover from", "below", "cashback", "max paid by points"):
        table.add_column(column)
    for level in ladder.ordered():
        table.add_row(
            level.label,
            level.code,
            _money(level.from_turnover),
            _money(level.to_turnover) if level.to_turnover is not None else "—",
            f"{level.cashback_percent}%",
            f"{level.max_share_percent}%" if level.max_share_percent is not None else "",
        )
    return table


def _catalogue(program: Program) -> list[RenderableType]:
    catalogue = program.catalogue
    parts: list[RenderableType] = []
    if catalogue.price_types:
        table = Table(title="price types", title_justify="left")
        for column in ("code", "name", "accrual", "max paid by points", "1C refs"):
            table.add_column(column)
        for price_type in catalogue.price_types:
            if price_type.accrual_percent is not None:
                accrual = f"{price_type.accrual_percent}%"
            elif price_type.accrual_factor is not None:
                accrual = f"× {price_type.accrual_factor}"
            else:
                accrual = "customer's rate"
            table.add_row(
                price_type.code + (" (default)" if price_type.code == catalogue.default_price_type else ""),
                price_type.name or "",
                accrual,
                f"{price_type.max_share_percent}%" if price_type.max_share_percent is not None else "",
                str(len(price_type.refs)),
            )
        parts.append(table)
    if catalogue.kinds:
        parts.append(f"kinds of goods: {len(catalogue.kinds)} ({', '.join(k.code for k in catalogue.kinds)})")
    if catalogue.zones:
        zones = ", ".join(f"{z.code} ({len(z.stores)} stores)" for z in catalogue.zones)
        parts.append(f"zones: {zones}")
    return parts

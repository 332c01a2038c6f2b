"""Markdown tables of the latest results in ``bench/results/`` (for docs/benchmarks.md).

python -m bench.report > /tmp/tables.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS
from bench.scenarios import SCENARIOS


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "—"
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _header(data: dict[str, Any]) -> str:
    m = data["machine"]
    return (
        f"*{m['started_at']}, {m['cpus']} CPUs, Python {m['python']}, "
        f"load average at start {' / '.join(str(x) for x in m['load_average_at_start'])}*"
    )


def pos(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    settings = data["settings"]
    rate = f"rate{settings['rate']:g}"
    processes = settings.get("processes", 1)
    lines = [
        f"### POS over HTTP — gateway on {settings['database']}"
        + (f", {processes} processes (and {processes} echo processes)" if processes > 1 else ""),
        "",
        _header(data) + f"; median of {settings['rounds']} rounds of {settings['seconds']:g} s; saturation with "
        f"{settings['connections']} connections; fixed rate {settings['rate']:g} req/s offered.",
        "",
        f"| scenario | req/s at saturation | × echo | p50 ms | p99 ms | req/s at {settings['rate']:g} offered "
        "| p50 ms | p99 ms | server CPU ms/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, modes in data["summary"].items():
        sat, fixed = modes["saturation"], modes[rate]
        lines.append(
            f"| {SCENARIOS[scenario].title} | {_num(sat['throughput'], 0)} | {_num(sat['ratio_to_echo'], 3)} "
            f"| {_num(sat['p50_ms'])} | {_num(sat['p99_ms'])} | {_num(fixed['throughput'], 0)} "
            f"| {_num(fixed['p50_ms'])} | {_num(fixed['p99_ms'])} | {_num(sat['server_cpu_ms_per_request'], 2)} "
            f"| {sat['errors'] + fixed['errors']} |"
        )
    targets = data.get("targets") or {}
    if targets:
        lines += [
            "",
            f"Targets: calculate p99 at {settings['rate']:g} req/s = {_num(targets['calculate_p99_ms_at_rate'])} ms "
            f"(target ≤ 10 ms: {_num(targets['calculate_p99_target_met'])}); calculate throughput = "
            f"{_num(targets['calculate_ratio_to_echo'], 3)} × echo (target ≥ 0.5: "
            f"{_num(targets['calculate_ratio_target_met'])}).",
        ]
    return lines


def ledger(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    settings = data["settings"]
    lines = [
        "### Ledger operations (hold + commit + refund through LoyaltyService, no HTTP)",
        "",
        _header(data) + f"; median of {settings['rounds']} rounds of {settings['seconds']:g} s.",
        "",
        "| database | threads | operations/s | redemptions/s | p50 ms (3 ops) | p99 ms (3 ops) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend, cells in data["results"].items():
        for threads, cell in cells.items():
            best = cell["median_round"]
            lines.append(
                f"| {backend} | {threads} | {_num(cell['ops_per_s_median'], 0)} | {_num(best['redemptions_per_s'], 0)} "
                f"| {_num(best['p50_ms'])} | {_num(best['p99_ms'])} |"
            )
    return lines


def imports(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        f"### Import of {data['cards']:,} cards with balances ({data['points']:,} points)",
        "",
        _header(data) + ".",
        "",
        "| database | seconds | cards/s | CPU s of the importer | peak RSS MB | reconciled | ≤ 60 s and < 300 MB |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        if backend in data:
            r = data[backend]
            lines.append(
                f"| {backend} | {_num(r['seconds'])} | {_num(r['cards_per_s'], 0)} | {_num(r['cpu_seconds'])} "
                f"| {_num(r['peak_rss_mb'], 0)} | {_num(r['reconciled'])} | {_num(r['targets_met'])} |"
            )
    return lines


def main() -> None:
    out: list[str] = []
    for path in sorted(RESULTS.glob("pos_*.json"), key=lambda p: ("postgresql" in p.name, p.name)):
        out += [*pos(path), ""]
    if (RESULTS / "ledger_ops.json").exists():
        out += [*ledger(RESULTS / "ledger_ops.json"), ""]
    if (RESULTS / "import_cards.json").exists():
        out += [*imports(RESULTS / "import_cards.json"), ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()

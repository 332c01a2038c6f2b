"""Benchmarks (1) and (2): what a till waits for, over HTTP, against the bare-FastAPI baseline.

    python -m bench.pos                       # every scenario, SQLite, 3 rounds
    python -m bench.pos --database postgresql # the gateway on PostgreSQL (GATEWAY_TEST_POSTGRES_URL)
    python -m bench.pos --scenarios calculate commit --rounds 5
    python -m bench.pos --processes 2         # two replicas of the gateway (and of the echo)

One gateway process (``gateway serve``, workers inside, as on one machine) and the echo
baseline (same uvicorn settings) run side by side on this machine; ``--processes N`` runs N of
each (replicas on one database; the load spreads its connections over them). For each round, each scenario
— the echo first — is loaded by a separate load-generator process (``bench/load.py``), after a
warm-up, twice: at saturation (``--connections`` keep-alive connections) and at a fixed offered
rate (``--rate``, open schedule, latency from when each request was due). Reported per scenario:
the median over rounds of throughput, p50/p99 latency, the server's CPU milliseconds per request,
and the ratio to the echo's throughput *in the same round*. Targets (a 2-core machine):
calculate p99 ≤ 10 ms at 300 req/s; gateway throughput ≥ 0.5 × echo.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Server,
    echo_server,
    gateway_server,
    latency_summary,
    machine,
    median,
    postgres_admin_url,
    save,
    table,
    temporary_postgres,
)
from bench.scenarios import SCENARIOS, write_cards_csv

GATEWAY_SCENARIOS = [name for name in SCENARIOS if name != "echo"]
TARGET_P99_MS = 10.0
TARGET_RATIO = 0.5


def load(servers: list[Server], scenario: str, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.load",
        *(part for server in servers for part in ("--url", server.url, "--server-pid", str(server.pid))),
        "--scenario",
        scenario,
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--connections",
        str(args.rate_connections if rate else args.connections),
        "--rate",
        str(rate),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    data = json.loads(done.stdout)
    latencies = data.pop("latencies")
    count = data["count"]
    return {
        **data,
        **latency_summary(latencies),
        "throughput": count / data["seconds"],
        "errors": sum(data["failures"].values()),
        "server_cpu_ms_per_request": data["server_cpu_seconds"] * 1000 / count if count else float("nan"),
        "client_cpu_share": data["client_cpu_seconds"] / data["seconds"],
    }


def prepare(database_url: str, workdir: Path) -> None:
    """Migrate and load the bench's cards (2,000 cards with points) through the importer."""
    from gateway.importer.cards import CardImporter
    from gateway.store import migrate
    from gateway.store.db import Database

    migrate.upgrade(database_url)
    cards = workdir / "bench-cards.csv"
    write_cards_csv(cards)
    db = Database(database_url)
    CardImporter(db).run(cards)
    db.dispose()


def summarize(rounds: list[dict[str, dict[str, Any]]], key: str) -> dict[str, Any]:
    """Median over rounds of one scenario+mode, with the per-round ratio to the echo."""
    runs = [r[key] for r in rounds]
    echo_key = "echo/" + key.split("/", 1)[1]
    ratios = [r[key]["throughput"] / r[echo_key]["throughput"] for r in rounds]
    fields = ("throughput", "p50_ms", "p99_ms", "server_cpu_ms_per_request", "client_cpu_share")
    out: dict[str, Any] = {f: median([run[f] for run in runs]) for f in fields}
    out["ratio_to_echo"] = median(ratios)
    out["errors"] = sum(run["errors"] for run in runs)
    out["requests"] = sum(run["count"] for run in runs)
    out["failures"] = {k: sum(run["failures"].get(k, 0) for run in runs) for run in runs for k in run["failures"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16, help="connections at saturation")
    parser.add_argument("--rate", type=float, default=300.0, help="offered rate of the fixed-rate runs")
    parser.add_argument("--rate-connections", type=int, default=32, help="most requests in flight at the fixed rate")
    parser.add_argument("--scenarios", nargs="+", default=GATEWAY_SCENARIOS, choices=GATEWAY_SCENARIOS)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--processes", type=int, default=1, help="server processes (replicas) of the gateway, and of the echo"
    )
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: GATEWAY_TEST_POSTGRES_URL)")
    args = parser.parse_args()

    info: dict[str, Any] = {
        "benchmark": "pos",
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "postgres"},
    }
    modes = {"saturation": 0.0, f"rate{args.rate:g}": args.rate}
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        if args.database == "postgresql":
            admin = postgres_admin_url(args.postgres)
            if admin is None:
                raise SystemExit("PostgreSQL not configured: pass --postgres URL or set GATEWAY_TEST_POSTGRES_URL")
            database_url = stack.enter_context(temporary_postgres(admin, "bench_pos"))
        else:
            database_url = f"sqlite:///{work / 'bench.db'}"
        prepare(database_url, work)
        echo = [stack.enter_context(echo_server(work)) for _ in range(args.processes)]
        # replicas as deployed: the first runs the workers, the others only serve
        gateway = [
            stack.enter_context(gateway_server(database_url, work, {"GATEWAY_WORKERS": str(i == 0).lower()}))
            for i in range(args.processes)
        ]
        for number in range(1, args.rounds + 1):
            results: dict[str, dict[str, Any]] = {}
            for scenario in ["echo", *args.scenarios]:
                target = echo if scenario == "echo" else gateway
                for mode, rate in modes.items():
                    results[f"{scenario}/{mode}"] = load(target, scenario, args, rate)
            rounds.append(results)
            sat = results["calculate/saturation"]["throughput"] if "calculate" in args.scenarios else float("nan")
            print(
                f"round {number}/{args.rounds}: echo {results['echo/saturation']['throughput']:,.0f} req/s, "
                f"calculate {sat:,.0f} req/s",
                file=sys.stderr,
            )
    summary = {key: summarize(rounds, key) for key in rounds[0]}
    by_scenario: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for key, value in summary.items():
        scenario, mode = key.split("/", 1)
        by_scenario[scenario][mode] = value
    rate_mode = f"rate{args.rate:g}"
    rows = []
    for scenario, per_mode in by_scenario.items():
        sat, fixed = per_mode["saturation"], per_mode[rate_mode]
        rows.append(
            [
                SCENARIOS[scenario].title,
                sat["throughput"],
                sat["ratio_to_echo"],
                sat["p50_ms"],
                sat["p99_ms"],
                fixed["throughput"],
                fixed["p50_ms"],
                fixed["p99_ms"],
                sat["server_cpu_ms_per_request"],
                sat["errors"] + fixed["errors"],
            ]
        )
    targets: dict[str, Any] = {}
    if "calculate" in by_scenario:
        calc = by_scenario["calculate"]
        targets = {
            "calculate_p99_ms_at_rate": calc[rate_mode]["p99_ms"],
            "calculate_p99_target_met": calc[rate_mode]["p99_ms"] <= TARGET_P99_MS,
            "calculate_ratio_to_echo": calc["saturation"]["ratio_to_echo"],
            "calculate_ratio_target_met": calc["saturation"]["ratio_to_echo"] >= TARGET_RATIO,
        }
    replicas = f", {args.processes} server processes each" if args.processes > 1 else ""
    table(
        f"POS over HTTP on {args.database}{replicas} — median of {args.rounds} rounds, {args.seconds:g} s each "
        f"(saturation: {args.connections} connections; fixed rate: {args.rate:g} req/s offered)",
        [
            "scenario",
            "req/s",
            "× echo",
            "p50 ms",
            "p99 ms",
            f"@{args.rate:g}: req/s",
            "p50 ms",
            "p99 ms",
            "server CPU ms/req",
            "errors",
        ],
        rows,
        caption=", ".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in targets.items()),
    )
    info.update({"summary": by_scenario, "targets": targets, "rounds": rounds})
    suffix = (f"_x{args.processes}" if args.processes > 1 else "") + (f"_rate{args.rate:g}" if args.rate != 300 else "")
    print(f"results: {save(f'pos_{args.database}{suffix}', info)}")


if __name__ == "__main__":
    main()

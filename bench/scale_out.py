"""Benchmark: receipts committed by two ``gateway serve`` processes against one, on PostgreSQL.

    python -m bench.scale_out                       # PostgreSQL from GATEWAY_TEST_POSTGRES_URL
    python -m bench.scale_out --rounds 3 --seconds 8 --connections 16

Two gateway processes serve one PostgreSQL database (the first runs the workers, as deployed).
Each round loads the receipt commit (``bench/scenarios.py``: spend 10 points and accrue) at
saturation from a separate load-generator process (``bench/load.py``), first against one process
only, then spread over both, so the ratio is taken in the same round on the same data. Reported
per round and as the median: commits per second, p50/p99, each server's CPU milliseconds per
commit, and the ratio two ÷ one. Target (issue 22): two processes sustain ≥ 1.7 × one's rate.

On a 2-core machine the database server and the load generator share the cores with the
gateway, so the ratio also says how much of a commit's time is the gateway's own CPU (which a
second process adds) and how much is PostgreSQL's and the load's (which it does not).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Server,
    free_port,
    machine,
    median,
    postgres_admin_url,
    save,
    table,
    temporary_postgres,
    wait_healthy,
)
from bench.pos import load, prepare

TARGET = 1.7
STARTUP_SECONDS = 300  # a shared, busy machine imports the gateway slowly


@contextmanager
def _gateway(database_url: str, workdir: Path, workers: bool) -> Iterator[Server]:
    """``gateway serve`` as ``bench.common.gateway_server`` runs it, with a longer start-up."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_WORKERS": str(workers).lower(),
    }
    with (workdir / f"server-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(f"{url}/health", process, timeout=STARTUP_SECONDS)
            yield Server(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16, help="connections at saturation")
    parser.add_argument("--scenario", default="commit", help="bench/scenarios.py scenario (default: commit)")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: GATEWAY_TEST_POSTGRES_URL)")
    args = parser.parse_args()
    # what bench.pos.load reads from its arguments
    args.rate_connections = args.connections

    admin = postgres_admin_url(args.postgres)
    if admin is None:
        raise SystemExit("PostgreSQL not configured: pass --postgres URL or set GATEWAY_TEST_POSTGRES_URL")
    info: dict[str, Any] = {"benchmark": "scale_out", "machine": machine(), "settings": vars(args) | {"postgres": None}}
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        database_url = stack.enter_context(temporary_postgres(admin, "bench_scale"))
        prepare(database_url, work)
        servers = [stack.enter_context(_gateway(database_url, work, workers=i == 0)) for i in range(2)]
        for number in range(1, args.rounds + 1):
            load_average = os.getloadavg()
            one = load(servers[:1], args.scenario, args, 0.0)
            two = load(servers, args.scenario, args, 0.0)
            ratio = two["throughput"] / one["throughput"] if one["throughput"] else float("nan")
            rounds.append({"load_average": load_average, "one": one, "two": two, "ratio": ratio})
            print(
                f"round {number}/{args.rounds}: one process {one['throughput']:,.1f}/s, "
                f"two {two['throughput']:,.1f}/s, ratio {ratio:.2f} (load average {load_average[0]:.1f})",
                file=sys.stderr,
            )
    rows = []
    for n, r in enumerate(rounds, 1):
        for label in ("one", "two"):
            run = r[label]
            rows.append(
                [
                    n,
                    label,
                    run["throughput"],
                    run["p50_ms"],
                    run["p99_ms"],
                    run["server_cpu_ms_per_request"],
                    run["errors"],
                    r["ratio"] if label == "two" else float("nan"),
                    r["load_average"][0],
                ]
            )
    ratio = median([r["ratio"] for r in rounds])
    table(
        f"{args.scenario} on PostgreSQL: two gateway processes against one — {args.rounds} rounds of "
        f"{args.seconds:g} s at saturation ({args.connections} connections)",
        ["round", "processes", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "errors", "two ÷ one", "load 1 min"],
        rows,
        caption=f"median ratio {ratio:.2f} (target ≥ {TARGET})",
    )
    for r in rounds:  # the load generator's raw latencies are not kept
        for label in ("one", "two"):
            r[label].pop("latencies", None)
    info.update({"rounds": rounds, "median_ratio": ratio, "target_met": ratio >= TARGET})
    print(f"results: {save('scale_out_postgresql', info)}")


if __name__ == "__main__":
    main()

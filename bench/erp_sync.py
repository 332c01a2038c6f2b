"""Benchmark: order sync from 1C:ERP through the throttle, against the fake ERP on loopback.

A backlog of orders (a third of them shipped in parts) waits at the ERP; one catch-up run syncs
it. Reported per transport: orders per second, and at the ERP side — average calls per second,
the most calls in any sliding 1-second window, the most calls in flight — each as a ratio to the
configured budget (a peak ratio above 1.00 would be a broken promise; the average ratio is how
much of the budget the sync uses). The same backlog synced with no budget to speak of is the
baseline the throttled throughput is compared with.

    python -m bench.erp_sync [--orders 300] [--rate 10] [--concurrency 4] [--latency 0.03]
                             [--transport odata|soap|both] [--web-server iis|apache|none]
                             [--postgres postgresql://…]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from adapters.onec.erp.wiring import build_runtime
from bench.common import save, table
from gateway.config import DEMO_CONFIG, Settings, load_config
from gateway.seed import seed_demo
from gateway.store import migrate
from gateway.wiring import build_service
from testing.erp import erp_config
from testing.fake_erp import APACHE_REQUEST_LINE, IIS_QUERY_STRING, Behaviour, FakeErp

CARDS = ["2700000000014", "2700000000021", "2700000000038"]


def backlog(erp: FakeErp, orders: int) -> None:
    refs = erp.generate(orders, CARDS, seed=42)
    for n, ref in enumerate(refs):
        if n % 3 == 0:
            lines = erp.orders[ref].lines
            erp.ship(ref, {lines[0].code: lines[0].quantity})


def run(url: str, transport: str, args: argparse.Namespace, rate: float, concurrency: int) -> dict[str, Any]:
    migrate.upgrade(url)
    config = load_config(DEMO_CONFIG)
    service = build_service(Settings(database_url=url), config)
    seed_demo(service, config)
    limits = {"iis": {"max_query_string": IIS_QUERY_STRING}, "apache": {"max_request_line": APACHE_REQUEST_LINE}}
    behaviour = Behaviour(latency=args.latency, load_factor=0.3, capacity=64, **limits.get(args.web_server, {}))
    erp = FakeErp(behaviour=behaviour)
    backlog(erp, args.orders)
    with erp.running() as base:
        erp_cfg = erp_config(
            base,
            transport=transport,
            name=f"bench-{uuid.uuid4().hex[:6]}",
            throttle={"rate_per_second": rate, "concurrency": concurrency},
            sync={"page_size": args.page_size, "max_pages_per_run": 100_000},
        )
        runtime = build_runtime(service, erp_cfg)
        start = time.monotonic()
        report = runtime.sync.run()
        seconds = time.monotonic() - start
        runtime.port.close()
    assert report.error is None, report.error
    assert report.applied == args.orders, (report.applied, args.orders)
    assert service.check().ok
    service.db.dispose()
    measure = erp.measure
    calls = measure.count()
    return {
        "transport": transport,
        "rate_budget": rate,
        "concurrency_budget": concurrency,
        "seconds": seconds,
        "orders": report.applied,
        "orders_per_second": report.applied / seconds,
        "calls": calls,
        "orders_per_call": report.applied / calls,
        "avg_calls_per_second": calls / seconds,
        "peak_calls_per_second": measure.max_in_window(1.0),
        "max_in_flight": measure.max_in_flight,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="the budget: calls per second")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.03, help="the fake ERP's latency for one call alone")
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--transport", choices=["odata", "soap", "both"], default="both")
    parser.add_argument(
        "--web-server",
        choices=["iis", "apache", "none"],
        default="iis",
        help="URL limits of the web server in front of the fake ERP (IIS: 2,048-byte query strings)",
    )
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to sync into instead of SQLite")
    args = parser.parse_args()
    transports = ["odata", "soap"] if args.transport == "both" else [args.transport]
    data: dict[str, Any] = {"orders": args.orders, "rate": args.rate, "concurrency": args.concurrency, "runs": []}
    rows = []
    created: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for transport in transports:
            results = {}
            for label, rate, concurrency in (("baseline", 1000.0, 16), ("throttled", args.rate, args.concurrency)):
                url = _database(args.postgres, Path(tmp), f"{transport}-{label}", created)
                results[label] = run(url, transport, args, rate, concurrency)
            base, throttled = results["baseline"], results["throttled"]
            summary = {
                **throttled,
                "baseline_orders_per_second": base["orders_per_second"],
                "throughput_vs_baseline": throttled["orders_per_second"] / base["orders_per_second"],
                "avg_rate_vs_budget": throttled["avg_calls_per_second"] / args.rate,
                "peak_rate_vs_budget": throttled["peak_calls_per_second"] / args.rate,
                "in_flight_vs_budget": throttled["max_in_flight"] / args.concurrency,
            }
            data["runs"].append(summary)
            rows.append(
                [
                    transport,
                    summary["orders_per_second"],
                    summary["baseline_orders_per_second"],
                    summary["throughput_vs_baseline"],
                    summary["orders_per_call"],
                    summary["avg_rate_vs_budget"],
                    summary["peak_rate_vs_budget"],
                    summary["in_flight_vs_budget"],
                ]
            )
    table(
        f"ERP order sync: {args.orders} orders, budget {args.rate:g} calls/s and {args.concurrency} at once, "
        f"ERP latency {args.latency * 1000:.0f} ms",
        [
            "transport",
            "orders/s",
            "orders/s unthrottled",
            "ratio",
            "orders per call",
            "avg rate / budget",
            "peak 1 s / budget",
            "in flight / budget",
        ],
        rows,
    )
    print(f"saved {save('erp_sync', data)}")
    if args.postgres and created:
        import psycopg

        with psycopg.connect(args.postgres.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            for database in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _database(postgres: str | None, tmp: Path, name: str, created: list[str]) -> str:
    if not postgres:
        return f"sqlite:///{tmp / f'{name}.db'}"
    import psycopg

    admin = postgres.replace("postgresql+psycopg://", "postgresql://")
    database = f"bench_erp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    created.append(database)
    return admin.rsplit("/", 1)[0] + f"/{database}"


if __name__ == "__main__":
    main()

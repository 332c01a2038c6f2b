"""Benchmark (3): ledger operations per second through ``LoyaltyService`` (no HTTP), on SQLite
and on PostgreSQL, from one thread and from several.

    python -m bench.ledger_ops                       # SQLite, and PostgreSQL if GATEWAY_TEST_POSTGRES_URL is set
    python -m bench.ledger_ops --postgres postgresql://postgres@127.0.0.1/postgres --threads 1 4 8

One operation is a till's redemption: *hold* points, *commit* the receipt that spends them (and
accrues), *refund* one line of it — three idempotent writes. Cards are spread over 2,000
accounts loaded by the importer, so concurrent threads contend on the database, not on one
account's lock. Each (database, threads) cell runs ``--rounds`` times after a warm-up; the median
round is reported, with p50/p99 latency of a whole hold+commit+refund. The ledger invariants are
checked at the end of every cell.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import latency_summary, machine, median, postgres_admin_url, save, table, temporary_postgres
from bench.scenarios import card, write_cards_csv
from contracts.operations import CartLine, CommitRequest, HoldRequest, RefundLine, RefundRequest

LINES = [
    CartLine(line_id="1", item="MILK-1L", quantity=Decimal(2), price=Decimal("89.90")),
    CartLine(line_id="2", item="BREAD", quantity=Decimal(1), price=Decimal("55.00")),
]


@contextmanager
def service_on(url: str, workdir: Path) -> Iterator[Any]:
    from gateway.config import DEMO_CONFIG, Settings, load_config
    from gateway.importer.cards import CardImporter
    from gateway.store import migrate
    from gateway.wiring import build_service

    migrate.upgrade(url)
    cards = workdir / "ledger-cards.csv"
    write_cards_csv(cards)
    service = build_service(Settings(database_url=url), load_config(DEMO_CONFIG))
    CardImporter(service.db).run(cards)
    try:
        yield service
    finally:
        service.db.dispose()


def redemption(service: Any, run: str, n: int) -> None:
    number = card(n)
    hold = service.hold("tills", f"{run}-h{n}", HoldRequest(card_number=number, points=10))
    receipt = f"{run}-r{n}"
    service.commit(
        "tills", f"{run}-c{n}", CommitRequest(receipt_id=receipt, card_number=number, hold_id=hold.hold_id, lines=LINES)
    )
    service.refund(
        "tills",
        f"{run}-f{n}",
        RefundRequest(receipt_id=receipt, refund_id=f"{receipt}-ret", lines=[RefundLine(line_id="2", quantity=1)]),
    )


def one_round(service: Any, threads: int, seconds: float) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    deadline = time.perf_counter() + seconds
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        n = index
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                redemption(service, run, n)
                latencies[index].append(time.perf_counter() - start)
                n += threads
        except BaseException as error:  # reported, and the round fails
            failures.append(error)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"a redemption failed: {failures[0]!r}") from failures[0]
    flat = [value for per_thread in latencies for value in per_thread]
    return {
        "redemptions": len(flat),
        "seconds": elapsed,
        "redemptions_per_s": len(flat) / elapsed,
        "operations_per_s": 3 * len(flat) / elapsed,
        **latency_summary(flat),
    }


def measure(service: Any, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    one_round(service, threads, args.warmup)
    rounds = [one_round(service, threads, args.seconds) for _ in range(args.rounds)]
    report = service.check()
    if not report.ok:
        raise RuntimeError(f"ledger invariants broken: {report.violations[:5]}")
    best = sorted(rounds, key=lambda r: r["operations_per_s"])[len(rounds) // 2]
    return {"median_round": best, "rounds": rounds, "ops_per_s_median": median([r["operations_per_s"] for r in rounds])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: GATEWAY_TEST_POSTGRES_URL)")
    args = parser.parse_args()
    settings = {k: v for k, v in vars(args).items() if k != "postgres"}
    data: dict[str, Any] = {"benchmark": "ledger_ops", "machine": machine(), "settings": settings}
    results: dict[str, dict[int, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with service_on(f"sqlite:///{work / 'ops.db'}", work) as service:
            results["sqlite"] = {t: measure(service, t, args) for t in args.threads}
        admin = postgres_admin_url(args.postgres)
        if admin is None:
            print("PostgreSQL skipped: pass --postgres URL or set GATEWAY_TEST_POSTGRES_URL")
        else:
            with temporary_postgres(admin, "bench_ops") as url, service_on(url, work) as service:
                results["postgresql"] = {t: measure(service, t, args) for t in args.threads}
    rows = []
    for backend, per_threads in results.items():
        for threads, cell in per_threads.items():
            best = cell["median_round"]
            rows.append(
                [backend, threads, cell["ops_per_s_median"], best["redemptions_per_s"], best["p50_ms"], best["p99_ms"]]
            )
    table(
        f"ledger operations through LoyaltyService (hold + commit + refund), median of {args.rounds} rounds "
        f"of {args.seconds:g} s",
        ["database", "threads", "operations/s", "redemptions/s", "p50 ms (3 ops)", "p99 ms (3 ops)"],
        rows,
    )
    data["results"] = results
    print(f"results: {save('ledger_ops', data)}")


if __name__ == "__main__":
    main()

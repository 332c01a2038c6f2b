"""Benchmark: the background jobs over a large base while tills commit receipts.

    python -m bench.jobs                               # 100,000 customers, SQLite (and PostgreSQL if configured)
    python -m bench.jobs --customers 500000 --database sqlite

A base of ``--customers`` customers (accounts, cards, a welcome lot each — 5 % of them expiring
within the notification horizon —, a birthday spread over the year, and a receipt this quarter
for one customer in five) is written with bulk inserts; the building-materials program (tiers by
quarterly turnover, segments, birthday bonus) runs on it. Customers start as they stand after
their first day (retail, base tier). The daily job is measured three times: its first run over
the base (the birthdays of the grace window are due: ~2 % of the customers get a bonus), the same
day again from the start (a quiet day: every customer read, nothing changes) and the program's
first day (below). The notification job runs once.

For each run it measures:

* the job's wall time over the whole base;
* while it runs, till receipts committed through ``LoyaltyService`` at ``--till-rate`` per second
  from another thread (as ``gateway serve`` runs its workers beside the tills): p50/p99/max;
* the longest write transaction of the job and of the tills (from the moment ``BEGIN`` — on
  SQLite ``BEGIN IMMEDIATE``, which takes the write lock — returned until ``COMMIT`` was sent),
  read from the write engine's events: on SQLite that is how long the job held the write lock;
* on SQLite, how long a writer of another process would wait for the write lock: a probe takes
  and releases it (``BEGIN IMMEDIATE``) every 5 ms on a connection of its own; and the longest
  garbage-collector pause of the benchmark process (a pause stops every thread of it, the probe's
  included, so a long wait that coincides with one is the process, not the lock).

The same till load without any job is measured first as the baseline, and the ratios are printed.
Then the first day of a program over the same base (``--first-day``, on by default): every
customer's segment and tier cleared, the daily job places everyone again.
Targets (issue 22): the daily job over 500,000 customers in under 2 minutes, no job holding the
write lock more than 50 ms at a time, till p99 ≤ 100 ms while the jobs run.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import ROOT, latency_summary, postgres_admin_url, save, table, temporary_postgres

PROGRAM = ROOT / "gateway" / "demo" / "programs" / "building-materials.yaml"
CHUNK = 5_000


def _config(workdir: Path) -> Any:
    from gateway.config import NotificationsConfig, ProviderConfig, load_config

    config = load_config(PROGRAM)
    notifications = NotificationsConfig(
        providers={"console": ProviderConfig(type="console", path=str(workdir / "messages.jsonl"))},
        triggers=["points_expiring", "birthday"],
    )
    return config.model_copy(update={"notifications": notifications})


def populate(service: Any, customers: int, now: datetime) -> None:
    """Write the base with bulk inserts, ``CHUNK`` customers a transaction."""
    from gateway.store.models import Account, Card, Customer, LedgerEntry, Lot, Receipt, ReceiptLine

    quarter_start = datetime(now.year, (now.month - 1) // 3 * 3 + 1, 1, tzinfo=UTC)
    first_day = (now - timedelta(days=400)).date()
    for start in range(0, customers, CHUNK):
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ("c", "a", "k", "l", "e", "r", "rl")}
        for n in range(start, min(start + CHUNK, customers)):
            customer, account = f"c{n:09d}", f"a{n:09d}"
            born = date(1980 + n % 30, 1, 1) + timedelta(days=n % 365)
            rows["c"].append(
                {
                    "id": customer,
                    "phone": f"+7900{n:07d}",
                    "birth_date": born,
                    "created_by": "bench",
                    "created_at": now - timedelta(days=400),
                    "segment": "retail",
                    "segment_since": first_day,
                    "tier": "base",
                    "tier_since": first_day,
                }
            )
            rows["a"].append({"id": account, "customer_id": customer, "created_at": now - timedelta(days=400)})
            rows["k"].append(
                {
                    "number": f"29{n:011d}",
                    "ref": str(uuid.UUID(int=n)),
                    "customer_id": customer,
                    "account_id": account,
                    "status": "active",
                    "created_at": now - timedelta(days=400),
                }
            )
            expires = now + timedelta(days=3) if n % 20 == 0 else now + timedelta(days=200)
            rows["l"].append(
                {
                    "id": n + 1,
                    "account_id": account,
                    "source": "welcome",
                    "points": 500,
                    "remaining": 500,
                    "available_at": now - timedelta(days=400),
                    "expires_at": expires,
                    "created_at": now - timedelta(days=400),
                }
            )
            rows["e"].append(
                {
                    "account_id": account,
                    "kind": "welcome",
                    "points": 500,
                    "lot_id": n + 1,
                    "client_id": "bench",
                    "created_at": now - timedelta(days=400),
                }
            )
            if n % 5 == 0:
                txn = f"t{n:09d}"
                rows["r"].append(
                    {
                        "id": txn,
                        "client_id": "bench",
                        "receipt_id": txn,
                        "account_id": account,
                        "card_number": f"29{n:011d}",
                        "total_kopecks": 250_000,
                        "points_spent": 0,
                        "points_accrued": 0,
                        "point_value_kopecks": 100,
                        "content_hash": txn,
                        "explanation_json": "[]",
                        "occurred_at": quarter_start + timedelta(hours=1 + n % 24),
                        "created_at": quarter_start,
                    }
                )
                rows["rl"].append(
                    {
                        "receipt_txn_id": txn,
                        "line_id": "1",
                        "position": 0,
                        "item": "TL-1001",
                        "quantity": "1",
                        "amount_kopecks": 250_000,
                        "discount_kopecks": 0,
                        "points_spent": 0,
                        "points_accrued": 0,
                        "refunded_quantity": "0",
                        "refunded_kopecks": 0,
                    }
                )
        tables = [
            (Customer, "c"),
            (Account, "a"),
            (Card, "k"),
            (Lot, "l"),
            (LedgerEntry, "e"),
            (Receipt, "r"),
            (ReceiptLine, "rl"),
        ]
        with service.db.write() as session:
            for model, name in tables:
                if rows[name]:
                    session.execute(model.__table__.insert(), rows[name])  # type: ignore[attr-defined]
    if not service.db.is_sqlite:  # the lots were written with their ids: move the sequence past them
        from sqlalchemy import text

        with service.db.write() as session:
            session.execute(text("SELECT setval(pg_get_serial_sequence('lots', 'id'), (SELECT max(id) FROM lots))"))


@dataclass
class TillLoad:
    """Receipts committed at a fixed rate from a thread of their own; latencies of each."""

    service: Any
    rate: float
    cards: list[str]
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        from contracts.operations import CartLine, CommitRequest

        interval = 1 / self.rate
        due = time.perf_counter()
        n = 0
        while not self._stop.is_set():
            due += interval
            request = CommitRequest(
                receipt_id=uuid.uuid4().hex,
                card_number=self.cards[n % len(self.cards)],
                store="S01",
                lines=[CartLine(line_id="1", item="TL-1001", quantity=Decimal(1), price=Decimal("990.00"))],
            )
            began = time.perf_counter()
            try:
                self.service.commit("tills", uuid.uuid4().hex, request)
                self.latencies.append(time.perf_counter() - began)
            except Exception:
                self.errors += 1
            n += 1
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)

    @contextmanager
    def running(self) -> Iterator[TillLoad]:
        with _in_background(self.run, self._stop, "tills"):
            yield self


@dataclass
class LockProbe:
    """On SQLite: how long a writer waits for the write lock, sampled every 5 ms; each wait with
    the moment it began (``perf_counter``), to set it beside the garbage collector's pauses."""

    path: str
    waits: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        while not self._stop.is_set():
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            self.waits.append((began, time.perf_counter() - began))
            conn.execute("COMMIT")
            time.sleep(0.005)
        conn.close()

    @contextmanager
    def running(self) -> Iterator[LockProbe]:
        with _in_background(self.run, self._stop, "lock-probe"):
            yield self


@dataclass
class WriteHolds:
    """The write transactions of one engine, by thread: how long each held the database, from
    ``BEGIN`` returning (SQLite: ``BEGIN IMMEDIATE``, the write lock taken) to ``COMMIT`` sent."""

    engine: Any
    longest: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    def _begin(self, connection: Any) -> None:
        connection.info["bench_began"] = time.perf_counter()

    def _end(self, connection: Any) -> None:
        began = connection.info.pop("bench_began", None)
        if began is None:
            return
        thread = threading.current_thread().name
        self.longest[thread] = max(self.longest.get(thread, 0.0), time.perf_counter() - began)
        self.count[thread] = self.count.get(thread, 0) + 1

    @contextmanager
    def watching(self) -> Iterator[WriteHolds]:
        from sqlalchemy import event

        hooks = [("begin", self._begin), ("commit", self._end), ("rollback", self._end)]
        for name, hook in hooks:
            event.listen(self.engine, name, hook)
        try:
            yield self
        finally:
            for name, hook in hooks:
                event.remove(self.engine, name, hook)


@dataclass
class GcPauses:
    """The garbage collector's pauses in this process (each stops every thread): (start, length)."""

    pauses: list[tuple[float, float]] = field(default_factory=list)
    _began: float = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((self._began, time.perf_counter() - self._began))

    @contextmanager
    def watching(self) -> Iterator[GcPauses]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


@contextmanager
def _in_background(target: Callable[[], None], stop: threading.Event, name: str) -> Iterator[None]:
    """Run ``target`` in a thread for the duration of the block; ``stop`` tells it to end."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def measure(
    service: Any, sqlite_path: str | None, cards: list[str], rate: float, job: Callable[[], Any] | None, idle: float
) -> dict[str, Any]:
    load = TillLoad(service, rate, cards)
    probe = LockProbe(sqlite_path) if sqlite_path else None
    holds = WriteHolds(service.db.write_engine)
    pauses = GcPauses()
    load_average = os.getloadavg()
    with holds.watching(), pauses.watching(), load.running():
        if probe is not None:
            with probe.running():
                took, cpu, result = _run(job, idle)
        else:
            took, cpu, result = _run(job, idle)
    out: dict[str, Any] = {
        "seconds": took,
        "job_cpu_seconds": cpu,
        "result": result,
        "load_average_at_start": [round(v, 2) for v in load_average],
        "till_receipts": len(load.latencies),
        "till_errors": load.errors,
        **latency_summary(load.latencies),
        "job_longest_write_ms": holds.longest.get("MainThread", 0.0) * 1000,
        "job_write_transactions": holds.count.get("MainThread", 0),
        "till_longest_write_ms": holds.longest.get("tills", 0.0) * 1000,
        "longest_gc_pause_ms": max((length for _, length in pauses.pauses), default=0.0) * 1000,
    }
    if probe is not None:
        began, wait = max(probe.waits, key=lambda w: w[1], default=(0.0, 0.0))
        out["longest_lock_wait_ms"] = wait * 1000
        out["lock_waits_over_50ms"] = sum(1 for _, w in probe.waits if w > 0.05)
        # the garbage collector's pause that overlapped the longest wait, if any
        out["gc_pause_during_longest_wait_ms"] = (
            max(
                (length for start, length in pauses.pauses if start < began + wait and start + length > began),
                default=0.0,
            )
            * 1000
        )
    return out


def _run(job: Callable[[], Any] | None, idle: float) -> tuple[float, float, Any]:
    """Wall time, CPU time of the job's thread (Python and, on SQLite, the database engine: the
    steadier number on a shared machine) and the job's result."""
    began, cpu = time.perf_counter(), time.thread_time()
    if job is None:
        time.sleep(idle)
        return idle, 0.0, None
    result = job()
    return time.perf_counter() - began, time.thread_time() - cpu, result


def bench_database(
    url: str, sqlite_path: str | None, customers: int, rate: float, workdir: Path, *, first_day: bool = True
) -> dict[str, Any]:
    from contracts.operations import RegisterCustomerRequest
    from gateway.config import Settings
    from gateway.ledger import program_jobs
    from gateway.notify.triggers import NotificationTriggers
    from gateway.store import migrate
    from gateway.wiring import build_service

    migrate.upgrade(url)
    config = _config(workdir)
    service = build_service(Settings(database_url=url), config)
    try:
        began = time.perf_counter()
        populate(service, customers, service.clock())
        populated = time.perf_counter() - began
        cards = []
        for n in range(50):
            number = f"27{n:011d}"
            service.register_customer("site", f"till-card-{n}", RegisterCustomerRequest(card_number=number))
            cards.append(number)
        triggers = NotificationTriggers(config.notifications)
        partial = "sqlite" if sqlite_path else "postgresql"
        out = {
            "customers": customers,
            "populate_seconds": populated,
            "baseline": measure(service, sqlite_path, cards, rate, None, idle=10),
            # the base's first run: the birthdays of the grace window (~8 days: 2 % of the base)
            "program_daily": measure(service, sqlite_path, cards, rate, lambda: program_jobs.run_daily(service), 0),
        }
        save(f"jobs_partial_{partial}", out)  # a long run keeps what it measured so far
        from sqlalchemy import text

        with service.db.write() as session:  # the same day again from the start: nothing left to change
            session.execute(text("DELETE FROM program_job_runs"))
        out["program_quiet_day"] = measure(
            service, sqlite_path, cards, rate, lambda: program_jobs.run_daily(service), 0
        )
        out["notifications"] = measure(service, sqlite_path, cards, rate, lambda: triggers.run_daily_jobs(service), 0)
        save(f"jobs_partial_{partial}", out)
        if first_day:  # the program's first day: nobody placed yet, the job places everyone
            with service.db.write() as session:
                session.execute(text("UPDATE customers SET segment = NULL, segment_since = NULL, tier = NULL"))
                session.execute(text("DELETE FROM program_job_runs"))
            out["program_first_day"] = measure(
                service, sqlite_path, cards, rate, lambda: program_jobs.run_daily(service), 0
            )
        return out
    finally:
        service.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--till-rate", type=float, default=50.0, help="till receipts per second during the jobs")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", help="admin URL of the PostgreSQL server (default: GATEWAY_TEST_POSTGRES_URL)")
    parser.add_argument(
        "--first-day",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the program's first day (every customer placed by the daily job)",
    )
    args = parser.parse_args()

    results: dict[str, Any] = {"till_rate": args.till_rate}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        workdir = Path(tmp)
        if args.database in {"sqlite", "both"}:
            path = workdir / "jobs.db"
            results["sqlite"] = bench_database(
                f"sqlite:///{path}", str(path), args.customers, args.till_rate, workdir, first_day=args.first_day
            )
        admin = postgres_admin_url(args.postgres)
        if args.database in {"postgresql", "both"}:
            if admin is None:
                print("PostgreSQL skipped: set GATEWAY_TEST_POSTGRES_URL or pass --postgres")
            else:
                with temporary_postgres(admin, "bench_jobs") as url:
                    results["postgresql"] = bench_database(
                        url, None, args.customers, args.till_rate, workdir, first_day=args.first_day
                    )

    rows = []
    for database in ("sqlite", "postgresql"):
        if database not in results:
            continue
        cell = results[database]
        base_p99 = cell["baseline"]["p99_ms"]
        for name in ("baseline", "program_daily", "program_quiet_day", "notifications", "program_first_day"):
            if name not in cell:
                continue
            run = cell[name]
            rows.append(
                [
                    database,
                    name,
                    run["seconds"],
                    run["job_cpu_seconds"],
                    run["till_receipts"],
                    run["till_errors"],
                    run["p50_ms"],
                    run["p99_ms"],
                    run["p99_ms"] / base_p99 if base_p99 else float("nan"),
                    run["max_ms"],
                    run["job_longest_write_ms"],
                    run["till_longest_write_ms"],
                    run.get("longest_lock_wait_ms", float("nan")),
                    run["longest_gc_pause_ms"],
                ]
            )
    table(
        f"Background jobs over {args.customers:,} customers, tills at {args.till_rate:g} receipts/s",
        [
            "database",
            "job",
            "seconds",
            "job CPU s",
            "receipts",
            "errors",
            "till p50 ms",
            "till p99 ms",
            "p99 / baseline",
            "till max ms",
            "job's longest write ms",
            "tills' longest write ms",
            "probe's longest lock wait ms",
            "longest gc pause ms",
        ],
        rows,
        caption="targets: daily job over 500,000 customers < 120 s; job's longest write < 50 ms; till p99 <= 100 ms",
    )
    print(f"results: {save('jobs', results)}")


if __name__ == "__main__":
    main()

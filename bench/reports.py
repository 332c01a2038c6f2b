"""Benchmark: every report over a large base, and the tills' latency while reports run.

    python -m bench.reports                                   # 20,000 customers, 200,000 receipts, both databases
    python -m bench.reports --customers 500000 --receipts 5000000 --database postgresql

A base of ``--customers`` customers (account, card, a welcome lot each; half of them partners,
stores over four zones) and ``--receipts`` receipts over the last year (1–3 lines of a catalogue
of 200 goods, an accrual entry and its lot each, a point spend on one receipt in eight, a rule's
explanation as the gateway stores it) is written by the database itself (``INSERT … SELECT``).
Then each report of ``gateway.reports`` runs for the last 30 days (and the summary, daily,
stores and top customers for the whole year) from the ledger tables alone ("before", once);
the rollups are filled (the job's one-off backfill, timed); the reports run again through the
rollups, once cold and twice warm (median). Last, tills commit receipts through
``LoyaltyService`` at ``--till-rate`` per second alone, while every report runs, and while the
rollup job folds right behind them (its write transactions timed); the tills' p99 is compared.
``--sqlite-file`` keeps the SQLite base for another run (``--populate-only`` writes it and stops).

Target (issue 21): each report answers in seconds on 500,000 customers and 5 million receipts,
on SQLite and PostgreSQL, while the tills keep their p99.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import latency_summary, postgres_admin_url, save, table, temporary_postgres
from bench.jobs import TillLoad

TRACE = False
STORES = ("S01", "S02", "S04", "S06", "S07", "S09", "S11", "S13")


def _program() -> Any:
    from gateway.core.program import Program

    return Program.model_validate(
        {
            "name": "bench-reports",
            "currency": "RUB",
            "point_value": "1.00",
            "accrual": {"percent": 5, "on_amount_paid_by_points": False, "pending_days": 0},
            "redemption": {"max_share_percent": 30, "min_points": 1},
            "expiry": {"days": 365},
            "catalogue": {
                "zones": [
                    {"code": "msk", "name": "Москва", "stores": ["S01", "S02"]},
                    {"code": "mo", "name": "Московская область", "stores": ["S04"]},
                    {"code": "spb", "name": "Санкт-Петербург", "stores": ["S06", "S07"]},
                    {"code": "east", "name": "Восток", "stores": ["S09", "S11", "S13"]},
                ]
            },
            "segments": [
                {"code": "retail", "name": "Розница", "default": True},
                {"code": "partner", "name": "Партнёры"},
            ],
        }
    )


def populate(db: Any, customers: int, receipts: int, now: datetime) -> None:
    """Write the base with ``INSERT … SELECT`` over a generated series, in the database itself (a
    few minutes for 5 million receipts, where building rows in Python took hours on a busy
    machine). "Random" numbers are multiplicative hashes of the row number, so both databases
    get the same base."""
    from sqlalchemy import text

    sqlite = db.is_sqlite
    year_ago = int((now - timedelta(days=365)).timestamp())
    year = 365 * 86400

    def pad(prefix: str, expr: str, width: int) -> str:
        if sqlite:
            return f"printf('{prefix}%0{width}d', {expr})"
        return f"('{prefix}' || lpad(({expr})::text, {width}, '0'))"

    def unit(expr: str, salt: int) -> str:  # a well-spread number in [0, 1) from an integer
        return f"((({expr}) * {salt}) % 4294967296) / 4294967296.0"

    def whole(expr: str) -> str:
        return f"CAST({expr} AS INTEGER)" if sqlite else f"floor({expr})::bigint"

    def at(seconds: str) -> str:
        return f"(datetime({seconds}, 'unixepoch') || '.000000')" if sqlite else f"to_timestamp({seconds})"

    def later(column: str) -> str:
        return f"(datetime({column}, '+365 days') || '.000000')" if sqlite else f"({column} + interval '365 days')"

    def series(lo: int, hi: int) -> str:
        if sqlite:
            return (
                f"(WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s WHERE n + 1 < {hi}) "
                "SELECT n FROM s) AS seq"
            )
        return f"generate_series({lo}::bigint, {hi - 1}::bigint) AS seq(n)"

    def number(column: str) -> str:
        return f"CAST(substr({column}, 2) AS INTEGER)" if sqlite else f"substr({column}, 2)::bigint"

    def amount(i: int) -> str:
        return f"(10000 + ((n * 7919 + {i} * 104729) % 4900) * 100)"

    least = "min" if sqlite else "least"
    stores = " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STORES))
    chunk = 250_000

    def run(*statements: str) -> None:
        with db.write() as session:
            if sqlite:  # the indexes of a base this size do not fit SQLite's default 2 MB page cache
                session.execute(text("PRAGMA cache_size = -2000000"))
            for statement in statements:
                began = time.perf_counter()
                session.execute(text(statement))
                if TRACE:
                    print(f"    {time.perf_counter() - began:6.2f} s  {statement[:60]}", flush=True)

    for lo in range(0, customers, chunk):
        hi = min(lo + chunk, customers)
        joined = at(f"{year_ago} + {whole(unit('n', 2654435761) + f' * {year}')}")
        run(
            f"INSERT INTO customers (id, created_by, created_at, segment, tier) SELECT {pad('c', 'n', 9)}, 'bench', "
            f"{joined}, CASE n % 2 WHEN 1 THEN 'partner' END, CASE n % 3 WHEN 0 THEN 'base' WHEN 1 THEN 'silver' "
            f"ELSE 'gold' END FROM {series(lo, hi)}",
            f"INSERT INTO accounts (id, customer_id, created_at) SELECT 'a' || substr(id, 2), id, created_at "
            f"FROM customers WHERE id >= {pad('c', str(lo), 9)} AND id < {pad('c', str(hi), 9)}",
            f"INSERT INTO cards (number, ref, customer_id, account_id, status, created_at) SELECT "
            f"{pad('29', number('id'), 11)}, 'r' || substr(id, 2), customer_id, id, 'active', created_at "
            f"FROM accounts WHERE id >= {pad('a', str(lo), 9)} AND id < {pad('a', str(hi), 9)}",
            f"INSERT INTO lots (id, account_id, source, points, remaining, available_at, expires_at, created_at) "
            f"SELECT {number('id')} + 1, id, 'welcome', 100, 100, created_at, {later('created_at')}, created_at "
            f"FROM accounts WHERE id >= {pad('a', str(lo), 9)} AND id < {pad('a', str(hi), 9)}",
            f"INSERT INTO ledger_entries (account_id, kind, points, lot_id, client_id, created_at) "
            f"SELECT account_id, 'welcome', 100, id, 'bench', created_at FROM lots WHERE id > {lo} AND id <= {hi}",
        )
        print(f"  customers {hi:,}", flush=True)

    total = (
        f"({amount(0)} + CASE WHEN n % 3 >= 1 THEN {amount(1)} ELSE 0 END "
        f"+ CASE WHEN n % 3 = 2 THEN {amount(2)} ELSE 0 END)"
    )
    for lo in range(0, receipts, chunk):
        hi = min(lo + chunk, receipts)
        who = whole(f"{customers} * {unit('n', 2246822519)} * {unit('n', 2246822519)}")
        when = at(f"{year_ago} + {whole(unit('n', 3266489917) + f' * {year}')}")
        spent = f"CASE WHEN n % 8 = 0 THEN {least}({total} / 100 * 30 / 100, 50) ELSE 0 END"
        pick = unit("n * 3 + k.i", 668265263)
        item = f"'SKU-' || {pad('', whole(f'200 * {pick} * {pick}'), 3)}"
        run(
            "INSERT INTO receipts (id, client_id, receipt_id, account_id, card_number, store, total_kopecks, "
            "points_spent, points_accrued, points_released, point_value_kopecks, content_hash, explanation_json, "
            f"created_at) SELECT id, 'tills', id, {pad('a', 'who', 9)}, {pad('29', 'who', 11)}, store, total, spent, "
            "(total - spent * 100) * 5 / 100 / 100, 0, 100, id, "
            '\'[{"rule":"accrual.percent","description":"5% of the amount","line_id":"1","points":\' || '
            '((total - spent * 100) * 5 / 100 / 100) || \',"discount":"0.00"}]\', at FROM '
            f"(SELECT {pad('t', 'n', 10)} AS id, {who} AS who, CASE n % {len(STORES)} {stores} END AS store, "
            f"{total} AS total, {spent} AS spent, {when} AS at FROM {series(lo, hi)}) AS g",
            "INSERT INTO receipt_lines (receipt_txn_id, line_id, position, item, quantity, amount_kopecks, "
            "discount_kopecks, points_spent, points_accrued, refunded_quantity, refunded_kopecks, points_returned, "
            f"points_reversed) SELECT {pad('t', 'n', 10)}, CAST(k.i + 1 AS TEXT), k.i, {item}, '1', "
            f"CASE k.i WHEN 0 THEN {amount(0)} WHEN 1 THEN {amount(1)} ELSE {amount(2)} END, 0, 0, 0, '0', 0, 0, 0 "
            f"FROM {series(lo, hi)} JOIN (SELECT 0 AS i UNION ALL SELECT 1 UNION ALL SELECT 2) AS k ON k.i <= n % 3",
            "INSERT INTO lots (id, account_id, source, points, remaining, available_at, expires_at, transaction_id, "
            f"created_at) SELECT {customers} + {number('id')} + 1, account_id, 'accrual', points_accrued, "
            f"points_accrued, created_at, {later('created_at')}, id, created_at FROM receipts "
            f"WHERE id >= {pad('t', str(lo), 10)} AND id < {pad('t', str(hi), 10)}",
            "INSERT INTO ledger_entries (account_id, kind, points, lot_id, transaction_id, client_id, created_at) "
            f"SELECT account_id, 'accrual', points_accrued, {customers} + {number('id')} + 1, id, 'tills', "
            f"created_at FROM receipts WHERE id >= {pad('t', str(lo), 10)} AND id < {pad('t', str(hi), 10)}",
            "INSERT INTO ledger_entries (account_id, kind, points, transaction_id, client_id, created_at) "
            "SELECT account_id, 'spend', -points_spent, id, 'tills', created_at FROM receipts "
            f"WHERE id >= {pad('t', str(lo), 10)} AND id < {pad('t', str(hi), 10)} AND points_spent > 0",
        )
        print(f"  receipts {hi:,}", flush=True)


ROLLED_UP = ("summary", "daily", "stores")


def time_reports(
    db: Any, program: Any, now: datetime, *, rollups: bool, runs: int, only: tuple[str, ...] | None = None
) -> dict[str, dict[str, float]]:
    """Each report of the last 30 days (and the summary, daily and stores of the year): the first
    run ("cold") and the median of the others ("warm")."""
    from gateway.reports import REPORTS, make_filters, run_report

    today = now.astimezone(program.zone).date()
    month = make_filters(program, today - timedelta(days=29), today, now=now, rollups=rollups)
    year = make_filters(program, today - timedelta(days=364), today, now=now, rollups=rollups)
    cases = [(name, month) for name in REPORTS] + [(f"{name} (year)", year) for name in ROLLED_UP]
    if only is not None:
        cases = [(label, f) for label, f in cases if label in only]
    out: dict[str, dict[str, float]] = {}
    for label, filters in cases:
        name = label.split(" ")[0]
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            report = run_report(db, program, name, filters)
            times.append(time.perf_counter() - began)
        warm = statistics.median(times[1:]) if runs > 1 else float("nan")
        out[label] = {"cold_s": times[0], "warm_s": warm, "rows": len(report.rows)}
        print(f"  {label:24} cold {times[0]:7.2f} s  warm {warm:7.2f} s  rows {len(report.rows)}", flush=True)
    return out


def backfill(db: Any, now: datetime) -> dict[str, float]:
    """Fold the whole base into the rollups (what the job does once after the upgrade), in big
    batches: the steady-state batches are timed beside the tills."""
    from gateway.reports.rollups import fold

    began = time.perf_counter()
    done = fold(db, now, batch=50_000, max_batches=1_000_000)
    seconds = time.perf_counter() - began
    print(f"  backfill of the rollups: {seconds:.0f} s, {done}", flush=True)
    return {"seconds": seconds, **done}


def _populated(db: Any) -> bool:
    from sqlalchemy import text

    with db.read() as session:
        return session.execute(text("SELECT 1 FROM receipts LIMIT 1")).first() is not None


def bench_database(
    url: str,
    customers: int,
    receipts: int,
    rate: float,
    *,
    populate_only: bool = False,
    before_only: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    from contracts.operations import RegisterCustomerRequest
    from gateway.ledger.service import LoyaltyService
    from gateway.reports import REPORTS, make_filters, run_report
    from gateway.store import migrate
    from gateway.store.db import Database

    migrate.upgrade(url)
    program = _program()
    db = Database(url)
    service = LoyaltyService(db, program)
    try:
        now = service.clock()
        began = time.perf_counter()
        reused = _populated(db)
        if not reused:
            populate(db, customers, receipts, now)
        populated = time.perf_counter() - began
        if populate_only:
            print(f"{db.dialect}: {customers:,} customers, {receipts:,} receipts written in {populated:.0f} s")
            return {"customers": customers, "receipts": receipts, "populate_seconds": populated}
        if db.dialect == "postgresql":
            with db.write() as session:
                from sqlalchemy import text

                # the lots were written with their ids: move the sequence past them for the tills
                session.execute(text("SELECT setval(pg_get_serial_sequence('lots', 'id'), (SELECT max(id) FROM lots))"))
                session.execute(text("ANALYZE"))
        print(f"{db.dialect}: {customers:,} customers, {receipts:,} receipts written in {populated:.0f} s")
        if db.is_sqlite:
            with db.write() as session:
                from sqlalchemy import text

                # a base written before the index came with 0011 (the migration's own is skipped)
                session.execute(text("CREATE INDEX IF NOT EXISTS ix_refunds_created_at ON refunds (created_at)"))
        print("before (the ledger tables only):", flush=True)
        before = time_reports(db, program, now, rollups=False, runs=1, only=before_only)
        filled = backfill(db, now)
        print("after (rollups + tail):", flush=True)
        # the other reports read the ledger tables either way: their "before" is their time
        both = (*ROLLED_UP, *(f"{name} (year)" for name in ROLLED_UP))
        after = time_reports(db, program, now, rollups=True, runs=3, only=both)
        cards = []
        for n in range(20):
            number = f"27{n:011d}"
            service.register_customer("tills", f"till-card-{n}", RegisterCustomerRequest(card_number=number))
            cards.append(number)
        fold_ms: list[float] = []

        def till_p99(work: str) -> dict[str, float]:
            from gateway.reports.rollups import LAG, fold_once

            load = TillLoad(service, rate, cards)
            with load.running():
                if work == "reports":
                    today = now.astimezone(program.zone).date()
                    month = make_filters(program, today - timedelta(days=29), today, now=now)
                    for name in REPORTS if before_only is None else ROLLED_UP:
                        run_report(db, program, name, month)
                elif work == "fold":
                    # the job right behind the tills (its lag skipped): one batch a second
                    deadline = time.perf_counter() + 10
                    while time.perf_counter() < deadline:
                        began = time.perf_counter()
                        fold_once(db, service.clock() + LAG)
                        fold_ms.append((time.perf_counter() - began) * 1000)
                        time.sleep(1)
                else:
                    time.sleep(10)
            return {**latency_summary(load.latencies), "receipts": len(load.latencies), "errors": load.errors}

        baseline = till_p99("none")
        during = till_p99("reports")
        folding = till_p99("fold")
        return {
            "customers": customers,
            "receipts": receipts,
            "populate_seconds": populated,
            "reports_before": before,
            "backfill": filled,
            "reports": after,
            "tills_baseline": baseline,
            "tills_during_reports": during,
            "tills_during_fold": folding,
            "fold_batch_ms": {"median": statistics.median(fold_ms), "max": max(fold_ms), "batches": len(fold_ms)},
        }
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--receipts", type=int, default=200_000)
    parser.add_argument("--till-rate", type=float, default=50.0, help="till receipts per second during the reports")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", help="admin URL of the PostgreSQL server (default: GATEWAY_TEST_POSTGRES_URL)")
    parser.add_argument(
        "--sqlite-file", type=Path, help="keep the SQLite base in this file (a base already there is reused as is)"
    )
    parser.add_argument("--populate-only", action="store_true", help="write the base and stop (with --sqlite-file)")
    parser.add_argument(
        "--before",
        help="time only these reports (comma-separated, e.g. 'summary,summary (year)') from the ledger tables, "
        "and only the rolled-up ones "
        "beside the tills: at 5 million receipts the others take minutes each",
    )
    args = parser.parse_args()

    before_only = tuple(args.before.split(",")) if args.before else None
    results: dict[str, Any] = {"till_rate": args.till_rate, "started": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        if args.database in {"sqlite", "both"}:
            url = f"sqlite:///{args.sqlite_file or Path(tmp) / 'reports.db'}"
            results["sqlite"] = bench_database(
                url,
                args.customers,
                args.receipts,
                args.till_rate,
                populate_only=args.populate_only,
                before_only=before_only,
            )
            if args.populate_only:
                return
        admin = postgres_admin_url(args.postgres)
        if args.database in {"postgresql", "both"}:
            if admin is None:
                print("PostgreSQL skipped: set GATEWAY_TEST_POSTGRES_URL or pass --postgres")
            else:
                with temporary_postgres(admin, "bench_reports") as url:
                    results["postgresql"] = bench_database(
                        url, args.customers, args.receipts, args.till_rate, before_only=before_only
                    )

    rows: list[tuple[Any, ...]] = []
    for database in ("sqlite", "postgresql"):
        if database not in results:
            continue
        found = results[database]
        for label, cell in {**found["reports_before"], **found["reports"]}.items():
            raw = found["reports_before"].get(label, {}).get("cold_s", float("nan"))
            rows.append(
                (database, label, f"{raw:.2f}", f"{cell['cold_s']:.2f}", f"{cell['warm_s']:.2f}", int(cell["rows"]))
            )
        for work in ("reports", "fold"):
            base, during = found["tills_baseline"], found[f"tills_during_{work}"]
            rows.append(
                (
                    database,
                    f"till p99 without / during {work}, ms",
                    f"{base['p99_ms']:.1f}",
                    f"{during['p99_ms']:.1f}",
                    "",
                    "",
                )
            )
    table(
        f"Reports over {args.customers:,} customers and {args.receipts:,} receipts",
        ["database", "report (last 30 days)", "before, s", "cold, s", "warm, s", "rows"],
        rows,
    )
    print(f"results: {save('reports', results)}")


if __name__ == "__main__":
    main()

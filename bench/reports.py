"""Benchmark: every report over a large base, and the tills' latency while reports run.

    python -m bench.reports                                   # 20,000 customers, 200,000 receipts, both databases
    python -m bench.reports --customers 500000 --receipts 5000000 --database postgresql

A base of ``--customers`` customers (account, card, a welcome lot each; half of them partners,
stores over four zones) and ``--receipts`` receipts over the last year (1–3 lines of a catalogue
of 200 goods, an accrual entry and its lot each, a point spend on one receipt in eight, a rule's
explanation as the gateway stores it) is written with bulk inserts. Then each report of
``gateway.reports`` runs for the last 30 days (and the summary for the whole year), once cold
and twice warm; the median is reported. Last, every report runs back to back while tills commit
receipts through ``LoyaltyService`` at ``--till-rate`` per second, and the till p99 is compared
with the same load without reports.

Target (issue 21): each report answers in seconds on 500,000 customers and 5 million receipts,
on SQLite and PostgreSQL, while the tills keep their p99.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import latency_summary, postgres_admin_url, save, table, temporary_postgres
from bench.jobs import TillLoad

CHUNK = 20_000
STORES = ("S01", "S02", "S04", "S06", "S07", "S09", "S11", "S13")
EXPLANATION = (
    '[{"rule":"accrual.percent","description":"5%% of the amount","line_id":"1","points":%d,"discount":"0.00"}]'
)


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
    """Write the base in transactions of ``CHUNK`` rows of a kind."""
    from gateway.store.models import Account, Card, Customer, LedgerEntry, Lot, Receipt, ReceiptLine

    rng = random.Random(21)
    year_ago = now - timedelta(days=365)

    def write(batches: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        with db.write() as session:
            for model, rows in batches:
                if rows:
                    session.execute(model.__table__.insert(), rows)

    lot_id = 0
    for start in range(0, customers, CHUNK):
        c, a, k, lots, entries = [], [], [], [], []
        for n in range(start, min(start + CHUNK, customers)):
            joined = year_ago + timedelta(seconds=rng.randrange(365 * 86400))
            lot_id += 1
            c.append(
                {
                    "id": f"c{n:09d}",
                    "created_by": "bench",
                    "created_at": joined,
                    "segment": "partner" if n % 2 else None,
                    "tier": ("base", "silver", "gold")[n % 3],
                }
            )
            a.append({"id": f"a{n:09d}", "customer_id": f"c{n:09d}", "created_at": joined})
            k.append(
                {
                    "number": f"29{n:011d}",
                    "ref": f"r{n:09d}",
                    "customer_id": f"c{n:09d}",
                    "account_id": f"a{n:09d}",
                    "status": "active",
                    "created_at": joined,
                }
            )
            lots.append(
                {
                    "id": lot_id,
                    "account_id": f"a{n:09d}",
                    "source": "welcome",
                    "points": 100,
                    "remaining": 100,
                    "available_at": joined,
                    "expires_at": joined + timedelta(days=365),
                    "created_at": joined,
                }
            )
            entries.append(
                {
                    "account_id": f"a{n:09d}",
                    "kind": "welcome",
                    "points": 100,
                    "lot_id": lot_id,
                    "client_id": "bench",
                    "created_at": joined,
                }
            )
        write([(Customer, c), (Account, a), (Card, k), (Lot, lots), (LedgerEntry, entries)])

    for start in range(0, receipts, CHUNK):
        r, lines, lots, entries = [], [], [], []
        for n in range(start, min(start + CHUNK, receipts)):
            # a few loyal customers buy much more often than the rest (a long tail, as in real bases)
            who = int(customers * rng.random() ** 2)
            at = year_ago + timedelta(seconds=rng.randrange(365 * 86400))
            txn = f"t{n:010d}"
            count = rng.randint(1, 3)
            amounts = [rng.randrange(10_000, 500_000, 100) for _ in range(count)]
            total = sum(amounts)
            spent = min(total // 100 * 30 // 100, 50) if n % 8 == 0 else 0
            accrued = (total - spent * 100) * 5 // 100 // 100
            lot_id += 1
            r.append(
                {
                    "id": txn,
                    "client_id": "tills",
                    "receipt_id": txn,
                    "account_id": f"a{who:09d}",
                    "card_number": f"29{who:011d}",
                    "store": STORES[n % len(STORES)],
                    "total_kopecks": total,
                    "points_spent": spent,
                    "points_accrued": accrued,
                    "point_value_kopecks": 100,
                    "content_hash": txn,
                    "explanation_json": EXPLANATION % accrued,
                    "created_at": at,
                }
            )
            for i, amount in enumerate(amounts):
                lines.append(
                    {
                        "receipt_txn_id": txn,
                        "line_id": str(i + 1),
                        "position": i,
                        "item": f"SKU-{int(200 * rng.random() ** 1.5):03d}",
                        "quantity": "1",
                        "amount_kopecks": amount,
                        "discount_kopecks": 0,
                        "points_spent": 0,
                        "points_accrued": 0,
                    }
                )
            lots.append(
                {
                    "id": lot_id,
                    "account_id": f"a{who:09d}",
                    "source": "accrual",
                    "points": accrued,
                    "remaining": accrued,
                    "available_at": at,
                    "expires_at": at + timedelta(days=365),
                    "transaction_id": txn,
                    "created_at": at,
                }
            )
            entries.append(
                {
                    "account_id": f"a{who:09d}",
                    "kind": "accrual",
                    "points": accrued,
                    "lot_id": lot_id,
                    "transaction_id": txn,
                    "client_id": "tills",
                    "created_at": at,
                }
            )
            if spent:
                entries.append(
                    {
                        "account_id": f"a{who:09d}",
                        "kind": "spend",
                        "points": -spent,
                        "lot_id": None,
                        "transaction_id": txn,
                        "client_id": "tills",
                        "created_at": at,
                    }
                )
        write([(Receipt, r), (ReceiptLine, lines), (Lot, lots), (LedgerEntry, entries)])


def time_reports(db: Any, program: Any, now: datetime) -> dict[str, dict[str, float]]:
    from gateway.reports import REPORTS, make_filters, run_report

    today = now.astimezone(program.zone).date()
    month = make_filters(program, today - timedelta(days=29), today, now=now)
    year = make_filters(program, today - timedelta(days=364), today, now=now)
    cases = [(name, month) for name in REPORTS] + [("summary (year)", year), ("top_customers (year)", year)]
    out: dict[str, dict[str, float]] = {}
    for label, filters in cases:
        name = label.split(" ")[0]
        runs = []
        for _ in range(3):
            began = time.perf_counter()
            report = run_report(db, program, name, filters)
            runs.append(time.perf_counter() - began)
        out[label] = {"cold_s": runs[0], "warm_s": statistics.median(runs[1:]), "rows": len(report.rows)}
        print(f"  {label:24} cold {runs[0]:7.2f} s  warm {out[label]['warm_s']:7.2f} s  rows {len(report.rows)}")
    return out


def bench_database(url: str, customers: int, receipts: int, rate: float) -> dict[str, Any]:
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
        populate(db, customers, receipts, now)
        populated = time.perf_counter() - began
        if db.dialect == "postgresql":
            with db.write() as session:
                from sqlalchemy import text

                # the lots were written with their ids: move the sequence past them for the tills
                session.execute(text("SELECT setval(pg_get_serial_sequence('lots', 'id'), (SELECT max(id) FROM lots))"))
                session.execute(text("ANALYZE"))
        print(f"{db.dialect}: {customers:,} customers, {receipts:,} receipts written in {populated:.0f} s")
        timings = time_reports(db, program, now)
        cards = []
        for n in range(20):
            number = f"27{n:011d}"
            service.register_customer("tills", f"till-card-{n}", RegisterCustomerRequest(card_number=number))
            cards.append(number)

        def till_p99(with_reports: bool) -> dict[str, float]:
            load = TillLoad(service, rate, cards)
            with load.running():
                if with_reports:
                    today = now.astimezone(program.zone).date()
                    month = make_filters(program, today - timedelta(days=29), today, now=now)
                    for name in REPORTS:
                        run_report(db, program, name, month)
                else:
                    time.sleep(10)
            return latency_summary(load.latencies)

        baseline = till_p99(False)
        during = till_p99(True)
        return {
            "customers": customers,
            "receipts": receipts,
            "populate_seconds": populated,
            "reports": timings,
            "tills_baseline": baseline,
            "tills_during_reports": during,
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
    args = parser.parse_args()

    results: dict[str, Any] = {"till_rate": args.till_rate, "started": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        if args.database in {"sqlite", "both"}:
            url = f"sqlite:///{Path(tmp) / 'reports.db'}"
            results["sqlite"] = bench_database(url, args.customers, args.receipts, args.till_rate)
        admin = postgres_admin_url(args.postgres)
        if args.database in {"postgresql", "both"}:
            if admin is None:
                print("PostgreSQL skipped: set GATEWAY_TEST_POSTGRES_URL or pass --postgres")
            else:
                with temporary_postgres(admin, "bench_reports") as url:
                    results["postgresql"] = bench_database(url, args.customers, args.receipts, args.till_rate)

    rows = []
    for database in ("sqlite", "postgresql"):
        if database not in results:
            continue
        for label, cell in results[database]["reports"].items():
            rows.append((database, label, f"{cell['cold_s']:.2f}", f"{cell['warm_s']:.2f}", int(cell["rows"])))
        base, during = results[database]["tills_baseline"], results[database]["tills_during_reports"]
        rows.append(
            (database, "till p99 without / with reports, ms", f"{base['p99_ms']:.1f}", f"{during['p99_ms']:.1f}", "")
        )
    table(
        f"Reports over {args.customers:,} customers and {args.receipts:,} receipts",
        ["database", "report (last 30 days)", "cold, s", "warm, s", "rows"],
        rows,
    )
    print(f"results: {save('reports', results)}")


if __name__ == "__main__":
    main()

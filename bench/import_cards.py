"""Benchmark (4): ``gateway import cards`` of 500,000 cards with balances — wall time, rate and
the peak memory (maximum RSS) of the importing process, against the targets (≤ 60 s, < 300 MB).

    python -m bench.import_cards                     # SQLite, and PostgreSQL if GATEWAY_TEST_POSTGRES_URL is set
    python -m bench.import_cards --cards 100000 --postgres postgresql://postgres@127.0.0.1/postgres

The file is generated like a retailer's export: every card has a phone, 70 % of the cards are
active and carry points, a third of those with an expiry date, and most have a name and a birth
date. The import runs as its own process exactly as an operator runs it (migrations, progress
bar, reconciliation); its peak RSS comes from ``wait4`` on that process alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine, postgres_admin_url, save, table, temporary_postgres

TARGET_SECONDS = 60.0
TARGET_RSS_MB = 300.0


def make_csv(path: Path, cards: int, seed: int = 7) -> int:
    """Write ``cards`` rows; returns the points they carry."""
    rng = random.Random(seed)
    total = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["card_number", "phone", "email", "name", "birth_date", "balance", "expires_at"])
        for i in range(cards):
            active = rng.random() < 0.7
            balance = rng.randint(1, 5000) if active else 0
            total += balance
            writer.writerow(
                [
                    f"{2_500_000_000_000 + i}",
                    f"+7900{i:07d}",
                    f"client{i}@example.ru" if i % 4 == 0 else "",
                    f"Клиент {i}" if i % 10 else "",
                    f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}" if i % 5 else "",
                    balance,
                    "2027-12-31" if balance and i % 3 == 0 else "",
                ]
            )
    return total


def run_import(csv_path: Path, database_url: str, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GATEWAY_DATABASE_URL": database_url, "COLUMNS": "200"}
    migrate = [sys.executable, "-m", "gateway", "db", "upgrade"]
    subprocess.run(migrate, cwd=workdir, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "import", "cards", str(csv_path)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(output[-3000:])
    return {
        "seconds": seconds,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "peak_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "reconciled": "reconciled: points in = points out" in output,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=500_000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: GATEWAY_TEST_POSTGRES_URL)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    results: dict[str, Any] = {"benchmark": "import_cards", "machine": machine(), "cards": args.cards}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv_path = work / "cards.csv"
        results["points"] = make_csv(csv_path, args.cards)
        results["file_mb"] = csv_path.stat().st_size / 2**20
        if args.database in {"sqlite", "both"}:
            results["sqlite"] = run_import(csv_path, f"sqlite:///{work / 'import.db'}", work)
        admin = postgres_admin_url(args.postgres)
        if args.database == "sqlite":
            pass
        elif admin is None:
            print("PostgreSQL skipped: pass --postgres URL or set GATEWAY_TEST_POSTGRES_URL")
        else:
            with temporary_postgres(admin, "bench_import") as url:
                results["postgresql"] = run_import(csv_path, url, work)
    rows = []
    for backend in ("sqlite", "postgresql"):
        if backend in results:
            r = results[backend]
            r["cards_per_s"] = args.cards / r["seconds"]
            fast_enough = r["seconds"] <= TARGET_SECONDS * args.cards / 500_000
            r["targets_met"] = fast_enough and r["peak_rss_mb"] < TARGET_RSS_MB
            rows.append(
                [
                    backend,
                    r["seconds"],
                    r["cards_per_s"],
                    r["cpu_seconds"],
                    r["peak_rss_mb"],
                    r["reconciled"],
                    "yes" if r["targets_met"] else "NO",
                ]
            )
    table(
        f"gateway import cards: {args.cards:,} cards, {results['points']:,} points ({results['file_mb']:.0f} MB CSV)",
        ["database", "seconds", "cards/s", "CPU s", "peak RSS MB", "reconciled", "≤ 60 s and < 300 MB"],
        rows,
    )
    print(f"results: {save('import_cards', results)}")


if __name__ == "__main__":
    main()

"""Benchmark (4): import of N cards with balances (default 500,000) — time, rate and peak memory
of the ``gateway import cards`` process, on SQLite (and PostgreSQL with --postgres URL).

    python -m bench.import_cards [--cards 500000] [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import save, table


def make_csv(path: Path, cards: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    total = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["card_number", "phone", "email", "name", "birth_date", "balance", "expires_at"])
        for i in range(cards):
            balance = rng.choice([0, 0, 0, rng.randint(1, 5000)])  # ~70 % of cards active, a quarter with points
            total += balance
            writer.writerow(
                [
                    f"{3_000_000_000_000 + i}",
                    f"+7900{i:07d}",
                    "",
                    f"Клиент {i}",
                    f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
                    balance,
                    "2027-12-31" if balance and i % 3 == 0 else "",
                ]
            )
    return total


def run_import(csv_path: Path, database_url: str, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, "COLUMNS": "200"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "import", "cards", str(csv_path)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return {
        "seconds": seconds,
        "peak_rss_mb": max(peak_kb, before) / 1024,
        "reconciled": "reconciled: points in = points out" in done.stdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=500_000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to also measure on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv_path = work / "cards.csv"
        points = make_csv(csv_path, args.cards)
        results: dict[str, Any] = {"cards": args.cards, "points": points}
        results["sqlite"] = run_import(csv_path, f"sqlite:///{work / 'import.db'}", work)
        if args.postgres:
            import psycopg

            name = f"bench_import_{uuid.uuid4().hex[:8]}"
            admin = args.postgres.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                target = admin.rsplit("/", 1)[0] + f"/{name}"
                results["postgresql"] = run_import(csv_path, target, work)
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    rows = []
    for backend in ("sqlite", "postgresql"):
        if backend in results:
            r = results[backend]
            rows.append([backend, r["seconds"], args.cards / r["seconds"], r["peak_rss_mb"], r["reconciled"]])
    table(f"import of {args.cards:,} cards", ["database", "seconds", "cards/s", "peak RSS MB", "reconciled"], rows)
    print(f"results: {save('import_cards', results)}")


if __name__ == "__main__":
    main()

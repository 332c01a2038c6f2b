"""Benchmark (3): ledger operations per second without HTTP — hold + commit of one receipt, and a
calculate — on SQLite and on PostgreSQL, from one thread and from four.

    python -m bench.ledger_ops [--operations 400] [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import save, table
from contracts.operations import CalculateRequest, CartLine, CommitRequest, HoldRequest
from gateway.config import DEMO_CONFIG, Settings, load_config
from gateway.seed import seed_demo
from gateway.store import migrate
from gateway.wiring import build_service

LINES = [CartLine(line_id="1", item="X", quantity=Decimal(1), price=Decimal("100.00"))]


def measure(url: str, operations: int, threads: int) -> dict[str, float]:
    migrate.upgrade(url)
    config = load_config(DEMO_CONFIG)
    service = build_service(Settings(database_url=url), config)
    seed_demo(service, config)
    cards = ["2700000000014", "2700000000021"]
    run = uuid.uuid4().hex[:6]

    def redeem(worker: int, count: int) -> None:
        for i in range(count):
            card = cards[(worker + i) % 2]
            hold = service.hold("bench", f"{run}-h-{worker}-{i}", HoldRequest(card_number=card, points=1))
            service.commit(
                "bench",
                f"{run}-c-{worker}-{i}",
                CommitRequest(receipt_id=f"{run}-{worker}-{i}", card_number=card, hold_id=hold.hold_id, lines=LINES),
            )

    def calculate(worker: int, count: int) -> None:
        for i in range(count):
            service.calculate("bench", CalculateRequest(card_number=cards[(worker + i) % 2], lines=LINES))

    results: dict[str, float] = {}
    for name, job in (("hold+commit", redeem), ("calculate", calculate)):
        per_thread = operations // threads
        workers = [threading.Thread(target=job, args=(w, per_thread)) for w in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        results[name] = per_thread * threads / (time.perf_counter() - start)
    assert service.check().ok
    service.db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--operations", type=int, default=400)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to also measure on")
    args = parser.parse_args()
    data: dict[str, Any] = {"operations": args.operations}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, 4):
            data[f"sqlite_{threads}"] = measure(f"sqlite:///{Path(tmp) / f'ops{threads}.db'}", args.operations, threads)
    if args.postgres:
        import psycopg

        admin = args.postgres.replace("postgresql+psycopg://", "postgresql://")
        for threads in (1, 4):
            name = f"bench_ops_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                data[f"postgresql_{threads}"] = measure(admin.rsplit("/", 1)[0] + f"/{name}", args.operations, threads)
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for key, value in data.items():
        if isinstance(value, dict):
            backend, threads = key.rsplit("_", 1)
            rows.append([backend, threads, value["hold+commit"], value["calculate"]])
    table("ledger operations per second (no HTTP)", ["database", "threads", "hold+commit /s", "calculate /s"], rows)
    print(f"results: {save('ledger_ops', data)}")


if __name__ == "__main__":
    main()

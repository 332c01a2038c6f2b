"""Benchmark: SQL statements and transactions per till operation (issue 22), counted, not timed.

    python -m bench.statements                 # SQLite
    python -m bench.statements --postgres URL  # and PostgreSQL (or GATEWAY_TEST_POSTGRES_URL)

The gateway runs in-process (``create_app``, no workers) on a fresh database with the bench's
cards; each operation is sent ``--repeat`` times through the app's HTTP interface (the bodies the
load generator sends, ``bench.scenarios``), each time on a card it has not touched before. A
SQLAlchemy ``before_cursor_execute`` listener on the gateway's engines counts what reaches the
database driver: statements (``BEGIN``/``COMMIT`` not counted), transactions, and of those the
*write* transactions (SQLite: those on the write engine, which take ``BEGIN IMMEDIATE``;
PostgreSQL: those that change a row or lock one). The median over the repeats is printed, and
with ``--show OPERATION`` every statement of one run of it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from bench.common import machine, postgres_admin_url, save, table, temporary_postgres
from bench.scenarios import LINES, TILL_AUTH, Request, card, onec_calculate, soap_fiscal, soap_soft, write_cards_csv

_WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Transaction:
    write_engine: bool
    statements: list[str] = field(default_factory=list)

    def writes(self, sqlite: bool) -> bool:
        if sqlite:
            return self.write_engine
        return any(s.lstrip().upper().startswith(_WRITES) or "FOR UPDATE" in s.upper() for s in self.statements)


@dataclass
class Counter:
    """Every transaction the gateway's engines ran while ``recording``."""

    sqlite: bool
    recording: bool = False
    transactions: list[Transaction] = field(default_factory=list)

    def attach(self, engine: Engine, *, write_engine: bool) -> None:
        def begin(conn: Any) -> None:
            conn.info["bench_txn"] = Transaction(write_engine)

        def execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            text = statement.strip()
            if text.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                return
            txn: Transaction | None = conn.info.get("bench_txn")
            if txn is None:  # autocommit: a transaction of its own
                txn = Transaction(write_engine)
                self._finish(txn)
            txn.statements.append(" ".join(text.split()))

        def end(conn: Any) -> None:
            txn = conn.info.pop("bench_txn", None)
            if txn is not None:
                self._finish(txn)

        event.listen(engine, "begin", begin)
        event.listen(engine, "before_cursor_execute", execute)
        event.listen(engine, "commit", end)
        event.listen(engine, "rollback", end)

    def _finish(self, txn: Transaction) -> None:
        if self.recording:
            self.transactions.append(txn)

    @contextmanager
    def record(self) -> Iterator[list[Transaction]]:
        self.transactions = []
        self.recording = True
        try:
            yield self.transactions
        finally:
            self.recording = False

    def summary(self, transactions: list[Transaction]) -> dict[str, int]:
        writes = [t for t in transactions if t.writes(self.sqlite)]
        return {
            "statements": sum(len(t.statements) for t in transactions),
            "transactions": len(transactions),
            "write_transactions": len(writes),
            "statements_in_writes": sum(len(t.statements) for t in writes),
        }


def _json(method: str, path: str, body: dict[str, Any], key: str | None = None) -> Request:
    import json

    headers = {"Content-Type": "application/json", "Authorization": TILL_AUTH}
    if key is not None:
        headers["Idempotency-Key"] = key
    return Request(method, path, headers, json.dumps(body, ensure_ascii=False).encode())


@dataclass
class Steps:
    """One till's day on one card: the requests of each operation, built for card ``n``."""

    run: str
    hold_ids: dict[int, str] = field(default_factory=dict)

    def calculate(self, n: int) -> Request:
        return _json("POST", "/api/v1/calculate", {"card_number": card(n), "lines": LINES})

    def hold(self, n: int) -> Request:
        return _json("POST", "/api/v1/holds", {"card_number": card(n), "points": 10}, f"{self.run}-h{n}")

    def commit_hold(self, n: int) -> Request:
        body = {"receipt_id": f"{self.run}-rh{n}", "card_number": card(n), "lines": LINES, "hold_id": self.hold_ids[n]}
        return _json("POST", "/api/v1/receipts", body, f"{self.run}-ch{n}")

    def commit(self, n: int) -> Request:
        body = {"receipt_id": f"{self.run}-r{n}", "card_number": card(n), "lines": LINES, "points_to_spend": 10}
        return _json("POST", "/api/v1/receipts", body, f"{self.run}-c{n}")

    def commit_again(self, n: int) -> Request:
        return self.commit(n)  # the same key and body: the stored result

    def refund(self, n: int) -> Request:
        body = {"refund_id": f"{self.run}-f{n}", "lines": [{"line_id": "2", "quantity": "1"}]}
        return _json("POST", f"/api/v1/receipts/{self.run}-r{n}/refunds", body, f"{self.run}-f{n}")

    def onec_calculate(self, n: int) -> Request:
        return onec_calculate(n, self.run)

    def soap_soft(self, n: int) -> Request:
        return soap_soft(n, self.run)

    def soap_fiscal(self, n: int) -> Request:
        return soap_fiscal(n, self.run)


OPERATIONS = (
    ("calculate", "JSON calculate"),
    ("hold", "JSON hold (10 points)"),
    ("commit_hold", "JSON commit of that hold (+ accrual)"),
    ("commit", "JSON commit, spend 10 without a hold (+ accrual)"),
    ("commit_again", "the same commit again (stored result)"),
    ("refund", "JSON refund of one line of that receipt"),
    ("onec_calculate", "1C calculatediscounts"),
    ("soap_soft", "SOAP ProcessRequest Soft cheque"),
    ("soap_fiscal", "SOAP ProcessRequest Fiscal cheque"),
)


def measure(url: str, workdir: Path, repeat: int, show: str | None) -> dict[str, dict[str, Any]]:
    from fastapi.testclient import TestClient

    from gateway.api.app import create_app
    from gateway.config import Settings
    from gateway.importer.cards import CardImporter
    from gateway.store import migrate
    from gateway.store.db import Database

    migrate.upgrade(url, "heads")
    cards = workdir / "statements-cards.csv"
    write_cards_csv(cards)
    loader = Database(url)
    CardImporter(loader).run(cards)
    loader.dispose()

    app = create_app(Settings(database_url=url, workers=False, seed_demo=False, auto_migrate=False))
    db = app.state.service.db
    counter = Counter(sqlite=db.is_sqlite)
    counter.attach(db.write_engine, write_engine=True)
    if db.read_engine is not db.write_engine:
        counter.attach(db.read_engine, write_engine=False)
    steps = Steps(run=uuid.uuid4().hex[:8])
    samples: dict[str, list[dict[str, int]]] = {name: [] for name, _ in OPERATIONS}
    shown: list[Transaction] = []
    with TestClient(app) as client:

        def send(build: Callable[[int], Request], n: int) -> Any:
            request = build(n)
            reply = client.request(request.method, request.path, headers=request.headers, content=request.body)
            if reply.status_code != 200 or b'"Error":true' in reply.content.replace(b" ", b""):
                raise RuntimeError(f"{request.path}: HTTP {reply.status_code} {reply.text[:500]}")
            return reply

        for round_ in range(repeat + 1):  # the first round warms caches and is not counted
            n = 100 + round_
            for name, _ in OPERATIONS:
                with counter.record() as transactions:
                    reply = send(getattr(steps, name), n)
                if name == "hold":
                    steps.hold_ids[n] = reply.json()["hold_id"]
                if round_:
                    samples[name].append(counter.summary(transactions))
                    if name == show and not shown:
                        shown = list(transactions)
    db.dispose()
    for index, txn in enumerate(shown, 1):
        kind = "write" if txn.writes(counter.sqlite) else "read"
        print(f"-- transaction {index} ({kind}, {len(txn.statements)} statements)")
        for statement in txn.statements:
            print(f"   {statement[:160]}")
    return {
        name: {key: statistics.median(s[key] for s in samples[name]) for key in samples[name][0]}
        for name, _ in OPERATIONS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--show", choices=[name for name, _ in OPERATIONS], help="print the statements of one run")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (default: GATEWAY_TEST_POSTGRES_URL)")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["sqlite"] = measure(f"sqlite:///{work / 'statements.db'}", work, args.repeat, args.show)
        admin = None if args.sqlite_only else postgres_admin_url(args.postgres)
        if admin is not None:
            with temporary_postgres(admin, "bench_statements") as url:
                results["postgresql"] = measure(url, work, args.repeat, None)
    titles = dict(OPERATIONS)
    rows = [
        [backend, titles[name], cell["statements"], cell["transactions"], cell["write_transactions"]]
        for backend, per_op in results.items()
        for name, cell in per_op.items()
    ]
    table(
        f"SQL per operation, median of {args.repeat} (statements without BEGIN/COMMIT)",
        ["database", "operation", "statements", "transactions", "write transactions"],
        rows,
    )
    data = {"benchmark": "statements", "machine": machine(), "settings": vars(args), "results": results}
    print(f"results: {save('statements', data)}")


if __name__ == "__main__":
    main()

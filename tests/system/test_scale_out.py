"""Two gateway processes on one PostgreSQL database, as two replicas behind a proxy:

* concurrent redemptions of the same cards through both never overspend, holds made on one are
  committed through the other exactly once, and the invariants hold;
* the same idempotency key (and the same receipt id) sent to both processes at once is applied
  once, and both answer with the same result;
* both processes run the hold sweeper: expired holds are voided once, never twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from contracts.operations import BalanceRequest
from gateway.config import DEMO_CONFIG, load_config
from gateway.ledger.service import LoyaltyService
from gateway.store.db import Database
from tests.support import TILL, PostgresFactory, wait_for
from tests.system.test_crash import Server

CARDS = {"2700000000014": 600, "2700000000021": 1300}  # demo balances with the welcome bonus
POINTS = 30
LINES = [{"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}]


class Replicas:
    def __init__(self, url: str, servers: list[Server]) -> None:
        self.url = url
        self.servers = servers
        self.db = Database(url)
        self.service = LoyaltyService(self.db, load_config(DEMO_CONFIG).program)

    def count(self, sql: str) -> int:
        with self.db.read() as session:
            return int(session.execute(text(sql)).scalar_one())

    def assert_invariants(self) -> None:
        report = self.service.check()
        assert report.ok, report.violations


@pytest.fixture
def replicas(postgres: PostgresFactory | None, tmp_path: Path) -> Iterator[Replicas]:
    if postgres is None:
        pytest.skip("PostgreSQL not configured: set GATEWAY_TEST_POSTGRES_URL")
    url = postgres.new_database()
    config = tmp_path / "no-accrual.yaml"  # so that every spent point is a point the card had
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace("percent: 5 ", "percent: 0 "), encoding="utf-8")
    env = {"GATEWAY_CONFIG": str(config)}
    servers = [Server(url, tmp_path, env), Server(url, tmp_path, env)]
    try:
        for server in servers:
            server.start()
        running = Replicas(url, servers)
        yield running
        running.db.dispose()
    finally:
        for server in servers:
            server.stop()


def test_two_processes_share_one_postgres(replicas: Replicas) -> None:
    servers = replicas.servers
    barrier = threading.Barrier(40)

    def redeem(index: int) -> str:
        card = list(CARDS)[index % 2]
        hold_on, commit_on = servers[index % 2], servers[(index + 1) % 2]
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            # hold on one process, commit through the other
            hold = http.post(
                f"{hold_on.url}/api/v1/holds",
                headers={**TILL, "Idempotency-Key": f"h-{index}"},
                json={"card_number": card, "points": POINTS},
            )
            if hold.status_code != 200:
                return str(hold.json()["error"]["code"])
            commit = http.post(
                f"{commit_on.url}/api/v1/receipts",
                headers={**TILL, "Idempotency-Key": f"c-{index}"},
                json={
                    "receipt_id": f"so-{index}",
                    "card_number": card,
                    "lines": LINES,
                    "hold_id": hold.json()["hold_id"],
                },
            )
            assert commit.status_code == 200, commit.text
            return "spent"

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(redeem, range(120)))
    assert set(outcomes) <= {"spent", "insufficient_points"}
    replicas.assert_invariants()
    for card in CARDS:
        balance = replicas.service.balance("t", BalanceRequest(card_number=card))
        assert (balance.held, balance.available) == (0, CARDS[card] % POINTS)
    # as many redemptions as the points allow, none more
    assert outcomes.count("spent") == sum(points // POINTS for points in CARDS.values())
    assert replicas.count("SELECT count(*) FROM receipts") == outcomes.count("spent")


def _same_request_to_both(replicas: Replicas, path: str, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Send one request (same key, same body) to both processes at the same moment; a process
    that finds the key still in flight answers 409 and is asked again, as a till would retry."""
    barrier = threading.Barrier(2)

    def send(server: Server) -> dict[str, Any]:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            for _ in range(200):
                response = http.post(f"{server.url}{path}", headers={**TILL, "Idempotency-Key": key}, json=body)
                if response.status_code == 409 and response.json()["error"]["code"] == "idempotency_in_flight":
                    time.sleep(0.05)
                    continue
                assert response.status_code == 200, response.text
                data: dict[str, Any] = response.json()
                return data
        raise AssertionError(f"{key} stayed in flight")

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(send, replicas.servers))


def test_one_key_sent_to_both_processes_is_applied_once(replicas: Replicas) -> None:
    card, rounds = "2700000000021", 12

    def one(index: int) -> tuple[str, str]:
        held = _same_request_to_both(
            replicas, "/api/v1/holds", f"dup-h-{index}", {"card_number": card, "points": 10, "receipt_id": f"d{index}"}
        )
        assert held[0] == held[1]  # the very same stored result: one hold
        committed = _same_request_to_both(
            replicas,
            "/api/v1/receipts",
            f"dup-c-{index}",
            {"receipt_id": f"dup-{index}", "card_number": card, "lines": LINES, "hold_id": held[0]["hold_id"]},
        )
        assert committed[0] == committed[1]
        return held[0]["hold_id"], committed[0]["transaction_id"]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(rounds)))
    assert len({hold for hold, _ in results}) == rounds and len({txn for _, txn in results}) == rounds
    assert replicas.count("SELECT count(*) FROM holds") == rounds
    assert replicas.count("SELECT count(*) FROM receipts") == rounds
    assert replicas.count("SELECT count(*) FROM idempotency_keys WHERE key LIKE 'dup-%'") == 2 * rounds
    balance = replicas.service.balance("t", BalanceRequest(card_number=card))
    assert (balance.available, balance.held) == (1300 - 10 * rounds, 0)

    replicas.assert_invariants()


def test_one_receipt_sent_to_both_processes_under_two_keys_is_booked_once(replicas: Replicas) -> None:
    card = "2700000000021"
    barrier = threading.Barrier(2)

    def book(index: int) -> dict[str, Any]:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            response = http.post(
                f"{replicas.servers[index].url}/api/v1/receipts",
                headers={**TILL, "Idempotency-Key": f"same-receipt-{index}"},
                json={"receipt_id": "same-receipt", "card_number": card, "lines": LINES, "points_to_spend": 5},
            )
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()
            return data

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(book, range(2))
    assert first["transaction_id"] == second["transaction_id"]
    assert replicas.count("SELECT count(*) FROM receipts WHERE receipt_id = 'same-receipt'") == 1
    assert replicas.service.balance("t", BalanceRequest(card_number=card)).available == 1300 - 5
    replicas.assert_invariants()


def test_both_sweepers_void_each_expired_hold_once(replicas: Replicas) -> None:
    card, holds = "2700000000014", 20
    with httpx.Client(timeout=60) as http:
        for index in range(holds):
            server = replicas.servers[index % 2]
            response = http.post(
                f"{server.url}/api/v1/holds",
                headers={**TILL, "Idempotency-Key": f"sweep-{index}"},
                json={"card_number": card, "points": 10, "ttl_seconds": 5},
            )
            assert response.status_code == 200, response.text
    assert replicas.service.balance("t", BalanceRequest(card_number=card)).held == 10 * holds
    # both processes sweep every 0.5 s; the holds' deadline is 5 s away
    assert wait_for(lambda: replicas.count("SELECT count(*) FROM holds WHERE status = 'open'") == 0, timeout=120)
    assert replicas.count("SELECT count(*) FROM holds WHERE status = 'voided' AND void_reason = 'expired'") == holds
    assert replicas.count("SELECT coalesce(sum(points), 0) FROM allocations WHERE state = 'released'") == 10 * holds
    balance = replicas.service.balance("t", BalanceRequest(card_number=card))
    assert (balance.available, balance.held) == (600, 0)
    replicas.assert_invariants()

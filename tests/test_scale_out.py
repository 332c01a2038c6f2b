"""Two gateway processes on one PostgreSQL database: concurrent redemptions of the same cards
through both never overspend, holds committed through the other process resolve once, and the
invariants hold."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway.config import DEMO_CONFIG, load_config
from gateway.ledger.service import LoyaltyService
from gateway.store.db import Database
from tests.support import TILL, PostgresFactory
from tests.test_crash import Server

CARDS = {"2700000000014": 600, "2700000000021": 1300}  # demo balances with the welcome bonus
POINTS = 30
LINES = [{"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}]


def test_two_processes_share_one_postgres(postgres: PostgresFactory | None, tmp_path: Path) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL not configured: set GATEWAY_TEST_POSTGRES_URL")
    url = postgres.new_database()
    config = tmp_path / "no-accrual.yaml"  # so that every spent point is a point the card had
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace("percent: 5 ", "percent: 0 "), encoding="utf-8")
    env = {"GATEWAY_CONFIG": str(config)}
    first, second = Server(url, tmp_path, env), Server(url, tmp_path, env)
    first.start()
    second.start()
    servers = [first, second]
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

    try:
        with ThreadPoolExecutor(40) as pool:
            outcomes = list(pool.map(redeem, range(120)))
    finally:
        for server in servers:
            server.stop()
    assert set(outcomes) <= {"spent", "insufficient_points"}
    db = Database(url)
    service = LoyaltyService(db, load_config(DEMO_CONFIG).program)
    report = service.check()
    assert report.ok, report.violations
    from contracts.operations import BalanceRequest

    for card in CARDS:
        balance = service.balance("t", BalanceRequest(card_number=card))
        assert (balance.held, balance.available) == (0, CARDS[card] % POINTS)
    # as many redemptions as the points allow, none more
    assert outcomes.count("spent") == sum(points // POINTS for points in CARDS.values())
    db.dispose()

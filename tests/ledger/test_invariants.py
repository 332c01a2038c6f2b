"""The invariant checker passes on a healthy ledger and names every kind of corruption."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app as cli
from tests.conftest import Gateway
from tests.support import TILL, key

CARD = "2700000000014"


def _activity(gw: Gateway) -> str:
    hold = gw.http.post("/api/v1/holds", json={"card_number": CARD, "points": 100}, headers={**TILL, **key()}).json()
    gw.http.post(
        "/api/v1/receipts",
        headers={**TILL, **key()},
        json={
            "receipt_id": "I-1",
            "card_number": CARD,
            "hold_id": hold["hold_id"],
            "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}],
        },
    )
    open_hold = gw.http.post("/api/v1/holds", json={"card_number": CARD, "points": 50}, headers={**TILL, **key()})
    return str(open_hold.json()["hold_id"])


CORRUPTIONS = [
    ("UPDATE lots SET remaining = remaining + 1 WHERE id = (SELECT min(id) FROM lots)", "lots + holds hold"),
    ("UPDATE lots SET remaining = points + 5 WHERE id = (SELECT max(id) FROM lots)", "lot "),
    (
        "INSERT INTO ledger_entries (account_id, kind, points, client_id, created_at) "
        "SELECT account_id, 'adjustment', -100000, 'x', created_at FROM ledger_entries LIMIT 1",
        "negative balance",
    ),
    ("UPDATE allocations SET returned = points + 1 WHERE state = 'spent'", "returned"),
    ("UPDATE holds SET status = 'voided', resolved_at = created_at WHERE status = 'open'", "still holds"),
    ("UPDATE holds SET status = 'open' WHERE status = 'committed'", "open with 100 points"),
    ("UPDATE receipt_lines SET points_spent = points_spent + 1", "receipt"),
]


@pytest.mark.parametrize(("sql", "expected"), CORRUPTIONS, ids=[c[1] for c in CORRUPTIONS])
def test_checker_finds_corruption(gateway: Gateway, sql: str, expected: str) -> None:
    _activity(gateway)
    gateway.assert_invariants()
    with gateway.service.db.write() as session:
        session.execute(text(sql))
    report = gateway.service.check()
    assert not report.ok
    assert any(expected in v for v in report.violations), report.violations


def test_cli_ledger_check(gateway: Gateway, tmp_path: Any) -> None:
    _activity(gateway)
    runner = CliRunner()
    url = gateway.service.db.url
    result = runner.invoke(cli, ["ledger", "check", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "ledger ok" in result.output
    with gateway.service.db.write() as session:
        session.execute(text("UPDATE lots SET remaining = remaining + 7 WHERE id = (SELECT min(id) FROM lots)"))
    result = runner.invoke(cli, ["ledger", "check", "--database-url", url])
    assert result.exit_code == 1
    assert "violations" in result.output

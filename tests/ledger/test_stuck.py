"""Stuck transactions are found, shown and replayed; failures end in needs-attention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select
from typer.testing import CliRunner

from contracts.operations import CommitRequest
from gateway.cli import app as cli
from gateway.ledger import journal
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.idempotency import _claim
from gateway.store.models import Hold, JournalEntry, Receipt
from gateway.workers.stuck import StuckTransactions
from tests.conftest import Gateway, json_of
from tests.support import TILL, key

CARD = "2700000000014"
LINES = [{"line_id": "1", "item": "X", "quantity": 1, "price": "1000.00"}]


def post(gw: Gateway, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = gw.http.post(path, json=body, headers={**TILL, **key()})
    assert response.status_code == 200, response.text
    return json_of(response)


def available(gw: Gateway) -> int:
    return int(gw.http.get(f"/api/v1/cards/{CARD}/balance", headers=TILL).json()["available"])


def test_overdue_holds_are_listed_and_replayed(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 100, "ttl_seconds": 60})
    stuck = StuckTransactions(gateway.service)
    assert stuck.list() == []
    gateway.clock.advance(seconds=61)
    (item,) = stuck.list()
    assert (item.id, item.kind, item.card_number) == (f"hold:{hold['hold_id']}", "hold", CARD)
    assert "past its deadline" in item.detail
    history = stuck.show(item.id)
    assert [row["state"] for row in history.journal] == ["held"]
    assert stuck.replay(item.id) == "voided, points released"
    assert stuck.replay(item.id) == "already voided"
    assert available(gateway) == 600 and stuck.list() == []
    gateway.assert_invariants()


def test_a_hold_that_keeps_failing_needs_attention_then_is_replayed(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 100})
    post(gateway, f"/api/v1/holds/{hold['hold_id']}/capture", {"points": 100, "window_seconds": 60})
    with gateway.service.db.write() as session:  # a cart that can no longer be read (e.g. a bad upgrade)
        row = session.get(Hold, hold["hold_id"])
        assert row is not None
        row.cart_json = "[{broken"
        session.add(row)
    gateway.clock.advance(seconds=61)
    for _ in range(5):  # the sweeper tries three times, then stops retrying
        gateway.service.sweep_expired_holds()
    with gateway.service.db.read() as session:
        row = session.get(Hold, hold["hold_id"])
        assert row is not None and row.status == "captured" and row.sweep_failures == 3
        assert row.attention and "ValidationError" in row.attention
    stuck = StuckTransactions(gateway.service)
    (item,) = stuck.list()
    assert "needs attention after 3 failed attempts" in item.detail
    with gateway.service.db.write() as session:  # the operator repairs the data ...
        row = session.get(Hold, hold["hold_id"])
        assert row is not None
        row.cart_json = None
        session.add(row)
    assert stuck.replay(item.id) == "receipt booked"  # ... and replays: a bare points payment
    with gateway.service.db.read() as session:
        (receipt,) = session.exec(select(Receipt)).all()
        assert (receipt.receipt_id, receipt.points_spent) == (f"hold:{hold['hold_id']}", 100)
    assert stuck.list() == []
    gateway.assert_invariants()


def test_an_interrupted_commit_is_replayed_once(gateway: Gateway) -> None:
    request = CommitRequest.model_validate({"receipt_id": "INT-1", "card_number": CARD, "lines": LINES})
    now = gateway.clock()
    # The process claimed the key and died before booking: the journal shows a received request.
    stored, entry = _claim(
        gateway.service.db, "tills", "k-int", "commit", request, canonical_hash("commit", request), now
    )
    assert stored is None and entry is not None
    gateway.clock.advance(minutes=6)
    stuck = StuckTransactions(gateway.service)
    (item,) = stuck.list()
    assert item.id == f"journal:{entry}" and "interrupted" in item.detail
    assert stuck.replay(item.id) == "done: CommitResult"
    assert available(gateway) == 650
    # the till's own retry with its key now gets the stored result: nothing twice
    retry = gateway.http.post(
        "/api/v1/receipts",
        json=request.model_dump(mode="json", exclude_none=True),
        headers={**TILL, "Idempotency-Key": "k-int"},
    )
    assert retry.status_code == 200 and retry.json()["points_accrued"] == 50
    assert available(gateway) == 650
    with gateway.service.db.read() as session:
        states = sorted(e.state for e in session.exec(select(JournalEntry)).all())
    assert states == ["abandoned", "committed"]
    assert stuck.list() == []


def test_journal_records_outcomes_and_failures(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 10})
    post(
        gateway,
        "/api/v1/receipts",
        {"receipt_id": "J-1", "card_number": CARD, "hold_id": hold["hold_id"], "lines": LINES},
    )
    refused = gateway.http.post(
        "/api/v1/holds", json={"card_number": CARD, "points": 10_000}, headers={**TILL, **key()}
    )
    assert refused.status_code == 409
    with gateway.service.db.read() as session:
        by_card = journal.query(session, card_number=CARD)
        assert [(e.operation, e.state) for e in reversed(by_card)] == [
            ("hold", "held"),
            ("commit", "committed"),
            ("hold", "failed"),
        ]
        assert by_card[0].error_code == "insufficient_points"
        assert journal.query(session, receipt_id="J-1")[0].transaction_id is not None
        assert [e.operation for e in journal.query(session, hold_id=hold["hold_id"])] == ["commit", "hold"]
        assert journal.query(session, client_id="site") == []
        assert len(journal.query(session, since=gateway.clock() - timedelta(minutes=1))) == 3


def test_tx_cli(gateway: Gateway) -> None:
    hold = post(gateway, "/api/v1/holds", {"card_number": CARD, "points": 100, "ttl_seconds": 60})
    runner = CliRunner(env={"COLUMNS": "250"})
    url = ["--database-url", gateway.service.db.url]
    assert "nothing is stuck" in runner.invoke(cli, ["tx", "stuck", *url]).output
    with gateway.service.db.write() as session:  # make it overdue in real time for the CLI's clock
        row = session.get(Hold, hold["hold_id"])
        assert row is not None
        row.expires_at = row.created_at - timedelta(seconds=1)
        session.add(row)
    listed = runner.invoke(cli, ["tx", "stuck", *url])
    assert listed.exit_code == 0 and hold["hold_id"][:8] in listed.output
    shown = runner.invoke(cli, ["tx", "show", f"hold:{hold['hold_id']}", *url])
    assert shown.exit_code == 0 and "held" in shown.output
    replayed = runner.invoke(cli, ["tx", "replay", "--all", *url])
    assert replayed.exit_code == 0 and "voided" in replayed.output
    assert runner.invoke(cli, ["tx", "show", "hold:nope", *url]).exit_code == 1
    assert available(gateway) == 600

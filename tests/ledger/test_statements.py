"""The commit hot path stays cheap (issue 22): counted statements, not timings.

A till's receipt that spends points without a hold and earns new ones is one write transaction
of at most ten SQL statements on SQLite — the idempotency key read and stored, the journal row,
the account read under its lock, the lots, ledger entries and allocations it writes, the receipt
and its lines. PostgreSQL takes the account's lock in a statement of its own before that read
(under READ COMMITTED a statement that waited for a lock still reads as of its own start), so
eleven there. ``python -m bench.statements`` prints the counts for every till operation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, event

from contracts.operations import CartLine, CommitRequest
from tests.conftest import Gateway
from tests.support import card_with_points

LINES = [
    CartLine(line_id="1", item="MILK-1L", quantity=Decimal(2), price=Decimal("89.90")),
    CartLine(line_id="2", item="BREAD", quantity=Decimal(1), price=Decimal("55.00")),
]
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Counted:
    transactions: list[list[str]] = field(default_factory=list)

    def writes(self) -> list[list[str]]:
        return [t for t in self.transactions if any(s.startswith(WRITES) or "FOR UPDATE" in s for s in t)]


@contextmanager
def counting(engines: set[Engine]) -> Iterator[Counted]:
    """Every statement the engines run, grouped by transaction (BEGIN/COMMIT not counted)."""
    counted = Counted()

    def begin(conn: Any) -> None:
        conn.info["counted"] = []
        counted.transactions.append(conn.info["counted"])

    def execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split()).upper()
        if not text.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            conn.info.setdefault("counted", []).append(text)

    for engine in engines:
        event.listen(engine, "begin", begin)
        event.listen(engine, "before_cursor_execute", execute)
    try:
        yield counted
    finally:
        for engine in engines:
            event.remove(engine, "begin", begin)
            event.remove(engine, "before_cursor_execute", execute)


def _engines(gateway: Gateway) -> set[Engine]:
    db = gateway.service.db
    return {db.write_engine, db.read_engine}


def test_a_receipt_spending_and_earning_is_one_write_transaction_of_at_most_ten_statements(gateway: Gateway) -> None:
    service = gateway.service
    number = card_with_points(service, 500)
    warm = CommitRequest(receipt_id="W-1", card_number=number, lines=LINES, points_to_spend=10)
    service.commit("tills", "warm-1", warm)  # first use builds the statements' caches
    request = CommitRequest(receipt_id="S-1", card_number=number, lines=LINES, points_to_spend=10)
    with counting(_engines(gateway)) as counted:
        result = service.commit("tills", "stmt-1", request)
    assert (result.points_spent, result.points_accrued) == (10, 11)
    assert result.balance is not None and result.balance.balance == 500 - 2 * 10 + 2 * 11  # two receipts
    assert len(counted.transactions) == 1
    (statements,) = counted.writes()
    assert len(statements) <= (10 if service.db.is_sqlite else 11), "\n".join(statements)
    # nothing written is read back: no SELECT after the first INSERT
    first_write = next(i for i, s in enumerate(statements) if s.startswith(WRITES))
    assert not [s for s in statements[first_write:] if s.startswith("SELECT")], statements


def test_the_same_receipt_sent_again_is_one_statement(gateway: Gateway) -> None:
    service = gateway.service
    number = card_with_points(service, 500)
    request = CommitRequest(receipt_id="S-2", card_number=number, lines=LINES, points_to_spend=10)
    first = service.commit("tills", "stmt-2", request)
    with counting(_engines(gateway)) as counted:
        again = service.commit("tills", "stmt-2", request)
    assert again == first
    assert [len(t) for t in counted.transactions] == [1]  # the stored result, read by its key


def test_the_balance_a_commit_answers_with_is_the_one_the_ledger_reads_afterwards(gateway: Gateway) -> None:
    from contracts.operations import BalanceRequest

    service = gateway.service
    number = card_with_points(service, 300)
    for n in range(3):
        request = CommitRequest(receipt_id=f"B-{n}", card_number=number, lines=LINES, points_to_spend=5 * (n + 1))
        answered = service.commit("tills", f"bal-{n}", request).balance
        assert answered == service.balance("tills", BalanceRequest(card_number=number))
    gateway.assert_invariants()


def test_a_hold_is_one_write_transaction_of_at_most_seven_statements_and_answers_the_ledgers_balance(
    gateway: Gateway,
) -> None:
    from contracts.operations import BalanceRequest, HoldRequest

    service = gateway.service
    number = card_with_points(service, 500)
    service.hold("tills", "warm-h", HoldRequest(card_number=number, points=10))
    with counting(_engines(gateway)) as counted:
        held = service.hold("tills", "stmt-h", HoldRequest(card_number=number, points=25))
    (statements,) = counted.writes()
    assert len(counted.transactions) == 1
    assert len(statements) <= (7 if service.db.is_sqlite else 8), "\n".join(statements)
    assert held.balance is not None and (held.balance.available, held.balance.held) == (465, 35)
    assert held.balance == service.balance("tills", BalanceRequest(card_number=number))
    gateway.assert_invariants()

"""What every ledger handler needs: the open transaction, the program, the time, the caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session

from gateway.core.program import Program
from gateway.outbound.outbox import Event
from gateway.store.db import Database

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Ctx:
    db: Database
    session: Session
    program: Program
    now: datetime
    client_id: str
    events: list[Event] = field(default_factory=list)  # published to the outbox in this transaction
    # Clients whose tills' captured write-offs this client's receipts may settle (its back office).
    settles: frozenset[str] = field(default_factory=frozenset)

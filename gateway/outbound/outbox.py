"""The transactional outbox: outbound messages written in the ledger's own transaction.

``publish`` is called with the session of the ledger change, so a message exists if and only if
the change was committed. The relay (``gateway.outbound.relay``) delivers it later, at least
once, under a stable id (``X-Gateway-Delivery``) that receivers dedupe on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from gateway.observability.context import current_request_id
from gateway.store.models import OutboxMessage


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in the ledger, for whoever subscribed to it."""

    name: str  # e.g. receipt.committed
    key: str  # what makes it unique: the transaction, hold, refund… id
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subscription:
    destination: str  # e.g. webhook:erp
    events: frozenset[str]  # names, or "*"
    clients: frozenset[str] | None = None  # only events caused by these clients; None = any client

    def wants(self, event: str, client_id: str | None = None) -> bool:
        if self.clients is not None and client_id not in self.clients:
            return False
        return "*" in self.events or event in self.events or f"{event.split('.')[0]}.*" in self.events


def publish(session: Session, subscriptions: Sequence[Subscription], events: Iterable[Event], now: datetime) -> int:
    """Write one outbox message per (event, subscribed destination); duplicates are ignored."""
    written = 0
    for event in events:
        body = json.dumps({"event": event.name, "key": event.key, "data": event.payload}, ensure_ascii=False)
        for subscription in subscriptions:
            if not subscription.wants(event.name, event.payload.get("client_id")):
                continue
            dedupe = f"{subscription.destination}|{event.name}|{event.key}"[:255]
            if session.exec(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe)).first() is not None:
                continue
            message = OutboxMessage(
                destination=subscription.destination,
                kind=event.name,
                dedupe_key=dedupe,
                payload_json=body,
                state="pending",
                request_id=current_request_id(),
                next_attempt_at=now,
                created_at=now,
            )
            try:
                with session.begin_nested():
                    session.add(message)
            except IntegrityError:  # pragma: no cover - a concurrent twin wrote it first
                continue
            written += 1
    return written

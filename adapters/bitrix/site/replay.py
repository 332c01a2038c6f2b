"""Replay protection of site events: an event id answered once is answered the same way again.

Only successful answers are remembered: an event that failed changed nothing and may be sent
again under the same id. Rows outlive the replay window (older timestamps are refused anyway),
then ``purge`` removes them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete

from contracts.errors import ErrorCode, LoyaltyError
from gateway.store.db import Database
from gateway.store.models_bitrix import BitrixSiteEvent


def request_hash(envelope: dict[str, Any]) -> str:
    """Fingerprint of an event: the same event re-encoded (other key order, spacing) matches."""
    canonical = json.dumps(envelope, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check(row: BitrixSiteEvent, fingerprint: str) -> str:
    if row.request_hash != fingerprint:
        raise LoyaltyError(
            ErrorCode.IDEMPOTENCY_CONFLICT, "this event_id was already used for another event", event_id=row.event_id
        )
    return row.response_json


def answered(db: Database, client_id: str, event_id: str, fingerprint: str) -> str | None:
    """The reply already given to this event, or None if it was never answered."""
    with db.read() as session:
        row = session.get(BitrixSiteEvent, (client_id, event_id))
        return _check(row, fingerprint) if row is not None else None


def remember(
    db: Database, client_id: str, event_id: str, event: str, fingerprint: str, reply: str, now: datetime
) -> str:
    """Store the reply; if a concurrent twin stored one first, return that one instead."""
    try:
        with db.write() as session:
            session.add(
                BitrixSiteEvent(
                    client_id=client_id,
                    event_id=event_id,
                    event=event,
                    request_hash=fingerprint,
                    response_json=reply,
                    received_at=now,
                )
            )
        return reply
    except IntegrityError:
        first = answered(db, client_id, event_id, fingerprint)
        if first is None:  # pragma: no cover - the row that collided cannot vanish but by purge
            raise
        return first


def purge(db: Database, before: datetime) -> int:
    with db.write() as session:
        result = session.exec(delete(BitrixSiteEvent).where(col(BitrixSiteEvent.received_at) < before))
        return int(result.rowcount or 0)

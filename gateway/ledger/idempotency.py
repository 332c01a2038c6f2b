"""Idempotency keys with Stripe / IETF-draft semantics, scoped by client.

* first use of a key: the operation runs in one write transaction that also stores the key with
  its result and journals the outcome, so the ledger change, the stored result and the journal
  row are committed together or not at all (a process that dies mid-request leaves nothing; the
  retry runs it);
* same key, same request (canonical fingerprint): the stored result is returned, nothing runs;
* same key, different request: ``idempotency_conflict`` (422);
* same key while the first request still runs: the database serializes the two (SQLite's
  ``BEGIN IMMEDIATE``; on PostgreSQL the second waits on the first's key row and is rolled back
  when the first commits), and the second gets the first's stored result. A key claimed
  ``in_flight`` by the two-step claim of earlier versions (``_claim``) answers
  ``idempotency_in_flight`` (409) until its lease lapses (``IN_FLIGHT_LEASE`` by default,
  ``GATEWAY_IN_FLIGHT_LEASE_SECONDS``), after which a retry takes it over;
* a request that fails with an error changed nothing: no key is stored (a retry runs again) and
  the failure is journaled in a transaction of its own. Keys are retained at least ``RETENTION``
  (published in the API docs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete

from contracts.errors import ErrorCode, LoyaltyError
from gateway.ledger import journal
from gateway.ledger.canonical import canonical_hash
from gateway.observability.metrics import record_ledger_outcome
from gateway.store.db import Database
from gateway.store.models import IdempotencyKey

R = TypeVar("R", bound=BaseModel)

IN_FLIGHT_LEASE = timedelta(seconds=60)
RETENTION = timedelta(hours=72)
MAX_KEY_LENGTH = 255


def _claim(
    db: Database,
    client_id: str,
    key: str,
    operation: str,
    request: BaseModel,
    fingerprint: str,
    now: datetime,
    lease: timedelta = IN_FLIGHT_LEASE,
) -> tuple[str | None, str | None]:
    """Claim the key. Returns (stored result JSON, None) if the request was already done, else
    (None, journal entry id) for the attempt that now owns the key."""
    for _ in range(3):
        try:
            with db.write() as session:
                row = session.get(IdempotencyKey, (client_id, key))
                if row is None:
                    session.add(
                        IdempotencyKey(
                            client_id=client_id,
                            key=key,
                            operation=operation,
                            request_hash=fingerprint,
                            state="in_flight",
                            locked_until=now + lease,
                            created_at=now,
                        )
                    )
                    session.flush()
                    entry = journal.received(
                        session, client_id=client_id, operation=operation, key=key, request=request, now=now
                    )
                    return None, entry
                if row.request_hash != fingerprint or row.operation != operation:
                    raise LoyaltyError(ErrorCode.IDEMPOTENCY_CONFLICT, idempotency_key=key)
                if row.state == "done":
                    return row.result_json, None
                if row.locked_until > now:
                    raise LoyaltyError(ErrorCode.IDEMPOTENCY_IN_FLIGHT, idempotency_key=key)
                row.locked_until = now + lease  # the previous owner died: take over
                session.add(row)
                journal.abandon_stale(session, client_id, key, now)
                entry = journal.received(
                    session, client_id=client_id, operation=operation, key=key, request=request, now=now
                )
                return None, entry
        except IntegrityError:
            continue  # a concurrent first use inserted the row; read it on the next turn
    raise LoyaltyError(ErrorCode.IDEMPOTENCY_IN_FLIGHT, idempotency_key=key)


def _stored(row: IdempotencyKey, operation: str, fingerprint: str, key: str, now: datetime) -> str | None:
    """What a request finds under a key already used: the stored result (JSON) to answer with,
    or None when a claim whose owner died may be taken over; 422 or 409 otherwise."""
    if row.request_hash != fingerprint or row.operation != operation:
        raise LoyaltyError(ErrorCode.IDEMPOTENCY_CONFLICT, idempotency_key=key)
    if row.state == "done":
        return row.result_json
    if row.locked_until > now:
        raise LoyaltyError(ErrorCode.IDEMPOTENCY_IN_FLIGHT, idempotency_key=key)
    return None


def run_idempotent(
    db: Database,
    *,
    client_id: str,
    key: str,
    operation: str,
    request: BaseModel,
    result_type: type[R],
    now: datetime,
    run: Callable[[Session], R],
    on_result: Callable[[Session, R], None] | None = None,
) -> R:
    """Run ``run`` once per (client, key), in one write transaction with the key's record and the
    journal row. ``on_result`` runs in that transaction too (the place to write outbox messages)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise LoyaltyError(ErrorCode.IDEMPOTENCY_KEY_REQUIRED, f"an idempotency key of 1..{MAX_KEY_LENGTH} characters")
    fingerprint = canonical_hash(operation, request)
    attempts = 3
    for attempt in range(1, attempts + 1):
        ran = False
        try:
            with db.write() as session:
                row = session.get(IdempotencyKey, (client_id, key))
                if row is not None:
                    stored = _stored(row, operation, fingerprint, key, now)
                    if stored is not None:
                        return result_type.model_validate_json(stored)
                    journal.abandon_stale(session, client_id, key, now)  # its owner died: take over
                ran = True
                result = run(session)
                if row is None:
                    row = IdempotencyKey(
                        client_id=client_id,
                        key=key,
                        operation=operation,
                        request_hash=fingerprint,
                        state="done",
                        locked_until=now,
                        created_at=now,
                    )
                row.state = "done"
                row.result_json = result.model_dump_json()
                session.add(row)
                outcome = journal.recorded(
                    session,
                    client_id=client_id,
                    operation=operation,
                    key=key,
                    request=request,
                    result=result,
                    result_json=row.result_json,
                    now=now,
                )
                if on_result is not None:
                    on_result(session, result)
            record_ledger_outcome(operation, outcome)
            return result
        except IntegrityError as error:
            # A twin stored the key first (PostgreSQL: it waited for the twin's commit), or a
            # concurrent request took a unique row this one wanted: rolled back; look again.
            if attempt < attempts:
                continue
            stored = _refused(db, client_id, key, operation, request, fingerprint, error, now)
            if stored is not None:
                return result_type.model_validate_json(stored)
            raise
        except BaseException as error:
            if not ran:
                raise  # 422 / 409 from the key itself: nothing to journal
            stored = _refused(db, client_id, key, operation, request, fingerprint, error, now)
            if stored is not None:
                return result_type.model_validate_json(stored)
            raise
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises


def _refused(
    db: Database,
    client_id: str,
    key: str,
    operation: str,
    request: BaseModel,
    fingerprint: str,
    error: BaseException,
    now: datetime,
) -> str | None:
    """A request failed and changed nothing: the stored result of a twin that committed while it
    ran (on PostgreSQL both can start before either is stored, and the later one may fail on the
    ledger's state the first one changed), else None once the failure is journaled."""
    with db.read() as session:
        row = session.get(IdempotencyKey, (client_id, key))
        if row is not None and row.state == "done" and row.request_hash == fingerprint and row.operation == operation:
            return row.result_json
    with db.write() as session:
        journal.refused(
            session, client_id=client_id, operation=operation, key=key, request=request, error=error, now=now
        )
    return None


def wait_out_in_flight(action: Callable[[], R], *, tries: int = 100, pause: float = 0.05) -> R:
    """Run an idempotent write, waiting out a concurrent twin that holds the same key (409
    ``idempotency_in_flight``) — for adapters whose protocol cannot ask the caller to retry
    (1C treats anything but 200 as a failure): the twin's stored result is then returned."""
    for _ in range(tries):
        try:
            return action()
        except LoyaltyError as exc:
            if exc.code != ErrorCode.IDEMPOTENCY_IN_FLIGHT:
                raise
            time.sleep(pause)
    return action()


def purge_expired(db: Database, now: datetime, retention: timedelta = RETENTION) -> int:
    with db.write() as session:
        result = session.exec(
            delete(IdempotencyKey).where(
                col(IdempotencyKey.state) == "done", col(IdempotencyKey.created_at) < now - retention
            )
        )
        return int(result.rowcount or 0)

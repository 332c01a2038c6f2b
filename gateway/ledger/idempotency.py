"""Idempotency keys with Stripe / IETF-draft semantics, scoped by client.

* first use of a key: the key is claimed (``in_flight``) in its own short transaction, then the
  operation runs in a second transaction that also stores its result, so the ledger change and
  the stored result are committed together or not at all;
* same key, same request (canonical fingerprint): the stored result is returned, nothing runs;
* same key, different request: ``idempotency_conflict`` (422);
* same key while the first request still runs: ``idempotency_in_flight`` (409). A claim whose
  owner died (process killed between the two transactions) lapses after the lease
  (``IN_FLIGHT_LEASE`` by default, ``GATEWAY_IN_FLIGHT_LEASE_SECONDS``): it must outlast the
  slowest request, or a retry could run beside a request that is still running;
* a request that fails with an error changed nothing, so its claim is dropped and a retry runs
  again. Keys are retained at least ``RETENTION`` (published in the API docs).
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


def _release(db: Database, client_id: str, key: str, entry_id: str, error: BaseException, now: datetime) -> None:
    """The attempt failed and changed nothing: free the key for a retry, journal why."""
    code = error.code.value if isinstance(error, LoyaltyError) else ErrorCode.INTERNAL_ERROR.value
    message = error.message if isinstance(error, LoyaltyError) else type(error).__name__
    with db.write() as session:
        row = session.get(IdempotencyKey, (client_id, key))
        if row is not None and row.state == "in_flight":
            session.delete(row)
        journal.failed(session, entry_id, code, message, now)


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
    lease: timedelta = IN_FLIGHT_LEASE,
) -> R:
    """Run ``run`` once per (client, key). ``on_result`` runs in the same transaction as the
    ledger change (the place to write outbox messages)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise LoyaltyError(ErrorCode.IDEMPOTENCY_KEY_REQUIRED, f"an idempotency key of 1..{MAX_KEY_LENGTH} characters")
    fingerprint = canonical_hash(operation, request)
    stored, entry_id = _claim(db, client_id, key, operation, request, fingerprint, now, lease)
    if stored is not None:
        return result_type.model_validate_json(stored)
    assert entry_id is not None
    try:
        with db.write() as session:
            result = run(session)
            row = session.get(IdempotencyKey, (client_id, key))
            if row is None:  # pragma: no cover - only a purge racing a 60 s lease could do this
                raise LoyaltyError(ErrorCode.IDEMPOTENCY_IN_FLIGHT, idempotency_key=key)
            row.state = "done"
            row.result_json = result.model_dump_json()
            session.add(row)
            journal.done(session, entry_id, operation, request, result, now)
            if on_result is not None:
                on_result(session, result)
            return result
    except BaseException as error:
        _release(db, client_id, key, entry_id, error, now)
        raise


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

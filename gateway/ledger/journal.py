"""The transaction journal: what every mutating request was, what became of it.

A request's row is written with its outcome in the transaction that changes the ledger (so the
outcome and the change are committed together, ``recorded``), or as *failed* in a transaction of
its own when the request is refused (``refused``). A process that dies mid-request leaves no row:
its transaction is rolled back, nothing of it was applied, and the client's retry with the same
key runs it.

Rows *received* come from the two-step claim of earlier versions (``idempotency._claim``): one
left behind means that process died mid-request; the client's retry (or the stuck-request
worker's replay) runs it again and that row is then *abandoned*.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, LoyaltyError
from gateway.observability.context import current_request_id
from gateway.observability.metrics import record_ledger_outcome
from gateway.store.models import JournalEntry

OUTCOME_BY_OPERATION = {
    "hold": "held",
    "capture": "captured",
    "commit": "committed",
    "offline_commit": "committed",
    "cancel": "cancelled",
    "refund": "refunded",
    "register_customer": "registered",
    "issue_card": "registered",
    "replace_card": "registered",
    "order": "applied",
}
REF_FIELDS = ("card_number", "receipt_id", "hold_id", "transaction_id")


def _refs(*models: BaseModel) -> dict[str, str]:
    refs: dict[str, str] = {}
    for model in models:
        for name in REF_FIELDS:
            value: Any = getattr(model, name, None)
            if isinstance(value, str) and value and name not in refs:
                refs[name] = value[:128]
        order_id: Any = getattr(model, "order_id", None)  # an order is found like a receipt
        if isinstance(order_id, str) and order_id and "receipt_id" not in refs:
            refs["receipt_id"] = order_id[:128]
    return refs


def received(session: Session, *, client_id: str, operation: str, key: str, request: BaseModel, now: datetime) -> str:
    entry = JournalEntry(
        id=str(uuid.uuid4()),
        client_id=client_id,
        operation=operation,
        idempotency_key=key[:255],
        state="received",
        request_json=request.model_dump_json(),
        request_id=current_request_id(),
        created_at=now,
        updated_at=now,
        **_refs(request),
    )
    session.add(entry)
    return entry.id


def recorded(
    session: Session,
    *,
    client_id: str,
    operation: str,
    key: str,
    request: BaseModel,
    result: BaseModel,
    result_json: str,
    now: datetime,
) -> str:
    """Journal a request that changed the ledger, in the transaction that changed it; returns
    the outcome (``held``, ``committed``, …). ``result_json`` is ``result`` serialized (once,
    for the idempotency record too)."""
    outcome = OUTCOME_BY_OPERATION.get(operation, "committed")
    session.add(
        JournalEntry(
            id=str(uuid.uuid4()),
            client_id=client_id,
            operation=operation,
            idempotency_key=key[:255],
            state=outcome,
            request_json=request.model_dump_json(),
            result_json=result_json,
            request_id=current_request_id(),
            created_at=now,
            updated_at=now,
            **_refs(request, result),
        )
    )
    return outcome


def refused(
    session: Session,
    *,
    client_id: str,
    operation: str,
    key: str,
    request: BaseModel,
    error: BaseException,
    now: datetime,
) -> None:
    """Journal a request that failed and changed nothing (in a transaction of its own)."""
    code = error.code.value if isinstance(error, LoyaltyError) else ErrorCode.INTERNAL_ERROR.value
    message = error.message if isinstance(error, LoyaltyError) else type(error).__name__
    record_ledger_outcome(operation, "failed", code[:64])
    session.add(
        JournalEntry(
            id=str(uuid.uuid4()),
            client_id=client_id,
            operation=operation,
            idempotency_key=key[:255],
            state="failed",
            request_json=request.model_dump_json(),
            error_code=code[:64],
            error_message=message[:1000],
            request_id=current_request_id(),
            created_at=now,
            updated_at=now,
            **_refs(request),
        )
    )


def abandon_stale(session: Session, client_id: str, key: str, now: datetime) -> None:
    """A retry took over a key whose first attempt died: that attempt's row is abandoned."""
    for entry in session.exec(
        select(JournalEntry).where(
            JournalEntry.client_id == client_id, JournalEntry.idempotency_key == key, JournalEntry.state == "received"
        )
    ).all():
        entry.state = "abandoned"
        entry.error_message = "the process handling it stopped; the client's retry ran it again"
        entry.updated_at = now
        session.add(entry)


def query(
    session: Session,
    *,
    card_number: str | None = None,
    receipt_id: str | None = None,
    hold_id: str | None = None,
    client_id: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[JournalEntry]:
    stmt = select(JournalEntry)
    for column, value in (
        (JournalEntry.card_number, card_number),
        (JournalEntry.receipt_id, receipt_id),
        (JournalEntry.hold_id, hold_id),
        (JournalEntry.client_id, client_id),
        (JournalEntry.state, state),
    ):
        if value is not None:
            stmt = stmt.where(col(column) == value)
    if since is not None:
        stmt = stmt.where(col(JournalEntry.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(JournalEntry.created_at) < until)
    return list(session.exec(stmt.order_by(col(JournalEntry.created_at).desc()).limit(limit)).all())

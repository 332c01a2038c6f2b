"""Stuck transactions: finding them, showing their history, replaying them.

Stuck is anything that should have finished and has not:

* ``hold:<id>`` — an open hold past its deadline or a captured hold past its capture window that
  the sweeper has not resolved yet, or one it set aside after repeated failures (``attention``);
* ``outbox:<id>`` — an outbound message dead-lettered, failing and retrying, or whose relay
  died mid-delivery;
* ``journal:<id>`` — a request whose process died before it finished (nothing of it was applied).

``replay`` resolves one: a hold is resolved now (voided, or its receipt booked), a message goes
back to the queue, an interrupted final operation (commit, refund, cancel, registration) is run
again under its original idempotency key, so a client that already retried gets its stored
result and nothing happens twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from adapters.onec.discountserver import stuck as discount_server
from adapters.onec.erp import store as erp_sync
from contracts.errors import LoyaltyError
from contracts.operations import (
    OPERATION_MODELS,
    CancelRequest,
    CommitRequest,
    OperationKind,
    RefundRequest,
    RegisterCustomerRequest,
)
from contracts.orders import OrderRequest
from gateway.ledger import journal
from gateway.ledger.context import Ctx
from gateway.ledger.hold_expiry import resolve_due_hold
from gateway.ledger.service import LoyaltyService
from gateway.outbound.relay import Relay
from gateway.store.models import Hold, JournalEntry, OutboxMessage

INTERRUPTED_AFTER = timedelta(minutes=5)
REPLAYABLE = {
    OperationKind.COMMIT.value,
    OperationKind.REFUND.value,
    OperationKind.CANCEL.value,
    OperationKind.ORDER.value,
    OperationKind.REGISTER_CUSTOMER.value,
}


@dataclass
class StuckItem:
    id: str
    kind: str
    since: datetime
    card_number: str | None
    detail: str
    attempts: int = 0


@dataclass
class ItemHistory:
    item: dict[str, Any]
    journal: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


class UnknownItem(LookupError):
    pass


def _row(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.created_at.isoformat(),
        "updated": entry.updated_at.isoformat(),
        "client": entry.client_id,
        "operation": entry.operation,
        "state": entry.state,
        "error": f"{entry.error_code}: {entry.error_message}" if entry.error_code else entry.error_message,
        "request": entry.request_json,
        "result": entry.result_json,
    }


class StuckTransactions:
    def __init__(self, service: LoyaltyService, relay: Relay | None = None) -> None:
        self.service = service
        self.relay = relay

    def list(self) -> list[StuckItem]:
        now = self.service.clock()
        items: list[StuckItem] = []
        with self.service.db.read() as session:
            for hold in session.exec(
                select(Hold)
                .where(
                    col(Hold.status).in_(("open", "captured")),
                    (col(Hold.expires_at) <= now) | col(Hold.attention).is_not(None),
                )
                .order_by(col(Hold.expires_at))
            ).all():
                if hold.attention:
                    detail = f"needs attention after {hold.sweep_failures} failed attempts: {hold.attention}"
                elif hold.status == "open":
                    detail = f"open hold of {hold.points} points past its deadline"
                else:
                    detail = f"{hold.captured_points} written-off points still waiting for their receipt"
                items.append(
                    StuckItem(f"hold:{hold.id}", "hold", hold.expires_at, hold.card_number, detail, hold.sweep_failures)
                )
            for message in session.exec(
                select(OutboxMessage)
                .where(
                    (col(OutboxMessage.state) == "dead")
                    | ((col(OutboxMessage.state) == "pending") & (col(OutboxMessage.attempts) > 0))
                    | ((col(OutboxMessage.state) == "delivering") & (col(OutboxMessage.lease_until) < now))
                )
                .order_by(col(OutboxMessage.id))
            ).all():
                state = {"dead": "dead-lettered", "pending": "retrying", "delivering": "relay stopped mid-delivery"}
                items.append(
                    StuckItem(
                        f"outbox:{message.id}",
                        "outbox",
                        message.created_at,
                        None,
                        f"{message.kind} to {message.destination} {state[message.state]}: {message.last_error or ''}",
                        message.attempts,
                    )
                )
            for entry in session.exec(
                select(JournalEntry)
                .where(JournalEntry.state == "received", col(JournalEntry.created_at) < now - INTERRUPTED_AFTER)
                .order_by(col(JournalEntry.created_at))
            ).all():
                items.append(
                    StuckItem(
                        f"journal:{entry.id}",
                        "request",
                        entry.created_at,
                        entry.card_number,
                        f"{entry.operation} by {entry.client_id} interrupted before it finished",
                    )
                )
        items += [
            StuckItem(ident, "erp_order", since, None, detail)
            for ident, since, detail in erp_sync.stuck_orders(self.service)
        ]
        items += [
            StuckItem(ident, "store_document", since, card, detail)
            for ident, since, card, detail in discount_server.refused_documents(self.service)
        ]
        return items

    def show(self, item_id: str) -> ItemHistory:
        kind, _, ident = item_id.partition(":")
        with self.service.db.read() as session:
            if kind == "hold":
                hold = session.get(Hold, ident)
                if hold is None:
                    raise UnknownItem(item_id)
                history = ItemHistory(item={k: str(v) for k, v in hold.model_dump().items() if k != "cart_json"})
                history.journal = [_row(e) for e in journal.query(session, hold_id=ident, limit=50)]
                if hold.transaction_id:
                    history.journal += [
                        _row(e)
                        for e in session.exec(
                            select(JournalEntry).where(JournalEntry.transaction_id == hold.transaction_id)
                        ).all()
                    ]
                return history
            if kind == "outbox" and ident.isdigit():
                message = session.get(OutboxMessage, int(ident))
                if message is None:
                    raise UnknownItem(item_id)
                return ItemHistory(item={k: str(v) for k, v in message.model_dump().items()})
            if kind == "journal":
                entry = session.get(JournalEntry, ident)
                if entry is None:
                    raise UnknownItem(item_id)
                return ItemHistory(item=_row(entry))
        if kind == "erp" and (order := erp_sync.stuck_order(self.service, ident)) is not None:
            return ItemHistory(item=order)
        if kind == discount_server.KIND and (document := discount_server.refused_document(self.service, ident)):
            return ItemHistory(item=document)
        raise UnknownItem(item_id)

    def replay(self, item_id: str) -> str:
        kind, _, ident = item_id.partition(":")
        if kind == "hold":
            return self._replay_hold(ident)
        if kind == "outbox" and ident.isdigit():
            return self._replay_message(int(ident))
        if kind == "journal":
            return self._replay_request(ident)
        if kind == "erp" and (outcome := erp_sync.replay_stuck(self.service, ident)) is not None:
            return outcome
        if kind == discount_server.KIND and discount_server.refused_document(self.service, ident) is not None:
            return "waiting: the store base resends the document from its queue (fix the cause first)"
        raise UnknownItem(item_id)

    def replay_all(self) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for item in self.list():
            try:
                outcomes[item.id] = self.replay(item.id)
            except (LoyaltyError, UnknownItem) as exc:
                outcomes[item.id] = f"failed: {exc}"
        return outcomes

    def _replay_hold(self, hold_id: str) -> str:
        service = self.service
        now = service.clock()
        with service.db.write() as session:
            hold = session.get(Hold, hold_id)
            if hold is None:
                raise UnknownItem(f"hold:{hold_id}")
            if hold.status not in ("open", "captured"):
                return f"already {hold.status}"
            if hold.expires_at > now and hold.attention is None:
                return f"not due until {hold.expires_at.isoformat()}"
            hold.attention = None
            hold.sweep_failures = 0
            if hold.expires_at > now:
                hold.expires_at = now  # an operator decided it is due now
            session.add(hold)
            ctx = Ctx(service.db, session, service.program, now, "system:operator")
            resolve_due_hold(ctx, hold)
            service.publish_events(session, ctx.events, now)
            return "voided, points released" if hold.status == "voided" else "receipt booked"

    def _replay_message(self, message_id: int) -> str:
        now = self.service.clock()
        with self.service.db.write() as session:
            message = session.get(OutboxMessage, message_id)
            if message is None:
                raise UnknownItem(f"outbox:{message_id}")
            if message.state == "delivered":
                return "already delivered"
            message.state = "pending"
            message.next_attempt_at = now
            if message.attempts and message.last_error:
                message.attempts = 0
            message.lease_until = None
            message.leased_by = None
            session.add(message)
        if self.relay is not None:
            self.relay.run_once()
            with self.service.db.read() as session:
                row = session.get(OutboxMessage, message_id)
                return f"{row.state}" if row is not None else "gone"
        return "queued for delivery"

    def _replay_request(self, entry_id: str) -> str:
        with self.service.db.read() as session:
            entry = session.get(JournalEntry, entry_id)
            if entry is None:
                raise UnknownItem(f"journal:{entry_id}")
            operation, client_id, key, request_json = (
                entry.operation,
                entry.client_id,
                entry.idempotency_key,
                entry.request_json,
            )
            state = entry.state
        if state != "received":
            return f"already {state}"
        if operation not in REPLAYABLE:
            with self.service.db.write() as session:
                journal.abandon_stale(session, client_id, key, self.service.clock())
            return "abandoned: a hold is only useful to the till that asked for it"
        kind = OperationKind(operation)
        model = OrderRequest if kind is OperationKind.ORDER else OPERATION_MODELS[kind]
        request = model.model_validate(json.loads(request_json))
        service = self.service
        if isinstance(request, CommitRequest):
            result: Any = service.commit(client_id, key, request)
        elif isinstance(request, RefundRequest):
            result = service.refund(client_id, key, request)
        elif isinstance(request, CancelRequest):
            result = service.cancel(client_id, key, request)
        elif isinstance(request, RegisterCustomerRequest):
            result = service.register_customer(client_id, key, request)
        elif isinstance(request, OrderRequest):
            result = service.apply_order(client_id, key, request)
        else:  # pragma: no cover - REPLAYABLE lists exactly the five above
            return "not replayable"
        return f"done: {type(result).__name__}"

"""Which ledger events each operation emits (for webhooks and the other outbound adapters)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from contracts.operations import OperationKind
from gateway.outbound.outbox import Event

EVENT_NAMES = (
    "hold.created",
    "hold.captured",
    "hold.cancelled",
    "hold.expired",
    "receipt.committed",
    "receipt.refunded",
    "customer.registered",
    "card.issued",
    "card.replaced",
    "order.updated",
    # Lifecycle triggers of the notification job (gateway/notify/lifecycle.py)
    "customer.win_back",
    "customer.win_back_follow_up",
    "customer.tier_changed",
    "customer.tier_close",
    "customer.points_expired",
    "customer.balance_high",
    "customer.phone_unconfirmed",
    "customer.phone_unconfirmed_again",
)

_BY_KIND: dict[OperationKind, tuple[str, tuple[str, ...]]] = {
    OperationKind.HOLD: ("hold.created", ("hold_id",)),
    OperationKind.CAPTURE: ("hold.captured", ("hold_id",)),
    OperationKind.CANCEL: ("hold.cancelled", ("hold_id",)),
    OperationKind.COMMIT: ("receipt.committed", ("transaction_id",)),
    OperationKind.OFFLINE_COMMIT: ("receipt.committed", ("transaction_id",)),
    OperationKind.REFUND: ("receipt.refunded", ("receipt_id", "refund_id")),
    OperationKind.REGISTER_CUSTOMER: ("customer.registered", ("customer_id",)),
    OperationKind.ISSUE_CARD: ("card.issued", ("customer_id",)),
    OperationKind.REPLACE_CARD: ("card.replaced", ("customer_id",)),
    OperationKind.ORDER: ("order.updated", ("order_id", "version")),
}


def events_for(kind: OperationKind, client_id: str, result: BaseModel) -> list[Event]:
    spec = _BY_KIND.get(kind)
    if spec is None:
        return []
    name, key_fields = spec
    payload: dict[str, Any] = result.model_dump(mode="json")
    key = ":".join([client_id, *(str(payload.get(f, "")) for f in key_fields)])
    if kind in (OperationKind.ISSUE_CARD, OperationKind.REPLACE_CARD):
        key += ":" + str(payload.get("card", {}).get("card_number", ""))
    return [Event(name, key, {**payload, "client_id": client_id})]

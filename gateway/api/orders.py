"""``/api/v1/orders``: web shop and ERP orders as versioned snapshots (see ``contracts/orders.py``).

``PUT /api/v1/orders/{order_id}`` sends the whole current state of an order with its version;
the gateway posts only what changed since the version it applied. The ``Idempotency-Key`` header
is optional here: without it the key is derived from the order id and version, which already
identify the change.
"""

from __future__ import annotations

from fastapi import APIRouter

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import Identifier
from contracts.orders import OrderRecord, OrderRequest, OrderResult
from gateway.api.v1 import ERRORS, Client, IdempotencyKey, Service

router = APIRouter(prefix="/api/v1", tags=["orders"])


@router.put("/orders/{order_id}", response_model=OrderResult, responses=ERRORS)
def put_order(
    order_id: Identifier, body: OrderRequest, client: Client, service: Service, key: IdempotencyKey = None
) -> OrderResult:
    """Apply the order's current state. An older or equal version changes nothing
    (``applied: false``) and answers with the order as it stands."""
    if body.order_id != order_id:
        raise LoyaltyError(
            ErrorCode.VALIDATION_ERROR, "order_id in the path and the body differ", path=order_id, body=body.order_id
        )
    idempotency_key = key.strip() if key and key.strip() else f"order:{order_id}:v{body.version}"
    return service.apply_order(client.id, idempotency_key, body)


@router.get("/orders/{order_id}", response_model=OrderRecord, responses=ERRORS)
def get_order(order_id: Identifier, client: Client, service: Service) -> OrderRecord:
    """The order as applied: its last snapshot and what it is worth."""
    record = service.get_order(client.id, order_id)
    if record is None:
        raise LoyaltyError(ErrorCode.ORDER_NOT_FOUND, order_id=order_id)
    return record

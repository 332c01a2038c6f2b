"""The push of loyalty results back to the ERP.

Each applied change of an ERP order emits ``order.updated`` into the outbox; the relay delivers
it through ``ErpResultPusher`` (every call through the throttle) with the version, and the ERP
overwrites its record of the order. A message older than the order's current version is not
sent (the newer version's own message is).
"""

from __future__ import annotations

import json

from adapters.onec.erp.config import ErpConfig
from adapters.onec.erp.throttle import window_at
from contracts.orders import OrderResult
from gateway.core.erp import ErpLineResult, ErpLoyaltyResult, ErpPort, ErpRejected, ErpUnavailable
from gateway.ledger.service import LoyaltyService
from gateway.outbound.relay import PermanentDeliveryError, RetryableDeliveryError
from gateway.store.models import OutboxMessage

DESTINATION = "erp"


def loyalty_result(result: OrderResult) -> ErpLoyaltyResult:
    return ErpLoyaltyResult(
        order_id=result.order_id,
        version=result.version,
        status=result.status,
        card_number=result.card_number,
        points_spent=result.points_spent,
        points_pending=result.points_pending,
        points_available=result.points_available,
        points_accrued=result.points_pending + result.points_available,
        points_shortfall=result.points_shortfall,
        balance_available=result.balance.available,
        updated_at=result.updated_at,
        lines=tuple(
            ErpLineResult(
                line_id=line.line_id,
                points_spent=line.points_spent,
                points_accrued=line.points_accrued,
                points_pending=line.points_pending,
                points_available=line.points_available,
            )
            for line in result.lines
        ),
    )


class ErpResultPusher:
    """The relay's deliverer for the ``erp`` destination (``order.updated`` of the ERP's client)."""

    def __init__(self, service: LoyaltyService, config: ErpConfig, port: ErpPort) -> None:
        self.service = service
        self.config = config
        self.port = port

    def __call__(self, message: OutboxMessage) -> None:
        try:
            body = json.loads(message.payload_json)
            data = dict(body["data"])
            client_id = str(data.pop("client_id"))
            result = OrderResult.model_validate(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentDeliveryError(f"not an order.updated message: {exc}") from exc
        current = self.service.get_order(client_id, result.order_id)
        if current is not None and current.result.version > result.version:
            return  # stale: the newer version's own message carries the newer result
        label, base_rate, _ = window_at(self.config.throttle, self.service.clock())
        if base_rate == 0:
            raise RetryableDeliveryError(f"quiet window {label}: the ERP is not called now")
        try:
            self.port.push_results([loyalty_result(result)])
        except ErpUnavailable as exc:
            raise RetryableDeliveryError(str(exc)) from exc
        except ErpRejected as exc:
            raise PermanentDeliveryError(str(exc)) from exc

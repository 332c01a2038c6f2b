"""Webhooks: ledger events POSTed to an integrator's HTTP endpoint (the ERP, a CRM…).

Each delivery carries ``X-Gateway-Event``, ``X-Gateway-Delivery`` (the outbox id: the receiver's
dedupe key, also sent as ``Idempotency-Key``) and, with a secret, ``X-Gateway-Signature:
sha256=<hex HMAC of "<timestamp>.<body>">`` with ``X-Gateway-Timestamp``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx

from gateway.outbound.relay import PermanentDeliveryError, RetryableDeliveryError
from gateway.store.models import OutboxMessage

RETRYABLE_STATUS = {408, 425, 429}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookDeliverer:
    def __init__(self, url: str, secret: str | None, timeout: float, client: httpx.Client | None = None) -> None:
        self.url = url
        self.secret = secret
        self.client = client or httpx.Client(timeout=timeout)

    def __call__(self, message: OutboxMessage) -> None:
        body = message.payload_json.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Gateway-Event": message.kind,
            "X-Gateway-Delivery": str(message.id),
            "Idempotency-Key": f"gateway-outbox-{message.id}",
            "X-Gateway-Timestamp": timestamp,
        }
        if self.secret:
            headers["X-Gateway-Signature"] = sign(self.secret, timestamp, body)
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError(f"timeout: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"transport: {type(exc).__name__}") from exc
        if response.is_success:
            return
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise RetryableDeliveryError(f"HTTP {response.status_code}")
        raise PermanentDeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")

"""Telegram: verification codes through the Gateway API (by phone number, no bot needed) and
notifications through the Bot API when the customer linked a chat.

Gateway API: ``POST sendVerificationMessage`` (Bearer token) with ``phone_number``, ``code``,
``ttl`` (30–3600 s); ``{"ok": true, "result": {"request_id", "request_cost", ...}}``, or
``{"ok": false, "error": ...}`` — e.g. a number without Telegram — which is terminal for this
provider, so the cascade falls back to SMS. Bot API: ``sendMessage`` to a ``chat_id``; 429 is
retryable, a blocked bot or unknown chat terminal."""

from __future__ import annotations

from decimal import Decimal

import httpx

from adapters.sms.http import DEFAULT_TIMEOUT, request_json
from gateway.core.messaging import OutgoingMessage, SendResult, TerminalSendError

GATEWAY_URL = "https://gatewayapi.telegram.org"
BOT_URL = "https://api.telegram.org"


class Telegram:
    name = "telegram"
    dedupes = False

    def __init__(
        self, gateway_token: str | None = None, bot_token: str | None = None, client: httpx.Client | None = None
    ) -> None:
        self.gateway_token = gateway_token
        self.bot_token = bot_token
        self.client = client or httpx.Client(timeout=DEFAULT_TIMEOUT)

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.kind == "verification" and message.code and self.gateway_token:
            return self._verification(message)
        if message.chat_id and self.bot_token:
            return self._chat(message)
        raise TerminalSendError(self.name, "no Telegram route for this message (no code/gateway or no chat/bot)")

    def _verification(self, message: OutgoingMessage) -> SendResult:
        body: dict[str, object] = {"phone_number": message.phone, "code": message.code}
        if message.ttl_seconds:
            body["ttl"] = max(30, min(3600, message.ttl_seconds))
        answer = request_json(
            self.client,
            self.name,
            "POST",
            f"{GATEWAY_URL}/sendVerificationMessage",
            json=body,
            headers={"Authorization": f"Bearer {self.gateway_token}"},
        )
        if not answer.get("ok"):
            raise TerminalSendError(self.name, str(answer.get("error") or "rejected"))
        result = answer.get("result") or {}
        cost = result.get("request_cost")
        return SendResult(self.name, str(result.get("request_id")), Decimal(str(cost)) if cost is not None else None)

    def _chat(self, message: OutgoingMessage) -> SendResult:
        answer = request_json(
            self.client,
            self.name,
            "POST",
            f"{BOT_URL}/bot{self.bot_token}/sendMessage",
            json={"chat_id": message.chat_id, "text": message.text},
        )
        if not answer.get("ok"):
            raise TerminalSendError(self.name, f"{answer.get('error_code')}: {answer.get('description')}")
        result = answer.get("result") or {}
        return SendResult(self.name, str(result.get("message_id")), Decimal(0))

"""SMS.ru: ``sms/send?api_id=…&to=…&msg=…&json=1``.

Status codes: 100 accepted; 2xx request errors (terminal), except 220 "service temporarily
unavailable" (retry later); 230–233 limits (terminal: 230 per-number daily limit, 231 the same
message to the number within a minute, 232 the same message to the number within a day, 233
code messages limit) — 231/232 mean this text already went out, so they count as sent; 3xx auth
errors (terminal)."""

from __future__ import annotations

from decimal import Decimal

import httpx

from adapters.sms.http import DEFAULT_TIMEOUT, digits, request_json
from gateway.core.messaging import (
    DuplicateSendError,
    OutgoingMessage,
    RetryableSendError,
    SendResult,
    TerminalSendError,
)

URL = "https://sms.ru/sms/send"
RETRYABLE = {220}
DUPLICATES = {231, 232}


class SmsRu:
    name = "smsru"
    dedupes = False

    def __init__(self, api_id: str, sender: str | None = None, client: httpx.Client | None = None) -> None:
        self.api_id = api_id
        self.sender = sender
        self.client = client or httpx.Client(timeout=DEFAULT_TIMEOUT)

    def _fail(self, code: int, text: str) -> None:
        reason = f"status {code}: {text}"
        if code in RETRYABLE or code >= 500:
            raise RetryableSendError(self.name, reason)
        if code in DUPLICATES:
            raise DuplicateSendError(self.name, reason)
        raise TerminalSendError(self.name, reason)

    def send(self, message: OutgoingMessage) -> SendResult:
        to = digits(message.phone)
        data = {"api_id": self.api_id, "to": to, "msg": message.text, "json": "1"}
        if self.sender:
            data["from"] = self.sender
        answer = request_json(self.client, self.name, "POST", URL, data=data)
        if answer.get("status") != "OK":
            self._fail(int(answer.get("status_code", 0)), str(answer.get("status_text", "")))
        entry = (answer.get("sms") or {}).get(to) or {}
        if entry.get("status") != "OK" or int(entry.get("status_code", 0)) != 100:
            self._fail(int(entry.get("status_code", 0)), str(entry.get("status_text", "")))
        cost = entry.get("cost")
        return SendResult(self.name, str(entry.get("sms_id")), Decimal(str(cost)) if cost is not None else None)

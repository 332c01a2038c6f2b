"""SMSC: ``sys/send.php`` with ``login``, ``psw``, ``phones``, ``mes``, ``fmt=3`` (JSON).

We pass our message id as SMSC's client ``id`` (a positive 32-bit number derived from it), so a
resend after an unknown outcome is recognised; error 9 ("duplicate request within a minute")
then means the first one went through. Errors come as ``{"error", "error_code"}``: 4 (IP
temporarily blocked) is retryable, 9 is a duplicate, the others are terminal."""

from __future__ import annotations

import hashlib
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

URL = "https://smsc.ru/sys/send.php"


def client_id(message_id: str) -> int:
    return int(hashlib.sha256(message_id.encode()).hexdigest()[:8], 16) % 2_147_483_646 + 1


class Smsc:
    name = "smsc"
    dedupes = True

    def __init__(self, login: str, password: str, sender: str | None = None, client: httpx.Client | None = None):
        self.login = login
        self.password = password
        self.sender = sender
        self.client = client or httpx.Client(timeout=DEFAULT_TIMEOUT)

    def send(self, message: OutgoingMessage) -> SendResult:
        data = {
            "login": self.login,
            "psw": self.password,
            "phones": digits(message.phone),
            "mes": message.text,
            "fmt": "3",
            "charset": "utf-8",
            "cost": "3",
            "id": str(client_id(message.message_id)),
        }
        if self.sender:
            data["sender"] = self.sender
        answer = request_json(self.client, self.name, "POST", URL, data=data)
        if "error" in answer or "error_code" in answer:
            code = int(answer.get("error_code", 0))
            reason = f"error {code}: {answer.get('error', '')}"
            if code == 9:
                raise DuplicateSendError(self.name, reason)
            if code == 4:
                raise RetryableSendError(self.name, reason)
            raise TerminalSendError(self.name, reason)
        cost = answer.get("cost")
        return SendResult(self.name, str(answer.get("id")), Decimal(str(cost)) if cost is not None else None)

"""SMS Aero v2: ``POST /v2/sms/send`` with Basic auth (e-mail, API key) and JSON
``{number, text, sign}``; ``{"success": true, "data": {...}}`` on acceptance."""

from __future__ import annotations

from decimal import Decimal

import httpx

from adapters.sms.http import DEFAULT_TIMEOUT, digits, request_json
from gateway.core.messaging import OutgoingMessage, SendResult, TerminalSendError

URL = "https://gate.smsaero.ru/v2/sms/send"


class SmsAero:
    name = "smsaero"
    dedupes = False

    def __init__(self, email: str, api_key: str, sign: str, client: httpx.Client | None = None) -> None:
        self.auth = (email, api_key)
        self.sign = sign
        self.client = client or httpx.Client(timeout=DEFAULT_TIMEOUT)

    def send(self, message: OutgoingMessage) -> SendResult:
        body = {"number": digits(message.phone), "text": message.text, "sign": self.sign}
        answer = request_json(self.client, self.name, "POST", URL, json=body, auth=self.auth)
        if not answer.get("success"):
            raise TerminalSendError(self.name, str(answer.get("message") or "rejected"))
        data = answer.get("data") or {}
        cost = data.get("cost")
        return SendResult(self.name, str(data.get("id")), Decimal(str(cost)) if cost is not None else None)

"""Limits before work: body size per endpoint and authentication before the body is read.

A pure ASGI middleware, outermost of the application's own layers:

- a declared ``Content-Length`` above the endpoint's limit is refused (413) without reading a byte;
- a streamed (chunked) body is counted as it arrives and refused as soon as it passes the limit;
- ``/api/v1`` requests are authenticated from their headers first: a missing or wrong credential
  is answered (401, or 429 past the failed-login limit) before the body is read or parsed;
- every request's caller address is published to ``auth.caller_address`` so the protocol
  adapters, which authenticate themselves, count failed logins per address too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from contracts.errors import ERROR_CATALOGUE, ErrorCode, LoyaltyError
from gateway.api.auth import Authenticator, caller_address

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KIB = 1024
MIB = 1024 * KIB
DEFAULT_BODY_LIMIT = 1 * MIB
# Paths whose adapter bounds its own body in its protocol's terms (CommerceML answers
# ``failure`` past ``file_limit``; SOAP answers a Fault past xmlsafe.MAX_BYTES). 1C publishes
# its services under any infobase name: ``/<infobase>/hs/loyaltyservice/…`` (the till shows our
# error text) and ``/<infobase>/ws/DiscountService.1cws`` (a SOAP fault the store logs).
SELF_LIMITED = ("/bitrix/admin/1c_exchange.php", "/soap/loyalty")
SELF_LIMITED_PARTS = ("/hs/loyaltyservice", "/ws/discountservice.1cws")
BODY_LIMITS: dict[str, int] = {
    # A cart of 1000 lines with long names is ~0.5 MiB; nothing in the JSON API needs more.
    "/api/v1/": DEFAULT_BODY_LIMIT,
    "/operator/": 16 * KIB,  # a form with an item id and a token
    "/bitrix/site/events": DEFAULT_BODY_LIMIT,
    "/bitrix24/events": 256 * KIB,
}
PUBLIC_API_PATHS = frozenset({"/api/v1/errors"})


def body_limit(path: str) -> int | None:
    """The largest body ``path`` accepts, or None when its adapter bounds it itself."""
    if path.startswith(SELF_LIMITED) or any(part in path.lower() for part in SELF_LIMITED_PARTS):
        return None
    for prefix, limit in BODY_LIMITS.items():
        if path.startswith(prefix):
            return limit
    return DEFAULT_BODY_LIMIT


class BodyTooLarge(LoyaltyError):
    def __init__(self, limit: int) -> None:
        super().__init__(ErrorCode.PAYLOAD_TOO_LARGE, limit_bytes=limit)


async def _reply(send: Send, error: LoyaltyError) -> None:
    status = ERROR_CATALOGUE[error.code].http_status
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="loyalty-gateway", charset="UTF-8"'))
    if "retry_after" in error.details:
        headers.append((b"retry-after", str(error.details["retry_after"]).encode()))
    if status == 413:
        headers.append((b"connection", b"close"))  # the unread body is not worth draining
    body = json.dumps({"error": error.to_dict()}).encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        client = scope.get("client")
        address = str(client[0]) if client else None
        token = caller_address.set(address)
        try:
            limit = body_limit(path)
            guard: _BodyGuard | None = None
            if limit is not None:
                declared = _content_length(scope)
                if declared is not None and declared > limit:
                    await _reply(send, BodyTooLarge(limit))
                    return
                guard = _BodyGuard(limit, receive, send)
                receive, send = guard.receive, guard.send
            if path.startswith("/api/v1/") and path not in PUBLIC_API_PATHS and scope.get("method") != "OPTIONS":
                try:
                    found = self.authenticator.from_header(_header(scope, b"authorization"), address)
                except LoyaltyError as exc:
                    await _reply(send, exc)
                    return
                scope.setdefault("state", {})["client"] = found
                scope["state"]["client_id"] = found.id
            try:
                await self.app(scope, receive, send)
            except BodyTooLarge:
                if guard is None or guard.started:
                    raise
                await guard.refuse()
        finally:
            caller_address.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


class _BodyGuard:
    """Counts a body as it arrives; past the limit the application's read fails and, whatever
    the application makes of that failure (FastAPI turns it into a 400), the client gets 413."""

    def __init__(self, limit: int, receive: Receive, send: Send) -> None:
        self.limit = limit
        self.seen = 0
        self.exceeded = False
        self.started = False
        self._receive = receive
        self._send = send

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.exceeded = True
                raise BodyTooLarge(self.limit)
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded:
            if message["type"] == "http.response.start" and not self.started:
                await self.refuse()
            return  # the application's own answer to the cut-off body is replaced
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def refuse(self) -> None:
        if not self.started:
            self.started = True
            await _reply(self._send, BodyTooLarge(self.limit))

"""One ASGI middleware for what every request needs from observability: its id (taken from
``X-Request-ID`` or made up, echoed in the reply, current while the request runs), its count and
latency per protocol and operation. Pure ASGI, so it adds no task or copy per request.

It also answers an unexpected exception itself (500 ``internal_error``): Starlette's last-resort
handler sits outside every middleware, and its reply would carry no request id."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability import context
from gateway.observability.metrics import LATENCY, REQUESTS

log = logging.getLogger("gateway.api")

_COMMERCEML_MODES = frozenset({"checkauth", "init", "file", "import", "query", "success", "info"})
_INTERNAL_ERROR = json.dumps(
    {"error": {"code": "internal_error", "message": "unexpected failure; nothing was changed"}}
).encode()


def classify(scope: Scope, status: int) -> tuple[str, str]:
    """(protocol, operation) of a served request, from a small fixed vocabulary: the route's
    template, never the raw path, so a scanner cannot blow up the number of series."""
    path: str = scope.get("path", "")
    route: Any = scope.get("route")
    template: str = getattr(route, "path", "") or ""
    params: dict[str, Any] = scope.get("path_params") or {}
    if not template or status == 404:
        # Answered before routing (401 of the limits layer) or by no route: one series per protocol.
        if path.startswith("/api/") and status != 404:
            return "json", "unrouted"
        return "other", "unmatched"
    if "/hs/loyaltyservice/" in template:
        return "1c_loyaltyservice", str(params.get("method", "")).lower()[:40] or "unknown"
    if template.endswith("1c_exchange.php"):
        query = scope.get("query_string", b"").decode("latin-1")
        mode = next((p[5:] for p in query.split("&") if p.startswith("mode=")), "")
        return "commerceml", mode if mode in _COMMERCEML_MODES else "unknown"
    method = scope.get("method", "GET")
    if path.startswith("/api/"):
        return "json", f"{method} {template}"
    if template.startswith("/bitrix24"):
        return "bitrix24", template
    if template.startswith("/bitrix/site"):
        return "bitrix_site", template
    if "soap" in template.lower() or "ProcessRequest" in template:
        return "soap", method
    return "internal", f"{method} {template}"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = context.request_id_from(header)
        token = context.bind(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if response_started:
                raise
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_INTERNAL_ERROR)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR})
        finally:
            protocol, operation = classify(scope, status)
            REQUESTS.labels(protocol, operation, str(status)).inc()
            LATENCY.labels(protocol, operation).observe(time.perf_counter() - started)
            context.unbind(token)

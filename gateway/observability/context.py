"""The id of the request being served, visible to every log line, journal row and outbox message
written on its behalf (a context variable: it follows the request into the thread pool)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
# A caller's id is kept only if it cannot forge a log line or a header: short, plain characters.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs for, or None outside a request (workers, CLI)."""
    return _request_id.get()


def request_id_from(header: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is acceptable, a new id otherwise."""
    if header and _ACCEPTABLE.match(header):
        return header
    return uuid.uuid4().hex


def bind(request_id: str | None) -> object:
    """Make ``request_id`` current; returns the token ``unbind`` needs."""
    return _request_id.set(request_id)


def unbind(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]

"""Client authentication: HTTP Basic (UTF-8 logins, as 1C sends Cyrillic ones) or Bearer tokens.

Credentials come from the configuration; comparisons are constant-time. The failing credential
is never logged. Failed logins are limited per login and per caller address
(``FailedLogins``): past the limit every attempt — right or wrong — gets ``rate_limited`` until the
window ends, so guessing costs the attacker time instead of the server work.

What a client may do is its ``kind``'s role (``ROLE_MATRIX``, docs/security.md) plus the
``grants`` the configuration gives it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from fastapi import Request

from contracts.errors import ErrorCode, LoyaltyError
from gateway.config import ClientConfig

Capability = Literal["loyalty", "gift_cards.issue", "operator", "reports", "marketing"]

ROLE_MATRIX: dict[str, frozenset[Capability]] = {
    # The till, the site and the ERP run the loyalty flow (price, hold, book, return, look up,
    # register) on their own objects only; issuing value (gift certificates) is not theirs.
    "till": frozenset({"loyalty"}),
    "site": frozenset({"loyalty"}),
    "erp": frozenset({"loyalty"}),
    "operator": frozenset({"loyalty", "gift_cards.issue", "operator", "reports", "marketing"}),
    # A marketer reads reports and the dashboard and runs mailings and grants to an audience; it
    # books no purchases, issues no value by hand and sees neither the ledger check nor the stuck list.
    "marketer": frozenset({"reports", "marketing"}),
}

# The caller's address, set by the limits middleware for every request: the protocol adapters
# authenticate through ``Authenticator.from_header`` without passing the request along.
caller_address: ContextVar[str | None] = ContextVar("gateway_caller_address", default=None)


def may(client: ClientConfig, capability: Capability) -> bool:
    """True when the client's role or its configured grants allow ``capability``."""
    return capability in ROLE_MATRIX[client.kind] or capability in client.grants


def require(client: ClientConfig, capability: Capability) -> ClientConfig:
    if not may(client, capability):
        raise LoyaltyError(ErrorCode.FORBIDDEN, f"this client may not use {capability}", client_kind=client.kind)
    return client


@dataclass
class FailedLogins:
    """Failed logins in fixed windows, per login and per address, in this process.

    Memory is bounded: at most ``max_keys`` counters are kept; when full, counters of ended
    windows are dropped first and, if that is not enough, the per-login ones (the per-address
    limit still holds the flood)."""

    per_login: int = 20
    per_address: int = 50
    window_seconds: float = 60.0
    max_keys: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _counts: dict[str, tuple[float, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, login: str | None, address: str | None) -> None:
        now = self.clock()
        with self._lock:
            for key, limit in self._keys(login, address):
                start, count = self._counts.get(key, (now, 0))
                if now - start < self.window_seconds and count >= limit:
                    retry = max(1, int(self.window_seconds - (now - start)) + 1)
                    raise LoyaltyError(ErrorCode.RATE_LIMITED, "too many failed logins", retry_after=retry)

    def failed(self, login: str | None, address: str | None) -> None:
        now = self.clock()
        with self._lock:
            if len(self._counts) >= self.max_keys:
                self._prune(now)
            for key, _limit in self._keys(login, address):
                start, count = self._counts.get(key, (now, 0))
                if now - start >= self.window_seconds:
                    start, count = now, 0
                self._counts[key] = (start, count + 1)

    def _keys(self, login: str | None, address: str | None) -> list[tuple[str, int]]:
        keys: list[tuple[str, int]] = []
        if login is not None:
            keys.append(("login:" + login[:128], self.per_login))
        if address is not None:
            keys.append(("address:" + address, self.per_address))
        return keys

    def _prune(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window_seconds}
        if len(self._counts) >= self.max_keys:
            self._counts = {k: v for k, v in self._counts.items() if k.startswith("address:")}


@dataclass(frozen=True)
class Authenticator:
    clients: tuple[ClientConfig, ...]
    failures: FailedLogins = field(default_factory=FailedLogins)

    def from_header(
        self, header: str | None, address: str | None = None, capability: Capability | None = None
    ) -> ClientConfig:
        """The client the header names; with ``capability``, refused (403) unless its role has it."""
        client = self._identify(header, address if address is not None else caller_address.get())
        return client if capability is None else require(client, capability)

    def _identify(self, header: str | None, address: str | None) -> ClientConfig:
        if not header:
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "credentials required")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            return self._basic(value, address)
        if scheme == "bearer":
            return self._bearer(value, address)
        raise LoyaltyError(ErrorCode.UNAUTHORIZED, "use HTTP Basic or a Bearer token")

    def _basic(self, value: str, address: str | None) -> ClientConfig:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            self.failures.failed(None, address)
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "malformed Basic credentials") from exc
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            decoded = raw.decode("cp1251")  # older Windows clients send their ANSI code page
        login, sep, password = decoded.partition(":")
        if not sep:
            self.failures.failed(None, address)
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "malformed Basic credentials")
        self.failures.check(login, address)
        found: ClientConfig | None = None
        for client in self.clients:
            if client.login is None or client.password is None:
                continue
            login_ok = hmac.compare_digest(client.login.encode(), login.encode())
            password_ok = hmac.compare_digest(client.password.encode(), password.encode())
            if login_ok and password_ok:
                found = client
        if found is None:
            self.failures.failed(login, address)
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "wrong login or password")
        return found

    def _bearer(self, token: str, address: str | None) -> ClientConfig:
        self.failures.check(None, address)
        found: ClientConfig | None = None
        for client in self.clients:
            for known in client.tokens:
                if hmac.compare_digest(known.encode(), token.encode()):
                    found = client
        if found is None:
            self.failures.failed(None, address)
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "unknown token")
        return found


def current_client(request: Request) -> ClientConfig:
    """FastAPI dependency: the authenticated client of this request (the limits middleware has
    usually authenticated it already, before the body was read)."""
    known = getattr(request.state, "client", None)
    if isinstance(known, ClientConfig):
        return known
    authenticator: Authenticator = request.app.state.authenticator
    address = request.client.host if request.client else None
    client = authenticator.from_header(request.headers.get("authorization"), address)
    request.state.client = client
    request.state.client_id = client.id
    return client


def loyalty_client(request: Request) -> ClientConfig:
    """The loyalty flow (price, hold, book, return, look up, register): every role but the marketer's."""
    return require(current_client(request), "loyalty")


def require_operator(request: Request) -> ClientConfig:
    client = current_client(request)
    if not may(client, "operator"):
        raise LoyaltyError(ErrorCode.FORBIDDEN, "operator credentials required")
    return client


def require_reports(request: Request) -> ClientConfig:
    """Reports and the dashboard: operators and marketers."""
    client = current_client(request)
    if not may(client, "reports"):
        raise LoyaltyError(ErrorCode.FORBIDDEN, "operator or marketer credentials required")
    return client


def require_marketing(request: Request) -> ClientConfig:
    """Mailings and grants to an audience: operators and marketers."""
    client = current_client(request)
    if not may(client, "marketing"):
        raise LoyaltyError(ErrorCode.FORBIDDEN, "operator or marketer credentials required")
    return client

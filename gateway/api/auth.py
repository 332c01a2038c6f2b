"""Client authentication: HTTP Basic (UTF-8 logins, as 1C sends Cyrillic ones) or Bearer tokens.

Credentials come from the configuration; comparisons are constant-time. The failing credential
is never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from fastapi import Request

from contracts.errors import ErrorCode, LoyaltyError
from gateway.config import ClientConfig


@dataclass(frozen=True)
class Authenticator:
    clients: tuple[ClientConfig, ...]

    def from_header(self, header: str | None) -> ClientConfig:
        if not header:
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "credentials required")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            return self._basic(value)
        if scheme == "bearer":
            return self._bearer(value)
        raise LoyaltyError(ErrorCode.UNAUTHORIZED, "use HTTP Basic or a Bearer token")

    def _basic(self, value: str) -> ClientConfig:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "malformed Basic credentials") from exc
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            decoded = raw.decode("cp1251")  # older Windows clients send their ANSI code page
        login, sep, password = decoded.partition(":")
        if not sep:
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "malformed Basic credentials")
        found: ClientConfig | None = None
        for client in self.clients:
            if client.login is None or client.password is None:
                continue
            login_ok = hmac.compare_digest(client.login.encode(), login.encode())
            password_ok = hmac.compare_digest(client.password.encode(), password.encode())
            if login_ok and password_ok:
                found = client
        if found is None:
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "wrong login or password")
        return found

    def _bearer(self, token: str) -> ClientConfig:
        found: ClientConfig | None = None
        for client in self.clients:
            for known in client.tokens:
                if hmac.compare_digest(known.encode(), token.encode()):
                    found = client
        if found is None:
            raise LoyaltyError(ErrorCode.UNAUTHORIZED, "unknown token")
        return found


def current_client(request: Request) -> ClientConfig:
    """FastAPI dependency: the authenticated client of this request."""
    authenticator: Authenticator = request.app.state.authenticator
    client = authenticator.from_header(request.headers.get("authorization"))
    request.state.client_id = client.id
    return client


def require_operator(request: Request) -> ClientConfig:
    client = current_client(request)
    if client.kind != "operator":
        raise LoyaltyError(ErrorCode.FORBIDDEN, "operator credentials required")
    return client

"""Promo codes of campaigns: how they are made, written, found and kept secret.

* A generated code is ``PREFIX-XXXX-XXXX-XX``: random characters in Crockford's base32 (digits
  and letters without I, L, O, U, so nothing reads as something else), five bits each; ten of
  them are 50 bits, which no till can guess among even a million live codes.
* The database keeps a code only as ``HMAC-SHA256(lookup key, normalized code)``. The characters
  themselves are ``HMAC-SHA256(derive key, campaign:batch:index)``, so the gateway can print a
  batch again without ever having stored it. Both keys come from one random secret of the
  installation (``gateway_secrets``, shared by replicas).
* Normalizing makes a code match however it is typed: case, spaces and dashes are ignored, and
  O/I/L read as 0/1/1 (they never occur in generated codes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gateway.store.models import GatewaySecret

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SECRET_NAME = "promo-codes"
GROUP = 4
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def normalize(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper().translate(_CONFUSABLE)


def _secret_row(session: Session) -> GatewaySecret | None:
    return session.get(GatewaySecret, SECRET_NAME)


class CodeKeys:
    """The two keys derived from the installation's promo-code secret."""

    def __init__(self, secret: bytes) -> None:
        self._lookup = hmac.new(secret, b"promo-code lookup", hashlib.sha256).digest()
        self._derive = hmac.new(secret, b"promo-code derive", hashlib.sha256).digest()

    def digest(self, code: str) -> str:
        """The stored form of ``code``, however it was typed."""
        return hmac.new(self._lookup, normalize(code).encode(), hashlib.sha256).hexdigest()

    def derive(self, campaign_id: str, batch_id: str, index: int, length: int, prefix: str) -> str:
        """Code number ``index`` of a batch, as printed."""
        raw = hmac.new(self._derive, f"{campaign_id}:{batch_id}:{index}".encode(), hashlib.sha256).digest()
        value = int.from_bytes(raw, "big")
        chars = []
        for _ in range(length):
            value, digit = divmod(value, 32)
            chars.append(ALPHABET[digit])
        body = "".join(chars)
        groups = [body[i : i + GROUP] for i in range(0, length, GROUP)]
        return "-".join([prefix, *groups] if prefix else groups)


def keys(session: Session, now: datetime | None = None) -> CodeKeys | None:
    """The installation's code keys. With ``now`` (a write), the secret is made on first use;
    without it (a read), ``None`` means no campaign code was ever made."""
    row = _secret_row(session)
    if row is None and now is not None:
        try:
            with session.begin_nested():
                session.add(GatewaySecret(name=SECRET_NAME, value=secrets.token_hex(32), created_at=now))
        except IntegrityError:  # another replica made it first
            pass
        row = _secret_row(session)
    return CodeKeys(bytes.fromhex(row.value)) if row is not None else None


def hint(code: str, prefix: str = "") -> str:
    """What people may see of a code: the campaign's prefix (if any) and its last two characters."""
    tail = normalize(code)[-2:]
    return f"{prefix}-…{tail}" if prefix else f"…{tail}"

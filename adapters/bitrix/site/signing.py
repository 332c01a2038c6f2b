"""Signatures of site events: ``X-Bitrix-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``
with ``X-Bitrix-Timestamp: <unix seconds>``.

The signature covers the timestamp and the exact body bytes, so neither can be changed in
transit; the timestamp must lie within the replay window of the gateway's clock, so a captured
request cannot be replayed later (within the window, the event id stops it: ``replay.py``).
Comparisons are constant-time and secrets never reach a log or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime

from contracts.errors import ErrorCode, LoyaltyError

TIMESTAMP_HEADER = "X-Bitrix-Timestamp"
SIGNATURE_HEADER = "X-Bitrix-Signature"
_PREFIX = "sha256="


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of ``X-Bitrix-Signature`` for this timestamp and body."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify(
    secrets: Sequence[str],
    timestamp: str | None,
    signed: str | None,
    body: bytes,
    now: datetime,
    window_seconds: int,
) -> int:
    """Check the signature, then the timestamp; return the timestamp. Raises ``signature_invalid``
    or ``request_expired`` (both 401) and changes nothing."""
    if not timestamp or not timestamp.strip().isdigit() or len(timestamp.strip()) > 12:
        raise LoyaltyError(ErrorCode.REQUEST_EXPIRED, f"{TIMESTAMP_HEADER} must be the unix time in seconds")
    timestamp = timestamp.strip()
    given = (signed or "").strip().lower()
    if given.startswith(_PREFIX):
        given = given[len(_PREFIX) :]
    if not given:
        raise LoyaltyError(ErrorCode.SIGNATURE_INVALID, f"{SIGNATURE_HEADER} is missing")
    matched = False
    for secret in secrets:  # every secret is tried, so timing does not tell which one matched
        expected = signature(secret, timestamp, body)[len(_PREFIX) :]
        matched |= hmac.compare_digest(expected.encode(), given.encode())
    if not matched:
        raise LoyaltyError(ErrorCode.SIGNATURE_INVALID)
    sent = int(timestamp)
    skew = sent - int(now.timestamp())
    if abs(skew) > window_seconds:
        raise LoyaltyError(
            ErrorCode.REQUEST_EXPIRED,
            f"the timestamp is {abs(skew)} s {'ahead of' if skew > 0 else 'behind'} the gateway's clock "
            f"(at most {window_seconds} s allowed)",
            skew_seconds=skew,
        )
    return sent

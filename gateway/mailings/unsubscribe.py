"""Unsubscribe links: a signed token naming the mailing, the customer and the channel, and the
opt-out it confirms.

The token is short enough for an SMS (48 characters for a customer with a UUID id): the mailing
id, the channel, the customer id and 10 bytes of HMAC-SHA256 under the installation's own secret
(``gateway_secrets``, made on first use, shared by replicas), base64url. Nothing in it is secret;
it cannot be forged or altered to unsubscribe someone else.

The opt-out is the profile operation (``LoyaltyService.update_customer``): advertising consent
false, with the date and the channel, recorded in the customer's change history by the client
``unsubscribe:<mailing id>`` — which is also how the mailing's report counts its opt-outs. A
second click changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from contracts.profiles import UpdateCustomerRequest
from gateway.ledger.service import LoyaltyService
from gateway.mailings.config import Channel
from gateway.store.models import GatewaySecret

SECRET_NAME = "mailing-links"
CLIENT_PREFIX = "unsubscribe:"
_SIG = 10
_CHANNELS: tuple[Channel, ...] = ("sms", "email")


@dataclass(frozen=True)
class Unsubscribe:
    mailing_id: str
    customer_id: str
    channel: Channel


def link_key(session: Session, now: datetime | None = None) -> bytes | None:
    """The signing key. With ``now`` (a write transaction) it is made on first use."""
    row = session.get(GatewaySecret, SECRET_NAME)
    if row is None and now is not None:
        try:
            with session.begin_nested():
                session.add(GatewaySecret(name=SECRET_NAME, value=secrets.token_hex(32), created_at=now))
        except IntegrityError:  # another replica made it first
            pass
        row = session.get(GatewaySecret, SECRET_NAME)
    return bytes.fromhex(row.value) if row is not None else None


def _customer_bytes(customer_id: str) -> bytes:
    try:
        parsed = uuid.UUID(customer_id)
    except ValueError:
        return b"\x01" + customer_id.encode()
    if str(parsed) != customer_id:
        return b"\x01" + customer_id.encode()
    return b"\x00" + parsed.bytes


def make_token(key: bytes, mailing_id: str, customer_id: str, channel: Channel) -> str:
    body = bytes.fromhex(mailing_id) + bytes([_CHANNELS.index(channel)]) + _customer_bytes(customer_id)
    sig = hmac.new(key, body, hashlib.sha256).digest()[:_SIG]
    return base64.urlsafe_b64encode(body + sig).decode().rstrip("=")


def read_token(key: bytes, token: str) -> Unsubscribe | None:
    """What the token names, or None if it is not one of ours (forged, altered, cut short)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) < 8 + 1 + 1 + _SIG + 1:
        return None
    body, sig = raw[:-_SIG], raw[-_SIG:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest()[:_SIG], sig):
        return None
    mailing_id, channel_byte, flag, customer = body[:8].hex(), body[8], body[9], body[10:]
    if channel_byte >= len(_CHANNELS):
        return None
    if flag == 0 and len(customer) == 16:
        customer_id = str(uuid.UUID(bytes=customer))
    elif flag == 1:
        customer_id = customer.decode(errors="replace")
    else:
        return None
    return Unsubscribe(mailing_id, customer_id, _CHANNELS[channel_byte])


def url(public_url: str, token: str) -> str:
    return f"{public_url}/u/{token}"


def find(service: LoyaltyService, token: str) -> Unsubscribe | None:
    with service.db.read() as session:
        key = link_key(session)
    return read_token(key, token) if key is not None else None


def opt_out(service: LoyaltyService, found: Unsubscribe) -> bool:
    """Advertising consent false for the token's customer; False when it was false already (a
    second click, a mail client's one-click POST after the page's) — nothing is recorded then.
    A customer who agreed again later and clicks an old link is unsubscribed again."""
    client_id = f"{CLIENT_PREFIX}{found.mailing_id}"
    if service.customer_profile(client_id, found.customer_id).ad_consent is False:
        return False
    request = UpdateCustomerRequest(customer_id=found.customer_id, ad_consent=False, ad_consent_channel=found.channel)
    service.update_customer(client_id, uuid.uuid4().hex, request)
    return True

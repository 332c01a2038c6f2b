"""Bitrix24 outbound webhooks: check the sender, store the event, queue its processing.

Bitrix24 calls us with a form-encoded POST (``event``, ``data[FIELDS][ID]``, ``ts``,
``auth[domain]``, ``auth[member_id]``, ``auth[application_token]``…) and never resends a call that
failed, so the acknowledgement must mean the event is durably stored: the event row and, for a
supported event, its outbox message are committed in one transaction before we answer 200.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from sqlmodel import col, select

from adapters.bitrix.config import Bitrix24Config, PortalConfig
from contracts.errors import ErrorCode, LoyaltyError
from gateway.outbound.outbox import Event, Subscription, publish
from gateway.store.db import Database
from gateway.store.models_bitrix import Bitrix24Event

DESTINATION = "bitrix24"
EVENT_NAME = "bitrix24.event"
SUBSCRIPTION = Subscription(DESTINATION, frozenset({EVENT_NAME}))

# What each supported event does (see docs/bitrix.md); anything else is stored and acknowledged.
SUPPORTED: dict[str, str] = {
    "ONCRMCONTACTADD": "register the contact as a loyalty customer (by phone, e-mail or card)",
    "ONCRMCONTACTUPDATE": "register the contact if it has become identifiable and is not a customer yet",
}


@dataclass(frozen=True)
class WebhookCall:
    event: str
    member_id: str
    domain: str | None
    entity_id: str | None
    ts: str | None
    fields: dict[str, str]  # every `data[...]` field, for the record


def parse_form(body: bytes) -> tuple[WebhookCall, str]:
    """The call and the application token it carries (kept apart so it is never stored)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the body is not a form") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    event = form.get("event", "").strip().upper()
    member_id = form.get("auth[member_id]", "").strip()
    if not event or not member_id:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "event and auth[member_id] are required")
    call = WebhookCall(
        event=event[:64],
        member_id=member_id[:64],
        domain=form.get("auth[domain]") or None,
        entity_id=(form.get("data[FIELDS][ID]") or "").strip()[:64] or None,
        ts=(form.get("ts") or "").strip()[:32] or None,
        fields={k: v for k, v in form.items() if k.startswith("data[")},
    )
    return call, form.get("auth[application_token]", "")


def verify(section: Bitrix24Config, call: WebhookCall, token: str) -> PortalConfig:
    """The portal this call claims to come from, if its token matches (constant-time)."""
    portal = section.portal(call.member_id)
    expected = portal.application_token if portal is not None else "-" * 32
    matches = hmac.compare_digest(expected.encode(), token.encode())
    if portal is None or not matches:
        raise LoyaltyError(ErrorCode.WEBHOOK_TOKEN_INVALID, member_id=call.member_id)
    return portal


@dataclass(frozen=True)
class Recorded:
    id: int
    status: str
    duplicate: bool


def record(db: Database, call: WebhookCall, now: datetime) -> Recorded:
    """Store the call and, if supported, its outbox message, in one transaction. A supported call
    about an entity that already has a queued call joins that one: its processing fetches the
    entity as it is by then, so the later change is not lost and is not fetched twice."""
    supported = call.event in SUPPORTED and call.entity_id is not None
    detail = None if supported else ("no data[FIELDS][ID]" if call.event in SUPPORTED else "unsupported event")
    payload = {"event": call.event, "domain": call.domain, "ts": call.ts, "fields": call.fields}
    with db.write() as session:
        if supported:
            stmt = select(Bitrix24Event).where(
                Bitrix24Event.member_id == call.member_id,
                Bitrix24Event.entity_id == call.entity_id,
                Bitrix24Event.status == "queued",
                col(Bitrix24Event.event).in_(SUPPORTED),
            )
            if not db.is_sqlite:
                stmt = stmt.with_for_update()
            pending = session.exec(stmt.order_by(col(Bitrix24Event.id))).first()
            if pending is not None:
                assert pending.id is not None
                return Recorded(pending.id, pending.status, duplicate=True)
        row = Bitrix24Event(
            member_id=call.member_id,
            event=call.event,
            entity_id=call.entity_id,
            event_ts=call.ts,
            status="queued" if supported else "ignored",
            detail=detail,
            payload_json=json.dumps(payload, ensure_ascii=False),
            received_at=now,
            processed_at=None if supported else now,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        if supported:
            message = {"row": row.id, "member_id": call.member_id, "event": call.event, "id": call.entity_id}
            publish(session, [SUBSCRIPTION], [Event(EVENT_NAME, f"b24:{row.id}", message)], now)
        return Recorded(row.id, row.status, duplicate=False)

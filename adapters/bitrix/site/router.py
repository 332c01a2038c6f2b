"""``POST /bitrix/site/events``: one endpoint for every event of the site module.

Order of checks, each refusing with a stable code and nothing changed: the section is
configured (404), the body is not too large, the signature matches (401 ``signature_invalid``),
the timestamp is inside the replay window (401 ``request_expired``), the envelope is valid (422),
the event id was not used for another event (422 ``idempotency_conflict``). An event id already
answered gets the first answer again (``Idempotent-Replayed: true``) and nothing is re-applied.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from adapters.bitrix.common import bitrix_section, read_body
from adapters.bitrix.config import SiteConfig
from adapters.bitrix.site import replay
from adapters.bitrix.site.handlers import HANDLERS, SiteCall
from adapters.bitrix.site.payloads import Envelope
from adapters.bitrix.site.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from contracts.errors import ErrorCode, LoyaltyError
from gateway.ledger.service import LoyaltyService

log = logging.getLogger("adapters.bitrix.site")

PATH = "/bitrix/site/events"


def site_config(request: Request) -> SiteConfig:
    section = bitrix_section(request)
    if section is None or section.site is None:
        raise LoyaltyError(ErrorCode.NOT_FOUND, "the site module is not configured (bitrix.site)")
    return section.site


def _reply(text: str, replayed: bool) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(text, media_type="application/json", headers=headers)


def handle(service: LoyaltyService, cfg: SiteConfig, headers: dict[str, str], body: bytes) -> Response:
    now = service.clock()
    verify(
        cfg.secrets,
        headers.get(TIMESTAMP_HEADER.lower()),
        headers.get(SIGNATURE_HEADER.lower()),
        body,
        now,
        cfg.replay_window_seconds,
    )
    try:
        raw: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the body is not JSON") from exc
    if not isinstance(raw, dict):
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the body must be a JSON object")
    envelope = Envelope.model_validate(raw)
    handler = HANDLERS.get(envelope.event)
    if handler is None:
        raise LoyaltyError(
            ErrorCode.VALIDATION_ERROR,
            f"unknown event {envelope.event!r}",
            supported=sorted(HANDLERS),
        )
    fingerprint = replay.request_hash(raw)
    first = replay.answered(service.db, cfg.client, envelope.event_id, fingerprint)
    if first is not None:
        log.info("site event %s (%s) answered again", envelope.event_id, envelope.event)
        return _reply(first, replayed=True)
    try:
        result = handler(SiteCall(service, cfg, cfg.client, envelope.event_id), envelope.data)
    except ValidationError as exc:
        errors = [
            {"loc": ["data", *map(str, e.get("loc", ()))], "message": str(e.get("msg", "")), "type": e["type"]}
            for e in exc.errors()
        ]
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the event's data is invalid", errors=errors) from exc
    reply = json.dumps({"event_id": envelope.event_id, "event": envelope.event, "result": result}, ensure_ascii=False)
    stored = replay.remember(service.db, cfg.client, envelope.event_id, envelope.event, fingerprint, reply, now)
    return _reply(stored, replayed=stored != reply)


def build_router() -> APIRouter:
    router = APIRouter(tags=["bitrix"])

    @router.post(PATH, summary="An event of the 1C-Bitrix site module (signed)")
    async def site_event(request: Request) -> Response:
        cfg = site_config(request)
        body = await read_body(request, cfg.max_body_bytes)
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await run_in_threadpool(handle, request.app.state.service, cfg, headers, body)

    return router

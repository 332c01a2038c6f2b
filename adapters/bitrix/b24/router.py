"""``POST /bitrix24/events``: the handler URL of a Bitrix24 outbound webhook.

Answers 200 once the event is stored (and queued, if supported); 403 ``webhook_token_invalid``
when the portal is unknown or the application token does not match (nothing is stored and the
token is never logged); 404 when no portal is configured.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from adapters.bitrix.b24.events import SUPPORTED, parse_form, record, verify
from adapters.bitrix.common import bitrix_section, read_body
from adapters.bitrix.config import Bitrix24Config
from contracts.errors import ErrorCode, LoyaltyError
from gateway.ledger.service import LoyaltyService

log = logging.getLogger("adapters.bitrix.b24")

PATH = "/bitrix24/events"
MAX_BODY = 64 * 1024


def _section(request: Request) -> Bitrix24Config:
    section = bitrix_section(request)
    if section is None or section.bitrix24 is None:
        raise LoyaltyError(ErrorCode.NOT_FOUND, "no Bitrix24 portal is configured (bitrix.bitrix24)")
    return section.bitrix24


def handle(service: LoyaltyService, section: Bitrix24Config, body: bytes) -> JSONResponse:
    call, token = parse_form(body)
    try:
        portal = verify(section, call, token)
    except LoyaltyError:
        log.warning(
            "Bitrix24 event %s refused: unknown portal or wrong token (member_id %s)", call.event, call.member_id
        )
        raise
    stored = record(service.db, call, service.clock())
    log.info(
        "Bitrix24 %s event %s for %s stored as #%d (%s%s)",
        portal.member_id,
        call.event,
        call.entity_id,
        stored.id,
        stored.status,
        ", duplicate" if stored.duplicate else "",
    )
    return JSONResponse(
        {
            "status": "accepted",
            "id": stored.id,
            "action": "queued" if call.event in SUPPORTED and stored.status != "ignored" else "ignored",
            "duplicate": stored.duplicate,
        }
    )


def build_router() -> APIRouter:
    router = APIRouter(tags=["bitrix"])

    @router.post(PATH, summary="A Bitrix24 outbound webhook call (form-encoded)")
    async def bitrix24_event(request: Request) -> JSONResponse:
        section = _section(request)
        body = await read_body(request, MAX_BODY)
        return await run_in_threadpool(handle, request.app.state.service, section, body)

    return router

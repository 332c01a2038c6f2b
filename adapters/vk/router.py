"""The Callback API endpoint VK calls (dev.vk.com/ru/api/callback/getting-started).

``confirmation`` of the configured community is answered with the configured string (VK checks
the address this way); every other event must carry the configured ``secret`` — one without it
is refused (403) and changes nothing. VK resends an event until the answer is the plain text
``ok``; a database failure answers 500 so the event comes again, and its ``event_id`` makes the
second delivery harmless."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from adapters.vk.bot import VkBot
from gateway.bots.config import VkBotConfig

MAX_EVENT_BYTES = 256 * 1024


def build_router(config: VkBotConfig) -> APIRouter:
    router = APIRouter(tags=["bots"], include_in_schema=False)

    @router.post(config.callback_path)
    async def callback(request: Request) -> PlainTextResponse:
        body = await request.body()
        if len(body) > MAX_EVENT_BYTES:
            return PlainTextResponse("too large", status_code=413)
        try:
            event: Any = json.loads(body)
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        if not isinstance(event, dict) or event.get("group_id") != config.group_id:
            return PlainTextResponse("unknown community", status_code=403)
        if event.get("type") == "confirmation":
            return PlainTextResponse(config.confirmation)
        if not hmac.compare_digest(str(event.get("secret") or "").encode(), config.secret.encode()):
            return PlainTextResponse("wrong secret", status_code=403)
        if event.get("type") == "message_new":
            bot: VkBot = request.app.state.vk_bot
            await run_in_threadpool(bot.handle, event)
        return PlainTextResponse("ok")

    return router

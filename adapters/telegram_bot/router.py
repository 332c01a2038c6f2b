"""The webhook Telegram calls with each update (core.telegram.org/bots/api#setwebhook).

Telegram sends the ``secret_token`` given to ``setWebhook`` in the header
``X-Telegram-Bot-Api-Secret-Token``; a request without the right one is refused with 403 and
changes nothing. Any non-2xx answer makes Telegram resend the update later, so a database failure
answers 500 and the resend is handled then; the update id makes the resend harmless."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from adapters.telegram_bot.bot import TelegramBot

MAX_UPDATE_BYTES = 256 * 1024


def build_router(path: str, secret: str) -> APIRouter:
    router = APIRouter(tags=["bots"], include_in_schema=False)

    @router.post(path)
    async def webhook(request: Request) -> JSONResponse:
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return JSONResponse({"ok": False, "description": "wrong secret token"}, status_code=403)
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            return JSONResponse({"ok": False, "description": "update too large"}, status_code=413)
        try:
            update: Any = json.loads(body)
        except ValueError:
            # Telegram would resend a refused update for a day; an unreadable one never improves.
            return JSONResponse({"ok": True, "ignored": "not JSON"})
        if not isinstance(update, dict):
            return JSONResponse({"ok": True, "ignored": "not an update"})
        bot: TelegramBot = request.app.state.telegram_bot
        sent = await run_in_threadpool(bot.handle, update)
        return JSONResponse({"ok": True, "replies": sent})

    return router

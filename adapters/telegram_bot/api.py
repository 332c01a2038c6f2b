"""A small client of the Telegram Bot API (core.telegram.org/bots/api): the methods the bot uses.

Every method is ``POST https://api.telegram.org/bot<token>/<method>``; the answer is
``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": …, "description": …,
"parameters": {"retry_after": N}}`` (core.telegram.org/bots/api#making-requests,
#responseparameters). 429 "Too Many Requests: retry after N" and 5xx may succeed later; 403
"Forbidden: bot was blocked by the user" and 400 "Bad Request: chat not found" never will."""

from __future__ import annotations

import json
from typing import Any

import httpx

from gateway.bots.delivery import ChatBlocked
from gateway.core.messaging import RetryableSendError, TerminalSendError

PROVIDER = "telegram_bot"


class BotApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def as_send_error(self) -> TerminalSendError | RetryableSendError:
        """The cascade's view: retry later, the customer blocked the bot, or never."""
        if self.code == 429 or self.code >= 500:
            return RetryableSendError(PROVIDER, str(self))
        if self.code == 403:
            return ChatBlocked(PROVIDER, str(self))
        return TerminalSendError(PROVIDER, str(self))


class BotApi:
    def __init__(self, token: str, base_url: str = "https://api.telegram.org", client: httpx.Client | None = None):
        self._url = f"{base_url.rstrip('/')}/bot{token}"
        self.client = client or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    def call(
        self, method: str, params: dict[str, Any], files: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """The method's ``result``; ``BotApiError`` when Telegram refuses, ``httpx`` errors when
        it cannot be reached."""
        url = f"{self._url}/{method}"
        wait: httpx.Timeout | httpx._client.UseClientDefault = (
            httpx.Timeout(timeout, connect=5.0) if timeout is not None else httpx.USE_CLIENT_DEFAULT
        )
        if files:
            data = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in params.items()}
            response = self.client.post(url, data=data, files=files, timeout=wait)
        else:
            response = self.client.post(url, json=params, timeout=wait)
        try:
            answer = response.json()
        except ValueError:
            raise BotApiError(response.status_code, f"HTTP {response.status_code}, not JSON") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            body = answer if isinstance(answer, dict) else {}
            retry_after = (body.get("parameters") or {}).get("retry_after")
            raise BotApiError(
                int(body.get("error_code") or response.status_code), str(body.get("description") or ""), retry_after
            )
        return answer.get("result")

    def send_message(self, chat_id: str, text: str, reply_markup: dict[str, Any] | None = None) -> int:
        params: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if reply_markup is not None:
            params["reply_markup"] = reply_markup
        return int(self.call("sendMessage", params)["message_id"])

    def send_photo(
        self, chat_id: str, png: bytes, caption: str | None = None, reply_markup: dict[str, Any] | None = None
    ) -> int:
        params: dict[str, Any] = {"chat_id": chat_id}
        if caption:
            params["caption"] = caption
        if reply_markup is not None:
            params["reply_markup"] = reply_markup
        result = self.call("sendPhoto", params, files={"photo": ("card.png", png, "image/png")})
        return int(result["message_id"])

    def get_updates(self, offset: int | None, timeout: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"timeout": timeout, "allowed_updates": ["message"]}
        if offset is not None:
            params["offset"] = offset
        result = self.call("getUpdates", params, timeout=timeout + 10.0)
        return list(result or [])

    def set_webhook(self, url: str, secret_token: str) -> None:
        self.call("setWebhook", {"url": url, "secret_token": secret_token, "allowed_updates": ["message"]})


class TelegramSender:
    """Notifications into a chat (``gateway.bots.BotProvider``). Telegram has no client message
    id to dedupe on: a message whose outcome is unknown is not resent here (the cascade's rule)."""

    dedupes = False

    def __init__(self, api: BotApi) -> None:
        self.api = api

    def send_text(self, chat_id: str, text: str, message_id: str) -> str:
        try:
            return str(self.api.send_message(chat_id, text))
        except BotApiError as exc:
            raise exc.as_send_error() from exc
        except httpx.TimeoutException as exc:
            raise RetryableSendError(PROVIDER, f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise RetryableSendError(PROVIDER, f"transport error ({type(exc).__name__})") from exc

"""A small client of the VK API for a community bot (dev.vk.com/ru/api/api-requests): methods
are ``POST https://api.vk.com/method/<name>`` with ``access_token`` and ``v``; the answer is
``{"response": …}`` or ``{"error": {"error_code", "error_msg", "request_params"}}``
(dev.vk.com/ru/reference/errors). ``messages.send`` (dev.vk.com/ru/method/messages.send) takes a
``random_id`` that VK uses to drop a repeated send; a picture goes up through
``photos.getMessagesUploadServer`` → the upload URL → ``photos.saveMessagesPhoto``
(dev.vk.com/ru/api/upload/photo-in-message)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from gateway.bots.delivery import ChatBlocked
from gateway.core.messaging import RetryableSendError, TerminalSendError

PROVIDER = "vk"
# Error codes that may pass: 1 unknown, 6 too many requests per second, 9 flood control, 10 internal.
RETRYABLE = frozenset({1, 6, 9, 10})
# The user does not allow the community's messages (901) or blocked it (900, 902).
BLOCKED = frozenset({900, 901, 902})


class VkApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def as_send_error(self) -> TerminalSendError | RetryableSendError:
        if self.code in RETRYABLE:
            return RetryableSendError(PROVIDER, str(self))
        if self.code in BLOCKED:
            return ChatBlocked(PROVIDER, str(self))
        return TerminalSendError(PROVIDER, str(self))


def random_id(message_id: str) -> int:
    """A stable int32 ``random_id`` for one of our messages: a resend of it is dropped by VK."""
    return int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:4], "big") & 0x7FFFFFFF


class VkApi:
    def __init__(
        self,
        access_token: str,
        version: str = "5.199",
        base_url: str = "https://api.vk.com",
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.version = version
        self.client = client or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    def call(self, method: str, params: dict[str, Any]) -> Any:
        data = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in params.items()}
        data.update(access_token=self.access_token, v=self.version)
        response = self.client.post(f"{self.base_url}/method/{method}", data=data)
        if response.status_code >= 500:
            raise VkApiError(10, f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise VkApiError(1, f"HTTP {response.status_code}, not JSON") from None
        if not isinstance(answer, dict):
            raise VkApiError(1, "not an object")
        if "error" in answer:
            error = answer["error"] or {}
            raise VkApiError(int(error.get("error_code") or 1), str(error.get("error_msg") or ""))
        return answer.get("response")

    def send_message(
        self, peer_id: str, text: str, random: int, keyboard: dict[str, Any] | None = None, attachment: str = ""
    ) -> int:
        params: dict[str, Any] = {"peer_id": peer_id, "message": text, "random_id": random}
        if keyboard is not None:
            params["keyboard"] = keyboard
        if attachment:
            params["attachment"] = attachment
        return int(self.call("messages.send", params))

    def upload_photo(self, peer_id: str, png: bytes) -> str:
        """Upload a picture for a message; returns the ``attachment`` string to send."""
        server = self.call("photos.getMessagesUploadServer", {"peer_id": peer_id})
        response = self.client.post(str(server["upload_url"]), files={"photo": ("card.png", png, "image/png")})
        uploaded = response.json()
        if not uploaded.get("photo") or uploaded.get("photo") == "[]":
            raise VkApiError(129, "the picture was not accepted")
        saved = self.call(
            "photos.saveMessagesPhoto",
            {"photo": uploaded["photo"], "server": uploaded["server"], "hash": uploaded["hash"]},
        )
        photo = saved[0]
        key = f"_{photo['access_key']}" if photo.get("access_key") else ""
        return f"photo{photo['owner_id']}_{photo['id']}{key}"


class VkSender:
    """Notifications into a VK chat (``gateway.bots.BotProvider``); ``random_id`` made from our
    message id lets a resend after an unknown outcome be dropped by VK."""

    dedupes = True

    def __init__(self, api: VkApi) -> None:
        self.api = api

    def send_text(self, chat_id: str, text: str, message_id: str) -> str:
        try:
            return str(self.api.send_message(chat_id, text, random_id(message_id)))
        except VkApiError as exc:
            raise exc.as_send_error() from exc
        except httpx.TimeoutException as exc:
            raise RetryableSendError(PROVIDER, f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise RetryableSendError(PROVIDER, f"transport error ({type(exc).__name__})") from exc

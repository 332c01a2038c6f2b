"""One VK Callback API event in, the bot's answers out (dev.vk.com/ru/api/callback/getting-started,
dev.vk.com/ru/reference/objects/message, dev.vk.com/ru/api/bots/development/keyboard).

``message_new`` carries ``object.message`` (``from_id``, ``peer_id``, ``text``) and, since API
5.103, an ``event_id`` that a resent event repeats. VK cannot vouch for a phone: customers type
it and confirm it with the SMS code."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from adapters.vk.api import VkApi, VkApiError, random_id
from gateway.bots.conversation import BotConversation, Incoming, Reply

log = logging.getLogger("adapters.vk")
CHANNEL = "vk"


def incoming(event: dict[str, Any]) -> Incoming | None:
    obj = event.get("object") or {}
    message = obj.get("message") if isinstance(obj, dict) else None
    if not isinstance(message, dict):
        return None
    peer, sender = message.get("peer_id"), message.get("from_id")
    if not isinstance(peer, int) or not isinstance(sender, int) or sender <= 0 or peer != sender:
        return None  # communities and group chats are not customers
    event_id = event.get("event_id") or f"{peer}:{message.get('conversation_message_id') or message.get('id')}"
    text = message.get("text")
    lang = (obj.get("client_info") or {}).get("lang_id") if isinstance(obj, dict) else None
    return Incoming(
        channel=CHANNEL,
        update_id=str(event_id)[:64],
        chat_id=str(peer),
        user_id=str(sender),
        text=text[:4096] if isinstance(text, str) else "",
        locale="en" if lang == 3 else "ru",  # VK's lang_id 3 is English
    )


def keyboard(reply: Reply) -> dict[str, Any] | None:
    if not reply.buttons:
        return None
    return {
        "one_time": False,
        "buttons": [
            [{"action": {"type": "text", "label": label[:40]}, "color": "secondary"} for label in row]
            for row in reply.buttons
        ],
    }


class VkBot:
    def __init__(self, conversation: BotConversation, api: VkApi) -> None:
        self.conversation = conversation
        self.api = api

    def handle(self, event: dict[str, Any]) -> int:
        message = incoming(event)
        if message is None:
            return 0
        replies = self.conversation.handle(message, shares_contacts=False)
        return sum(self._send(message, index, reply) for index, reply in enumerate(replies))

    def _send(self, message: Incoming, index: int, reply: Reply) -> int:
        try:
            attachment = self.api.upload_photo(message.chat_id, reply.image_png) if reply.image_png else ""
            self.api.send_message(
                message.chat_id, reply.text, random_id(f"{message.update_id}:{index}"), keyboard(reply), attachment
            )
            return 1
        except (VkApiError, httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("vk reply to a chat not sent: %s", exc)
            return 0

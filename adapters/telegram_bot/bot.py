"""One Telegram update in, the bot's answers out (core.telegram.org/bots/api#update,
#message, #contact, #replykeyboardmarkup, #keyboardbutton).

Only private chats are served. A ``contact`` counts as the customer's verified phone only when
``contact.user_id`` is the sender's own id (Telegram fills it for a contact of a Telegram user,
and a "share my phone" button — ``request_contact`` — sends the user's own)."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from adapters.telegram_bot.api import BotApi, BotApiError
from gateway.bots.conversation import BotConversation, Incoming, Reply

log = logging.getLogger("adapters.telegram_bot")
CHANNEL = "telegram"
MAX_WAIT_SECONDS = 5  # a 429 asking to wait longer than this drops the reply (the update is handled)


def incoming(update: dict[str, Any]) -> Incoming | None:
    """The bot's view of an update, or None for what the bot does not answer (edits, groups…)."""
    message = update.get("message")
    if not isinstance(message, dict) or not isinstance(update.get("update_id"), int):
        return None
    chat = message.get("chat") or {}
    sender = message.get("from") or {}
    if chat.get("type") != "private" or sender.get("is_bot") or "id" not in sender or "id" not in chat:
        return None
    contact = message.get("contact")
    own = isinstance(contact, dict) and contact.get("user_id") == sender["id"] and bool(contact.get("phone_number"))
    text = message.get("text")
    return Incoming(
        channel=CHANNEL,
        update_id=str(update["update_id"]),
        chat_id=str(chat["id"]),
        user_id=str(sender["id"]),
        text=text[:4096] if isinstance(text, str) else "",
        contact_phone=str(contact["phone_number"]) if own and isinstance(contact, dict) else None,
        foreign_contact=isinstance(contact, dict) and not own,
        locale="en" if str(sender.get("language_code") or "").startswith("en") else "ru",
    )


def keyboard(reply: Reply) -> dict[str, Any] | None:
    if not reply.buttons:
        return None
    rows: list[list[dict[str, Any]]] = [[{"text": label} for label in row] for row in reply.buttons]
    if reply.ask_contact:
        rows[0][0]["request_contact"] = True
        return {"keyboard": rows, "resize_keyboard": True, "one_time_keyboard": True}
    return {"keyboard": rows, "resize_keyboard": True}


class TelegramBot:
    def __init__(self, conversation: BotConversation, api: BotApi) -> None:
        self.conversation = conversation
        self.api = api

    def handle(self, update: dict[str, Any]) -> int:
        """Handle one update and send its answers; returns how many were sent. A resent update
        sends nothing. Database errors propagate (Telegram then resends the update)."""
        message = incoming(update)
        if message is None:
            return 0
        replies = self.conversation.handle(message, shares_contacts=True)
        return sum(self._send(message.chat_id, reply) for reply in replies)

    def _send(self, chat_id: str, reply: Reply) -> int:
        for attempt in (1, 2):
            try:
                if reply.image_png is not None:
                    self.api.send_photo(chat_id, reply.image_png, reply.text, keyboard(reply))
                else:
                    self.api.send_message(chat_id, reply.text, keyboard(reply))
                return 1
            except BotApiError as exc:
                wait = exc.retry_after
                if exc.code == 429 and attempt == 1 and wait is not None and wait <= MAX_WAIT_SECONDS:
                    time.sleep(wait)
                    continue
                log.warning("telegram reply to a chat not sent: %s", exc)
                return 0
            except httpx.HTTPError as exc:
                log.warning("telegram reply to a chat not sent: %s", type(exc).__name__)
                return 0
        return 0

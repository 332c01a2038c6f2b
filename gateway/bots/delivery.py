"""The bot as a message channel: a ``MessageProvider`` that delivers a customer's notification to
the chat bound to that customer, so that a cascade may be "bot first, SMS if there is no chat"
(and, with ``bots.unread_fallback_hours``, "SMS if the bot's message was not read": fallback.py).

A customer without a bound chat, or one who blocked the bot, is a terminal error for this
provider (the cascade moves on to the next one); the chat is marked blocked so that the next
message does not try it again until the customer writes to the bot."""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from contracts.errors import LoyaltyError
from gateway.bots.chats import ChatStore
from gateway.core.messaging import OutgoingMessage, SendResult, TerminalSendError
from gateway.ledger.context import Clock, utc_now
from gateway.ledger.phones import normalize_phone

log = logging.getLogger("gateway.bots")


class ChatBlocked(TerminalSendError):
    """The customer blocked the bot (or left the chat): nothing can be sent there."""


class ChatSender(Protocol):
    """A channel's way to put a text in a chat; raises the ``gateway.core.messaging`` errors."""

    dedupes: bool  # a resend with the same message id is dropped by the channel (VK random_id)

    def send_text(self, chat_id: str, text: str, message_id: str) -> str: ...


class BotProvider:
    def __init__(self, name: str, channel: str, chats: ChatStore, sender: ChatSender, clock: Clock = utc_now) -> None:
        self.name = name
        self.channel = channel
        self.chats = chats
        self.sender = sender
        self.clock = clock
        self.dedupes = sender.dedupes

    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            phone = normalize_phone(message.phone)
        except LoyaltyError as exc:
            raise TerminalSendError(self.name, "not a phone number") from exc
        chat = self.chats.chat_for_phone(self.channel, phone)
        if chat is None:
            raise TerminalSendError(self.name, f"no {self.channel} chat is bound to this customer")
        try:
            sent_id = self.sender.send_text(chat.chat_id, message.text, message.message_id)
        except ChatBlocked:
            self.chats.set_blocked(self.channel, chat.chat_id)
            raise
        if message.kind == "notification":
            try:
                self.chats.delivered(message.message_id, self.name, self.channel, chat.chat_id, self.clock())
            except SQLAlchemyError:  # the message is sent: losing its unread fallback beats sending it twice
                log.exception("bot delivery of %s not recorded", message.message_id)
        return SendResult(self.name, sent_id)

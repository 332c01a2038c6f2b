"""Chat bots (gateway/bots): the chats customers talk to the bot in, and the updates already
handled (Telegram resends an update, VK an event, until they are answered)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from gateway.store.models import _ts


class BotChat(SQLModel, table=True):
    """One chat of one channel: where the conversation stands, and the customer it is bound to
    once the phone is verified (the chat bot notifications are delivered to)."""

    __tablename__ = "bot_chats"
    __table_args__ = (Index("ix_bot_chats_phone", "channel", "phone"),)

    channel: str = Field(primary_key=True, max_length=16)  # telegram | vk
    chat_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=64)
    step: str = Field(default="start", max_length=32)  # where the conversation stands (gateway/bots/steps.py)
    locale: str = Field(default="ru", max_length=8)
    # E.164; verified once ``customer_id`` is set, a phone waiting for its code before that
    phone: str | None = Field(default=None, max_length=32)
    customer_id: str | None = Field(default=None, max_length=36, index=True)
    referrer_card: str | None = Field(default=None, max_length=64)  # from /start <code>
    answers_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # questionnaire so far
    blocked: bool = Field(default=False)  # the customer blocked the bot: notifications go elsewhere
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class BotUpdate(SQLModel, table=True):
    """An update (Telegram ``update_id``, VK ``event_id``) handled once: a resend finds it here."""

    __tablename__ = "bot_updates"
    __table_args__ = (Index("ix_bot_updates_handled_at", "handled_at"),)

    channel: str = Field(primary_key=True, max_length=16)
    update_id: str = Field(primary_key=True, max_length=64)
    chat_id: str = Field(max_length=64)
    handled_at: datetime = Field(sa_column=_ts())


class BotDelivery(SQLModel, table=True):
    """A notification delivered into a bot chat: read once the customer writes to the bot after
    it; unread for ``bots.unread_fallback_hours`` it goes once by the chain's next provider."""

    __tablename__ = "bot_deliveries"
    __table_args__ = (
        Index("ix_bot_deliveries_unread", "read_at", "fallback_at", "sent_at"),
        Index("ix_bot_deliveries_chat", "channel", "chat_id"),
    )

    notification_id: str = Field(primary_key=True, max_length=64)
    provider: str = Field(max_length=32)  # the bot provider's name in notifications.providers
    channel: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    sent_at: datetime = Field(sa_column=_ts())
    read_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    fallback_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

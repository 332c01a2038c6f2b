"""Where each bot chat's conversation stands, and which updates were handled (``bot_chats``,
``bot_updates``). An update is recorded as handled in the same transaction that saves the
conversation it moved, so a resent update changes nothing and is answered once.

Two updates of one chat handled at once (Telegram may post them in parallel) would each move the
conversation from the same state: the second to save finds the chat changed since it was loaded
and raises ``ChatChanged`` with nothing saved; ``BotConversation.handle`` then handles that update
again from the new state (its ledger calls carry keys made of the update id, so whatever they did
the first time is not done twice)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gateway.store.db import Database
from gateway.store.models_bots import BotChat, BotDelivery, BotUpdate


class ChatChanged(Exception):
    """The chat moved on since this update loaded it: handle the update again."""


@dataclass
class Chat:
    """One customer's chat with the bot in one channel."""

    channel: str
    chat_id: str
    user_id: str
    step: str = "start"
    locale: str = "ru"
    phone: str | None = None
    customer_id: str | None = None
    referrer_card: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False
    loaded: tuple[str | None, ...] | None = None  # the stored state this chat was read from


def _state(row: BotChat) -> tuple[str | None, ...]:
    return (row.step, row.phone, row.customer_id, row.referrer_card, row.answers_json, row.locale)


def _chat(row: BotChat) -> Chat:
    return Chat(
        channel=row.channel,
        chat_id=row.chat_id,
        user_id=row.user_id,
        step=row.step,
        locale=row.locale,
        phone=row.phone,
        customer_id=row.customer_id,
        referrer_card=row.referrer_card,
        answers=json.loads(row.answers_json),
        blocked=row.blocked,
        loaded=_state(row),
    )


class ChatStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def handled(self, channel: str, update_id: str) -> bool:
        with self.db.read() as session:
            return session.get(BotUpdate, (channel, update_id)) is not None

    def load(self, channel: str, chat_id: str) -> Chat | None:
        with self.db.read() as session:
            row = session.get(BotChat, (channel, chat_id))
            return _chat(row) if row is not None else None

    def save(self, chat: Chat, update_id: str, now: datetime) -> bool:
        """Record the update as handled and save the chat, in one transaction. False when the
        update was handled meanwhile (the same update delivered twice at once): nothing saved.
        ``ChatChanged`` when another update moved the chat since ``chat`` was loaded."""
        recorded = False
        try:
            with self.db.write() as session:
                session.add(BotUpdate(channel=chat.channel, update_id=update_id, chat_id=chat.chat_id, handled_at=now))
                session.flush()
                recorded = True
                row = session.exec(
                    select(BotChat)
                    .where(BotChat.channel == chat.channel, BotChat.chat_id == chat.chat_id)
                    .with_for_update()
                ).first()
                if (_state(row) if row is not None else None) != chat.loaded:
                    raise ChatChanged(f"{chat.channel} chat changed while update {update_id} was handled")
                if row is None:
                    row = BotChat(
                        channel=chat.channel, chat_id=chat.chat_id, user_id=chat.user_id, created_at=now, updated_at=now
                    )
                row.user_id = chat.user_id
                row.step = chat.step
                row.locale = chat.locale
                row.phone = chat.phone
                row.customer_id = chat.customer_id
                row.referrer_card = chat.referrer_card
                row.answers_json = json.dumps(chat.answers, ensure_ascii=False)
                row.blocked = False  # the customer wrote: they have not blocked the bot
                row.updated_at = now
                session.add(row)
                session.flush()
                chat.loaded = _state(row)
                # Writing to the bot reads what it sent before: no fallback for those messages.
                session.execute(
                    update(BotDelivery)
                    .where(
                        col(BotDelivery.channel) == chat.channel,
                        col(BotDelivery.chat_id) == chat.chat_id,
                        col(BotDelivery.read_at).is_(None),
                        col(BotDelivery.sent_at) <= now,
                    )
                    .values(read_at=now)
                )
        except IntegrityError as exc:
            if recorded:  # the chat's first update and another one of it inserted the chat at once
                raise ChatChanged(f"{chat.channel} chat created while update {update_id} was handled") from exc
            return False
        return True

    def chat_for_phone(self, channel: str, phone: str) -> Chat | None:
        """The chat of this channel bound to the customer with this phone (the one written in
        last), unless the customer blocked the bot."""
        with self.db.read() as session:
            row = session.exec(
                select(BotChat)
                .where(
                    BotChat.channel == channel,
                    BotChat.phone == phone,
                    col(BotChat.customer_id).is_not(None),
                    col(BotChat.blocked).is_(False),
                )
                .order_by(col(BotChat.updated_at).desc())
                .limit(1)
            ).first()
            return _chat(row) if row is not None else None

    def delivered(self, notification_id: str, provider: str, channel: str, chat_id: str, now: datetime) -> None:
        """Remember a notification delivered into a chat (once: a resend keeps the first time)."""
        with self.db.write() as session:
            if session.get(BotDelivery, notification_id) is None:
                session.add(
                    BotDelivery(
                        notification_id=notification_id,
                        provider=provider,
                        channel=channel,
                        chat_id=chat_id,
                        sent_at=now,
                    )
                )

    def set_blocked(self, channel: str, chat_id: str) -> None:
        with self.db.write() as session:
            row = session.get(BotChat, (channel, chat_id))
            if row is not None:
                row.blocked = True
                session.add(row)

    def purge_updates(self, before: datetime) -> int:
        """Forget handled updates older than ``before`` (Telegram keeps an unanswered update 24 h)."""
        with self.db.write() as session:
            result = session.execute(delete(BotUpdate).where(col(BotUpdate.handled_at) < before))
            return int(getattr(result, "rowcount", 0) or 0)

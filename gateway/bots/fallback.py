"""Unread bot messages go by the next provider, once (``bots.unread_fallback_hours``).

A notification delivered into a bot chat counts as read when the customer writes to the bot
after it (``ChatStore.save``). One still unread after N hours is sent again as a new
notification (``unread:<hash of the first id>``, so at most once) through the same chain, with
the bot provider recorded as having refused it: the cascade's own rule ("refused earlier") then
skips the bot and the message goes by the next provider (SMS). Each delivery is claimed by an
update that only one replica's transaction can make, so running the job on every replica sends
nothing twice."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from gateway.config import QuietHours
from gateway.notify.queue import enqueue_many
from gateway.store.db import Database
from gateway.store.models import Notification, NotificationAttempt
from gateway.store.models_bots import BotDelivery

BATCH = 200  # deliveries per transaction


def fallback_id(notification_id: str) -> str:
    return "unread:" + hashlib.sha256(notification_id.encode()).hexdigest()[:40]


def send_unread_on(db: Database, hours: int, now: datetime, quiet: QuietHours | None = None) -> int:
    """Queue the next provider's copy of every bot message unread for ``hours``; returns how many."""
    cutoff = now - timedelta(hours=hours)
    queued = 0
    while True:
        with db.read() as session:
            due = session.exec(
                select(BotDelivery, Notification)
                .join(Notification, col(Notification.id) == col(BotDelivery.notification_id))
                .where(
                    col(BotDelivery.read_at).is_(None),
                    col(BotDelivery.fallback_at).is_(None),
                    col(BotDelivery.sent_at) <= cutoff,
                )
                .order_by(col(BotDelivery.sent_at))
                .limit(BATCH)
            ).all()
        if not due:
            return queued
        with db.write() as session:
            copies: list[Notification] = []
            for delivery, original in due:
                claimed = session.execute(
                    update(BotDelivery)
                    .where(
                        col(BotDelivery.notification_id) == delivery.notification_id,
                        col(BotDelivery.read_at).is_(None),
                        col(BotDelivery.fallback_at).is_(None),
                    )
                    .values(fallback_at=now)
                )
                if not getattr(claimed, "rowcount", 0):
                    continue  # read meanwhile, or another replica took it
                copy = Notification(
                    id=fallback_id(original.id),
                    kind=original.kind,
                    topic=original.topic,
                    phone=original.phone,
                    text=original.text,
                    created_at=now,
                )
                copies.append(copy)
                session.add(
                    NotificationAttempt(
                        notification_id=copy.id,
                        provider=delivery.provider,
                        outcome="terminal",
                        error=f"delivered by the bot, not read within {hours} h",
                        started_at=now,
                        finished_at=now,
                    )
                )
            queued += enqueue_many(session, copies, now, quiet)
        if len(due) < BATCH:
            return queued

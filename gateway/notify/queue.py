"""Writing a customer message: a ``notifications`` row plus its outbox message, in the caller's
transaction, postponed past quiet hours. The message id is the dedupe key: writing the same
notification twice (a retried job, a replayed event) sends it once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import Session, col, select

from gateway.config import QuietHours
from gateway.store.models import Notification, OutboxMessage

DESTINATION = "notify"


def _parse(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def after_quiet_hours(now: datetime, quiet: QuietHours | None) -> datetime:
    """``now``, or the end of the quiet window if ``now`` falls inside it."""
    if quiet is None:
        return now
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    start, end = _parse(quiet.start), _parse(quiet.end)
    moment = local.time()
    inside = (start <= moment or moment < end) if start > end else (start <= moment < end)
    if not inside or start == end:
        return now
    end_today = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    wake = end_today if moment < end else end_today + timedelta(days=1)
    return wake.astimezone(now.tzinfo)


def enqueue(
    session: Session,
    notification: Notification,
    now: datetime,
    quiet: QuietHours | None = None,
) -> bool:
    """Write the notification and its outbox message; False if it already exists."""
    return enqueue_many(session, [notification], now, quiet) == 1


def enqueue_many(
    session: Session,
    notifications: Sequence[Notification],
    now: datetime,
    quiet: QuietHours | None = None,
) -> int:
    """Write the notifications not written yet (by id) and their outbox messages: one read and
    two multi-row inserts whatever their number, so a daily job writing hundreds of messages
    holds the write lock for milliseconds. Returns how many were new."""
    fresh: dict[str, Notification] = {}
    for notification in notifications:
        fresh.setdefault(notification.id, notification)
    if not fresh:
        return 0
    written = session.exec(select(Notification.id).where(col(Notification.id).in_(list(fresh)))).all()
    for ident in written:
        del fresh[ident]
    if not fresh:
        return 0
    session.execute(insert(Notification), [n.model_dump() for n in fresh.values()])
    session.execute(
        insert(OutboxMessage),
        [
            {
                "destination": DESTINATION,
                "kind": f"notify.{n.topic}",
                "dedupe_key": f"{DESTINATION}|{n.id}"[:255],
                "payload_json": json.dumps({"notification_id": n.id}),
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now if n.kind == "verification" else after_quiet_hours(now, quiet),
                "created_at": now,
            }
            for n in fresh.values()
        ],
    )
    return len(fresh)

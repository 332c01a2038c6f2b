"""Writing a customer message: a ``notifications`` row plus its outbox message, in the caller's
transaction, postponed past quiet hours. The message id is the dedupe key: writing the same
notification twice (a retried job, a replayed event) sends it once."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

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
    if session.get(Notification, notification.id) is not None:
        return False
    session.add(notification)
    not_before = now if notification.kind == "verification" else after_quiet_hours(now, quiet)
    session.add(
        OutboxMessage(
            destination=DESTINATION,
            kind=f"notify.{notification.topic}",
            dedupe_key=f"{DESTINATION}|{notification.id}"[:255],
            payload_json=json.dumps({"notification_id": notification.id}),
            state="pending",
            next_attempt_at=not_before,
            created_at=now,
        )
    )
    session.flush()
    return True

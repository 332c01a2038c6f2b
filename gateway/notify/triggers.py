"""Ledger events and dates that send customers a message: points accrued or spent (from the
``receipt.committed`` event, in the same transaction), points about to expire and birthdays
(daily jobs). Each message has a deterministic id, so running a job twice sends nothing twice."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import extract
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from gateway.config import NotificationsConfig
from gateway.ledger.service import LoyaltyService
from gateway.notify.queue import enqueue_many
from gateway.outbound.outbox import Event
from gateway.store.models import Account, Card, Customer, Lot, Notification

log = logging.getLogger(__name__)

WRITE_BATCH = 100  # messages written per transaction (two multi-row inserts: milliseconds of the write lock)


@dataclass(frozen=True)
class _Due:
    ident: str
    topic: str
    phone: str
    values: dict[str, Any]


class NotificationTriggers:
    def __init__(self, config: NotificationsConfig) -> None:
        self.config = config

    def _text(self, topic: str, values: dict[str, Any]) -> str | None:
        """The message text, or None when the template cannot be filled: one bad template
        (a field its trigger does not provide) is logged and skipped, never stops the others
        nor the receipt whose event asked for it."""
        try:
            return self.config.templates[topic].format(**values)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            log.error(
                "notification template %r cannot be filled (%s: %s); message skipped", topic, type(exc).__name__, exc
            )
            return None

    def _message(self, now: datetime, due: _Due) -> Notification | None:
        text = self._text(due.topic, due.values)
        if text is None:
            return None
        return Notification(
            id=due.ident[:64], kind="notification", topic=due.topic, phone=due.phone, text=text, created_at=now
        )

    def _notify(self, session: Session, now: datetime, due: list[_Due]) -> int:
        messages = [m for m in (self._message(now, d) for d in due) if m is not None]
        return enqueue_many(session, messages, now, self.config.quiet_hours)

    def on_events(self, session: Session, events: list[Event], now: datetime) -> None:
        """Event hook of the ledger service: runs inside the ledger's transaction."""
        wanted = set(self.config.triggers)
        if not wanted & {"points_accrued", "points_spent"}:
            return
        for event in events:
            if event.name != "receipt.committed":
                continue
            data = event.payload
            card = session.get(Card, str(data.get("card_number")))
            customer = session.get(Customer, card.customer_id) if card else None
            if card is None or customer is None or not customer.phone:
                continue
            balance = data.get("balance", {}).get("available", 0)
            for topic, points in (
                ("points_accrued", data.get("points_accrued")),
                ("points_spent", data.get("points_spent")),
            ):
                if topic in wanted and points:
                    ident = f"{topic}:{data.get('transaction_id')}"
                    values = {"points": points, "balance": balance}
                    self._notify(session, now, [_Due(ident, topic, customer.phone, values)])

    def run_daily_jobs(self, service: LoyaltyService) -> int:
        """Points about to expire and birthdays; safe to run as often as you like.

        What is due is read in one read transaction with set-based queries; the messages are
        then written ``WRITE_BATCH`` at a time in multi-row inserts, skipping those already
        written (their ids are deterministic), so a run never holds the write lock for long."""
        now = service.clock()
        due: list[_Due] = []
        with service.db.read() as session:
            if "points_expiring" in self.config.triggers:
                due += self._expiring(session, now)
            if "birthday" in self.config.triggers:
                due += self._birthdays(session, now)
        sent = 0
        for start in range(0, len(due), WRITE_BATCH):
            chunk = due[start : start + WRITE_BATCH]
            with service.db.write() as session:
                sent += self._notify(session, now, chunk)
        return sent

    def _expiring(self, session: Session, now: datetime) -> list[_Due]:
        horizon = now + timedelta(days=self.config.expiring_days)
        points: dict[tuple[str, str], int] = defaultdict(int)
        phones: dict[str, str] = {}
        rows = session.execute(
            sa_select(col(Lot.account_id), col(Lot.expires_at), col(Lot.remaining), col(Customer.phone))
            .join(Account, col(Account.id) == col(Lot.account_id))
            .join(Customer, col(Customer.id) == col(Account.customer_id))
            .where(
                col(Lot.remaining) > 0,
                col(Lot.expires_at).is_not(None),
                col(Lot.expires_at) > now,
                col(Lot.expires_at) <= horizon,
                col(Lot.available_at) <= now,
                col(Customer.phone).is_not(None),
            )
        ).all()
        for account_id, expires_at, remaining, phone in rows:
            points[(account_id, expires_at.date().isoformat())] += remaining
            phones[account_id] = phone
        return [
            _Due(f"expiring:{account_id}:{day}", "points_expiring", phones[account_id], {"points": total, "date": day})
            for (account_id, day), total in points.items()
        ]

    def _birthdays(self, session: Session, now: datetime) -> list[_Due]:
        born_today = session.execute(
            sa_select(col(Customer.id), col(Customer.phone), col(Customer.name)).where(
                col(Customer.phone).is_not(None),
                extract("month", col(Customer.birth_date)) == now.month,
                extract("day", col(Customer.birth_date)) == now.day,
            )
        ).all()
        return [
            _Due(f"birthday:{customer_id}:{now.year}", "birthday", phone, {"name": name or ""})
            for customer_id, phone, name in born_today
        ]

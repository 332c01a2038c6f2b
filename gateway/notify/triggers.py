"""Ledger events and dates that send customers a message: points accrued or spent (from the
``receipt.committed`` event, in the same transaction), points about to expire and birthdays
(daily jobs). Each message has a deterministic id, so running a job twice sends nothing twice."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from gateway.config import NotificationsConfig
from gateway.ledger.service import LoyaltyService
from gateway.notify.queue import enqueue
from gateway.outbound.outbox import Event
from gateway.store.models import Account, Card, Customer, Lot, Notification


class NotificationTriggers:
    def __init__(self, config: NotificationsConfig) -> None:
        self.config = config

    def _notify(self, session: Session, now: datetime, ident: str, topic: str, phone: str, **values: Any) -> bool:
        text = self.config.templates[topic].format(**values)
        return enqueue(
            session,
            Notification(id=ident[:64], kind="notification", topic=topic, phone=phone, text=text, created_at=now),
            now,
            self.config.quiet_hours,
        )

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
                    self._notify(session, now, ident, topic, customer.phone, points=points, balance=balance)

    def run_daily_jobs(self, service: LoyaltyService) -> int:
        """Points about to expire and birthdays; safe to run as often as you like."""
        now = service.clock()
        sent = 0
        with service.db.write() as session:
            if "points_expiring" in self.config.triggers:
                sent += self._expiring(session, service, now)
            if "birthday" in self.config.triggers:
                sent += self._birthdays(session, now)
        return sent

    def _expiring(self, session: Session, service: LoyaltyService, now: datetime) -> int:
        horizon = now + timedelta(days=self.config.expiring_days)
        due: dict[tuple[str, str], int] = defaultdict(int)
        for lot in session.exec(
            select(Lot).where(
                col(Lot.remaining) > 0,
                col(Lot.expires_at).is_not(None),
                col(Lot.expires_at) > now,
                col(Lot.expires_at) <= horizon,
                col(Lot.available_at) <= now,
            )
        ).all():
            assert lot.expires_at is not None
            due[(lot.account_id, lot.expires_at.date().isoformat())] += lot.remaining
        sent = 0
        for (account_id, day), points in due.items():
            account = session.get(Account, account_id)
            customer = session.get(Customer, account.customer_id) if account else None
            if customer is None or not customer.phone:
                continue
            sent += self._notify(
                session,
                now,
                f"expiring:{account_id}:{day}",
                "points_expiring",
                customer.phone,
                points=points,
                date=day,
            )
        return sent

    def _birthdays(self, session: Session, now: datetime) -> int:
        sent = 0
        for customer in session.exec(select(Customer).where(col(Customer.birth_date).is_not(None))).all():
            born = customer.birth_date
            if born is None or not customer.phone or (born.month, born.day) != (now.month, now.day):
                continue
            sent += self._notify(
                session,
                now,
                f"birthday:{customer.id}:{now.year}",
                "birthday",
                customer.phone,
                name=customer.name or "",
            )
        return sent

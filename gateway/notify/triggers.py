"""Ledger events and dates that send customers a message: points accrued or spent (from the
``receipt.committed`` event, in the same transaction), points about to expire, birthdays and the
lifecycle triggers of ``gateway/notify/lifecycle.py`` and ``gateway/notify/reminders.py`` (daily
jobs). Each message has a deterministic id, so running a job twice sends nothing twice. Each
lifecycle trigger is also a webhook event (``customer.<topic>``, keyed by the message id, in the
message's transaction); a trigger in ``webhook_only`` is the event alone."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import extract
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from gateway.config import NotificationsConfig
from gateway.core.messaging import shown_date
from gateway.ledger.accounts import add_lot, lock_account
from gateway.ledger.context import Ctx
from gateway.ledger.service import LoyaltyService
from gateway.notify import lifecycle, reminders
from gateway.notify.queue import enqueue_many
from gateway.outbound.outbox import Event, publish
from gateway.store.models import Account, Card, Customer, Lot, Notification
from gateway.store.models_program import BonusGrant

log = logging.getLogger(__name__)

WRITE_BATCH = 100  # messages written per transaction (two multi-row inserts: milliseconds of the write lock)
# Messages with win-back gift points per transaction: each books a lot under its account lock
# (~3.5 ms on SQLite), so 25 keep the write lock under ~100 ms while the tills are selling.
GIFT_BATCH = 25
CLIENT = "system:notify"  # who the ledger entries of win-back gifts are booked for


@dataclass(frozen=True)
class _Due:
    ident: str
    topic: str
    phone: str
    values: dict[str, Any]
    customer_id: str | None = None  # lifecycle messages: also a webhook event naming the customer
    gift: lifecycle.Gift | None = None
    mark: lifecycle.AlertMark | None = None


def trigger_of(topic: str) -> str:
    """The configured trigger a message topic belongs to (a follow-up is its trigger's)."""
    return {"win_back_follow_up": "win_back", "phone_unconfirmed_again": "phone_unconfirmed"}.get(topic, topic)


class NotificationTriggers:
    def __init__(self, config: NotificationsConfig) -> None:
        self.config = config

    def _text(self, topic: str, values: dict[str, Any]) -> str | None:
        """The message text, or None when the template cannot be filled: one bad template
        (a field its trigger does not provide) is logged and skipped, never stops the others
        nor the receipt whose event asked for it."""
        try:
            return self.config.template(topic).format(**values)
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
        silent = set(self.config.webhook_only)
        messages = [m for m in (self._message(now, d) for d in due if trigger_of(d.topic) not in silent) if m]
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
        """Points about to expire, birthdays and the lifecycle triggers; safe to run as often
        as you like, on every replica.

        What is due is read in one read transaction with set-based queries; the messages are
        then written ``WRITE_BATCH`` at a time (``GIFT_BATCH`` with gifts) in multi-row inserts, skipping those already
        written (their ids are deterministic), so a run never holds the write lock for long.
        A win-back gift is booked in its message's batch, once per grant key."""
        now = service.clock()
        due: list[_Due] = []
        if "balance_high" in self.config.triggers:
            with service.db.write() as session:  # one short UPDATE before the read
                reminders.rearm_balance_alerts(session, self.config, now)
        with service.db.read() as session:
            if "points_expiring" in self.config.triggers:
                due += self._expiring(session, now)
            if "birthday" in self.config.triggers:
                due += self._birthdays(session, now)
            due += self._lifecycle(session, service, now)
        plain = [d for d in due if d.gift is None]
        gifted = [d for d in due if d.gift is not None]
        chunks = [plain[i : i + WRITE_BATCH] for i in range(0, len(plain), WRITE_BATCH)]
        chunks += [gifted[i : i + GIFT_BATCH] for i in range(0, len(gifted), GIFT_BATCH)]
        sent = 0
        for chunk in chunks:
            for attempt in (1, 2):
                try:
                    with service.db.write() as session:
                        sent += self._write_batch(session, service, now, chunk)
                    break
                except IntegrityError:
                    # A replica wrote some of this batch at the same moment: the second try
                    # finds its messages and grants and writes only the rest.
                    if attempt == 2:
                        raise
        return sent

    def _lifecycle(self, session: Session, service: LoyaltyService, now: datetime) -> list[_Due]:
        wanted = set(self.config.triggers)
        found: list[lifecycle.Due] = []
        if "win_back" in wanted:
            found += lifecycle.win_back(session, self.config, now)
        if "tier_changed" in wanted:
            found += lifecycle.tier_changed(session, self.config, service.program, now)
        if "tier_close" in wanted:
            found += lifecycle.tier_close(session, self.config, service.program, now)
        if "points_expired" in wanted:
            found += lifecycle.points_expired(session, self.config, now)
        if "balance_high" in wanted:
            found += reminders.balance_high(session, self.config, now)
        if "phone_unconfirmed" in wanted:
            found += reminders.phone_unconfirmed(session, self.config, now)
        return [_Due(d.ident, d.topic, d.phone, d.values, d.customer_id, d.gift, d.mark) for d in found]

    def _write_batch(self, session: Session, service: LoyaltyService, now: datetime, chunk: list[_Due]) -> int:
        gifts = sorted((d.gift for d in chunk if d.gift is not None), key=lambda g: g.account_id)  # lock order
        if gifts:
            ctx = Ctx(service.db, session, service.program, now, CLIENT)
            for gift in gifts:
                self._grant(ctx, gift)
        for due in chunk:
            if due.mark is not None:
                reminders.record_alert(session, due.mark, now)
        sent = self._notify(session, now, chunk)
        events = [
            Event(
                f"customer.{d.topic}",
                d.ident,
                {"customer_id": d.customer_id, "topic": d.topic, **{k: v for k, v in d.values.items() if k != "name"}},
            )
            for d in chunk
            if d.customer_id is not None
        ]
        if events and service.subscriptions:
            publish(session, service.subscriptions, events, now)
        return sent

    @staticmethod
    def _grant(ctx: Ctx, gift: lifecycle.Gift) -> None:
        """Book the gift once: under the account lock (a replica granting the same key waits,
        then finds the grant), through the ledger's own lot and entry."""
        lock_account(ctx, gift.account_id)
        if ctx.session.get(BonusGrant, gift.key) is not None:
            return
        lot = add_lot(
            ctx,
            gift.account_id,
            "win_back",
            gift.points,
            entry_kind="win_back",
            available_at=ctx.now,
            expires_at=gift.expires_at,
        )
        ctx.session.add(
            BonusGrant(
                key=gift.key,
                kind="win_back",
                customer_id=gift.customer_id,
                account_id=gift.account_id,
                points=gift.points,
                lot_id=lot.id,
                description="Подарок за возвращение",
                created_at=ctx.now,
            )
        )
        ctx.session.flush()

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
            _Due(
                f"expiring:{account_id}:{day}",
                "points_expiring",
                phones[account_id],
                {"points": total, "date": shown_date(date.fromisoformat(day))},
            )
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

"""The planner: a mailing's audience walked in batches of customers, each batch one short write
transaction that records who is planned (``mailing_recipients``), writes their messages and
outbox rows (``gateway.notify.queue.enqueue_many``), books their gift points and moves the
mailing's cursor.

* Idempotent: a customer is planned once per mailing (the recipients' primary key, checked in the
  batch's own transaction, and the messages' ids ``m:<mailing>:<customer>``); the cursor and the
  counters move in the same transaction as the rows, so a crash or a second planner at the same
  moment leaves nothing planned twice — it re-reads the cursor and goes on from there.
* Consent: advertising goes only to customers who agreed (``ad_consent`` true), service messages
  to everyone reachable; a customer without a phone (SMS) or e-mail address is skipped.
* Holdout: of the customers who may receive it, a share decided by a hash of the mailing and the
  customer (the same on every run) is planned as ``holdout`` and gets nothing.
* Pace: messages get send slots of ``per_minute`` per minute, starting now (or at ``start_at``);
  a slot that falls in the quiet hours moves to their end. The relay sends each when its slot
  comes, so a mailing never floods the providers nor the tills' database.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from contracts.accounts import CampaignGenerateRequest
from gateway.audience import page
from gateway.config import GatewayConfig, QuietHours
from gateway.ledger.context import Ctx
from gateway.ledger.grants import PointsToGrant, grant_to
from gateway.ledger.service import LoyaltyService
from gateway.mailings import store, texts, unsubscribe
from gateway.mailings.config import Channel
from gateway.notify.queue import after_quiet_hours, enqueue_many
from gateway.store.models import Account, Card, Customer, Lot, Notification
from gateway.store.models_mailings import Mailing, MailingRecipient

log = logging.getLogger(__name__)

CLIENT = "system:mailings"
GIFT_BATCH = 25  # customers per transaction when each books gift points under its account lock
TOPIC = "mailing"


def notification_kind(channel: Channel) -> str:
    """The cascade's chain of a mailing's messages (``mailings.chains``, built in wiring)."""
    return f"mail_{channel}"


def message_id(mailing_id: str, customer_id: str) -> str:
    return f"m:{mailing_id}:{customer_id}"


def in_holdout(mailing_id: str, customer_id: str, percent: int) -> bool:
    """Deterministic: the same customer is in or out of a mailing's holdout on every run."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{mailing_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


@dataclass
class _Customer:
    id: str
    phone: str | None
    email: str | None
    name: str | None
    ad_consent: bool | None
    account_id: str | None
    card: str | None


@dataclass
class Progress:
    mailing_id: str
    state: str
    planned: int  # customers planned by this call (recipients and holdout)
    queued: int  # messages written by this call


def _next_page(
    session: Session, service: LoyaltyService, mailing: Mailing, batch: int
) -> tuple[list[_Customer], str | None]:
    """The audience's customers in the next window of ``batch`` customers, and the window's last id."""
    ids, last = page(session, service.program, store.audience_of(mailing), mailing.cursor, batch)
    if not ids:
        return [], last
    card = (
        sa_select(func.min(col(Card.number)))
        .where(col(Card.customer_id) == col(Customer.id), col(Card.status) == "active")
        .scalar_subquery()
    )
    rows = session.execute(
        sa_select(
            col(Customer.id),
            col(Customer.phone),
            col(Customer.email),
            col(Customer.name),
            col(Customer.ad_consent),
            col(Account.id),
            card,
        )
        .outerjoin(Account, col(Account.customer_id) == col(Customer.id))
        .where(col(Customer.id).in_(ids))
        .order_by(col(Customer.id))
    ).all()
    return [_Customer(*row) for row in rows], last


def _balances(session: Session, account_ids: list[str], now: datetime) -> dict[str, int]:
    rows = session.execute(
        sa_select(col(Lot.account_id), func.sum(col(Lot.remaining)))
        .where(
            col(Lot.account_id).in_(account_ids),
            col(Lot.remaining) > 0,
            col(Lot.available_at) <= now,
            (col(Lot.expires_at).is_(None)) | (col(Lot.expires_at) > now),
        )
        .group_by(col(Lot.account_id))
    ).all()
    return {account: int(total or 0) for account, total in rows}


class Slots:
    """Send slots of ``per_minute`` messages, never inside the quiet hours."""

    def __init__(self, mailing: Mailing, now: datetime, quiet: QuietHours | None) -> None:
        start = max(filter(None, [mailing.slot_at, mailing.start_at, now]))
        self.quiet = quiet
        self.per_minute = mailing.per_minute
        self.at = after_quiet_hours(start, quiet)
        self.used = mailing.slot_used if mailing.slot_at is not None and start == mailing.slot_at else 0

    def take(self) -> datetime:
        if self.used >= self.per_minute:
            self.at = after_quiet_hours(self.at + timedelta(minutes=1), self.quiet)
            self.used = 0
        self.used += 1
        return self.at


def _values(
    mailing: Mailing, customer: _Customer, balance: int, code: str | None, link: str | None, zone: ZoneInfo
) -> dict[str, Any]:
    return {
        "name": customer.name or "",
        "card": customer.card or "",
        "balance": balance + mailing.gift_points,
        "promo_code": code or mailing.shared_code or "",
        "gift_points": mailing.gift_points,
        "gift_expires": f"{mailing.gift_expires_at.astimezone(zone):%d.%m.%Y}" if mailing.gift_expires_at else "",
        "unsubscribe_url": link or "",
    }


def _personal_codes(service: LoyaltyService, mailing: Mailing, count: int) -> list[str]:
    """``count`` new codes of the mailing's campaign for this batch (the same batch again when
    the batch is re-run: the generation's key names the mailing, the cursor and the count)."""
    if count == 0 or mailing.campaign_id is None:
        return []
    key = f"mailing:{mailing.id}:{mailing.cursor}:{count}"
    info = service.campaign_generate(CLIENT, key, CampaignGenerateRequest(campaign_id=mailing.campaign_id, count=count))
    return [c.code for c in service.campaign_codes(CLIENT, mailing.campaign_id, info.batch_id).codes]


@dataclass
class _Batch:
    """One batch, built before its write transaction (which then only checks and inserts)."""

    read: Mailing
    page: list[_Customer]
    last: str | None  # the window's last customer id: the next cursor (None: the audience is done)
    held: list[_Customer]
    sending: list[_Customer]
    messages: dict[str, tuple[datetime, Notification]]  # customer id -> (send slot, message)
    rows: dict[str, dict[str, Any]]  # customer id -> its mailing_recipients row
    slot_at: datetime
    slot_used: int
    skipped_contact: int
    skipped_consent: int


def plan_batch(service: LoyaltyService, config: GatewayConfig, mailing_id: str) -> Progress:
    """Plan the next batch of a mailing that is sending; ``state`` says whether more remain."""
    settings = config.mailings
    now = service.clock()
    with service.db.read() as session:
        mailing = store.get(session, mailing_id)
        if mailing.state != "sending":
            return Progress(mailing_id, mailing.state, 0, 0)
        batch_size = min(settings.batch, GIFT_BATCH) if mailing.gift_points else settings.batch
        page, last = _next_page(session, service, mailing, batch_size)
        key = unsubscribe.link_key(session)
        advertising = mailing.kind == "advertising"
        channel: Channel = "email" if mailing.channel == "email" else "sms"
        template = texts.full_template(
            mailing.template, advertising=advertising, channel=channel, footers=settings.footers
        )
        balances = (
            _balances(session, [c.account_id for c in page if c.account_id], now) if "{balance}" in template else {}
        )
    eligible: list[_Customer] = []
    skipped_contact = skipped_consent = 0
    for customer in page:
        if (customer.email if channel == "email" else customer.phone) is None or customer.account_id is None:
            skipped_contact += 1
        elif advertising and customer.ad_consent is not True:
            skipped_consent += 1
        else:
            eligible.append(customer)
    held = [c for c in eligible if in_holdout(mailing.id, c.id, mailing.holdout_percent)]
    sending = [c for c in eligible if not in_holdout(mailing.id, c.id, mailing.holdout_percent)]
    codes = _personal_codes(service, mailing, len(sending)) if mailing.promo_mode == "personal" else []
    slots = Slots(mailing, now, config.notifications.quiet_hours)
    rows: dict[str, dict[str, Any]] = {
        c.id: {
            "mailing_id": mailing.id,
            "customer_id": c.id,
            "cohort": "holdout",
            "notification_id": None,  # every row names every column: one executemany
            "promo_hint": None,
            "created_at": now,
        }
        for c in held
    }
    messages: dict[str, tuple[datetime, Notification]] = {}
    public_url = settings.public_url
    for index, customer in enumerate(sending):
        code = codes[index] if index < len(codes) else None
        link = (
            unsubscribe.url(public_url, unsubscribe.make_token(key, mailing.id, customer.id, channel))
            if advertising and key is not None and public_url
            else None
        )
        balance = balances.get(customer.account_id or "", 0)
        values = _values(mailing, customer, balance, code, link, service.program.zone)
        ident = message_id(mailing.id, customer.id)
        # model_construct: our own values, six times cheaper than validating them again
        message = Notification.model_construct(
            id=ident,
            kind=notification_kind(channel),
            topic=TOPIC,
            phone=customer.phone or "",
            text=texts.render(template, values),
            created_at=now,
        )
        messages[customer.id] = (slots.take(), message)
        rows[customer.id] = {
            "mailing_id": mailing.id,
            "customer_id": customer.id,
            "cohort": "recipient",
            "notification_id": ident,
            "promo_hint": f"…{code[-2:]}" if code else None,
            "created_at": now,
        }
    batch = _Batch(
        mailing, page, last, held, sending, messages, rows, slots.at, slots.used, skipped_contact, skipped_consent
    )
    for attempt in (1, 2):
        try:
            with service.db.write() as session:
                return _write_batch(session, service, config, batch, now)
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("mailing %s: another planner wrote this batch at the same moment; reading it again", mailing_id)
    raise AssertionError("unreachable")  # pragma: no cover


def _write_batch(
    session: Session, service: LoyaltyService, config: GatewayConfig, batch: _Batch, now: datetime
) -> Progress:
    mailing = store.get(session, batch.read.id)
    if mailing.state != "sending" or mailing.cursor != batch.read.cursor:
        # Another planner moved on (or the mailing was cancelled) since this batch was read.
        return Progress(mailing.id, mailing.state, 0, 0)
    if batch.last is None:
        mailing.state = "queued"
        mailing.queued_at = now
        session.add(mailing)
        return Progress(mailing.id, mailing.state, 0, 0)
    planned = set(
        session.execute(
            sa_select(col(MailingRecipient.customer_id)).where(
                col(MailingRecipient.mailing_id) == mailing.id,
                col(MailingRecipient.customer_id).in_(list(batch.rows)),
            )
        ).scalars()
    )
    held = [c for c in batch.held if c.id not in planned]
    sending = [c for c in batch.sending if c.id not in planned]
    if mailing.gift_points and sending:
        gift = PointsToGrant(mailing.id, mailing.gift_points, mailing.gift_expires_at, f"Подарок: {mailing.name}")
        grant_to(Ctx(service.db, session, service.program, now, CLIENT), gift, [c.id for c in sending])
    rows = [row for customer_id, row in batch.rows.items() if customer_id not in planned]
    if rows:
        session.execute(MailingRecipient.__table__.insert(), rows)  # type: ignore[attr-defined]
    by_slot: dict[datetime, list[Notification]] = defaultdict(list)
    for customer in sending:
        at, message = batch.messages[customer.id]
        by_slot[at].append(message)
    quiet = config.notifications.quiet_hours
    queued = sum(enqueue_many(session, group, at, quiet) for at, group in by_slot.items())
    mailing.cursor = batch.last
    mailing.slot_at, mailing.slot_used = batch.slot_at, batch.slot_used
    mailing.recipients += len(sending)
    mailing.holdout += len(held)
    mailing.skipped_contact += batch.skipped_contact
    mailing.skipped_consent += batch.skipped_consent
    session.add(mailing)
    return Progress(mailing.id, mailing.state, len(rows), queued)


def plan(service: LoyaltyService, config: GatewayConfig, mailing_id: str, max_batches: int | None = None) -> Progress:
    """Plan a sending mailing batch after batch until it is queued (or ``max_batches`` ran)."""
    total = Progress(mailing_id, "sending", 0, 0)
    done = 0
    while max_batches is None or done < max_batches:
        step = plan_batch(service, config, mailing_id)
        done += 1
        total.planned += step.planned
        total.queued += step.queued
        total.state = step.state
        if step.state != "sending":
            break
    return total


def plan_due(service: LoyaltyService, config: GatewayConfig, max_batches: int = 50) -> dict[str, int]:
    """The periodic job: a few batches of every mailing that is sending (replicas take turns)."""
    with service.db.read() as session:
        sending = list(session.execute(sa_select(col(Mailing.id)).where(col(Mailing.state) == "sending")).scalars())
    queued = 0
    for mailing_id in sending:
        queued += plan(service, config, mailing_id, max_batches).queued
    return {"mailings": len(sending), "queued": queued}

"""Lifecycle triggers of the daily notification job: win-back (no purchase for N days, with
optional gift points and a follow-up), tier changed, close to the next tier before the window
ends, points expired.

Everything due is found in one read transaction with set-based queries; nothing here writes.
Each message has a deterministic id and each gift a unique grant key, so a second run, or a
replica running the job at the same moment, sends and grants nothing twice:

* win-back: ``win_back:<customer>:<day of the last purchase>`` — once per lapse; a new purchase
  moves the last purchase day and so re-arms it;
* tier changed: ``tier_changed:<status change id>``;
* close to the next tier: ``tier_close:<customer>:<end of the window>`` — once per window;
* points expired: ``points_expired:<first expiry entry id>`` — one message per expiry pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from gateway.config import NotificationsConfig
from gateway.core.messaging import shown_date
from gateway.core.program import Program
from gateway.core.rules.base import roubles_to_kopecks
from gateway.ledger.pricing_context import local_day, local_midnight, window_turnovers
from gateway.store.models import Account, Customer, LedgerEntry, Lot, Notification, Receipt
from gateway.store.models_orders import Order
from gateway.store.models_program import StatusChange

TURNOVER_BATCH = 1000  # accounts whose window turnover is read in one statement


@dataclass(frozen=True)
class Gift:
    """Points a win-back message promises: booked in the message's own write transaction."""

    key: str
    customer_id: str
    account_id: str
    points: int
    expires_at: datetime | None


@dataclass(frozen=True)
class AlertMark:
    """A balance alert sent: its account's count moves to ``sent`` in the message's own write
    transaction (``gateway/notify/reminders.py``), only forward, so a replica's twin is a no-op."""

    account_id: str
    sent: int


@dataclass(frozen=True)
class Due:
    ident: str
    topic: str
    phone: str
    customer_id: str
    values: dict[str, Any]
    gift: Gift | None = field(default=None)
    mark: AlertMark | None = field(default=None)


def available_balances(session: Session, account_ids: list[str], now: datetime) -> dict[str, int]:
    """Points usable now per account (the sum of its open, available lots)."""
    found: dict[str, int] = {}
    for start in range(0, len(account_ids), TURNOVER_BATCH):
        chunk = account_ids[start : start + TURNOVER_BATCH]
        rows = session.execute(
            sa_select(col(Lot.account_id), func.sum(col(Lot.remaining)))
            .where(
                col(Lot.account_id).in_(chunk),
                col(Lot.remaining) > 0,
                col(Lot.available_at) <= now,
                (col(Lot.expires_at).is_(None)) | (col(Lot.expires_at) > now),
            )
            .group_by(col(Lot.account_id))
        ).all()
        found.update({account: int(total or 0) for account, total in rows})
    return found


def win_back(session: Session, config: NotificationsConfig, now: datetime) -> list[Due]:
    """Customers whose last purchase (a till receipt or an order) is N days old: the first
    message (with the gift) and, M days later still without a purchase, the follow-up."""
    rule = config.win_back
    first_due = now - timedelta(days=rule.after_days)
    oldest = first_due - timedelta(days=rule.within_days + (rule.follow_up_days or 0))
    # The job runs every few minutes: it reads only purchases of the lapse window (an index
    # range on receipts' created_at), then drops the accounts that bought since — never a
    # GROUP BY over every receipt ever made.
    purchases = union_all(
        sa_select(col(Receipt.account_id).label("account_id"), col(Receipt.created_at).label("at")).where(
            col(Receipt.created_at) > oldest, col(Receipt.created_at) <= first_due
        ),
        sa_select(col(Order.account_id).label("account_id"), col(Order.created_at).label("at")).where(
            col(Order.created_at) > oldest, col(Order.created_at) <= first_due
        ),
    ).subquery()
    last = (
        sa_select(purchases.c.account_id, func.max(purchases.c.at).label("last"))
        .group_by(purchases.c.account_id)
        .subquery()
    )
    bought_since = union_all(
        sa_select(col(Receipt.account_id)).where(
            col(Receipt.account_id) == last.c.account_id, col(Receipt.created_at) > first_due
        ),
        sa_select(col(Order.account_id)).where(
            col(Order.account_id) == last.c.account_id, col(Order.created_at) > first_due
        ),
    )
    rows = session.execute(
        sa_select(col(Customer.id), col(Customer.phone), col(Customer.name), col(Account.id), last.c.last)
        .join(Account, col(Account.id) == last.c.account_id)
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .where(
            ~exists(bought_since),
            col(Customer.phone).is_not(None),
            col(Customer.merged_into).is_(None),
        )
    ).all()
    if not rows:
        return []
    balances = available_balances(session, [row[3] for row in rows], now)
    firsts = {f"win_back:{customer_id}:{last_at.date().isoformat()}" for customer_id, _, _, _, last_at in rows}
    already = set(session.execute(sa_select(col(Notification.id)).where(col(Notification.id).in_(firsts))).scalars())
    gift_expires = now + timedelta(days=rule.gift_expiry_days) if rule.gift_expiry_days else None
    due: list[Due] = []
    for customer_id, phone, name, account_id, last_at in rows:
        day = last_at.date().isoformat()
        first = f"win_back:{customer_id}:{day}"
        days = (now - last_at).days
        common = {"name": name or "", "days": days}
        if first not in already:
            if last_at <= first_due - timedelta(days=rule.within_days):
                continue  # the follow-up window of a lapse never announced: leave it alone
            gift = Gift(first, customer_id, account_id, rule.gift_points, gift_expires) if rule.gift_points else None
            balance = balances.get(account_id, 0) + rule.gift_points
            values = {
                **common,
                "gift_points": rule.gift_points,
                "gift_expires": shown_date(gift_expires.date()) if gift_expires else "",
                "balance": balance,
            }
            due.append(Due(first, "win_back", phone, customer_id, values, gift))
        elif rule.follow_up_days and last_at <= first_due - timedelta(days=rule.follow_up_days):
            values = {**common, "balance": balances.get(account_id, 0)}
            due.append(Due(f"win_back_2:{customer_id}:{day}", "win_back_follow_up", phone, customer_id, values))
    return due


def _tier_name(program: Program, code: str | None) -> str:
    """The level's name as customers know it, on whichever ladder it is (retail or partner)."""
    level = program.tier_level(code)
    return (level.name or level.code) if level is not None else (code or "")


def _above_the_lowest(program: Program, code: str | None) -> bool:
    """True when ``code`` is above the lowest level of its own ladder (a first level that is
    the lowest is what registration gives: not news)."""
    ladder = next((ladder for ladder in program.all_ladders() if ladder.level(code) is not None), None)
    return ladder is not None and ladder.rank(code) > 0


def tier_changed(session: Session, config: NotificationsConfig, program: Program, now: datetime) -> list[Due]:
    """Tier changes recorded in the last ``since_days`` (a run missed for a day still sends;
    an older backlog is not announced)."""
    rows = session.execute(
        sa_select(
            col(StatusChange.id),
            col(StatusChange.old_value),
            col(StatusChange.new_value),
            col(Customer.id),
            col(Customer.phone),
            col(Customer.name),
        )
        .join(Customer, col(Customer.id) == col(StatusChange.customer_id))
        .where(
            col(StatusChange.attribute) == "tier",
            col(StatusChange.new_value).is_not(None),
            col(StatusChange.created_at) > now - timedelta(days=config.since_days),
            col(StatusChange.created_at) <= now,
            col(Customer.phone).is_not(None),
            col(Customer.merged_into).is_(None),
        )
    ).all()
    return [
        Due(
            f"tier_changed:{change_id}",
            "tier_changed",
            phone,
            customer_id,
            {"name": name or "", "tier": _tier_name(program, new), "old_tier": _tier_name(program, old)},
        )
        for change_id, old, new, customer_id, phone, name in rows
        # A customer's first tier is news only above the lowest level (registration sets that).
        if old is not None or _above_the_lowest(program, new)
    ]


def tier_close(session: Session, config: NotificationsConfig, program: Program, now: datetime) -> list[Due]:
    """Customers whose turnover is within ``percent`` of the next tier while the calendar window
    ends within ``days`` (a rolling window never ends: nothing to announce)."""
    tiers = program.tiers
    if tiers is None or not tiers.window.calendar:
        return []
    today = local_day(program, now)
    _, start, end = tiers.window.bounds(today)
    if (end - today).days > config.tier_close.days:
        return []
    # Only accounts that bought in the window can be close: read them first, then their turnover.
    window_start = local_midnight(program, start)
    buyers = session.execute(
        sa_select(col(Customer.id), col(Customer.phone), col(Customer.name), col(Customer.tier), col(Account.id))
        .join(Account, col(Account.customer_id) == col(Customer.id))
        .where(
            col(Customer.phone).is_not(None),
            col(Customer.merged_into).is_(None),
            col(Account.id).in_(
                union_all(
                    sa_select(col(Receipt.account_id)).where(col(Receipt.created_at) >= window_start),
                    sa_select(col(Order.account_id)).where(col(Order.updated_at) >= window_start),
                )
            ),
        )
    ).all()
    ordered = tiers.ordered()
    last_day = shown_date(end - timedelta(days=1))
    due: list[Due] = []
    for start_at in range(0, len(buyers), TURNOVER_BATCH):
        chunk = buyers[start_at : start_at + TURNOVER_BATCH]
        turnovers = window_turnovers(session, program, [row[4] for row in chunk], now)
        for customer_id, phone, name, stored, account_id in chunk:
            qualifying = tiers.window.qualifying(*turnovers.get(account_id, (0, 0)))
            rank = max(tiers.rank(stored), tiers.rank(tiers.level_for(qualifying).code))
            if rank + 1 >= len(ordered):
                continue  # already at the top
            target = ordered[rank + 1]
            threshold = roubles_to_kopecks(target.from_turnover)
            missing = threshold - qualifying
            if missing <= 0 or missing * 100 > threshold * config.tier_close.percent:
                continue
            values = {
                "name": name or "",
                "tier": target.name or target.code,
                "missing": f"{missing // 100}" if missing % 100 == 0 else f"{missing / 100:.2f}",
                "date": last_day,
            }
            due.append(Due(f"tier_close:{customer_id}:{end.isoformat()}", "tier_close", phone, customer_id, values))
    return due


def points_expired(session: Session, config: NotificationsConfig, now: datetime) -> list[Due]:
    """Expiry entries of the last ``since_days``, one message per account and expiry pass (the
    entries one pass writes share its moment)."""
    rows = session.execute(
        sa_select(
            func.min(col(LedgerEntry.id)),
            -func.sum(col(LedgerEntry.points)),
            col(Account.id),
            col(Customer.id),
            col(Customer.phone),
        )
        .join(Account, col(Account.id) == col(LedgerEntry.account_id))
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .where(
            col(LedgerEntry.kind) == "expire",
            col(LedgerEntry.created_at) > now - timedelta(days=config.since_days),
            col(LedgerEntry.created_at) <= now,
            col(Customer.phone).is_not(None),
            col(Customer.merged_into).is_(None),
        )
        .group_by(col(Account.id), col(Customer.id), col(Customer.phone), col(LedgerEntry.created_at))
    ).all()
    balances = available_balances(session, sorted({row[2] for row in rows}), now)
    return [
        Due(
            f"points_expired:{first_id}",
            "points_expired",
            phone,
            customer_id,
            {"points": int(points), "balance": balances.get(account_id, 0)},
        )
        for first_id, points, account_id, customer_id, phone in rows
        if points
    ]

"""Two more lifecycle triggers of the daily notification job: the balance has grown above a
threshold ("у вас накопилось N бонусов — потратьте"), and the phone given at registration was
never confirmed by a code.

Like ``gateway/notify/lifecycle.py``, what is due is found with set-based queries and every
message has a deterministic id, so a second run or a replica sends nothing twice:

* balance high: ``balance_high:<customer>:<n>`` — the account's n-th alert. An alert disarms
  the account (``balance_alerts``); the job arms it again when it finds the balance below the
  threshold (one UPDATE per run), or ``repeat_days`` after the last alert. A balance that dips
  and recovers between two runs is not seen to have dipped: once per run is the resolution.
* phone not confirmed: ``phone_unconfirmed:<customer>`` ``after_days`` after registration and,
  if configured, ``phone_unconfirmed_2:<customer>`` ``again_after_days`` after it. A phone
  counts as confirmed once a confirmation code sent to it was entered
  (``gateway/notify/verification.py``); a confirmation recorded on the way (a Telegram contact)
  stops the second reminder too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Subquery, exists, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from gateway.config import NotificationsConfig
from gateway.notify.lifecycle import AlertMark, Due, available_balances
from gateway.store.models import Account, Customer, Lot, Notification, VerificationCode
from gateway.store.models_lifecycle import BalanceAlert


def _high_balances(threshold: int, now: datetime) -> Subquery:
    """Accounts whose available points (open, available, unexpired lots) reach ``threshold``:
    one GROUP BY over the live lots."""
    total = func.sum(col(Lot.remaining))
    return (
        sa_select(col(Lot.account_id).label("account_id"), total.label("balance"))
        .where(
            col(Lot.remaining) > 0,
            col(Lot.available_at) <= now,
            (col(Lot.expires_at).is_(None)) | (col(Lot.expires_at) > now),
        )
        .group_by(col(Lot.account_id))
        .having(total >= threshold)
        .subquery()
    )


def rearm_balance_alerts(session: Session, config: NotificationsConfig, now: datetime) -> int:
    """Arm again the alerts of accounts whose balance is below the threshold now (one UPDATE);
    returns how many were armed."""
    high = _high_balances(config.balance_high.points, now)
    result = session.execute(
        update(BalanceAlert)
        .where(col(BalanceAlert.armed).is_(False), col(BalanceAlert.account_id).not_in(sa_select(high.c.account_id)))
        .values(armed=True)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def balance_high(session: Session, config: NotificationsConfig, now: datetime) -> list[Due]:
    """Accounts at or above the threshold whose alert is armed (or never sent, or older than
    ``repeat_days``)."""
    rule = config.balance_high
    high = _high_balances(rule.points, now)
    rows = session.execute(
        sa_select(
            col(Customer.id),
            col(Customer.phone),
            col(Customer.name),
            col(Account.id),
            high.c.balance,
            col(BalanceAlert.sent),
            col(BalanceAlert.armed),
            col(BalanceAlert.last_sent_at),
        )
        .select_from(high)
        .join(Account, col(Account.id) == high.c.account_id)
        .join(Customer, col(Customer.id) == col(Account.customer_id))
        .outerjoin(BalanceAlert, col(BalanceAlert.account_id) == col(Account.id))
        .where(col(Customer.phone).is_not(None), col(Customer.merged_into).is_(None))
    ).all()
    repeat_before = now - timedelta(days=rule.repeat_days) if rule.repeat_days else None
    due: list[Due] = []
    for customer_id, phone, name, account_id, points, sent, armed, last_sent_at in rows:
        again = repeat_before is not None and last_sent_at is not None and last_sent_at <= repeat_before
        if sent is not None and not armed and not again:
            continue
        number = (sent or 0) + 1
        values = {"name": name or "", "balance": int(points), "threshold": rule.points}
        mark = AlertMark(account_id, number)
        due.append(Due(f"balance_high:{customer_id}:{number}", "balance_high", phone, customer_id, values, mark=mark))
    return due


def record_alert(session: Session, mark: AlertMark, now: datetime) -> None:
    """Move the account's alert count forward to ``mark.sent`` (never back): in the write
    transaction of the alert's message. A replica that wrote it first makes this a no-op."""
    moved = session.execute(
        update(BalanceAlert)
        .where(col(BalanceAlert.account_id) == mark.account_id, col(BalanceAlert.sent) < mark.sent)
        .values(sent=mark.sent, armed=False, last_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount and session.get(BalanceAlert, mark.account_id) is None:  # type: ignore[attr-defined]
        # A twin inserting at the same moment fails the batch on the key; its retry finds this row.
        session.add(BalanceAlert(account_id=mark.account_id, sent=mark.sent, armed=False, last_sent_at=now))
        session.flush()


def phone_unconfirmed(session: Session, config: NotificationsConfig, now: datetime) -> list[Due]:
    """Customers registered ``after_days`` (and ``again_after_days``) ago whose phone no code
    ever confirmed; registrations older than the stage's day + ``within_days`` are left alone."""
    rule = config.phone_unconfirmed
    stages = [(rule.after_days, "phone_unconfirmed", "phone_unconfirmed")]
    if rule.again_after_days is not None:
        stages.append((rule.again_after_days, "phone_unconfirmed_again", "phone_unconfirmed_2"))
    confirmed = exists(
        sa_select(col(VerificationCode.id)).where(
            col(VerificationCode.phone) == col(Customer.phone), col(VerificationCode.used_at).is_not(None)
        )
    )
    found: list[tuple[str, str, str, str | None, str, datetime]] = []
    for days, topic, prefix in stages:
        newest = now - timedelta(days=days)
        rows = session.execute(
            sa_select(
                col(Customer.id), col(Customer.phone), col(Customer.name), col(Account.id), col(Customer.created_at)
            )
            .join(Account, col(Account.customer_id) == col(Customer.id))
            .where(
                col(Customer.created_at) <= newest,
                col(Customer.created_at) > newest - timedelta(days=rule.within_days),
                col(Customer.phone).is_not(None),
                col(Customer.merged_into).is_(None),
                ~confirmed,
            )
        ).all()
        found += [(f"{prefix}:{c}", topic, phone, name, a, created) for c, phone, name, a, created in rows]
    if not found:
        return []
    idents = [f[0] for f in found]
    already = set(session.execute(sa_select(col(Notification.id)).where(col(Notification.id).in_(idents))).scalars())
    balances = available_balances(session, sorted({f[4] for f in found}), now)
    return [
        Due(
            ident,
            topic,
            phone,
            ident.split(":", 1)[1],
            {"name": name or "", "days": (now - created).days, "balance": balances.get(account_id, 0)},
        )
        for ident, topic, phone, name, account_id, created in found
        if ident not in already
    ]

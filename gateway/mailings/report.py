"""A mailing's report: what happened to its messages, who unsubscribed through it, and what its
recipients bought within ``conversion_days`` of the start against the holdout that got nothing.

Purchases are till receipts and orders of the customers' accounts in the window (receipts net of
what was returned of them); conversion is the share of a group who bought at least once. The
uplift is the recipients' conversion minus the holdout's, in percentage points; the incremental
revenue is what recipients paid per head above the holdout's, times the recipients. Everything
is counted by the database, one statement per figure.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, func, literal, union_all
from sqlalchemy import select as sa_select
from sqlmodel import col

from gateway.ledger.service import LoyaltyService
from gateway.mailings import store, unsubscribe
from gateway.mailings.requests import CohortOutcome, MailingReport
from gateway.store.models import Account, Notification, Receipt, Refund
from gateway.store.models_mailings import MailingRecipient
from gateway.store.models_orders import Order
from gateway.store.models_profiles import ProfileChange

CENT = Decimal("0.01")
PAID = ("paid", "partially_shipped", "shipped")  # orders that count as purchases


def _roubles(kopecks: int) -> Decimal:
    return (Decimal(kopecks) / 100).quantize(CENT)


def _percent(part: int, whole: int) -> Decimal:
    return (Decimal(part * 100) / whole).quantize(CENT, ROUND_HALF_UP) if whole else Decimal("0.00")


def report(service: LoyaltyService, mailing_id: str) -> MailingReport:
    with service.db.read() as session:
        mailing = store.get(session, mailing_id)
        start, end = store.window(mailing)
        statuses = dict(
            session.execute(
                sa_select(col(Notification.status), func.count())
                .join(MailingRecipient, col(MailingRecipient.notification_id) == col(Notification.id))
                .where(col(MailingRecipient.mailing_id) == mailing.id)
                .group_by(col(Notification.status))
            ).all()
        )
        opted_out = int(
            session.execute(
                sa_select(func.count(func.distinct(col(ProfileChange.customer_id)))).where(
                    col(ProfileChange.client_id) == f"{unsubscribe.CLIENT_PREFIX}{mailing.id}",
                    col(ProfileChange.field) == "ad_consent",
                )
            ).scalar_one()
        )
        sizes = dict(
            session.execute(
                sa_select(col(MailingRecipient.cohort), func.count())
                .where(col(MailingRecipient.mailing_id) == mailing.id)
                .group_by(col(MailingRecipient.cohort))
            ).all()
        )
        outcome: dict[str, tuple[int, int, int]] = {}
        if start is not None and end is not None:
            returned = (
                sa_select(func.coalesce(func.sum(col(Refund.amount_kopecks)), 0))
                .where(col(Refund.receipt_txn_id) == col(Receipt.id))
                .scalar_subquery()
            )
            members = and_(
                col(MailingRecipient.mailing_id) == mailing.id,
                col(Account.customer_id) == col(MailingRecipient.customer_id),
            )
            purchases = union_all(
                sa_select(
                    col(MailingRecipient.cohort).label("cohort"),
                    col(MailingRecipient.customer_id).label("customer_id"),
                    (col(Receipt.total_kopecks) - returned).label("paid"),
                )
                .join(Account, members)
                .join(Receipt, col(Receipt.account_id) == col(Account.id))
                .where(col(Receipt.created_at) >= start, col(Receipt.created_at) < end),
                sa_select(
                    col(MailingRecipient.cohort),
                    col(MailingRecipient.customer_id),
                    col(Order.total_kopecks) * literal(1),
                )
                .join(Account, members)
                .join(Order, col(Order.account_id) == col(Account.id))
                .where(col(Order.created_at) >= start, col(Order.created_at) < end, col(Order.status).in_(PAID)),
            ).subquery()
            for name, buyers, count, paid in session.execute(
                sa_select(
                    purchases.c.cohort,
                    func.count(func.distinct(purchases.c.customer_id)),
                    func.count(),
                    func.coalesce(func.sum(purchases.c.paid), 0),
                ).group_by(purchases.c.cohort)
            ).all():
                outcome[name] = (int(buyers), int(count), int(paid))

    def cohort(name: str) -> CohortOutcome:
        customers = int(sizes.get(name, 0))
        buyers, count, paid = outcome.get(name, (0, 0, 0))
        return CohortOutcome(
            customers=customers,
            buyers=buyers,
            purchases=count,
            revenue=_roubles(paid),
            conversion_percent=_percent(buyers, customers),
            revenue_per_customer=_roubles(paid // customers) if customers else Decimal("0.00"),
        )

    recipients, holdout = cohort("recipient"), cohort("holdout")
    paid_r, paid_h = outcome.get("recipient", (0, 0, 0))[2], outcome.get("holdout", (0, 0, 0))[2]
    per_recipient = Decimal(paid_r) / recipients.customers if recipients.customers else Decimal(0)
    per_held = Decimal(paid_h) / holdout.customers if holdout.customers else Decimal(0)
    incremental = (
        ((per_recipient - per_held) * recipients.customers / 100).quantize(CENT, ROUND_HALF_UP)
        if holdout.customers
        else Decimal("0.00")
    )
    return MailingReport(
        mailing_id=mailing.id,
        name=mailing.name,
        state=mailing.state,
        window_days=mailing.conversion_days,
        window_start=start,
        window_end=end,
        queued=sum(int(v) for v in statuses.values()),
        delivered=int(statuses.get("sent", 0)),
        failed=int(statuses.get("failed", 0)),
        pending=int(statuses.get("pending", 0)),
        opted_out=opted_out,
        recipients=recipients,
        holdout=holdout,
        uplift_points=recipients.conversion_percent - holdout.conversion_percent,
        incremental_revenue=incremental,
    )

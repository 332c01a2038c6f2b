"""The ``PricingContext`` of a purchase, read from the database: the customer's segment, tier,
birthday, referrer, whether this is their first purchase, and their turnover in the program's
window (``gateway/core/rules/tiers.py``).

Turnover is what the customer paid for goods (after discounts, including the part paid with
points), net of refunds and returns: on till receipts, dated by when the till closed the receipt;
on orders, dated by when the goods shipped or came back; and on the old system's receipts the
migration imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time

from sqlalchemy import ColumnElement, Select, and_, func, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from gateway.core.program import Program
from gateway.core.rules.context import PricingContext, Referrer
from gateway.core.rules.tiers import TierWindow
from gateway.ledger.context import Ctx
from gateway.store.models import Account, Card, Customer, Receipt, ReceiptLine
from gateway.store.models_accounts import AccountMember
from gateway.store.models_import import ImportedOperation, signed_amount
from gateway.store.models_orders import Order, OrderTurnover


def local_day(program: Program, moment: datetime) -> date:
    """The program's calendar date of a moment (purchases, birthdays and windows are local)."""
    return moment.astimezone(program.zone).date()


def local_midnight(program: Program, day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=program.zone)


def turnovers_between(
    session: Session, account_ids: Sequence[str], start: datetime, end: datetime, *, up_to: bool = False
) -> dict[str, int]:
    """Kopecks each account's customer paid for goods in ``[start, end)`` (``[start, end]`` with
    ``up_to``: everything booked until now): till receipts when they closed, order goods when they
    shipped (``order_turnover``), and the old system's purchases the migration imported — each net
    of returns. One statement for any number of accounts (a till waits for one, the daily job
    reads a batch); accounts that bought nothing in the period are absent."""
    if not account_ids:
        return {}

    def within(when: ColumnElement[datetime] | Mapped[datetime]) -> ColumnElement[bool]:
        return and_(when >= start, when <= end if up_to else when < end)

    closed = func.coalesce(col(Receipt.occurred_at), col(Receipt.created_at))
    receipts: Select[str, int] = (
        sa_select(
            col(Receipt.account_id).label("account_id"),
            (col(ReceiptLine.amount_kopecks) - col(ReceiptLine.refunded_kopecks)).label("kopecks"),
        )
        .join(Receipt, col(Receipt.id) == col(ReceiptLine.receipt_txn_id))
        .where(col(Receipt.account_id).in_(account_ids), within(closed))
    )
    orders = sa_select(col(OrderTurnover.account_id), col(OrderTurnover.amount_kopecks)).where(
        col(OrderTurnover.account_id).in_(account_ids), within(col(OrderTurnover.occurred_at))
    )
    imported = sa_select(col(ImportedOperation.account_id), signed_amount()).where(
        col(ImportedOperation.account_id).in_(account_ids), within(col(ImportedOperation.occurred_at))
    )
    moves = union_all(receipts, orders, imported).subquery()
    rows = session.execute(sa_select(moves.c.account_id, func.sum(moves.c.kopecks)).group_by(moves.c.account_id)).all()
    return {str(account): int(kopecks or 0) for account, kopecks in rows}


def window_turnover(
    session: Session, program: Program, account_id: str, moment: datetime, window: TierWindow | None = None
) -> tuple[int, int]:
    """(turnover of the current window up to ``moment``, turnover of the previous window);
    ``window``: the customer's ladder's (``program.window_for(segment)``), default the tiers'."""
    return window_turnovers(session, program, [account_id], moment, window).get(account_id, (0, 0))


def window_turnovers(
    session: Session, program: Program, account_ids: Sequence[str], moment: datetime, window: TierWindow | None = None
) -> dict[str, tuple[int, int]]:
    """``window_turnover`` of many accounts (absent: no turnover in either window)."""
    window = window or program.turnover_window
    previous_start, start, _ = window.bounds(local_day(program, moment))
    current = turnovers_between(session, account_ids, local_midnight(program, start), moment, up_to=True)
    previous = (
        turnovers_between(session, account_ids, local_midnight(program, previous_start), local_midnight(program, start))
        if window.calendar
        else {}
    )
    return {account: (current.get(account, 0), previous.get(account, 0)) for account in {*current, *previous}}


def ladder_turnovers(
    session: Session, program: Program, segments: Mapping[str, str | None], moment: datetime
) -> dict[str, tuple[int, int]]:
    """``window_turnovers`` of many accounts, each in the window of its customer's ladder
    (``segments``: account → stored segment): one statement per distinct window, so a batch
    of retail customers and partners is still read in two."""
    by_window: dict[TierWindow, list[str]] = {}
    for account, segment in segments.items():
        stored = segment if program.segment(segment) is not None else program.default_segment
        by_window.setdefault(program.window_for(stored), []).append(account)
    found: dict[str, tuple[int, int]] = {}
    for window, accounts in by_window.items():
        found.update(window_turnovers(session, program, accounts, moment, window))
    return found


def has_purchases(session: Session, account_id: str, exclude_order: str | None = None) -> bool:
    """Whether the account ever bought anything (a receipt or an order other than
    ``exclude_order``, the one being priced)."""
    if session.exec(select(Receipt.id).where(Receipt.account_id == account_id).limit(1)).first() is not None:
        return True
    orders = select(Order.id).where(Order.account_id == account_id)
    if exclude_order is not None:
        orders = orders.where(Order.id != exclude_order)
    return session.exec(orders.limit(1)).first() is not None


def card_label(session: Session, customer_id: str) -> str:
    """How explanations name a customer: a masked card number, never a phone."""
    number = session.exec(
        select(Card.number).where(Card.customer_id == customer_id).order_by(col(Card.created_at)).limit(1)
    ).first()
    return f"card …{number[-4:]}" if number else "a customer"


def _referrer(session: Session, program: Program, customer: Customer) -> Referrer | None:
    if customer.referrer_id is None:
        return None
    referrer = session.get(Customer, customer.referrer_id)
    if referrer is None:
        return None
    account = session.exec(select(Account).where(Account.customer_id == referrer.id)).first()
    if account is None:
        return None
    segment = referrer.segment if program.segment(referrer.segment) is not None else program.default_segment
    return Referrer(
        account_id=account.id,
        segment=segment,
        since=local_day(program, customer.created_at),
        label=card_label(session, referrer.id),
    )


def contacts_segment(session: Session, account_id: str) -> str | None:
    """The segment a company account without one of its own prices by: the one all its active
    contacts share (wholesale buyers' company card is wholesale), else None (the default)."""
    segments = session.exec(
        select(Customer.segment)
        .join(AccountMember, col(AccountMember.customer_id) == col(Customer.id))
        .where(AccountMember.account_id == account_id, col(AccountMember.removed_at).is_(None))
        .distinct()
        .limit(2)
    ).all()
    return segments[0] if len(segments) == 1 else None


def pricing_context(
    ctx: Ctx, account_id: str | None, store: str | None, at: datetime | None = None, *, order: str | None = None
) -> PricingContext:
    """Who buys, where and when: ``at`` is when the receipt was closed (default: now); ``order``
    is the order being (re)priced, which is not an earlier purchase of its own."""
    moment = at or ctx.now
    on = local_day(ctx.program, moment)
    if account_id is None:
        return PricingContext(on=on, store=store, anonymous=True)
    account = ctx.session.get(Account, account_id)
    customer = ctx.session.get(Customer, account.customer_id) if account is not None else None
    if customer is None:
        return PricingContext(on=on, store=store)
    program = ctx.program  # read only what the program's rules can use: a till waits for this
    segment = (
        customer.segment
        if customer.segment is not None or not program.segments
        else contacts_segment(ctx.session, account_id)
    )
    # turnover in the window of the customer's ladder (retail tiers or their segment's ladder)
    window = program.window_for(segment if program.segment(segment) is not None else program.default_segment)
    current, previous = (
        window_turnover(ctx.session, program, account_id, moment, window) if program.uses_turnover else (0, 0)
    )
    return PricingContext(
        on=on,
        store=store,
        segment=segment,
        tier=customer.tier,
        birth_date=customer.birth_date,
        first_purchase=program.uses_first_purchase and not has_purchases(ctx.session, account_id, order),
        turnover_kopecks=current,
        previous_turnover_kopecks=previous,
        referrer=_referrer(ctx.session, program, customer) if program.bonuses.referral else None,
        customer_id=customer.id,
    )

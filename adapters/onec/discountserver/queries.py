"""The read operations, answering what 1C's own server computes from its registers
(``WebServices/ДисконтныйСервер/Ext/Module.bsl``) with the gateway's ledger instead.

* accumulations (``ПолучитьСуммуНакопления``): money and quantity bought with the card's account
  (every card of it, as 1C counts a card's history) between two dates, from the store documents
  booked here and the receipts of every other channel, net of their refunds, leaving out the
  document being calculated;
* the last purchase (``ПолучитьДанныеПоследнейПокупки``): the latest such purchase up to a date;
* bonus balances: the points spendable now (1C: accrued minus due for write-off, never below
  zero), and the extended table — now, then each future day on which points become spendable or
  expire, with the running balance and 1C's own wording of the period;
* a coupon's discounts (``ПолучитьСкидкиПоКупону``): the latest state of each discount with that
  code, while active and not past its end date.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, tzinfo
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import Session, col, select

from adapters.onec.discountserver import cards, wire
from gateway.ledger.accounts import PENDING_UNTIL_SHIPPED, available_points
from gateway.ledger.context import Ctx
from gateway.store.models import Lot, Receipt, ReceiptLine, Refund
from gateway.store.models_discountserver import DiscountServerCoupon, DiscountServerDocument, DiscountServerSale

Purchase = tuple[datetime | None, int, int]  # when, kopecks, thousandths of units


def _store_sales(
    session: Session, numbers: list[str], start: datetime | None, end: datetime, excluded: str | None
) -> list[tuple[str, datetime, int, int]]:
    stmt = (
        select(
            DiscountServerDocument.document_ref,
            func.min(DiscountServerSale.period),
            func.sum(DiscountServerSale.amount_kopecks),
            func.sum(DiscountServerSale.quantity_thousandths),
        )
        .join(DiscountServerDocument, col(DiscountServerDocument.id) == col(DiscountServerSale.document_id))
        .where(col(DiscountServerSale.card_number).in_(numbers), col(DiscountServerSale.period) <= end)
        .group_by(col(DiscountServerDocument.document_ref))
    )
    if start is not None:
        stmt = stmt.where(col(DiscountServerSale.period) >= start)
    if excluded is not None:
        stmt = stmt.where(col(DiscountServerDocument.document_ref) != excluded)
    return [(ref, when, int(amount or 0), int(qty or 0)) for ref, when, amount, qty in session.exec(stmt).all()]


def _receipts(
    session: Session, account_id: str, start: datetime | None, end: datetime, excluded: str | None
) -> list[tuple[str, datetime, int, int]]:
    when = func.coalesce(Receipt.occurred_at, Receipt.created_at)
    stmt = (
        select(Receipt.id, when, ReceiptLine.amount_kopecks, ReceiptLine.quantity)
        .join(ReceiptLine, col(ReceiptLine.receipt_txn_id) == col(Receipt.id))
        .where(col(Receipt.account_id) == account_id, when <= end)
    )
    if start is not None:
        stmt = stmt.where(when >= start)
    if excluded is not None:
        stmt = stmt.where(col(Receipt.receipt_id) != excluded)
    # Quantities are stored as exact decimal text: added up here, not by the database.
    totals: dict[str, tuple[datetime, int, Decimal]] = {}
    for txn_id, at, amount, quantity in session.exec(stmt).all():
        _, kopecks, units = totals.get(txn_id, (at, 0, Decimal(0)))
        totals[txn_id] = (at, kopecks + int(amount), units + Decimal(str(quantity)))
    refunded: dict[str, int] = {}
    if totals:
        refunded = {
            txn_id: int(amount or 0)
            for txn_id, amount in session.exec(
                select(Refund.receipt_txn_id, func.sum(Refund.amount_kopecks))
                .where(col(Refund.receipt_txn_id).in_(list(totals)))
                .group_by(col(Refund.receipt_txn_id))
            ).all()
        }
    return [
        (txn_id, at, kopecks - refunded.get(txn_id, 0), int(units * 1000))
        for txn_id, (at, kopecks, units) in totals.items()
    ]


def accumulations(
    ctx: Ctx, card_ref: str | None, start: datetime | None, end: datetime | None, excluded: str | None
) -> tuple[Decimal, Decimal]:
    card = cards.resolve(ctx.session, card_ref)
    numbers = cards.account_cards(ctx.session, card.account_id)
    until = end or ctx.now
    rows = _store_sales(ctx.session, numbers, start, until, excluded) + _receipts(
        ctx.session, card.account_id, start, until, excluded
    )
    amount = sum(row[2] for row in rows)
    quantity = sum(row[3] for row in rows)
    return Decimal(amount) / 100, Decimal(quantity) / 1000


def last_purchase(ctx: Ctx, card_ref: str | None, until: datetime | None, excluded: str | None) -> Purchase:
    card = cards.resolve(ctx.session, card_ref)
    numbers = cards.account_cards(ctx.session, card.account_id)
    end = until or ctx.now
    rows = _store_sales(ctx.session, numbers, None, end, excluded) + _receipts(
        ctx.session, card.account_id, None, end, excluded
    )
    purchases = [row for row in rows if row[2] > 0]
    if not purchases:
        return None, 0, 0
    latest = max(purchases, key=lambda row: row[1])
    return latest[1], latest[2], latest[3]


def balance(ctx: Ctx, card_ref: str | None) -> int:
    card = cards.resolve(ctx.session, card_ref)
    return available_points(ctx, card.account_id)


def _plural(number: int, one: str, few: str, many: str) -> str:
    tail = abs(number) % 100
    if 11 <= tail <= 14:
        return f"{number} {many}"
    last = tail % 10
    return f"{number} {one if last == 1 else few if 2 <= last <= 4 else many}"


def balance_forecast(ctx: Ctx, card_ref: str | None, zone: tzinfo) -> list[wire.Row]:
    """«Сейчас» with the balance, then one row per local day on which it changes."""
    card = cards.resolve(ctx.session, card_ref)
    now_balance = available_points(ctx, card.account_id)
    changes: dict[datetime, int] = defaultdict(int)
    for lot in ctx.session.exec(
        select(Lot).where(
            col(Lot.account_id) == card.account_id,
            col(Lot.remaining) > 0,
            col(Lot.available_at) < PENDING_UNTIL_SHIPPED,
            (col(Lot.expires_at).is_(None)) | (col(Lot.expires_at) > ctx.now),
        )
    ).all():
        if lot.available_at > ctx.now:
            changes[_day(lot.available_at, zone)] += lot.remaining
        if lot.expires_at is not None:
            changes[_day(lot.expires_at, zone)] -= lot.remaining
    table: list[wire.Row] = [
        {"ПредставлениеПериода": "Сейчас", "КоличествоБаллов": now_balance, "Изменение": 0, "ТекущийОстаток": True}
    ]
    running = now_balance
    today = _day(ctx.now, zone)
    for day in sorted(changes):
        change = changes[day]
        if change == 0:
            continue
        running += change
        days = (day - today).days
        what = "Начисление" if change > 0 else "Списание"
        period = (
            f"{what} через {_plural(days, 'день', 'дня', 'дней')} ({day.strftime('%d.%m.%Y')}): "
            f"{_plural(abs(change), 'балл', 'балла', 'баллов')}"
        )
        table.append(
            {"ПредставлениеПериода": period, "КоличествоБаллов": running, "Изменение": change, "ТекущийОстаток": False}
        )
    return table


def _day(moment: datetime, zone: tzinfo) -> datetime:
    local = moment.astimezone(zone)
    return datetime(local.year, local.month, local.day)


def coupon_discounts(ctx: Ctx, code: str, at: datetime | None) -> list[wire.Row]:
    moment = at or ctx.now
    table: list[wire.Row] = []
    for coupon in ctx.session.exec(
        select(DiscountServerCoupon)
        .where(col(DiscountServerCoupon.code) == code, col(DiscountServerCoupon.period) <= moment)
        .order_by(col(DiscountServerCoupon.discount_ref))
    ).all():
        if coupon.state != "Активна" or (coupon.valid_until is not None and coupon.valid_until < moment):
            continue
        table.append(
            {
                "Период": coupon.period,
                "ИдентификаторСкидки": coupon.discount_ref,
                "КодКупона": code,
                "Состояние": coupon.state,
                "ИдентификаторМагазина": coupon.store_ref or "00000000-0000-0000-0000-000000000000",
                "ПериодДействия": coupon.valid_until,
            }
        )
    return table

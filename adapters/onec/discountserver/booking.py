"""Booking a store's document: the three update operations, each one unit of work.

A store base sends a posted document (``ЧекККМ``, ``ВозвратТоваровОтПокупателя``, ``ОтчетОРозничныхПродажах``,
``ЗаказПокупателя``…) with its whole sales table, then its whole bonus movements, then its
coupons — and sends them again whenever its queue says so (``ПротоколПередачиДокументовДисконтномуСерверу``).
1C's own server rewrites the document's register records each time (``НаборЗаписей.Записать(Истина)``);
so here a document is a row of its own (``discount_server_documents``) that remembers what it
posted, and an update moves the ledger from what the document posted to what its new content is
worth — an identical resend changes nothing, a changed one posts only the difference:

* sales lines replace the document's previous lines (accumulations and the last purchase read them);
* bonus movements: accrued = points coming in (``ВидДвижения`` 0, ``Начислено``), spent =
  points going out (``ВидДвижения`` 1). More accrued → a new lot; less → taken back from the
  document's own lots first (what the customer already spent is the shortfall); more spent →
  drawn from the account; less → given back to the lots it came from. ``КСписанию`` is 1C's own
  expiry schedule and is not booked: our lots expire by the program;
* coupon states replace the state of each (discount, code) (``coupons.py``).

The program's limits apply to what the store calculated: a sale may not be paid by points beyond
``redemption.max_share_percent`` of its sales total, nor accrue more points than its total is
worth, nor spend points the account does not have, and points are whole. A return takes back
what the account still has; the rest is the document's ``points_shortfall`` (as a refund's),
settled first by anything the document gives later. A refused update
changes nothing; it is answered with a SOAP fault the store writes to its event log (and it
keeps the document in its queue to resend), and the document is marked ``refused`` for the
operator (``gateway tx stuck``, the operator page) until a resend is booked.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from lxml import etree
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from adapters.onec.discountserver import cards, wire
from contracts.errors import ErrorCode, LoyaltyError
from gateway.ledger.accounts import add_entry, add_lot, available_points, lock_account
from gateway.ledger.context import Ctx
from gateway.ledger.movements import allocate, return_spent, reverse_earned
from gateway.store.models_discountserver import DiscountServerDocument, DiscountServerSale

_DOCUMENT_TYPE_MAX = 64
CtxFactory = Callable[[], AbstractContextManager[Ctx]]
Action = Callable[[Ctx], bool]


@dataclass(frozen=True)
class Document:
    type: str
    ref: str


def document_of(element: etree._Element) -> Document:
    doc_type = wire.text(element, "ТипДокумента")
    ref = wire.guid(element, "ИдентификаторДокумента")
    if not doc_type or len(doc_type) > _DOCUMENT_TYPE_MAX or ref is None:
        raise wire.Fault("validation_error", "Не указан тип или идентификатор документа")
    return Document(doc_type, ref)


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _kopecks(value: Decimal, name: str) -> int:
    kopecks = value * 100
    if kopecks != kopecks.to_integral_value():
        raise wire.Fault("validation_error", f"{name}: сумма {value} точнее копейки")
    return int(kopecks)


def _points(value: Decimal, name: str) -> int:
    if value != value.to_integral_value():
        raise wire.Fault(
            "validation_error",
            f"{name}: {value} — дробные баллы не принимаются; включите округление баллов в бонусной программе 1С",
        )
    return int(value)


def document_row(ctx: Ctx, document: Document) -> DiscountServerDocument:
    """The document's row, locked for this transaction (created on first sight)."""
    stmt = select(DiscountServerDocument).where(
        col(DiscountServerDocument.document_type) == document.type,
        col(DiscountServerDocument.document_ref) == document.ref,
    )
    if not ctx.db.is_sqlite:
        stmt = stmt.with_for_update()
    row = ctx.session.exec(stmt).first()
    if row is None:
        row = DiscountServerDocument(
            id=str(uuid.uuid4()),
            client_id=ctx.client_id,
            document_type=document.type,
            document_ref=document.ref,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        ctx.session.add(row)
        ctx.session.flush()  # a concurrent first sight fails here; the caller runs again
    return row


# -- sales ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleLine:
    period: datetime
    card_ref: str | None
    item_ref: str | None
    characteristic_ref: str | None
    amount_kopecks: int
    quantity_thousandths: int


def sales_of(element: etree._Element, zone: tzinfo, now: datetime) -> list[SaleLine]:
    lines = []
    for row in wire.rows(element, "ТаблицаТоваров"):
        quantity = wire.decimal(row, "Количество") * 1000
        if quantity != quantity.to_integral_value():
            raise wire.Fault("validation_error", "Количество: более трёх знаков после запятой")
        lines.append(
            SaleLine(
                period=wire.date(row, "Период", zone) or now,
                card_ref=wire.guid(row, "ИдентификаторКарты"),
                item_ref=wire.guid(row, "ИдентификаторНоменклатуры"),
                characteristic_ref=wire.guid(row, "ИдентификаторХарактеристики"),
                amount_kopecks=_kopecks(wire.decimal(row, "Сумма"), "Сумма"),
                quantity_thousandths=int(quantity),
            )
        )
    return lines


def update_sales(ctx: Ctx, document: Document, lines: list[SaleLine]) -> bool:
    numbers = {ref: cards.resolve(ctx.session, ref).number for ref in {line.card_ref for line in lines}}
    digest = _digest([repr(line) for line in lines])
    row = document_row(ctx, document)
    if row.sales_hash == digest:
        return True
    ctx.session.exec(delete(DiscountServerSale).where(col(DiscountServerSale.document_id) == row.id))
    for line in lines:
        ctx.session.add(
            DiscountServerSale(
                document_id=row.id,
                card_number=numbers[line.card_ref],
                period=line.period,
                item_ref=line.item_ref,
                characteristic_ref=line.characteristic_ref,
                amount_kopecks=line.amount_kopecks,
                quantity_thousandths=line.quantity_thousandths,
            )
        )
    row.sales_hash = digest
    row.total_kopecks = sum(line.amount_kopecks for line in lines)
    if lines:
        row.occurred_at = min(line.period for line in lines)
    row.updated_at = ctx.now
    ctx.session.add(row)
    return True


# -- bonuses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BonusTarget:
    card_ref: str | None
    accrued: int
    spent: int
    available_at: datetime | None  # the latest date of an incoming movement (the store's activation)
    digest: str


def bonuses_of(element: etree._Element, zone: tzinfo) -> BonusTarget:
    accrued = spent = 0
    card_refs: set[str | None] = set()
    latest: datetime | None = None
    parts = []
    for row in wire.rows(element, "ТаблицаБонусов"):
        kind = wire.decimal(row, "ВидДвижения")
        if kind not in (0, 1):
            raise wire.Fault("validation_error", f"ВидДвижения: {kind}; ожидается 0 (приход) или 1 (расход)")
        points = _points(wire.decimal(row, "Начислено"), "Начислено")
        period = wire.date(row, "Период", zone)
        card_refs.add(wire.guid(row, "ИдентификаторКарты"))
        # A negative incoming movement is an outgoing one and vice versa.
        if (kind == 0) == (points >= 0):
            accrued += abs(points)
            if points and period is not None and (latest is None or period > latest):
                latest = period
        else:
            spent += abs(points)
        parts.append(f"{kind}|{points}|{period}|{wire.text(row, 'ИдентификаторКарты')}")
    if len(card_refs) > 1:
        raise wire.Fault("validation_error", "Движения бонусов одного документа относятся к разным картам")
    card_ref = next(iter(card_refs), None)
    return BonusTarget(card_ref, accrued, spent, latest, _digest(parts))


def _unbook(ctx: Ctx, row: DiscountServerDocument, change_id: str) -> None:
    """Undo everything the document posted on its card (its card changed between versions)."""
    if row.account_id is None:
        return
    lock_account(ctx, row.account_id)
    # What a return could not take stays with the old card: only what it drew goes back.
    return_spent(ctx, row.account_id, row.id, change_id, row.points_spent - min(row.points_shortfall, row.points_spent))
    taken = reverse_earned(ctx, row.account_id, row.id, change_id, row.points_accrued)
    row.points_shortfall = row.points_accrued - taken
    row.points_spent = row.points_accrued = 0


def _is_return(row: DiscountServerDocument) -> bool:
    return row.total_kopecks < 0  # ТаблицаТоваровДляОбновленияПродаж: a return's lines come negative


def _check_limits(ctx: Ctx, row: DiscountServerDocument, target: BonusTarget, available: int) -> None:
    if _is_return(row):
        return  # a return takes back what it can; the rest is its shortfall
    extra = target.spent - row.points_spent
    if extra > available:
        raise LoyaltyError(ErrorCode.INSUFFICIENT_POINTS, requested=extra, available=available)
    if row.total_kopecks == 0:
        return
    value = ctx.program.point_value_kopecks
    cap = int(ctx.program.max_share() * row.total_kopecks / value)
    if target.spent > cap:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            f"документ оплачен баллами ({target.spent}) сверх доли программы ({cap} из {row.total_kopecks / 100} руб.)",
            requested=target.spent,
            max_points_payable=cap,
        )
    if target.accrued > row.total_kopecks // value:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            f"начислено баллов ({target.accrued}) больше суммы документа ({row.total_kopecks / 100} руб.)",
            requested=target.accrued,
        )


def update_bonuses(ctx: Ctx, document: Document, target: BonusTarget) -> bool:
    card = cards.resolve(ctx.session, target.card_ref) if target.card_ref is not None else None
    row = document_row(ctx, document)
    if row.bonuses_hash == target.digest and row.status == "booked":
        return True
    # The id of this version's ledger rows (36 characters, as the ledger's refund ids).
    change_id = str(uuid.uuid5(uuid.UUID(row.id), str(row.revision + 1)))
    if card is not None and row.account_id is not None and row.account_id != card.account_id:
        _unbook(ctx, row, change_id)
    account_id = card.account_id if card is not None else row.account_id
    if account_id is not None:
        lock_account(ctx, account_id)
        available = available_points(ctx, account_id)
        if target.available_at is None or target.available_at <= ctx.now:
            available += max(0, target.accrued - row.points_accrued)  # booked before the spend
        _check_limits(ctx, row, target, available)
        _post(ctx, row, account_id, target, change_id)
    if card is not None:
        row.card_number, row.account_id = card.number, card.account_id
    row.bonuses_hash = target.digest
    row.revision += 1
    row.status, row.error_code, row.error_message = "booked", None, None
    row.updated_at = ctx.now
    ctx.session.add(row)
    return True


def _post(ctx: Ctx, row: DiscountServerDocument, account_id: str, target: BonusTarget, change_id: str) -> None:
    """Move the document from what it stands for to ``target``. ``points_shortfall`` counts what
    the document should have taken from the customer and could not (a return of goods whose
    points were already spent elsewhere); anything the document later gives settles it first."""
    more_accrued = target.accrued - row.points_accrued
    more_spent = target.spent - row.points_spent
    if more_accrued > 0 and row.points_shortfall:
        settled = min(more_accrued, row.points_shortfall)
        row.points_shortfall -= settled
        more_accrued -= settled
        row.points_accrued += settled
    if more_accrued > 0:  # first, so that a return's points back can pay its take-back
        available_at = max(ctx.now, target.available_at or ctx.now)
        days = ctx.program.expiry.days
        add_lot(
            ctx,
            account_id,
            "accrual",
            more_accrued,
            entry_kind="accrual",
            available_at=available_at,
            expires_at=available_at + timedelta(days=days) if days else None,
            transaction_id=row.id,
            refund_id=change_id,
        )
    if more_spent > 0:
        drawn = min(more_spent, available_points(ctx, account_id)) if _is_return(row) else more_spent
        row.points_shortfall += more_spent - drawn
        if drawn:
            allocations = allocate(ctx, account_id, drawn, "spent", None)
            entry = add_entry(ctx, account_id, "spend", -drawn, transaction_id=row.id, refund_id=change_id)
            for allocation in allocations:
                allocation.entry_id = entry.id
                ctx.session.add(allocation)
    elif more_spent < 0:
        settled = min(-more_spent, row.points_shortfall)
        row.points_shortfall -= settled
        return_spent(ctx, account_id, row.id, change_id, -more_spent - settled)
    if more_accrued < 0:
        taken = reverse_earned(ctx, account_id, row.id, change_id, -more_accrued)
        row.points_shortfall += -more_accrued - taken
    row.points_accrued, row.points_spent = target.accrued, target.spent


def mark_refused(session: Session, client_id: str, document: Document, code: str, message: str, now: datetime) -> None:
    """Record a refused update (in its own transaction: the refused one changed nothing)."""
    row = session.exec(
        select(DiscountServerDocument).where(
            col(DiscountServerDocument.document_type) == document.type,
            col(DiscountServerDocument.document_ref) == document.ref,
        )
    ).first()
    if row is None:
        row = DiscountServerDocument(
            id=str(uuid.uuid4()),
            client_id=client_id,
            document_type=document.type,
            document_ref=document.ref,
            created_at=now,
            updated_at=now,
        )
    row.status, row.error_code, row.error_message = "refused", code[:64], message[:1024]
    row.updated_at = now
    session.add(row)


def run(ctx_factory: CtxFactory, action: Action) -> bool:
    """Run ``action`` in one write transaction; a concurrent first sight of the same document
    (unique constraint) runs it once more, and then finds the row."""
    for attempt in range(3):
        try:
            with ctx_factory() as ctx:
                return action(ctx)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover

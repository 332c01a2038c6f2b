"""Coupons of a store document (``ОбновитьДанныеОКупонах``): the state of each (discount, code)
replaces the previous one, as 1C's server rewrites ``СостоянияОднократныхСкидокИКупонов`` filtered
by discount and code; ``ПолучитьСкидкиПоКупону`` reads them back (``queries.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from lxml import etree
from sqlmodel import col, select

from adapters.onec.discountserver import wire
from adapters.onec.discountserver.booking import Document, document_row
from gateway.ledger.context import Ctx
from gateway.store.models_discountserver import DiscountServerCoupon


@dataclass(frozen=True)
class CouponState:
    discount_ref: str
    code: str
    state: str
    period: datetime | None
    valid_until: datetime | None
    store_ref: str | None


STATES = ("Активна", "Применена", "")


def coupons_of(element: etree._Element, zone: tzinfo) -> list[CouponState]:
    states = []
    for row in wire.rows(element, "ТаблицаКупонов"):
        discount_ref, code = wire.guid(row, "ИдентификаторСкидки"), wire.text(row, "КодКупона")
        state = wire.text(row, "Состояние")
        if state not in STATES:
            raise wire.Fault("validation_error", f"Состояние купона «{state[:32]}»: ожидается Активна или Применена")
        if len(code) > 128:
            raise wire.Fault("validation_error", "КодКупона длиннее 128 символов")
        if discount_ref is None or not code:  # 1C's server skips such rows too
            continue
        states.append(
            CouponState(
                discount_ref,
                code,
                state,
                wire.date(row, "Период", zone),
                wire.date(row, "ПериодДействия", zone),
                wire.guid(row, "ИдентификаторМагазина"),
            )
        )
    return states


def update_coupons(ctx: Ctx, document: Document, states: list[CouponState]) -> bool:
    row = document_row(ctx, document)
    for state in states:
        stmt = select(DiscountServerCoupon).where(
            col(DiscountServerCoupon.discount_ref) == state.discount_ref, col(DiscountServerCoupon.code) == state.code
        )
        coupon = ctx.session.exec(stmt if ctx.db.is_sqlite else stmt.with_for_update()).first()
        if coupon is None:
            coupon = DiscountServerCoupon(discount_ref=state.discount_ref, code=state.code, state="", period=ctx.now)
        coupon.state = state.state
        coupon.period = state.period or ctx.now
        coupon.valid_until = state.valid_until
        coupon.store_ref = state.store_ref
        coupon.document_id = row.id
        ctx.session.add(coupon)
    return True

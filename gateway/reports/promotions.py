"""What promotions did: the program's rules and promo codes as the receipts' explanations record
them, promo-code campaigns by the uses of their codes, and goods bought together."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ColumnElement, Integer, Numeric, cast, distinct, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from gateway.core.program import Program
from gateway.reports.base import Column, Filters, Report, share_percent
from gateway.reports.purchases import T, period_receipts, receipt_lines, receipts


def rule_steps(session: Session, p: Any) -> Subquery:
    """One row per (receipt, rule) of the period's receipts: the discount (kopecks) and points the
    rule gave, read from the receipt's stored explanation (a JSON array) by the database itself."""
    rule: ColumnElement[Any]
    if session.get_bind().dialect.name == "sqlite":
        step = func.json_each(receipts.c.explanation_json).table_valued("value").alias("step")
        rule = func.json_extract(step.c.value, "$.rule")
        # Decimal text with two places ("12.50"): ×100 and rounded to an integer at once, so no
        # fraction of a kopeck survives the float SQLite computes with.
        discount = cast(func.round(cast(func.json_extract(step.c.value, "$.discount"), Numeric) * 100), Integer)
        points = cast(func.json_extract(step.c.value, "$.points"), Integer)
    else:
        step = func.json_array_elements(cast(receipts.c.explanation_json, JSON)).table_valued("value").alias("step")
        rule = step.c.value.op("->>")("rule")
        discount = cast(func.round(cast(step.c.value.op("->>")("discount"), Numeric(18, 2)) * 100), BigInteger)
        points = cast(step.c.value.op("->>")("points"), BigInteger)
    return (
        select(
            receipts.c.id.label("receipt"),
            rule.label("rule"),
            func.sum(func.coalesce(discount, 0)).label("discount"),
            func.sum(func.coalesce(points, 0)).label("points"),
        )
        .select_from(receipts)
        .join(step, literal(True))
        .where(receipts.c.id.in_(select(p.c.id)))
        .group_by(receipts.c.id, rule)
        .subquery("steps")
    )


def _kind(rule: str) -> str:
    head = rule.split(":", 1)[0]
    return {"discount": "Скидка", "promo": "Промокод", "referral": "Реферальные баллы"}.get(head, "Начисление")


def promotions(session: Session, program: Program, filters: Filters) -> Report:
    """Per rule (discount rules, promo codes, accrual rules, limits, referrals), zone and channel:
    receipts it applied to, their revenue, the discount it gave and the points it accrued."""
    p = period_receipts(program, filters)
    steps = rule_steps(session, p)
    query = (
        select(
            steps.c.rule,
            p.c.zone,
            p.c.client_id,
            func.count(distinct(p.c.id)),
            func.sum(p.c.paid),
            func.sum(steps.c.discount),
            func.sum(steps.c.points),
        )
        .select_from(steps)
        .join(p, p.c.id == steps.c.receipt)
        # The redemption limits' "points" are caps of what was payable, not an effect of a promotion.
        .where((steps.c.discount != 0) | (steps.c.points != 0), steps.c.rule.not_like("redemption.%"))
        .group_by(steps.c.rule, p.c.zone, p.c.client_id)
        .order_by(func.sum(steps.c.discount).desc(), func.sum(steps.c.points).desc(), steps.c.rule)
    )
    rows = [
        (str(rule), _kind(str(rule)), zone or "", client, int(n), int(paid), int(d), int(pts))
        for rule, zone, client, n, paid, d, pts in session.execute(query).all()
    ]
    columns = (
        Column("rule", "Правило / промокод", "Rule / promo code"),
        Column("kind", "Вид", "Kind"),
        Column("zone", "Зона", "Zone"),
        Column("channel", "Канал", "Channel"),
        Column("receipts", "Чеков", "Receipts", "int"),
        Column("revenue", "Выручка этих чеков, руб.", "Revenue of these receipts, RUB", "money"),
        Column("discount", "Скидка, руб.", "Discount, RUB", "money"),
        Column("points", "Начислено баллов", "Points accrued", "points"),
    )
    notes = [
        "Из объяснений расчёта, сохранённых с каждым чеком: одно правило — одна строка на зону и канал.",
        "Рассылки с покупками не связаны в данных шлюза: их эффект здесь не считается.",
    ]
    return Report(
        "promotions", "Акции, правила скидок и промокоды", "Promotions and rules", columns, rows, notes, filters
    )


def campaigns(session: Session, program: Program, filters: Filters) -> Report:
    """Promo-code campaigns: receipts of the period that used one of a campaign's codes."""
    uses = T["campaign_code_uses"]
    campaign = T["promo_campaigns"]
    p = period_receipts(program, filters)
    steps = rule_steps(session, p)
    promo_off = (
        select(steps.c.receipt, func.sum(steps.c.discount).label("discount"))
        .where(steps.c.rule.like("promo:%"))
        .group_by(steps.c.receipt)
        .subquery("promo_off")
    )
    query = (
        select(
            campaign.c.name,
            p.c.zone,
            p.c.store,
            p.c.client_id,
            func.count(),
            func.count(distinct(p.c.customer_id)),
            func.sum(p.c.paid),
            func.sum(func.coalesce(promo_off.c.discount, 0)),
            func.sum(p.c.points_accrued),
        )
        .select_from(uses)
        .join(p, p.c.id == uses.c.transaction_id)
        .join(campaign, campaign.c.id == uses.c.campaign_id)
        .outerjoin(promo_off, promo_off.c.receipt == p.c.id)
        .group_by(campaign.c.name, p.c.zone, p.c.store, p.c.client_id)
        .order_by(campaign.c.name, func.count().desc())
    )
    rows = [
        (name, zone or "", store or "", client, int(n), int(k), int(paid), int(d), int(pts))
        for name, zone, store, client, n, k, paid, d, pts in session.execute(query).all()
    ]
    columns = (
        Column("campaign", "Кампания", "Campaign"),
        Column("zone", "Зона", "Zone"),
        Column("store", "Магазин", "Store"),
        Column("channel", "Канал", "Channel"),
        Column("uses", "Использований", "Uses", "int"),
        Column("customers", "Покупателей", "Customers", "int"),
        Column("revenue", "Выручка, руб.", "Revenue, RUB", "money"),
        Column("discount", "Скидка по кодам, руб.", "Code discount, RUB", "money"),
        Column("points", "Начислено баллов по этим чекам", "Points accrued on these receipts", "points"),
    )
    notes = ["Использования кодов в заказах сайта здесь не считаются: только чеки."]
    return Report("campaigns", "Кампании промокодов", "Promo-code campaigns", columns, rows, notes, filters)


def pairs(session: Session, program: Program, filters: Filters) -> Report:
    """Pairs of goods most often in one receipt; support is the share of the period's receipts
    with both, confidence the share of receipts with the first that also have the second."""
    p = period_receipts(program, filters)
    a = receipt_lines.alias("a")
    b = receipt_lines.alias("b")
    period_ids = select(p.c.id)
    together = (
        select(a.c.item.label("first"), b.c.item.label("second"), func.count(distinct(a.c.receipt_txn_id)).label("n"))
        .select_from(a)
        .join(b, (b.c.receipt_txn_id == a.c.receipt_txn_id) & (a.c.item < b.c.item))
        .where(a.c.receipt_txn_id.in_(period_ids))
        .group_by(a.c.item, b.c.item)
        .order_by(func.count(distinct(a.c.receipt_txn_id)).desc(), a.c.item, b.c.item)
        .limit(filters.limit)
    )
    top = session.execute(together).all()
    items = sorted({str(x) for first, second, _ in top for x in (first, second)})
    alone: dict[str, int] = {}
    if items:
        counted = (
            select(receipt_lines.c.item, func.count(distinct(receipt_lines.c.receipt_txn_id)))
            .where(receipt_lines.c.receipt_txn_id.in_(period_ids), receipt_lines.c.item.in_(items))
            .group_by(receipt_lines.c.item)
        )
        alone = {str(item): int(n) for item, n in session.execute(counted).all()}
    total = int(session.execute(select(func.count()).select_from(p)).scalar_one())
    rows = [
        (first, second, int(n), share_percent(int(n), total), share_percent(int(n), alone.get(first, 0)))
        for first, second, n in top
    ]
    columns = (
        Column("first", "Товар 1", "Item 1"),
        Column("second", "Товар 2", "Item 2"),
        Column("receipts", "Чеков с обоими", "Receipts with both", "int"),
        Column("support", "Доля чеков, %", "Support, %", "percent"),
        Column("confidence", "Из чеков с товаром 1, %", "Confidence 1→2, %", "percent"),
    )
    return Report("pairs", "Товары, которые покупают вместе", "Goods bought together", columns, rows, [], filters)


__all__ = ["campaigns", "pairs", "promotions", "rule_steps"]

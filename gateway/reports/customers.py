"""Customer reports: the top customers, RFM segments and how customers moved between them,
churned and won-back customers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, and_, case, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from gateway.core.program import Program
from gateway.reports.base import Column, Filters, Report, mask_card, share_percent
from gateway.reports.purchases import period_receipts, purchase_time, receipts


def top_customers(session: Session, program: Program, filters: Filters) -> Report:
    p = period_receipts(program, filters)
    per = (
        select(
            p.c.customer_id,
            p.c.account_id,
            func.min(p.c.card_number).label("card"),
            func.min(p.c.tier).label("tier"),
            func.min(p.c.segment).label("segment"),
            func.count().label("n"),
            func.sum(p.c.paid).label("paid"),
            func.min(p.c.at).label("first_in"),
            func.max(p.c.at).label("last_in"),
        )
        .group_by(p.c.customer_id, p.c.account_id)
        .order_by(func.sum(p.c.paid).desc(), p.c.customer_id)
        .limit(filters.limit)
        .subquery("per")
    )
    # The first purchase ever (the length of the relationship): an index lookup per top customer.
    first_ever = select(func.min(purchase_time())).where(receipts.c.account_id == per.c.account_id).scalar_subquery()
    query = select(
        per.c.customer_id,
        per.c.card,
        per.c.tier,
        per.c.segment,
        per.c.n,
        per.c.paid,
        per.c.first_in,
        per.c.last_in,
        first_ever,
    ).order_by(per.c.paid.desc(), per.c.customer_id)
    rows = []
    for place, (customer, card, tier, segment, n, paid, first_in, last_in, ever) in enumerate(
        session.execute(query).all(), start=1
    ):
        rows.append(
            (
                place,
                customer,
                mask_card(card),
                tier or "",
                segment or "",
                int(n),
                int(paid),
                int(paid) // int(n),
                ever,
                first_in,
                last_in,
            )
        )
    columns = (
        Column("place", "Место", "Rank", "int"),
        Column("customer_id", "Покупатель (id)", "Customer id"),
        Column("card", "Карта", "Card"),
        Column("tier", "Уровень", "Tier"),
        Column("segment", "Сегмент", "Segment"),
        Column("receipts", "Чеков", "Receipts", "int"),
        Column("turnover", "Оборот, руб.", "Turnover, RUB", "money"),
        Column("average", "Средний чек, руб.", "Average receipt, RUB", "money"),
        Column("first_purchase", "Первая покупка (за всё время)", "First purchase ever", "datetime"),
        Column("first_in_period", "Первая покупка в периоде", "First purchase in the period", "datetime"),
        Column("last_in_period", "Последняя покупка в периоде", "Last purchase in the period", "datetime"),
    )
    return Report("top_customers", "Лучшие покупатели", "Top customers", columns, rows, [], filters)


# RFM: each score is the customer's third (1..3) among the window's buyers; ties are broken by
# customer id, so the split is deterministic.
RFM_SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("champions", "Чемпионы", "Champions"),
    ("loyal", "Лояльные", "Loyal"),
    ("promising", "Новые и перспективные", "New and promising"),
    ("attention", "Требуют внимания", "Need attention"),
    ("at_risk", "Под угрозой ухода", "At risk"),
    ("hibernating", "Спящие", "Hibernating"),
    ("none", "Нет покупок в окне", "No purchases in the window"),
)
RFM_NAMES = {code: (ru, en) for code, ru, en in RFM_SEGMENTS}


def _rfm_window(program: Program, filters: Filters, start: Any, end: Any, name: str) -> Any:
    p = period_receipts(program, filters, start, end, name=f"{name}_p")
    per = (
        select(
            p.c.customer_id,
            func.max(p.c.at).label("last_at"),
            func.count().label("f"),
            func.sum(p.c.paid).label("m"),
        )
        .group_by(p.c.customer_id)
        .subquery(f"{name}_per")
    )
    r = func.ntile(3).over(order_by=(per.c.last_at, per.c.customer_id))
    f = func.ntile(3).over(order_by=(per.c.f, per.c.customer_id))
    m = func.ntile(3).over(order_by=(per.c.m, per.c.customer_id))
    scored = select(
        per.c.customer_id, per.c.last_at, per.c.f, per.c.m, r.label("r"), f.label("fs"), m.label("ms")
    ).subquery(f"{name}_scored")
    segment = case(
        (and_(scored.c.r == 3, scored.c.fs == 3), "champions"),
        (and_(scored.c.r >= 2, scored.c.fs >= 2), "loyal"),
        (and_(scored.c.r == 3, scored.c.fs == 1), "promising"),
        (and_(scored.c.r == 1, scored.c.fs >= 2), "at_risk"),
        (and_(scored.c.r == 1, scored.c.fs == 1), "hibernating"),
        else_="attention",
    )
    return select(
        scored.c.customer_id, segment.label("segment"), scored.c.f, scored.c.m, scored.c.r, scored.c.fs, scored.c.ms
    ).cte(name)


def rfm_moves(session: Session, program: Program, filters: Filters) -> list[tuple[str, str, int, int, int]]:
    """(segment before, segment after, customers, purchases after, turnover after) — before is
    the previous window of the period's length, after is the period."""
    length = filters.end - filters.start
    before = _rfm_window(program, filters, filters.start - length, filters.start, "before")
    after = _rfm_window(program, filters, filters.start, filters.end, "after")
    # Both windows stacked and grouped by customer (a sort), not joined: a full join of two
    # derived tables has no index to use and SQLite would compare every pair.
    nothing = literal(None, String)
    stacked = union_all(
        select(
            before.c.customer_id,
            before.c.segment.label("was"),
            nothing.label("now"),
            literal(0).label("f"),
            literal(0).label("m"),
        ),
        select(after.c.customer_id, nothing, after.c.segment, after.c.f, after.c.m),
    ).subquery("stacked")
    per = (
        select(
            func.coalesce(func.max(stacked.c.was), literal("none")).label("was"),
            func.coalesce(func.max(stacked.c.now), literal("none")).label("now"),
            func.sum(stacked.c.f).label("f"),
            func.sum(stacked.c.m).label("m"),
        )
        .group_by(stacked.c.customer_id)
        .subquery("moves")
    )
    full = per
    query = select(full.c.was, full.c.now, func.count(), func.sum(full.c.f), func.sum(full.c.m)).group_by(
        full.c.was, full.c.now
    )
    return [(str(w), str(n), int(c), int(f or 0), int(m or 0)) for w, n, c, f, m in session.execute(query).all()]


def rfm(session: Session, program: Program, filters: Filters) -> Report:
    moves = rfm_moves(session, program, filters)
    rows: list[tuple[Any, ...]] = []
    total_now = sum(c for _, now, c, _, _ in moves if now != "none")
    for code, ru, _ in RFM_SEGMENTS:
        now = sum(c for _, n, c, _, _ in moves if n == code)
        was = sum(c for w, _, c, _, _ in moves if w == code)
        stayed = sum(c for w, n, c, _, _ in moves if w == n == code)
        receipts_n = sum(f for _, n, _, f, _ in moves if n == code)
        turnover = sum(m for _, n, _, _, m in moves if n == code)
        rows.append(
            (
                code,
                ru,
                now,
                share_percent(now, total_now) if code != "none" else None,
                receipts_n,
                turnover,
                was,
                stayed,
                now - stayed,
                was - stayed,
            )
        )
    columns = (
        Column("segment", "Код", "Code"),
        Column("title", "Сегмент RFM", "RFM segment"),
        Column("customers", "Покупателей в периоде", "Customers in the period", "int"),
        Column("share", "Доля, %", "Share, %", "percent"),
        Column("receipts", "Чеков", "Receipts", "int"),
        Column("turnover", "Оборот, руб.", "Turnover, RUB", "money"),
        Column("before", "В прошлом окне", "In the previous window", "int"),
        Column("stayed", "Остались", "Stayed", "int"),
        Column("came", "Пришли", "Came in", "int"),
        Column("left", "Ушли", "Left", "int"),
    )
    notes = [
        "R, F, M — трети покупателей окна по давности последней покупки, числу чеков и обороту; "
        "прошлое окно — такой же длины перед периодом.",
        "«Нет покупок в окне»: в периоде — ушедшие из прошлого окна; в прошлом окне — новые в периоде.",
    ]
    return Report("rfm", "RFM-сегменты и их движение", "RFM segments and movement", columns, rows, notes, filters)


def rfm_transitions(session: Session, program: Program, filters: Filters) -> Report:
    rows = sorted(
        ((RFM_NAMES[w][0], RFM_NAMES[n][0], c) for w, n, c, _, _ in rfm_moves(session, program, filters)),
        key=lambda row: -row[2],
    )
    columns = (
        Column("was", "Был в сегменте", "Was in"),
        Column("now", "Стал", "Now in"),
        Column("customers", "Покупателей", "Customers", "int"),
    )
    return Report("rfm_moves", "Переходы между RFM-сегментами", "RFM transitions", columns, rows, [], filters)


def churn(session: Session, program: Program, filters: Filters) -> Report:
    """Against the previous window of the period's length: retained (bought in both), churned
    (bought before, not now), won back (bought now, not in the previous window but earlier),
    new (first purchase ever in the period)."""
    length = filters.end - filters.start
    prev_start = filters.start - length
    p = period_receipts(program, filters, prev_start, filters.end)
    now = p.c.at >= filters.start
    per = (
        select(
            p.c.customer_id,
            p.c.account_id,
            func.sum(case((now, 1), else_=0)).label("n_now"),
            func.sum(case((now, p.c.paid), else_=0)).label("paid_now"),
            func.sum(case((now, 0), else_=1)).label("n_prev"),
            func.sum(case((now, 0), else_=p.c.paid)).label("paid_prev"),
        )
        .group_by(p.c.customer_id, p.c.account_id)
        .subquery("per")
    )
    earlier = exists().where(receipts.c.account_id == per.c.account_id, purchase_time() < prev_start)
    status = case(
        (and_(per.c.n_now > 0, per.c.n_prev > 0), "retained"),
        (per.c.n_now == 0, "churned"),
        (earlier, "won_back"),
        else_="new",
    ).label("status")
    graded = select(per.c.customer_id, per.c.n_now, per.c.paid_now, per.c.paid_prev, status).subquery("graded")
    query = select(
        graded.c.status,
        func.count(),
        func.sum(graded.c.n_now),
        func.sum(graded.c.paid_now),
        func.sum(graded.c.paid_prev),
    ).group_by(graded.c.status)
    found = {str(s): (int(c), int(n or 0), int(a or 0), int(b or 0)) for s, c, n, a, b in session.execute(query).all()}
    titles = (
        ("retained", "Остались (покупали и раньше, и сейчас)", "Retained"),
        ("churned", "Ушли (покупали в прошлом окне, в периоде — нет)", "Churned"),
        ("won_back", "Вернулись (покупали давно, в прошлом окне — нет)", "Won back"),
        ("new", "Новые (первая покупка в периоде)", "New"),
    )
    rows = [(code, ru, *found.get(code, (0, 0, 0, 0))) for code, ru, _ in titles]
    columns = (
        Column("status", "Код", "Code"),
        Column("title", "Группа", "Group"),
        Column("customers", "Покупателей", "Customers", "int"),
        Column("receipts", "Чеков в периоде", "Receipts in the period", "int"),
        Column("turnover", "Оборот в периоде, руб.", "Turnover in the period, RUB", "money"),
        Column("turnover_before", "Оборот в прошлом окне, руб.", "Turnover in the previous window, RUB", "money"),
    )
    notes = [f"Прошлое окно: {filters.days} дн. перед периодом."]
    return Report("churn", "Ушедшие и вернувшиеся покупатели", "Churned and won back", columns, rows, notes, filters)

"""Program-wide reports: the summary of a period, its dynamics by day, stores, partners' turnover,
tiers."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, case, cast, func, literal, select
from sqlalchemy.orm import Session

from gateway.core.program import Program
from gateway.reports import rollups
from gateway.reports.base import Column, Filters, Report, share_percent
from gateway.reports.purchases import (
    T,
    accounts,
    cards,
    customers,
    entries,
    narrowed,
    period_receipts,
    segment_of,
    zone_of,
)

# How ledger entry kinds add up in the summary; whatever is not listed is an adjustment or a
# transfer (imports, merges), so the flows always reconcile with the liability.
ACCRUED = ("accrual", "birthday", "referral", "win_back")
FLOWS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("accrued", ACCRUED, "Начислено баллов (покупки, дни рождения, рефералы, подарки вернувшимся)", "Points accrued"),
    ("welcome", ("welcome",), "Приветственные баллы", "Welcome points"),
    ("spent", ("spend",), "Списано баллов в оплату", "Points spent"),
    ("expired", ("expire",), "Сгорело баллов", "Points expired"),
    ("reversed", ("reverse",), "Отменено начислений (возвраты)", "Points reversed (returns)"),
    ("returned", ("return",), "Возвращено списанных баллов (возвраты)", "Spent points given back (returns)"),
)
KNOWN_KINDS = tuple(kind for _, kinds, _, _ in FLOWS for kind in kinds)

METRIC_COLUMNS = (
    Column("metric", "Код", "Code"),
    Column("title", "Показатель", "Metric"),
    Column("value", "Значение", "Value", "text"),
    Column("unit", "Единица", "Unit"),
)


def _local_day(program: Program, at: Any) -> Any:
    """The local calendar day of a UTC timestamp, in SQL (the program's fixed offset now: Russian
    zones have had no daylight saving since 2014)."""
    offset = datetime.now(program.zone).utcoffset()
    seconds = int(offset.total_seconds()) if offset else 0
    return func.date(at, f"{seconds:+d} seconds")


def _day_sql(session: Session, program: Program, at: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return _local_day(program, at)
    return cast(func.timezone(program.timezone, at), Date)


def _segment_filter(program: Program, filters: Filters) -> Any:
    return segment_of(program) == filters.segment if filters.segment else literal(True)


def ledger_flows(session: Session, program: Program, filters: Filters) -> dict[str, int]:
    """Points moved in the period by category, and the liability before and after it (points)."""
    flows_source: Any
    kind: Any
    points: Any
    size: Any
    if rollups.usable(filters):
        flows_source = rollups.ledger_hours(session, filters)
        kind, points, size = flows_source.c.kind, flows_source.c.points, flows_source.c.magnitude
        period = flows_source.c.hour >= rollups.hour_number(filters.start)
        before = flows_source.c.hour < rollups.hour_number(filters.start)
    else:
        flows_source = entries
        kind, points, size = entries.c.kind, entries.c.points, func.abs(entries.c.points)
        period = (entries.c.created_at >= filters.start) & (entries.c.created_at < filters.end)
        before = entries.c.created_at < filters.start
    columns = [
        func.coalesce(func.sum(case((period & kind.in_(kinds), size), else_=0)), 0).label(key)
        for key, kinds, _, _ in FLOWS
    ]
    columns.append(
        func.coalesce(func.sum(case((period & kind.not_in(KNOWN_KINDS), points), else_=0)), 0).label("other")
    )
    columns.append(func.coalesce(func.sum(case((before, points), else_=0)), 0).label("opening"))
    query = select(*columns).select_from(flows_source)
    if flows_source is entries:
        query = query.where(entries.c.created_at < filters.end)
    if filters.segment:
        query = (
            query.join(accounts, accounts.c.id == entries.c.account_id)
            .join(customers, customers.c.id == accounts.c.customer_id)
            .where(_segment_filter(program, filters))
        )
    row = session.execute(query).one()._mapping
    flows = {key: int(row[key]) for key in row.keys()}  # noqa: SIM118  (a RowMapping)
    flows["closing"] = (
        flows["opening"]
        + flows["accrued"]
        + flows["welcome"]
        - flows["spent"]
        - flows["expired"]
        - flows["reversed"]
        + flows["returned"]
        + flows["other"]
    )
    return flows


def _purchases(session: Session, program: Program, filters: Filters) -> tuple[int, ...]:
    """Receipts, buyers, gross, discount, returned, paid and paid by points of the period."""
    if rollups.usable(filters):
        s = rollups.sales(session, program, filters)
        row = session.execute(
            select(
                func.coalesce(func.sum(s.c.receipts), 0),
                func.coalesce(func.sum(s.c.gross_kopecks), 0),
                func.coalesce(func.sum(s.c.discount_kopecks), 0),
                func.coalesce(func.sum(s.c.returned_kopecks), 0),
                func.coalesce(func.sum(s.c.paid_by_points_kopecks), 0),
            )
        ).one()
        n, gross, discount, returned, by_points = (int(v) for v in row)
        active = rollups.active_customers(session, program, filters)
        return n, active, gross, discount, returned, gross - discount - returned, by_points
    p = period_receipts(program, filters)
    row = session.execute(
        select(
            func.count(),
            func.count(func.distinct(p.c.customer_id)),
            func.coalesce(func.sum(p.c.gross), 0),
            func.coalesce(func.sum(p.c.discount), 0),
            func.coalesce(func.sum(p.c.returned), 0),
            func.coalesce(func.sum(p.c.paid), 0),
            func.coalesce(func.sum(p.c.points_spent * p.c.point_value_kopecks), 0),
        ).select_from(p)
    ).one()
    return tuple(int(v) for v in row)


def summary(session: Session, program: Program, filters: Filters) -> Report:
    receipts_count, active, gross, discount, returned, paid, by_points = _purchases(session, program, filters)
    issued = cards.c.created_at
    new_cards = select(func.count()).select_from(cards).where(issued >= filters.start, issued < filters.end)
    new_customers = (
        select(func.count())
        .select_from(customers)
        .where(
            customers.c.created_at >= filters.start,
            customers.c.created_at < filters.end,
            customers.c.merged_into.is_(None),
        )
    )
    if filters.segment:
        new_cards = new_cards.join(customers, customers.c.id == cards.c.customer_id).where(
            _segment_filter(program, filters)
        )
        new_customers = new_customers.where(_segment_filter(program, filters))
    cards_issued = int(session.execute(new_cards).scalar_one())
    registered = int(session.execute(new_customers).scalar_one())
    flows = ledger_flows(session, program, filters)
    point = program.point_value_kopecks
    average = (Decimal(paid) / receipts_count / 100).quantize(Decimal("0.01")) if receipts_count else None
    rows: list[tuple[Any, ...]] = [
        ("cards_issued", "Выдано карт", cards_issued, "шт."),
        ("customers_registered", "Зарегистрировано покупателей", registered, "чел."),
        ("active_customers", "Активных покупателей (с покупкой в периоде)", active, "чел."),
        ("receipts_with_card", "Чеков с картой", receipts_count, "шт."),
        ("receipts_with_card_share", "Доля чеков с картой — недоступно (чеков без карты нет в шлюзе)", None, "%"),
        ("gross", "Сумма чеков до скидок", _roubles(gross), "руб."),
        ("discount", "Скидки программы", _roubles(discount), "руб."),
        ("returned", "Возвраты по этим чекам", _roubles(returned), "руб."),
        ("turnover", "Оборот по картам (после скидок и возвратов)", _roubles(paid), "руб."),
        ("average_with_card", "Средний чек с картой", average, "руб."),
        ("average_without_card", "Средний чек без карты — недоступно (чеков без карты нет в шлюзе)", None, "руб."),
        ("paid_by_points", "Оплачено баллами", _roubles(by_points), "руб."),
        ("paid_by_points_share", "Доля оплаты баллами", share_percent(by_points, gross - discount), "%"),
    ]
    for key, _, ru, _ in FLOWS:
        rows.append((f"points_{key}", ru, flows[key], "баллов"))
    rows += [
        ("points_other", "Корректировки, импорт, объединения", flows["other"], "баллов"),
        ("liability_opening", "Обязательства на начало периода", flows["opening"], "баллов"),
        ("liability_closing", "Обязательства на конец периода", flows["closing"], "баллов"),
        ("liability_closing_roubles", "Обязательства на конец периода", _roubles(flows["closing"] * point), "руб."),
    ]
    notes = [
        "Чеки без карты в шлюзе не записываются: расчёт скидок без карты (1С calculatediscounts, "
        "SOAP-чек без Card) только считается и не сохраняется, salesturnover — запрос по карте. Доля "
        "чеков с картой и средний чек без карты не вычисляются: нужны общие продажи из 1С.",
        "Баллы и обязательства — по всей программе (фильтр по магазину к ним не применяется).",
    ]
    return Report("summary", "Сводка программы", "Program summary", METRIC_COLUMNS, rows, notes, filters)


def _roubles(kopecks: int) -> Decimal:
    return (Decimal(kopecks) / 100).quantize(Decimal("0.01"))


def daily(session: Session, program: Program, filters: Filters) -> Report:
    """Per local day: cards issued, receipts, turnover, points accrued and spent on receipts."""
    sales: list[Any]
    if rollups.usable(filters):
        hours = rollups.sales(session, program, filters)
        per_hour = session.execute(
            select(
                hours.c.hour,
                func.sum(hours.c.receipts),
                func.sum(hours.c.gross_kopecks - hours.c.discount_kopecks - hours.c.returned_kopecks),
                func.sum(hours.c.points_accrued),
                func.sum(hours.c.points_spent),
            ).group_by(hours.c.hour)
        ).all()
        # at most 24 rows a day: the local day of each hour is the program's zone's, exactly
        summed: dict[date, list[int]] = {}
        for hour, *values in per_hour:
            day_of = (rollups.EPOCH + timedelta(hours=int(hour))).astimezone(program.zone).date()
            into = summed.setdefault(day_of, [0, 0, 0, 0])
            for i, value in enumerate(values):
                into[i] += int(value or 0)
        sales = [(d, *v) for d, v in sorted(summed.items())]
    else:
        p = period_receipts(program, filters)
        day = _day_sql(session, program, p.c.at).label("day")
        sales = list(
            session.execute(
                select(
                    day,
                    func.count(),
                    func.sum(p.c.paid),
                    func.sum(p.c.points_accrued),
                    func.sum(p.c.points_spent),
                )
                .group_by(day)
                .order_by(day)
            ).all()
        )
    issued_day = _day_sql(session, program, cards.c.created_at).label("day")
    issued_query = (
        select(issued_day, func.count())
        .where(cards.c.created_at >= filters.start, cards.c.created_at < filters.end)
        .group_by(issued_day)
    )
    if filters.segment:
        issued_query = issued_query.join(customers, customers.c.id == cards.c.customer_id).where(
            _segment_filter(program, filters)
        )
    issued = {str(d): int(n) for d, n in session.execute(issued_query).all()}
    by_day = {str(d): (int(n), int(t or 0), int(a or 0), int(s or 0)) for d, n, t, a, s in sales}
    rows = []
    for key in sorted(set(by_day) | set(issued)):
        n, t, a, s = by_day.get(key, (0, 0, 0, 0))
        rows.append((key, issued.get(key, 0), n, t, a, s))
    columns = (
        Column("day", "День", "Day", "date"),
        Column("cards_issued", "Выдано карт", "Cards issued", "int"),
        Column("receipts", "Чеков с картой", "Receipts with a card", "int"),
        Column("turnover", "Оборот, руб.", "Turnover, RUB", "money"),
        Column("points_accrued", "Начислено баллов", "Points accrued", "points"),
        Column("points_spent", "Списано баллов", "Points spent", "points"),
    )
    return Report("daily", "Динамика по дням", "Day by day", columns, rows, [], filters)


def _stores_from_rollups(session: Session, program: Program, filters: Filters) -> list[tuple[Any, ...]]:
    s = rollups.sales(session, program, filters)
    paid = func.sum(s.c.gross_kopecks - s.c.discount_kopecks - s.c.returned_kopecks)
    query = select(
        s.c.store,
        s.c.client_id,
        func.sum(s.c.receipts),
        paid,
        func.sum(s.c.discount_kopecks),
        func.sum(s.c.points_spent),
        func.sum(s.c.points_accrued),
    ).group_by(s.c.store, s.c.client_id)
    found = {
        (str(store or ""), str(client)): int(n)
        for store, client, n in session.execute(rollups.buyers(session, program, filters)).all()
    }
    zone = program.catalogue.zone_of
    rows = [
        (
            zone(store or None),
            store,
            c,
            int(n),
            found.get((store, c), 0),
            int(t),
            int(t) // int(n) if n else 0,
            int(d),
            int(sp),
            int(ac),
        )
        for store, c, n, t, d, sp, ac in session.execute(query).all()
        if n
    ]
    return sorted(rows, key=lambda row: -row[5])


def stores(session: Session, program: Program, filters: Filters) -> Report:
    if rollups.usable(filters):
        return _stores_report(_stores_from_rollups(session, program, filters), filters)
    p = period_receipts(program, filters)
    query = (
        select(
            p.c.zone,
            p.c.store,
            p.c.client_id,
            func.count(),
            func.count(func.distinct(p.c.customer_id)),
            func.sum(p.c.paid),
            func.sum(p.c.discount),
            func.sum(p.c.points_spent),
            func.sum(p.c.points_accrued),
        )
        .group_by(p.c.zone, p.c.store, p.c.client_id)
        .order_by(func.sum(p.c.paid).desc())
    )
    rows = [
        (z, s or "", c, int(n), int(k), int(t), int(t) // int(n) if n else 0, int(d), int(sp), int(ac))
        for z, s, c, n, k, t, d, sp, ac in session.execute(query).all()
    ]
    return _stores_report(rows, filters)


def _stores_report(rows: list[tuple[Any, ...]], filters: Filters) -> Report:
    columns = (
        Column("zone", "Зона", "Zone"),
        Column("store", "Магазин", "Store"),
        Column("channel", "Канал (клиент шлюза)", "Channel (gateway client)"),
        Column("receipts", "Чеков", "Receipts", "int"),
        Column("customers", "Покупателей", "Customers", "int"),
        Column("turnover", "Оборот, руб.", "Turnover, RUB", "money"),
        Column("average", "Средний чек, руб.", "Average receipt, RUB", "money"),
        Column("discount", "Скидки, руб.", "Discounts, RUB", "money"),
        Column("points_spent", "Списано баллов", "Points spent", "points"),
        Column("points_accrued", "Начислено баллов", "Points accrued", "points"),
    )
    return Report("stores", "Магазины и каналы", "Stores and channels", columns, rows, [], filters)


def partners(session: Session, program: Program, filters: Filters) -> Report:
    """Turnover statement per company account: receipts of the period (by any of the company's
    cards), shipped order goods, points, and the balance now — what a partner is shown before
    the period closes."""
    companies = T["companies"]
    turnover = T["order_turnover"]
    p = period_receipts(program, filters)
    bought = (
        select(
            p.c.account_id,
            func.count().label("n"),
            func.sum(p.c.paid).label("paid"),
            func.sum(p.c.points_accrued).label("accrued"),
            func.sum(p.c.points_spent).label("spent"),
        )
        .group_by(p.c.account_id)
        .subquery("bought")
    )
    shipped = (
        select(turnover.c.account_id, func.sum(turnover.c.amount_kopecks).label("amount"))
        .where(turnover.c.occurred_at >= filters.start, turnover.c.occurred_at < filters.end)
        .group_by(turnover.c.account_id)
        .subquery("shipped")
    )
    balance = (
        select(func.coalesce(func.sum(entries.c.points), 0))
        .where(entries.c.account_id == accounts.c.id)
        .scalar_subquery()
    )
    query = (
        select(
            companies.c.name,
            companies.c.inn,
            func.coalesce(bought.c.n, 0),
            func.coalesce(bought.c.paid, 0),
            func.coalesce(shipped.c.amount, 0),
            func.coalesce(bought.c.accrued, 0),
            func.coalesce(bought.c.spent, 0),
            balance,
        )
        .select_from(companies)
        .join(accounts, accounts.c.customer_id == companies.c.customer_id)
        .join(customers, customers.c.id == companies.c.customer_id)
        .outerjoin(bought, bought.c.account_id == accounts.c.id)
        .outerjoin(shipped, shipped.c.account_id == accounts.c.id)
        .where(_segment_filter(program, filters))
        .order_by((func.coalesce(bought.c.paid, 0) + func.coalesce(shipped.c.amount, 0)).desc(), companies.c.name)
        .limit(filters.limit)
    )
    rows = [
        (name, inn or "", int(n), int(paid), int(ship), int(paid) + int(ship), int(acc), int(sp), int(bal))
        for name, inn, n, paid, ship, acc, sp, bal in session.execute(query).all()
    ]
    columns = (
        Column("company", "Компания", "Company"),
        Column("inn", "ИНН", "INN"),
        Column("receipts", "Чеков", "Receipts", "int"),
        Column("receipts_turnover", "Оборот по чекам, руб.", "Receipts turnover, RUB", "money"),
        Column("orders_turnover", "Отгружено по заказам, руб.", "Shipped orders, RUB", "money"),
        Column("turnover", "Оборот всего, руб.", "Total turnover, RUB", "money"),
        Column("points_accrued", "Начислено баллов по чекам", "Points accrued on receipts", "points"),
        Column("points_spent", "Списано баллов по чекам", "Points spent on receipts", "points"),
        Column("balance", "Баллов на счёте сейчас", "Points on the account now", "points"),
    )
    notes = ["Отгрузки заказов — по дате отгрузки (минус возвраты); фильтр по магазину к ним не применяется."]
    return Report(
        "partners", "Оборот партнёров (компаний)", "Partner (company) turnover", columns, rows, notes, filters
    )


def tiers(session: Session, program: Program, filters: Filters) -> Report:
    """Customers per tier now, and tier changes in the period (from → to, with counts)."""
    changes = T["program_status_changes"]
    live = customers.c.merged_into.is_(None)
    now = session.execute(
        select(customers.c.tier, func.count()).where(live, _segment_filter(program, filters)).group_by(customers.c.tier)
    ).all()
    moved = session.execute(
        select(changes.c.old_value, changes.c.new_value, func.count())
        .select_from(changes)
        .join(customers, customers.c.id == changes.c.customer_id)
        .where(
            changes.c.attribute == "tier",
            changes.c.created_at >= filters.start,
            changes.c.created_at < filters.end,
            _segment_filter(program, filters),
        )
        .group_by(changes.c.old_value, changes.c.new_value)
    ).all()
    order = [level.code for level in program.tiers.ordered()] if program.tiers else []
    count_now = {t: int(n) for t, n in now}
    moves_in: dict[str | None, int] = {}
    moves_out: dict[str | None, int] = {}
    up: dict[str | None, int] = {}
    for old, new, n in moved:
        moves_in[new] = moves_in.get(new, 0) + int(n)
        moves_out[old] = moves_out.get(old, 0) + int(n)
        if new in order and (old not in order or order.index(new) > order.index(old)):
            up[new] = up.get(new, 0) + int(n)
    keys: list[str | None] = [*order, *sorted(k for k in set(count_now) | set(moves_in) if k and k not in order)]
    if None in count_now or None in moves_out:
        keys.append(None)
    total = sum(count_now.values())
    rows = [
        (
            key or "—",
            count_now.get(key, 0),
            share_percent(count_now.get(key, 0), total),
            moves_in.get(key, 0),
            up.get(key, 0),
            moves_out.get(key, 0),
        )
        for key in keys
    ]
    columns = (
        Column("tier", "Уровень", "Tier"),
        Column("customers", "Покупателей сейчас", "Customers now", "int"),
        Column("share", "Доля, %", "Share, %", "percent"),
        Column("moved_in", "Перешли на уровень за период", "Moved in during the period", "int"),
        Column("upgraded", "Из них повышены", "Of them upgraded", "int"),
        Column("moved_out", "Ушли с уровня за период", "Moved out during the period", "int"),
    )
    notes = ["«—»: уровень ещё не присвоен (нет покупок или вне сегментов с уровнями)."]
    return Report("tiers", "Уровни: распределение и переходы", "Tiers and movements", columns, rows, notes, filters)


def zone_label(program: Program, code: str | None) -> str:
    zone = next((z for z in program.catalogue.zones if z.code == code), None)
    return zone.name or zone.code if zone else (code or "")


__all__ = ["daily", "ledger_flows", "narrowed", "partners", "stores", "summary", "tiers", "zone_of"]

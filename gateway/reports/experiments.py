"""Experiments of accrual rules: the control group (held out of the rule) against the test group
(everyone else) over the same days — customers, purchases, revenue, average receipt, points
cost — and the difference in revenue per customer with a 95 % confidence interval.

The groups are dealt by ``gateway.core.rules.experiments`` — the same function the accrual engine
uses — over every customer registered before the period ends (buyers or not: a rule may change
whether a customer comes at all). The database sums each customer's purchases; only the hash of
each customer id is computed here, one pass over the customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.core.program import Program
from gateway.core.rules.accrual import AccrualRule
from gateway.core.rules.experiments import in_control
from gateway.reports.base import Column, Filters, Report, local_midnight
from gateway.reports.purchases import customers, period_receipts, segment_of

Z95 = Decimal("1.96")


@dataclass
class Group:
    customers: int = 0
    buyers: int = 0
    receipts: int = 0
    revenue: int = 0  # kopecks, after discounts and returns
    points_kopecks: int = 0  # the points accrued on the group's receipts, at their value
    squares: int = field(default=0, repr=False)  # sum of each customer's revenue squared

    def add(self, receipts: int, revenue: int, points_kopecks: int) -> None:
        self.customers += 1
        if receipts:
            self.buyers += 1
        self.receipts += receipts
        self.revenue += revenue
        self.points_kopecks += points_kopecks
        self.squares += revenue * revenue

    def mean(self) -> Decimal:
        return Decimal(self.revenue) / self.customers if self.customers else Decimal(0)

    def variance(self) -> Decimal:
        """Of revenue per customer (the sample's, n − 1)."""
        n = self.customers
        if n < 2:
            return Decimal(0)
        return (Decimal(self.squares) - Decimal(self.revenue) ** 2 / n) / (n - 1)


def _window(rule: AccrualRule, filters: Filters) -> tuple[date, date] | None:
    experiment = rule.experiment
    assert experiment is not None
    first = max(filters.first_day, experiment.since)
    last = min(filters.last_day, experiment.until) if experiment.until else filters.last_day
    return (first, last) if first <= last else None


def compare(session: Session, program: Program, filters: Filters, rule: AccrualRule) -> tuple[Group, Group] | None:
    """(control, test) over the days of the period the experiment ran, or None if none."""
    window = _window(rule, filters)
    if window is None or rule.experiment is None:
        return None
    start, end = local_midnight(window[0], program), local_midnight(window[1] + timedelta(days=1), program)
    p = period_receipts(program, filters, start, end)
    per = (
        select(
            p.c.customer_id,
            func.count().label("n"),
            func.sum(p.c.paid).label("paid"),
            func.sum(p.c.points_accrued * p.c.point_value_kopecks).label("points"),
        )
        .group_by(p.c.customer_id)
        .subquery("per")
    )
    everyone = (
        select(customers.c.id, func.coalesce(per.c.n, 0), func.coalesce(per.c.paid, 0), func.coalesce(per.c.points, 0))
        .select_from(customers)
        .outerjoin(per, per.c.customer_id == customers.c.id)
        .where(customers.c.created_at < end, customers.c.merged_into.is_(None))
    )
    if filters.segment:
        everyone = everyone.where(segment_of(program) == filters.segment)
    control, test = Group(), Group()
    for customer_id, n, paid, points in session.execute(everyone):
        group = control if in_control(rule.experiment, rule.id, str(customer_id)) else test
        group.add(int(n), int(paid), int(points))
    return control, test


def _kopecks(value: Decimal) -> int:
    return int(value.to_integral_value())


def experiment(session: Session, program: Program, filters: Filters) -> Report:
    rows: list[tuple[Any, ...]] = []
    running = [rule for rule in program.accrual.rules if rule.experiment is not None]
    for rule in running:
        found = compare(session, program, filters, rule)
        if found is None:
            continue
        control, test = found
        for code, title, group in (("control", "Контрольная группа", control), ("test", "Тестовая группа", test)):
            rows.append(
                (
                    rule.id,
                    code,
                    title,
                    group.customers,
                    group.buyers,
                    group.receipts,
                    group.revenue,
                    group.revenue // group.receipts if group.receipts else None,
                    _kopecks(group.mean()),
                    group.points_kopecks,
                    None,
                    None,
                )
            )
        difference = test.mean() - control.mean()
        margin = Z95 * (
            (test.variance() / max(test.customers, 1) + control.variance() / max(control.customers, 1)).sqrt()
        )
        both = control.customers >= 2 and test.customers >= 2
        rows.append(
            (
                rule.id,
                "difference",
                "Разница (тест − контроль)",
                None,
                test.buyers - control.buyers,
                test.receipts - control.receipts,
                None,
                None,
                _kopecks(difference),
                None,
                _kopecks(difference - margin) if both else None,
                _kopecks(difference + margin) if both else None,
            )
        )
    columns = (
        Column("rule", "Правило начисления", "Accrual rule"),
        Column("group", "Код", "Code"),
        Column("title", "Группа", "Group"),
        Column("customers", "Покупателей в группе", "Customers in the group", "int"),
        Column("buyers", "Из них с покупками", "Of them buying", "int"),
        Column("receipts", "Чеков", "Receipts", "int"),
        Column("revenue", "Выручка, руб.", "Revenue, RUB", "money"),
        Column("average", "Средний чек, руб.", "Average receipt, RUB", "money"),
        Column("per_customer", "Выручка на покупателя, руб.", "Revenue per customer, RUB", "money"),
        Column("points_cost", "Начислено баллов, руб.", "Points accrued, RUB", "money"),
        Column("low", "95% интервал: от, руб.", "95% interval: from, RUB", "money"),
        Column("high", "95% интервал: до, руб.", "95% interval: to, RUB", "money"),
    )
    notes = [
        "Контрольная группа не получает правило с даты experiment.since; группы назначаются по хешу "
        "покупателя и правила (тот же, что при начислении). В группе — все покупатели, "
        "зарегистрированные до конца периода, с покупками или без.",
        "Разница — в выручке на покупателя (тест − контроль), с 95% доверительным интервалом "
        "(нормальное приближение, дисперсии групп по отдельности). Интервал, не содержащий 0, — "
        "заметный эффект; баллы — все начисленные на чеки группы.",
    ]
    if not running:
        notes.insert(0, "Ни у одного правила начисления нет experiment: сравнивать нечего.")
    return Report(
        "experiment", "Эксперименты с правилами начисления", "Accrual rule experiments", columns, rows, notes, filters
    )


__all__ = ["Group", "compare", "experiment"]

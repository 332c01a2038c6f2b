"""Every report by name, and running one against the service's database (one read transaction)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from gateway.core.program import Program
from gateway.reports import accounting, customers, experiments, program, promotions
from gateway.reports.base import Filters, Report, ReportError
from gateway.store.db import Database

Builder = Callable[[Session, Program, Filters], Report]


@dataclass(frozen=True)
class ReportInfo:
    name: str
    ru: str
    en: str
    build: Builder


REPORTS: dict[str, ReportInfo] = {
    info.name: info
    for info in (
        ReportInfo("summary", "Сводка программы", "Program summary", program.summary),
        ReportInfo("daily", "Динамика по дням", "Day by day", program.daily),
        ReportInfo("stores", "Магазины и каналы", "Stores and channels", program.stores),
        ReportInfo("partners", "Оборот партнёров (компаний)", "Partner (company) turnover", program.partners),
        ReportInfo("top_customers", "Лучшие покупатели", "Top customers", customers.top_customers),
        ReportInfo("rfm", "RFM-сегменты и их движение", "RFM segments and movement", customers.rfm),
        ReportInfo("rfm_moves", "Переходы между RFM-сегментами", "RFM transitions", customers.rfm_transitions),
        ReportInfo("churn", "Ушедшие и вернувшиеся", "Churned and won back", customers.churn),
        ReportInfo("tiers", "Уровни: распределение и переходы", "Tiers and movements", program.tiers),
        ReportInfo("promotions", "Акции, правила и промокоды", "Promotions and rules", promotions.promotions),
        ReportInfo("campaigns", "Кампании промокодов", "Promo-code campaigns", promotions.campaigns),
        ReportInfo("pairs", "Товары, которые покупают вместе", "Goods bought together", promotions.pairs),
        ReportInfo("stuck", "Зависшие и ошибочные операции", "Stuck and failed transactions", accounting.stuck),
        ReportInfo(
            "experiment", "Эксперименты с правилами начисления", "Accrual rule experiments", experiments.experiment
        ),
    )
}


def run_report(db: Database, program_: Program, name: str, filters: Filters) -> Report:
    """Compute report ``name``; every query of it reads one consistent snapshot."""
    info = REPORTS.get(name)
    if info is None:
        raise ReportError(f"нет отчёта {name!r} / no report {name!r}; есть: {', '.join(REPORTS)}")
    with db.read() as session:
        if not db.is_sqlite:
            # The report's several queries see one snapshot (SQLite's read transaction already does).
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        return info.build(session, program_, filters)

"""Reports computed in the database: program summary, dynamics, stores, partners, top customers,
RFM, churn, tiers, promotions, campaigns, goods bought together, stuck transactions; their
exports (table, CSV, XLSX, JSON) and the dashboard's charts."""

from gateway.reports.base import Column, Filters, Report, ReportError, make_filters
from gateway.reports.catalog import REPORTS, ReportInfo, run_report
from gateway.reports.export import FORMATS, render

__all__ = [
    "FORMATS",
    "REPORTS",
    "Column",
    "Filters",
    "Report",
    "ReportError",
    "ReportInfo",
    "make_filters",
    "render",
    "run_report",
]

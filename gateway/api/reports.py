"""Reports over HTTP: ``/api/v1/reports`` (JSON, CSV, XLSX) and the ``/dashboard`` page.

Both need operator or marketer credentials. Thin: parse the period and filters, run the report, render it.
The dashboard is server-rendered with inline SVG charts — no script, nothing fetched elsewhere.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from contracts.errors import ErrorCode, LoyaltyError
from gateway.api.auth import require_reports
from gateway.config import ClientConfig
from gateway.ledger.service import LoyaltyService
from gateway.reports import REPORTS, Filters, Report, ReportError, make_filters, run_report
from gateway.reports.base import Column, Locale
from gateway.reports.charts import bars, columns
from gateway.reports.export import MEDIA_TYPES, Format, render, to_json

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
Reader = Annotated[ClientConfig, Depends(require_reports)]


class ReportQuery:
    """The query parameters every report accepts."""

    def __init__(
        self,
        first: Annotated[date | None, Query(alias="from", description="First local day (default: 29 days ago)")] = None,
        last: Annotated[
            date | None, Query(alias="to", description="Last local day, inclusive (default: today)")
        ] = None,
        store: Annotated[str | None, Query(max_length=128)] = None,
        zone: Annotated[str | None, Query(max_length=64)] = None,
        segment: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> None:
        self.first, self.last = first, last
        self.store, self.zone, self.segment = store or None, zone or None, segment or None
        self.limit = limit

    def filters(self, service: LoyaltyService, limit: int | None = None) -> Filters:
        program = service.program
        now = service.clock()
        today = now.astimezone(program.zone).date()
        try:
            return make_filters(
                program,
                self.first or today - timedelta(days=29),
                self.last or today,
                store=self.store,
                zone=self.zone,
                segment=self.segment,
                limit=limit or self.limit,
                now=now,
            )
        except ReportError as exc:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, str(exc)) from exc

    def query_string(self, filters: Filters) -> str:
        values = {"from": filters.first_day.isoformat(), "to": filters.last_day.isoformat()}
        values.update({k: v for k, v in (("store", self.store), ("zone", self.zone), ("segment", self.segment)) if v})
        return urlencode(values)


Params = Annotated[ReportQuery, Depends()]


def _run(service: LoyaltyService, name: str, filters: Filters) -> Report:
    if name not in REPORTS:
        raise LoyaltyError(ErrorCode.NOT_FOUND, f"no report {name!r}", reports=list(REPORTS))
    try:
        return run_report(service.db, service.program, name, filters)
    except ReportError as exc:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, str(exc)) from exc


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/reports", tags=["reports"])
    def list_reports(_reader: Reader) -> dict[str, Any]:
        """The reports there are: name, Russian and English title."""
        return {"reports": [{"name": r.name, "title": r.ru, "title_en": r.en} for r in REPORTS.values()]}

    @router.get("/api/v1/reports/{name}", tags=["reports"])
    def get_report(
        request: Request,
        name: str,
        params: Params,
        _reader: Reader,
        format: Annotated[str, Query(pattern="^(json|csv|xlsx)$")] = "json",
        locale: Annotated[str, Query(pattern="^(ru|en)$")] = "ru",
    ) -> Response:
        """A report for a period: JSON (money as exact decimal strings), CSV (Excel, Russian
        locale) or XLSX."""
        service: LoyaltyService = request.app.state.service
        report = _run(service, name, params.filters(service))
        lang: Locale = "en" if locale == "en" else "ru"
        if format == "json":
            return JSONResponse(to_json(report, lang))
        fmt: Format = "csv" if format == "csv" else "xlsx"
        filename = f"{name}_{report.filters.first_day}_{report.filters.last_day}" if report.filters else name
        return Response(
            render(report, fmt, lang),
            media_type=MEDIA_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'},
        )

    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request, params: Params, _reader: Reader) -> Response:
        service: LoyaltyService = request.app.state.service
        filters = params.filters(service)
        top = params.filters(service, limit=10)
        reports = {
            name: _run(service, name, top if name in ("top_customers", "pairs") else filters) for name in WIDGETS
        }
        summary = {row[0]: row for row in reports["summary"].rows}
        program = service.program
        return TEMPLATES.TemplateResponse(
            request,
            "dashboard.html",
            {
                "filters": filters,
                "params": params,
                "query": params.query_string(filters),
                "summary": summary,
                "reports": reports,
                "charts": _charts(reports),
                "zones": [(z.code, z.name or z.code) for z in program.catalogue.zones],
                "segments": [(s.code, s.name or s.code) for s in program.segments],
                "all_reports": list(REPORTS),
                "zip": zip,
                "cell": _cell,
                "kpi": _cell_value,
            },
        )

    return router


# The dashboard's widgets, in page order (each has its own export links).
WIDGETS = ("summary", "daily", "stores", "rfm", "churn", "tiers", "top_customers", "promotions", "pairs", "stuck")


CHURN_LABELS = {"retained": "Остались", "churned": "Ушли", "won_back": "Вернулись", "new": "Новые"}


def _charts(reports: dict[str, Report]) -> dict[str, str]:
    daily = reports["daily"]
    stores = reports["stores"]
    rfm = reports["rfm"]
    churn = reports["churn"]
    tiers = reports["tiers"]
    by_store: dict[str, int] = {}
    for store, paid in zip(stores.column("store"), stores.column("turnover"), strict=True):
        by_store[store or "—"] = by_store.get(store or "—", 0) + int(paid)
    return {
        "turnover": columns(
            "chart-turnover",
            [(str(d), _roubles(t)) for d, t in zip(daily.column("day"), daily.column("turnover"), strict=True)],
        ),
        "receipts": columns(
            "chart-receipts",
            list(zip((str(d) for d in daily.column("day")), daily.column("receipts"), strict=True)),
            color="#3c9d5d",
        ),
        "stores": bars(
            "chart-stores", [(s, _roubles(v)) for s, v in sorted(by_store.items(), key=lambda i: -i[1])][:12]
        ),
        "rfm": bars(
            "chart-rfm",
            [
                (t, n)
                for code, t, n in zip(rfm.column("segment"), rfm.column("title"), rfm.column("customers"), strict=True)
                if code != "none"
            ],
        ),
        "churn": bars(
            "chart-churn",
            [(CHURN_LABELS[c], n) for c, n in zip(churn.column("status"), churn.column("customers"), strict=True)],
        ),
        "tiers": bars("chart-tiers", list(zip(tiers.column("tier"), tiers.column("customers"), strict=True))),
    }


def _cell_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return str(value)


def _cell(column: Column, value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if column.kind == "text" and value is not None:
        return str(value)
    return _cell_value(value)


def _roubles(kopecks: int) -> Decimal:
    return (Decimal(int(kopecks)) / 100).quantize(Decimal("0.01"))

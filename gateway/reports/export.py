"""A report as a file: CSV (for Excel in a Russian locale: UTF-8 with BOM, ``;``, decimal comma),
XLSX (typed cells: numbers stay numbers, money formatted to kopecks), JSON (money as exact
decimal strings) and a console table."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from gateway.reports.base import Column, Locale, Report

Format = Literal["table", "csv", "xlsx", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "xlsx", "json")
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "table": "text/plain; charset=utf-8",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f").replace(".", ",")
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def to_csv(report: Report, locale: Locale = "ru") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([c.title(locale) for c in report.columns])
    for row in report.presented():
        writer.writerow([_text(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def to_json(report: Report, locale: Locale = "ru") -> dict[str, Any]:
    filters = report.filters
    return {
        "report": report.name,
        "title": report.title(locale),
        "period": None
        if filters is None
        else {"from": filters.first_day.isoformat(), "to": filters.last_day.isoformat()},
        "filters": None
        if filters is None
        else {"store": filters.store, "zone": filters.zone, "segment": filters.segment, "limit": filters.limit},
        "columns": [{"key": c.key, "title": c.title(locale), "kind": c.kind} for c in report.columns],
        "rows": [
            {c.key: _json_value(v) for c, v in zip(report.columns, row, strict=True)} for row in report.presented()
        ],
        "notes": report.notes,
    }


_NUMBER_FORMATS = {"money": "#,##0.00", "percent": "0.00", "int": "#,##0", "points": "#,##0"}


def to_xlsx(report: Report, locale: Locale = "ru") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = report.name[:31]
    sheet.append([report.title(locale)])
    sheet["A1"].font = Font(bold=True, size=13)
    if report.filters is not None:
        f = report.filters
        sheet.append([f"{f.first_day:%d.%m.%Y} — {f.last_day:%d.%m.%Y}"])
    sheet.append([c.title(locale) for c in report.columns])
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font = Font(bold=True)
    for row in report.presented():
        sheet.append([_cell(v) for v in row])
        for column, cell in zip(report.columns, sheet[sheet.max_row], strict=True):
            number_format = _NUMBER_FORMATS.get(column.kind)
            if number_format and isinstance(cell.value, int | Decimal):
                cell.number_format = number_format
            elif isinstance(cell.value, datetime):
                cell.number_format = "DD.MM.YYYY HH:MM:SS"
    for note in report.notes:
        sheet.append([note])
    from openpyxl.utils import get_column_letter

    for index, column in enumerate(report.columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(48, len(column.ru) + 4))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> Any:
    # Excel has no time zones: a timestamp is written in UTC without one (the header says so).
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def to_table(report: Report, locale: Locale = "ru") -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=report.title(locale), title_justify="left")
    for column in report.columns:
        table.add_column(column.title(locale), justify="right" if column.kind != "text" else "left")
    for row in report.presented():
        table.add_row(*[_text(v) for v in row])
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    for note in report.notes:
        console.print(note)
    return console.export_text()


def render(report: Report, fmt: Format, locale: Locale = "ru") -> bytes:
    if fmt == "csv":
        return to_csv(report, locale)
    if fmt == "xlsx":
        return to_xlsx(report, locale)
    if fmt == "json":
        return json.dumps(to_json(report, locale), ensure_ascii=False, indent=1).encode("utf-8")
    return to_table(report, locale).encode("utf-8")


__all__ = ["FORMATS", "MEDIA_TYPES", "Column", "render", "to_csv", "to_json", "to_table", "to_xlsx"]

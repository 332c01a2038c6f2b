"""Import of the store bases' card catalogue (``Справочник.ИнформационныеКарты``): which GUID
stands for which card number. See ``cards.py`` for why the gateway never guesses it.

The file is what an integrator exports from 1C (the query console or a list form saved as CSV):
a header row, then one card per row, separated by ``;``, ``,`` or tab, in UTF-8 (with or without
BOM) or windows-1251. Columns are found by their header: the GUID (``Ссылка``,
``УникальныйИдентификатор``, ``Идентификатор``, ``guid``, ``ref``), the number the gateway knows
the card by (``Штрихкод``, ``КодКарты``, ``НомерКарты``, ``МагнитныйКод``, ``number``, ``card``)
and optionally ``Наименование``/``name``.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from gateway.store.models import Card
from gateway.store.models_discountserver import DiscountServerCard

_REF = ("ссылка", "уникальныйидентификатор", "идентификатор", "идентификаторкарты", "guid", "ref", "uuid")
_NUMBER = ("штрихкод", "кодкарты", "номеркарты", "магнитныйкод", "номер", "number", "card", "card_number")
_NAME = ("наименование", "name")


class CatalogueError(ValueError):
    """The file cannot be read as a card catalogue."""


@dataclass
class ImportReport:
    mapped: int = 0
    changed: int = 0
    unknown_numbers: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    normalized = [cell.strip().lower().replace(" ", "").replace("_", "") for cell in header]
    for name in names:
        key = name.replace("_", "")
        if key in normalized:
            return normalized.index(key)
    return None


def _cell(cells: list[str], at: int | None) -> str:
    return cells[at].strip() if at is not None and at < len(cells) else ""


def read(raw: bytes) -> list[tuple[int, str, str, str | None]]:
    """(line, GUID, number, name) per row; raises ``CatalogueError`` when the header lacks a column."""
    text = _decode(raw)
    first = text.splitlines()[0] if text else ""
    delimiter = max(";,\t", key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise CatalogueError("the file is empty")
    ref_at, number_at, name_at = _column(header, _REF), _column(header, _NUMBER), _column(header, _NAME)
    if ref_at is None or number_at is None:
        raise CatalogueError(
            f"the header needs a GUID column ({', '.join(_REF)}) and a number column ({', '.join(_NUMBER)})"
        )
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        rows.append((line, _cell(cells, ref_at), _cell(cells, number_at), _cell(cells, name_at) or None))
    return rows


def apply(session: Session, rows: list[tuple[int, str, str, str | None]], now: datetime) -> ImportReport:
    """Store every valid row (the catalogue is the authority: a GUID moved to another number follows)."""
    report = ImportReport()
    seen: dict[str, str] = {}
    for line, raw_ref, number, name in rows:
        try:
            ref = str(uuid.UUID(raw_ref))
        except ValueError:
            report.rejected.append(f"line {line}: «{raw_ref[:40]}» is not a GUID")
            continue
        if not number or len(number) > 64:
            report.rejected.append(f"line {line}: no card number")
            continue
        if seen.get(ref, number) != number:
            report.rejected.append(f"line {line}: {ref} already given number {seen[ref]} in this file")
            continue
        seen[ref] = number
        row = session.get(DiscountServerCard, ref)
        if row is None:
            row = DiscountServerCard(ref=ref, card_number=number, imported_at=now)
        elif row.card_number != number:
            report.changed += 1
        row.card_number, row.name, row.imported_at = number, (name or None) and name[:256], now
        session.add(row)
        report.mapped += 1
        if session.get(Card, number) is None:
            report.unknown_numbers.append(number)
    return report

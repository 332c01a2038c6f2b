"""1C's wire quirks: raw query strings, zone-less dates, 1C numbers and booleans."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote_to_bytes
from zoneinfo import ZoneInfo

EMPTY_DATE = "0001-01-01T00:00:00"


class WireError(ValueError):
    """A request 1C sent that cannot be read; answered in the contract's error form."""


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def parse_query(query_string: bytes) -> dict[str, str]:
    """Parse a query string the way 1C writes it: values are *not* URL-encoded.

    ``+`` stays a plus (``Phone=+7912…``), raw UTF-8 (Cyrillic) is accepted, and ``%XX`` escapes
    are still decoded for clients that do encode. Keys are matched case-insensitively.
    """
    params: dict[str, str] = {}
    for part in query_string.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        params[_decode(unquote_to_bytes(key)).strip().lower()] = _decode(unquote_to_bytes(value)).strip()
    return params


def parse_body(body: bytes) -> dict[str, Any]:
    """A JSON body (1C sends one even with GET); numbers are read exactly, as Decimal."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("cp1251")
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as exc:
        raise WireError(f"the body is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise WireError("the body must be a JSON object")
    return data


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    return text in {"1", "true", "да", "истина", "yes"}


def as_decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None or value == "":
        raise WireError(f"{field}: a number is required")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    try:
        return Decimal(str(value).strip().replace("\u00a0", "").replace(" ", "").replace(",", "."))
    except InvalidOperation as exc:
        raise WireError(f"{field}: {value!r} is not a number") from exc


def as_points(value: Any, field: str) -> int:
    number = as_decimal(value, field)
    if number != number.to_integral_value() or number < 0:
        raise WireError(f"{field}: points are whole non-negative numbers, got {value!r}")
    return int(number)


def format_date(moment: datetime | None, zone: ZoneInfo) -> str:
    """A 1C date: local time, no zone; the empty date for none."""
    if moment is None:
        return EMPTY_DATE
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0).isoformat()


def parse_date(value: Any, zone: ZoneInfo) -> datetime | None:
    if value in (None, "", EMPTY_DATE):
        return None
    text = str(value).strip()
    if text.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WireError(f"{text!r} is not a 1C date") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def ref_of(value: Any) -> tuple[str | None, str | None]:
    """``{"Ref": …, "Name": …}`` (or a bare string) -> (ref, name)."""
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        ref = lowered.get("ref") or lowered.get("uid") or lowered.get("guid")
        name = lowered.get("name") or lowered.get("description")
        return (str(ref).strip() if ref else None), (str(name).strip() if name else None)
    if value in (None, ""):
        return None, None
    return str(value).strip(), None

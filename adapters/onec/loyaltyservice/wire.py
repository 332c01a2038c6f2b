"""1C's wire: raw query strings, 1C's default presentations of numbers, booleans and dates.

How the till writes a request (1C:УНФ, ``AlexanderYekat/unf``
``CommonModules/СерверЛояльностиПолучательДанныхВызовСервера`` ``ДобавитьПараметрыВРесурс``):
``/<method>/?K1=V1&K2=V2…`` with every key of the call's parameter structure, unset ones as
``K=``, values as ``СтрШаблон("%1…")`` prints them — not URL-encoded, numbers with a no-break-space
thousands separator and a decimal comma (``1 500``, ``67,04``), booleans ``Да``/``Нет``, dates
``15.03.1990 0:00:00`` (the empty date prints as an empty string). JSON bodies (calculatediscounts)
come from ``ЗаписатьJSON``: numbers as JSON numbers, dates as ISO strings without a zone.

Every number and size is bounded here, before any arithmetic: a till never sends more than
``MAX_AMOUNT`` roubles or ``MAX_DIGITS`` digits, and anything else is a clear error.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote_to_bytes
from zoneinfo import ZoneInfo

EMPTY_DATE = "0001-01-01T00:00:00"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
MAX_QUERY_BYTES = 16 * 1024
MAX_PARAMS = 64
MAX_VALUE_CHARS = 1024
MAX_BODY_BYTES = 1024 * 1024  # a 10,000-line cart as 1C writes it is ~0.7 MiB
MAX_JSON_DEPTH = 16
MAX_AMOUNT = Decimal("1000000000")  # a billion roubles: no till line or payment comes near it
MAX_DIGITS = 20

# 1C's default number presentation: groups separated by (no-break) spaces, a decimal comma.
_NUMBER = re.compile(r"^[+-]?\d{1,20}(?:[.,]\d{1,10})?$")
_GROUP_SEPARATORS = str.maketrans("", "", " \u00a0\u202f\u2009")
_DATE_1C = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_TRUE = {"да", "истина", "true", "1", "yes"}
_FALSE = {"нет", "ложь", "false", "0", "no", ""}


class WireError(ValueError):
    """A request 1C sent that cannot be read; answered in the contract's error form."""


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def parse_query(query_string: bytes) -> dict[str, str]:
    """Parse a query string the way 1C writes it: values are *not* URL-encoded.

    ``+`` stays a plus (``Phone=+7912…``), raw UTF-8 (Cyrillic) and a raw no-break space are
    accepted, and ``%XX`` escapes are still decoded for clients (and HTTP stacks) that do encode.
    Keys are matched case-insensitively; unset keys (``K=``) read as absent.
    """
    if len(query_string) > MAX_QUERY_BYTES:
        raise WireError(f"the query string is longer than {MAX_QUERY_BYTES} bytes")
    params: dict[str, str] = {}
    parts = [p for p in query_string.split(b"&") if p]
    if len(parts) > MAX_PARAMS:
        raise WireError(f"more than {MAX_PARAMS} parameters")
    for part in parts:
        key, _, value = part.partition(b"=")
        text = _decode(unquote_to_bytes(value)).strip()
        if len(text) > MAX_VALUE_CHARS:
            raise WireError(f"{_decode(key)}: longer than {MAX_VALUE_CHARS} characters")
        params[_decode(unquote_to_bytes(key)).strip().lower()] = text
    return params


def _depth(value: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            raise WireError(f"the body nests deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)


def _json_number(text: str) -> Decimal:
    if len(text) > MAX_DIGITS + 12:
        raise WireError(f"a number in the body is too long: {text[:24]}…")
    return Decimal(text)


def parse_body(body: bytes) -> dict[str, Any]:
    """A JSON body (1C sends one even with GET); numbers are read exactly, as Decimal."""
    if len(body) > MAX_BODY_BYTES:
        raise WireError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("cp1251")
    try:
        data = json.loads(text, parse_float=_json_number, parse_int=_json_number, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise WireError(f"the body is not JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:
        raise WireError(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from exc
    if not isinstance(data, dict):
        raise WireError("the body must be a JSON object")
    _depth(data, MAX_JSON_DEPTH)
    return data


def _no_constant(name: str) -> Any:
    raise WireError(f"{name} is not a number")


def as_bool(value: Any) -> bool:
    """1C's ``Да``/``Нет`` (and ``Истина``/``Ложь``, JSON booleans, ``"1"``/``"0"``)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, Decimal)):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise WireError(f"{str(value)[:32]!r} is not a boolean (Да/Нет)")


def as_decimal(value: Any, field: str, *, places: int = 2) -> Decimal:
    """A number in 1C's presentation (``1 500``, ``67,04``) or a JSON number, within bounds,
    rounded to ``places`` decimals only if it has no more (a third kopeck digit is an error)."""
    if isinstance(value, bool) or value is None or value == "":
        raise WireError(f"{field}: a number is required")
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
        if not number.is_finite():
            raise WireError(f"{field}: not a finite number")
    else:
        text = str(value).strip().translate(_GROUP_SEPARATORS)
        if not _NUMBER.match(text):
            raise WireError(f"{field}: {str(value)[:32]!r} is not a number")
        try:
            number = Decimal(text.replace(",", "."))
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
            raise WireError(f"{field}: {str(value)[:32]!r} is not a number") from exc
    if abs(number) > MAX_AMOUNT:
        raise WireError(f"{field}: {number:.0f} is out of range")
    exact = number.quantize(Decimal(1).scaleb(-places))
    if exact != number:
        raise WireError(f"{field}: more than {places} decimals")
    return exact


def parse_date(value: Any, zone: ZoneInfo) -> datetime | None:
    """``15.03.1990 0:00:00`` (1C's presentation), ``1990-03-15T00:00:00`` (JSON), empty."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.startswith("0001-01-01") or text.startswith("01.01.0001"):
        return None
    match = _DATE_1C.match(text)
    try:
        if match:
            day, month, year, hour, minute, second = match.groups()
            parsed = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        else:
            parsed = datetime.fromisoformat(text[:32])
    except ValueError as exc:
        raise WireError("not a 1C date (ДД.ММ.ГГГГ Ч:ММ:СС)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def format_date(moment: datetime | None, zone: ZoneInfo) -> str:
    """A 1C date as ``ЗаписатьJSON`` writes it: local time, no zone; the empty date for none."""
    if moment is None:
        return EMPTY_DATE
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0).isoformat()


def format_day(day: date | None) -> str:
    return EMPTY_DATE if day is None else datetime(day.year, day.month, day.day).isoformat()


def guid(value: str | None) -> str | None:
    """A GUID the till sent, or None for none (1C prints an empty reference as the zero GUID)."""
    if value is None:
        return None
    text = value.strip().strip("{}")
    return None if not text or text == ZERO_GUID else text


def ref_of(value: Any) -> tuple[str | None, str | None]:
    """``{"Ref": …, "Name": …}`` (or a bare string) -> (ref, name); the zero GUID is no ref."""
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        ref = lowered.get("ref") or lowered.get("uid") or lowered.get("guid")
        name = lowered.get("name") or lowered.get("description")
        return guid(str(ref)[:64]) if ref else None, (str(name).strip()[:256] if name else None)
    if value in (None, ""):
        return None, None
    return guid(str(value)[:64]), None


def json_number(value: Decimal | int) -> int | float:
    """A JSON number for 1C (``ПрочитатьJSON`` reads it into a Число); money has two decimals."""
    number = Decimal(value)
    if number == number.to_integral_value():
        return int(number)
    return float(number.quantize(Decimal("0.01")))

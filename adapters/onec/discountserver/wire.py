"""Reading 1C's ``WSПрокси`` requests and writing replies as 1C's own server serializes them.

Requests: a SOAP 1.1 (port ``ДисконтныйСерверSoap``) or 1.2 envelope whose body holds the
operation's wrapper element in the service namespace, one child per parameter; XDTO values are
text — dates without an offset (the base's local time; ``0001-01-01T00:00:00`` is the empty
date), decimals with a dot, booleans ``true``/``false``, GUIDs as 36 characters, ``xsi:nil``
for nothing. Children are matched by local name, qualified or not.

Replies: ``<operation>Response`` with ``return``, qualified, values in the same notation. Three
operations return an object of another type than the one declared (1C's module returns
``РезультатЗапросаОБонусах`` where the metadata says ``РезультатЗапросаОНакоплениях``, and an
object where it says ``xs:string``); XDTO then writes ``xsi:type`` on ``return`` and the store's
proxy reads the object by it — so do we (``RETURNED_TYPE``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from lxml import etree

from adapters.onec.discountserver.schema import BY_NAME, NS, XS, XSI, Operation
from gateway.soap_envelope import SOAP11, SOAP12, SoapFault, Version, local, operation_of

RETURNED_TYPE = {
    "ПолучитьДанныеПоследнейПокупки": "РезультатЗапросаОПоследнейПокупке",
    "ПолучитьОстатокБонусов": "РезультатЗапросаОБонусах",
    "ПолучитьОстатокБонусовРасширенный": "РезультатЗапросаОБонусахРасширенный",
}
EMPTY_DATE = "0001-01-01T00:00:00"
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_NIL_GUID = "00000000-0000-0000-0000-000000000000"
MAX_ROWS = 10_000


# Answered as a SOAP Fault; the store logs its message (``ОписаниеОшибки()``) in its event log.
Fault = SoapFault


@dataclass(frozen=True)
class Call:
    version: Version
    operation: Operation
    element: etree._Element


def open_call(root: etree._Element) -> Call:
    version, element = operation_of(
        root, not_envelope="Ожидался SOAP-конверт (SOAP 1.1 или 1.2)", no_body="В SOAP-конверте нет тела (Body)"
    )
    name = etree.QName(element)
    operation = BY_NAME.get(str(name.localname))
    if name.namespace != NS or operation is None:
        raise Fault("validation_error", f"Неизвестная операция {{{name.namespace}}}{name.localname}")
    return Call(version, operation, element)


def children(node: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in node if isinstance(child.tag, str) and local(child) == name]


def child(node: etree._Element, name: str) -> etree._Element | None:
    found = children(node, name)
    return found[0] if found else None


def _nil(node: etree._Element | None) -> bool:
    return node is None or node.get(f"{{{XSI}}}nil") in ("true", "1")


def text(node: etree._Element, name: str) -> str:
    value = child(node, name)
    return "" if _nil(value) or value is None else (value.text or "").strip()


def guid(node: etree._Element, name: str) -> str | None:
    """A 1C reference's GUID in lower case; empty and the nil GUID are ``None``."""
    raw = text(node, name)
    if not raw or raw == _NIL_GUID:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise Fault("validation_error", f"{name}: «{raw[:64]}» не является уникальным идентификатором 1С") from exc


def decimal(node: etree._Element, name: str) -> Decimal:
    raw = text(node, name)
    if not raw:
        return Decimal(0)
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise Fault("validation_error", f"{name}: «{raw[:64]}» не является числом") from exc
    if not value.is_finite() or abs(value) >= Decimal(10) ** 15:
        raise Fault("validation_error", f"{name}: число вне допустимого диапазона")
    return value


def date(node: etree._Element, name: str, zone: tzinfo) -> datetime | None:
    """A 1C date: local time of the base (``zone``) unless an offset is given; the empty date is
    ``None``."""
    raw = text(node, name)
    if not raw or raw.startswith(EMPTY_DATE):
        return None
    match = _DATE.match(raw)
    if match is None:
        raise Fault("validation_error", f"{name}: «{raw[:64]}» не является датой XML (ГГГГ-ММ-ДДTЧЧ:ММ:СС)")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Fault("validation_error", f"{name}: «{raw[:64]}» не является датой") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def rows(node: etree._Element, name: str) -> list[etree._Element]:
    """The rows of a table parameter (``…/СтрокиТаблицы``); an absent or nil table has none."""
    table = child(node, name)
    if _nil(table) or table is None:
        return []
    found = children(table, "СтрокиТаблицы")
    if len(found) > MAX_ROWS:
        raise Fault("validation_error", f"{name}: более {MAX_ROWS} строк")
    return [row for row in found if not _nil(row)]


# -- replies ---------------------------------------------------------------------------------

Value = str | Decimal | int | bool | datetime | None
Row = dict[str, Value]


def format_value(value: Value, zone: tzinfo) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, Decimal):
        formatted = format(value.normalize(), "f")
        return "0" if formatted in ("-0", "0") else formatted
    if value is None:
        return EMPTY_DATE  # only dates are ever empty in these replies
    return str(value)


def _envelope(version: Version) -> tuple[etree._Element, etree._Element]:
    ns = SOAP11 if version == "1.1" else SOAP12
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    etree.SubElement(envelope, f"{{{ns}}}Header")
    return envelope, etree.SubElement(envelope, f"{{{ns}}}Body")


def _serialize(envelope: etree._Element) -> bytes:
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def _return(call: Call, body: etree._Element) -> etree._Element:
    response = etree.SubElement(body, f"{{{NS}}}{call.operation.name}Response", nsmap={"m": NS})
    result = etree.SubElement(response, f"{{{NS}}}return", nsmap={"xs": XS, "xsi": XSI})
    returned = RETURNED_TYPE.get(call.operation.name)
    if returned is not None:
        result.set(f"{{{XSI}}}type", f"m:{returned}")
    return result


def reply_value(call: Call, value: bool) -> bytes:
    envelope, body = _envelope(call.version)
    _return(call, body).text = "true" if value else "false"
    return _serialize(envelope)


def reply_table(call: Call, row_name: str, table: list[Row], zone: tzinfo) -> bytes:
    """``return`` as an object whose only property ``row_name`` holds ``table``'s rows in order."""
    envelope, body = _envelope(call.version)
    result = _return(call, body)
    for row in table:
        node = etree.SubElement(result, f"{{{NS}}}{row_name}")
        for name, value in row.items():
            etree.SubElement(node, f"{{{NS}}}{name}").text = format_value(value, zone)
    return _serialize(envelope)


def fault(version: Version, error: Fault) -> bytes:
    ns = SOAP11 if version == "1.1" else SOAP12
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    body = etree.SubElement(envelope, f"{{{ns}}}Body")
    node = etree.SubElement(body, f"{{{ns}}}Fault")
    message = f"{error.message} ({error.code})"
    if version == "1.1":
        etree.SubElement(node, "faultcode").text = "soap:Client" if error.sender else "soap:Server"
        etree.SubElement(node, "faultstring").text = message
    else:
        code = etree.SubElement(node, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = "soap:Sender" if error.sender else "soap:Receiver"
        reason = etree.SubElement(node, f"{{{ns}}}Reason")
        reason_text = etree.SubElement(reason, f"{{{ns}}}Text")
        reason_text.set("{http://www.w3.org/XML/1998/namespace}lang", "ru")
        reason_text.text = message
    return _serialize(envelope)

"""A fake 1C:ERP for tests and benchmarks: the standard OData interface and the LoyaltyErp web
service the gateway's ERP client uses, with an ERP's manners.

* HTTP Basic with a Cyrillic login (decoded as UTF-8, as 1C does); 401 otherwise;
* latency that grows with concurrent load (``latency * (1 + load_factor * (in_flight - 1))``),
  a capacity limit (calls beyond ``capacity`` in flight are answered 503 at once), intermittent
  500s and hanging calls (timeouts) drawn from a seeded random generator;
* documents as 1C keeps them: customer orders with ``Товары``, sales documents (shipments) and
  returns, each with an opaque ``DataVersion`` that changes on every write and a change
  timestamp (``ДатаИзменения``, local time to the second); an exchange-plan-like change log for
  the web service (optionally replaying each change's *recorded* state in any order);
* a scenario API for tests (create, edit, ship, return, cancel) and ERP-side measurement:
  arrivals of every call, maximum calls in flight, maximum calls in any sliding window;
* the standard OData interface as 1C documents it (8.3 developer guide, «Стандартный интерфейс
  OData», quoted in ``hacker-cb/1c-odata`` ``docs/1c/``): a composite field (a sale's
  ``ЗаказКлиента``, a return's ``ДокументРеализации``) matches only ``cast(guid'…', 'Type')`` — a
  bare guid never does; ``Товары/any(d: d/…)``; ``$select`` of header and tabular-part fields;
  Int64 values (``LineNumber``, ``КодСтроки``) as JSON strings; errors as ``odata.error`` with
  1C's codes; record-level access rights (a restricted record in a read is 401 with code 20
  unless ``allowedOnly=true`` leaves it out); POST never upserts (code 15);
* the web server in front of the publication: IIS request filtering (a query string over
  ``maxQueryString``, 2,048 bytes by default: 404.15) or Apache (a request line over
  ``LimitRequestLine``, 8,190 bytes: 414);
* sales as 1C:УТ 11 keeps them (``work1cblackbird/ut11`` ``Documents/РеализацияТоваровУслуг``): a
  sale «по нескольким заказам» has an empty header order and names each line's order; a sale
  line's ``КодСтроки`` is its order line's.

Run it alone as a development tool::

    python -m testing.fake_erp --port 8090 --orders 200
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import functools
import json
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import uvicorn
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway import xmlsafe

LOGIN = "Лояльность"
PASSWORD = "пароль-ERP"
ORDERS = "Document_ЗаказКлиента"
SHIPMENTS = "Document_РеализацияТоваровУслуг"
RETURNS = "Document_ВозвратТоваровОтКлиента"
CARDS = "Catalog_КартыЛояльности"
RESULTS = "InformationRegister_ЛояльностьЗаказов"
EMPTY = "00000000-0000-0000-0000-000000000000"
UNDEFINED = "StandardODATA.Undefined"  # the _Type of an empty composite field
NS = "urn:loyalty-gateway:erp"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


# -- behaviour and measurement ---------------------------------------------------------------------


@dataclass
class Behaviour:
    latency: float = 0.02  # seconds for one call alone
    load_factor: float = 0.5  # each other call in flight adds this share of ``latency``
    capacity: int = 16  # calls in flight beyond this are answered 503 at once
    error_rate: float = 0.0  # share of calls answered 500
    timeout_rate: float = 0.0  # share of calls that hang for ``hang_seconds``
    hang_seconds: float = 5.0
    fail_next: int = 0  # the next calls answered 500 (deterministic failures for tests)
    hang_next: int = 0  # the next calls that hang for ``hang_seconds``
    max_query_string: int = 0  # IIS request filtering: longer query strings get 404.15 (0: no limit)
    max_request_line: int = 0  # Apache LimitRequestLine: longer request lines get 414 (0: no limit)


IIS_QUERY_STRING = 2048  # IIS request filtering's default maxQueryString
APACHE_REQUEST_LINE = 8190  # Apache's default LimitRequestLine


@dataclass(frozen=True)
class Call:
    arrived: float  # time.monotonic() when the ERP began to handle it
    finished: float
    path: str
    status: int
    query: str = ""  # the raw (percent-encoded) query string as it arrived
    method: str = "GET"


class Measurements:
    """What the ERP saw. Times are ``time.monotonic()`` of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        with self._lock:
            self.calls = []
            self.max_in_flight = self.in_flight

    def enter(self) -> int:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.in_flight

    def leave(self, call: Call) -> None:
        with self._lock:
            self.in_flight -= 1
            self.calls.append(call)

    def refused(self, call: Call) -> None:
        """A request the web server refused before 1C saw it (never in flight at the ERP)."""
        with self._lock:
            self.calls.append(call)

    def queries(self, path_part: str = "") -> list[str]:
        """Raw query strings of the calls (whose path contains ``path_part``), in arrival order."""
        with self._lock:
            return [c.query for c in sorted(self.calls, key=lambda c: c.arrived) if path_part in unquote(c.path)]

    def arrivals(self, start: float | None = None, end: float | None = None) -> list[float]:
        with self._lock:
            times = sorted(c.arrived for c in self.calls)
        return [t for t in times if (start is None or t >= start) and (end is None or t < end)]

    def max_in_window(self, window: float = 1.0, start: float | None = None, end: float | None = None) -> int:
        """The most calls that arrived within any sliding window of ``window`` seconds."""
        times = self.arrivals(start, end)
        best = 0
        for i, t in enumerate(times):
            best = max(best, bisect.bisect_left(times, t + window) - i)
        return best

    def rate(self, start: float, end: float) -> float:
        return len(self.arrivals(start, end)) / (end - start)

    def latencies(self) -> list[float]:
        """Seconds each call spent at the ERP, in arrival order."""
        with self._lock:
            return [c.finished - c.arrived for c in sorted(self.calls, key=lambda c: c.arrived)]

    def count(self, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if status is None or c.status == status)


# -- documents ---------------------------------------------------------------------------------------


@dataclass
class Line:
    """A line of a customer order. ``code`` is 1C's КодСтроки (stable across edits)."""

    code: int
    item: str
    quantity: Decimal
    price: Decimal
    amount: Decimal | None = None
    points: Decimal = Decimal(0)
    cancelled: bool = False
    price_type: str | None = None

    def total(self) -> Decimal:
        return self.amount if self.amount is not None else (self.price * self.quantity).quantize(Decimal("0.01"))


@dataclass
class Doc:
    ref: str
    number: str
    date: str
    data_version: str
    changed: str
    posted: bool = True
    deleted: bool = False


@dataclass
class OrderDoc(Doc):
    status: str = "КОтгрузке"
    card_ref: str | None = None
    partner_ref: str | None = None
    store_ref: str | None = None
    lines: list[Line] = field(default_factory=list)


@dataclass
class MoveLine:
    code: int  # the order line it ships or returns (its КодСтроки)
    item: str
    quantity: Decimal
    order_ref: str | None = None


@dataclass
class MoveDoc(Doc):
    link: str = ""  # shipment: its order (empty for a sale «по нескольким заказам»); return: its shipment
    lines: list[MoveLine] = field(default_factory=list)


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# -- OData $filter ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<lit>(?:guid|datetime)'[^']*')|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op>\(|\)|,|:)|(?P<word>[A-Za-zА-Яа-яЁё_][A-Za-zА-Яа-яЁё0-9_/]*))"
)


@dataclass(frozen=True)
class _Cast:
    ref: str
    type: str


class ODataFilter:
    """The part of OData's $filter 1C's clients use: or/and/not, eq ne gt ge lt le, parentheses,
    guid'…', datetime'…', 'text', numbers, true/false, cast(guid'…', 'Type') and the lambdas
    ``Part/any(d: d/Field …)`` / ``all``. As in 1C, a composite field (one with ``…_Type``)
    compared with a bare guid never matches: only ``cast`` names its type."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None:
                raise ValueError(f"cannot parse $filter at {text[position : position + 20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0
        self.tree = self._or()
        if self.index != len(self.tokens):
            raise ValueError("trailing tokens in $filter")

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ValueError("unexpected end of $filter")
        self.index += 1
        return token

    def _or(self) -> Any:
        node = self._and()
        while (token := self._peek()) is not None and token == ("word", "or"):
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._not()
        while (token := self._peek()) is not None and token == ("word", "and"):
            self._take()
            node = ("and", node, self._not())
        return node

    def _not(self) -> Any:
        if self._peek() == ("word", "not"):
            self._take()
            return ("not", self._not())
        if self._peek() == ("op", "("):
            self._take()
            node = self._or()
            if self._take() != ("op", ")"):
                raise ValueError("missing )")
            return node
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].endswith(("/any", "/all")):
            self._take()
            part, _, kind = token[1].rpartition("/")
            if self._take() != ("op", "("):
                raise ValueError(f"{kind} needs (")
            variable = self._take()
            if variable[0] != "word" or self._take() != ("op", ":"):
                raise ValueError(f"{kind} needs a variable and :")
            body = self._or()
            if self._take() != ("op", ")"):
                raise ValueError(f"{kind} needs )")
            return ("lambda", kind, part, variable[1], body)
        left = self._operand()
        kind, op = self._take()
        if kind != "word" or op not in {"eq", "ne", "gt", "ge", "lt", "le"}:
            raise ValueError(f"unknown operator {op!r}")
        return ("cmp", op, left, self._operand())

    def _operand(self) -> Any:
        kind, value = self._take()
        if kind == "lit":
            prefix, _, rest = value.partition("'")
            return ("value", rest[:-1].lower() if prefix == "guid" else rest[:-1])
        if kind == "str":
            return ("value", value[1:-1].replace("''", "'"))
        if kind == "num":
            return ("value", Decimal(value))
        if kind == "word" and value in ("true", "false"):
            return ("value", value == "true")
        if kind == "word" and value == "cast":
            if self._take() != ("op", "("):
                raise ValueError("cast needs (")
            ref = self._operand()[1]
            if self._take() != ("op", ","):
                raise ValueError("cast needs ,")
            type_name = self._operand()[1]
            if self._take() != ("op", ")"):
                raise ValueError("cast needs )")
            return ("value", _Cast(ref, type_name))
        if kind == "word":
            return ("field", value)
        raise ValueError(f"unexpected {value!r}")

    def matches(self, row: dict[str, Any]) -> bool:
        return bool(self._eval(self.tree, row, {}))

    @staticmethod
    def _field(name: str, row: dict[str, Any], scope: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str]:
        variable, _, rest = name.partition("/")
        if rest and variable in scope:
            return scope[variable], rest
        return row, name

    def _eval(self, node: Any, row: dict[str, Any], scope: dict[str, dict[str, Any]]) -> Any:
        tag = node[0]
        if tag == "or":
            return self._eval(node[1], row, scope) or self._eval(node[2], row, scope)
        if tag == "and":
            return self._eval(node[1], row, scope) and self._eval(node[2], row, scope)
        if tag == "not":
            return not self._eval(node[1], row, scope)
        if tag == "lambda":
            _, kind, part, variable, body = node
            items = row.get(part)
            if not isinstance(items, list):
                raise ValueError(f"{part} is not a tabular part")
            test = any if kind == "any" else all
            return test(self._eval(body, row, {**scope, variable: item}) for item in items)
        _, op, left, right = node
        if left[0] == "field":
            holder, name = self._field(left[1], row, scope)
        else:
            holder, name = row, ""
        if right[0] == "value" and isinstance(right[1], _Cast):
            cast: _Cast = right[1]
            same = str(holder.get(name, "")).lower() == cast.ref and str(holder.get(f"{name}_Type", "")).endswith(
                cast.type
            )
            return same if op == "eq" else not same
        if left[0] == "field" and f"{name}_Type" in holder:
            return op == "ne"  # 1C: a composite field never equals a bare value (cast names the type)
        a = holder.get(name) if left[0] == "field" else left[1]
        if right[0] == "field":
            other, other_name = self._field(right[1], row, scope)
            b = other.get(other_name)
        else:
            b = right[1]
        if isinstance(a, str) and isinstance(b, str) and len(a) == 36 and a.count("-") == 4:
            a, b = a.lower(), b.lower()
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            a = Decimal(str(a))
        operations: dict[str, Callable[[Any, Any], bool]] = {
            "eq": lambda x, y: x == y,
            "ne": lambda x, y: x != y,
            "gt": lambda x, y: x > y,
            "ge": lambda x, y: x >= y,
            "lt": lambda x, y: x < y,
            "le": lambda x, y: x <= y,
        }
        try:
            return operations[op](a, b)
        except TypeError:
            return False


# -- the fake ERP --------------------------------------------------------------------------------------


class FakeErp:
    def __init__(
        self,
        *,
        login: str = LOGIN,
        password: str = PASSWORD,
        behaviour: Behaviour | None = None,
        seed: int = 7,
        timezone: str = "Europe/Moscow",
        history: bool = False,
    ) -> None:
        self.login = login
        self.password = password
        self.behaviour = behaviour or Behaviour()
        self.measure = Measurements()
        self.zone = ZoneInfo(timezone)
        self.history = history  # the web service replays each change's recorded state (out-of-order tests)
        self.inject_dtd = False  # a hostile answer: a DTD with an entity (the client must refuse it)
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.orders: dict[str, OrderDoc] = {}
        self.shipments: dict[str, MoveDoc] = {}
        self.returns: dict[str, MoveDoc] = {}
        self.cards: dict[str, str] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.pushes: list[dict[str, Any]] = []
        self.log: list[tuple[int, str, dict[str, Any]]] = []
        self._seq = 0
        self._numbers = 0
        # access rights of the ERP user: entities it may not read at all, and documents a
        # record-level restriction (RLS) hides from it
        self.denied: set[str] = set()
        self.restricted: set[str] = set()

    # -- scenario ----------------------------------------------------------------------------------

    def _stamp(self, at: datetime | None) -> str:
        moment = at if at is not None else datetime.now(UTC)
        local = moment.astimezone(self.zone) if moment.tzinfo is not None else moment
        return local.strftime("%Y-%m-%dT%H:%M:%S")

    def _touch(self, doc: Doc, at: datetime | None) -> None:
        doc.data_version = base64.b64encode(uuid.uuid4().bytes[:6]).decode()
        doc.changed = self._stamp(at)

    def _logged(self, order_ref: str) -> None:
        self._seq += 1
        self.log.append((self._seq, order_ref, self.soap_state(order_ref)))

    def add_card(self, number: str, ref: str | None = None) -> str:
        with self._lock:
            ref = ref or str(uuid.uuid4())
            self.cards[ref] = number
            return ref

    def create_order(
        self,
        lines: list[Line],
        *,
        card_ref: str | None = None,
        partner_ref: str | None = None,
        store_ref: str | None = None,
        posted: bool = True,
        at: datetime | None = None,
        ref: str | None = None,
    ) -> str:
        with self._lock:
            self._numbers += 1
            ref = ref or str(uuid.uuid4())
            stamp = self._stamp(at)
            self.orders[ref] = OrderDoc(
                ref=ref,
                number=f"ЗК-{self._numbers:06d}",
                date=stamp,
                data_version="",
                changed=stamp,
                posted=posted,
                card_ref=card_ref,
                partner_ref=partner_ref,
                store_ref=store_ref,
                lines=[replace(line) for line in lines],
            )
            self._touch(self.orders[ref], at)
            self._logged(ref)
            return ref

    def edit_order(
        self,
        ref: str,
        *,
        lines: list[Line] | None = None,
        status: str | None = None,
        posted: bool | None = None,
        at: datetime | None = None,
    ) -> None:
        with self._lock:
            order = self.orders[ref]
            if lines is not None:
                order.lines = [replace(line) for line in lines]
            if status is not None:
                order.status = status
            if posted is not None:
                order.posted = posted
            self._touch(order, at)
            self._logged(ref)

    def cancel_order(self, ref: str, at: datetime | None = None) -> None:
        """A manager cancels every line and closes the order (how 1C:ERP cancels an order)."""
        with self._lock:
            order = self.orders[ref]
            for line in order.lines:
                line.cancelled = True
            order.status = "Закрыт"
            self._touch(order, at)
            self._logged(ref)

    def delete_order(self, ref: str, at: datetime | None = None) -> None:
        with self._lock:
            order = self.orders[ref]
            order.deleted = True
            order.posted = False
            self._touch(order, at)
            self._logged(ref)

    def _move(
        self,
        prefix: str,
        link: str,
        lines: Sequence[Line] | Sequence[MoveLine],
        quantities: dict[int, Decimal | int],
        at: datetime | None,
        *,
        order_ref: str | None = None,
    ) -> MoveDoc:
        """A new shipment or return document of ``quantities`` of ``lines`` (by line code); a
        shipment names its order on each line (``order_ref``)."""
        by_code = {line.code: line.item for line in lines}
        self._numbers += 1
        stamp = self._stamp(at)
        doc = MoveDoc(
            ref=str(uuid.uuid4()),
            number=f"{prefix}-{self._numbers:06d}",
            date=stamp,
            data_version="",
            changed=stamp,
            link=link,
            lines=[MoveLine(code, by_code[code], Decimal(q), order_ref) for code, q in quantities.items()],
        )
        self._touch(doc, at)
        return doc

    def ship(self, order_ref: str, quantities: dict[int, Decimal | int], at: datetime | None = None) -> str:
        with self._lock:
            doc = self._move("РТ", order_ref, self.orders[order_ref].lines, quantities, at, order_ref=order_ref)
            self.shipments[doc.ref] = doc
            self._logged(order_ref)
            return doc.ref

    def ship_orders(self, lines: Sequence[tuple[str, int, Decimal | int]], at: datetime | None = None) -> str:
        """A sale «по нескольким заказам»: (order, order line code, quantity) per line; the header
        names no order, each line names its own."""
        with self._lock:
            self._numbers += 1
            stamp = self._stamp(at)
            doc = MoveDoc(
                ref=str(uuid.uuid4()),
                number=f"РТ-{self._numbers:06d}",
                date=stamp,
                data_version="",
                changed=stamp,
                link="",
                lines=[
                    MoveLine(code, {x.code: x.item for x in self.orders[order].lines}[code], Decimal(q), order)
                    for order, code, q in lines
                ],
            )
            self._touch(doc, at)
            self.shipments[doc.ref] = doc
            for order in dict.fromkeys(order for order, _, _ in lines):
                self._logged(order)
            return doc.ref

    def return_goods(self, shipment_ref: str, quantities: dict[int, Decimal | int], at: datetime | None = None) -> str:
        with self._lock:
            shipment = self.shipments[shipment_ref]
            doc = self._move("ВЗ", shipment_ref, shipment.lines, quantities, at)
            self.returns[doc.ref] = doc
            for order in self._orders_of(shipment):
                self._logged(order)
            return doc.ref

    def unpost_shipment(self, ref: str, at: datetime | None = None) -> None:
        with self._lock:
            doc = self.shipments[ref]
            doc.posted = False
            self._touch(doc, at)
            for order in self._orders_of(doc):
                self._logged(order)

    @staticmethod
    def _orders_of(shipment: MoveDoc) -> list[str]:
        """The orders a sale ships: its header's, and each line's."""
        named = [shipment.link, *(line.order_ref or "" for line in shipment.lines)]
        return [order for order in dict.fromkeys(named) if order]

    def permute_log(self, order: list[int]) -> None:
        """Deliver the recorded changes in another order (an exchange that reorders messages)."""
        with self._lock:
            entries = [self.log[i] for i in order]
            self.log = [(n + 1, ref, state) for n, (_, ref, state) in enumerate(entries)]
            self._seq = len(self.log)

    def generate(self, count: int, card_numbers: list[str], *, seed: int = 1) -> list[str]:
        """``count`` posted orders of 1-5 lines on the given cards (benchmarks, the dev tool)."""
        rng = random.Random(seed)
        cards = [self.add_card(number) for number in card_numbers]
        refs = []
        for _ in range(count):
            lines = [
                Line(code, f"item-{rng.randint(1, 50)}", Decimal(rng.randint(1, 3)), Decimal(rng.randint(100, 5000)))
                for code in range(1, rng.randint(1, 5) + 1)
            ]
            refs.append(self.create_order(lines, card_ref=rng.choice(cards)))
        return refs

    # -- OData rows ---------------------------------------------------------------------------------

    def _order_row(self, order: OrderDoc) -> dict[str, Any]:
        return {
            "Ref_Key": order.ref,
            "DataVersion": order.data_version,
            "DeletionMark": order.deleted,
            "Number": order.number,
            "Date": order.date,
            "Posted": order.posted,
            "Статус": order.status,
            "КартаЛояльности_Key": order.card_ref or EMPTY,
            "Партнер_Key": order.partner_ref or EMPTY,
            "Склад_Key": order.store_ref or EMPTY,
            "ДатаИзменения": order.changed,
            "СуммаДокумента": _num(sum((line.total() for line in order.lines if not line.cancelled), Decimal(0))),
            "Товары": [
                {
                    "Ref_Key": order.ref,
                    "LineNumber": str(n),
                    "КодСтроки": str(line.code),  # Edm.Int64: a JSON string
                    "Номенклатура_Key": line.item,
                    "Характеристика_Key": EMPTY,
                    "ВидЦены_Key": line.price_type or EMPTY,
                    "Количество": _num(line.quantity),
                    "Цена": _num(line.price),
                    "Сумма": _num(line.total()),
                    "Отменено": line.cancelled,
                    "ПричинаОтмены_Key": EMPTY,
                    "СуммаБонусныхБалловКСписанию": _num(line.points),
                }
                for n, line in enumerate(order.lines, start=1)
            ],
        }

    def _move_row(self, doc: MoveDoc, is_return: bool) -> dict[str, Any]:
        link_field, link_type = (
            ("ДокументРеализации", f"StandardODATA.{SHIPMENTS}")
            if is_return
            else ("ЗаказКлиента", f"StandardODATA.{ORDERS}")
        )
        return {
            "Ref_Key": doc.ref,
            "DataVersion": doc.data_version,
            "DeletionMark": doc.deleted,
            "Number": doc.number,
            "Date": doc.date,
            "Posted": doc.posted,
            "ДатаИзменения": doc.changed,
            link_field: doc.link,  # empty for a sale «по нескольким заказам»
            f"{link_field}_Type": link_type if doc.link else UNDEFINED,
            "Товары": [
                {
                    "Ref_Key": doc.ref,
                    "LineNumber": str(n),
                    "Номенклатура_Key": line.item,
                    "Характеристика_Key": EMPTY,
                    "Количество": _num(line.quantity),
                    **(
                        {link_field: doc.link, f"{link_field}_Type": link_type}
                        if is_return
                        else {
                            link_field: line.order_ref or "",
                            f"{link_field}_Type": link_type if line.order_ref else UNDEFINED,
                            "КодСтроки": str(line.code),  # the order line's КодСтроки (Edm.Int64)
                        }
                    ),
                }
                for n, line in enumerate(doc.lines, start=1)
            ],
        }

    def _rows(self, entity: str) -> list[dict[str, Any]]:
        with self._lock:
            if entity == ORDERS:
                return [self._order_row(o) for o in self.orders.values()]
            if entity == SHIPMENTS:
                return [self._move_row(d, False) for d in self.shipments.values()]
            if entity == RETURNS:
                return [self._move_row(d, True) for d in self.returns.values()]
            if entity == CARDS:
                return [{"Ref_Key": r, "Штрихкод": n, "DeletionMark": False} for r, n in self.cards.items()]
        raise KeyError(entity)

    # -- the web service's order states --------------------------------------------------------------

    def soap_state(self, order_ref: str) -> dict[str, Any]:
        order = self.orders[order_ref]
        shipments = [
            replace(d, lines=[line for line in d.lines if (line.order_ref or d.link) == order_ref])
            for d in self.shipments.values()
            if order_ref in self._orders_of(d)
        ]
        shipped = {d.ref for d in shipments}
        returns = [d for d in self.returns.values() if d.link in shipped]
        changed = max([order.changed, *(d.changed for d in shipments), *(d.changed for d in returns)])

        def move(doc: MoveDoc) -> dict[str, Any]:
            return {
                "Ref": doc.ref,
                "DataVersion": doc.data_version,
                "Date": doc.date,
                "ChangedAt": doc.changed,
                "Posted": doc.posted,
                "DeletionMark": doc.deleted,
                "Line": [
                    {"LineId": str(line.code), "ItemRef": line.item, "Quantity": line.quantity} for line in doc.lines
                ],
            }

        return {
            "Ref": order.ref,
            "Number": order.number,
            "Date": order.date,
            "DataVersion": order.data_version,
            "ChangedAt": changed,
            "Posted": order.posted,
            "DeletionMark": order.deleted,
            "Status": order.status,
            "CardRef": order.card_ref,
            "CardNumber": self.cards.get(order.card_ref or ""),
            "PartnerRef": order.partner_ref,
            "StoreRef": order.store_ref,
            "Line": [
                {
                    "LineId": str(line.code),
                    "ItemRef": line.item,
                    "PriceTypeRef": line.price_type,
                    "Quantity": line.quantity,
                    "Price": line.price,
                    "Amount": line.total(),
                    "Cancelled": line.cancelled,
                    "Points": line.points,
                }
                for line in order.lines
            ],
            "Shipment": [move(d) for d in shipments],
            "Return": [move(d) for d in returns],
        }

    # -- HTTP ---------------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            login, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return login == self.login and password == self.password

    async def _serve(self, request: Request, handler: Callable[[Request], Any]) -> Response:
        arrived = time.monotonic()
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        b = self.behaviour
        # the web server in front of 1C refuses over-long requests before 1C sees them
        if b.max_query_string and len(raw_query) > b.max_query_string:
            self.measure.refused(Call(arrived, arrived, request.url.path, 404, raw_query, request.method))
            return Response(_IIS_404_15.encode(), status_code=404, media_type="text/html")
        line = len(f"{request.method} {request.scope.get('raw_path', b'').decode('latin-1')}?{raw_query} HTTP/1.1")
        if b.max_request_line and line > b.max_request_line:
            self.measure.refused(Call(arrived, arrived, request.url.path, 414, raw_query, request.method))
            return Response(_APACHE_414.encode(), status_code=414, media_type="text/html")
        in_flight = self.measure.enter()
        status = 500
        try:
            if in_flight > b.capacity:
                status = 503
                return PlainTextResponse("Сервер 1С:Предприятия перегружен", status_code=503)
            if not self._authorized(request):
                status = 401
                return PlainTextResponse(
                    "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Basic realm="1C", charset="UTF-8"'}
                )
            try:
                await request.body()  # the whole request arrives before the ERP works on it
            except ClientDisconnect:
                status = 499
                return PlainTextResponse("", status_code=499)
            with self._lock:
                draw = self._rng.random()
                hang = b.hang_next > 0 or draw < b.timeout_rate
                fail = not hang and (b.fail_next > 0 or b.timeout_rate <= draw < b.timeout_rate + b.error_rate)
                if hang and b.hang_next > 0:
                    b.hang_next -= 1
                elif fail and b.fail_next > 0:
                    b.fail_next -= 1
            if hang:
                status = 499  # the client gives up before the answer (unless it waits longer)
                await asyncio.sleep(b.hang_seconds)
            await asyncio.sleep(b.latency * (1 + b.load_factor * (in_flight - 1)))
            if fail:
                status = 500
                return PlainTextResponse("Внутренняя ошибка сервера", status_code=500)
            response: Response = await handler(request)
            status = response.status_code
            return response
        finally:
            self.measure.leave(Call(arrived, time.monotonic(), request.url.path, status, raw_query, request.method))

    async def _odata(self, request: Request) -> Response:
        return await self._serve(request, self._odata_handler)

    async def _odata_handler(self, request: Request) -> Response:
        target = unquote(request.url.path.split("/odata/standard.odata/", 1)[1])
        params = {k: v for k, v in request.query_params.items()}
        if request.method in ("PATCH", "POST"):
            return self._write_result(request.method, target, json.loads(await request.body()))
        count = target.endswith("/$count")
        entity = target.removesuffix("/$count")
        if entity in self.denied:
            return _error(401, ACCESS_DENIED, "Недостаточно прав для чтения данных")
        try:
            rows = self._rows(entity)
        except KeyError:
            return _error(404, "8", f"Тип сущности не найден: {entity}")
        try:
            if "$filter" in params:
                condition = ODataFilter(params["$filter"])
                rows = [row for row in rows if condition.matches(row)]
        except ValueError as exc:
            return _error(400, "14", str(exc))
        allowed_only = (params.get("allowedOnly") or params.get("$allowedOnly") or "").lower() == "true"
        hidden = [row for row in rows if str(row.get("Ref_Key", "")).lower() in self.restricted]
        if hidden and not allowed_only:  # a restricted record fell into the read: the whole read fails
            return _error(401, ACCESS_DENIED, "Нарушение прав доступа!")
        rows = [row for row in rows if str(row.get("Ref_Key", "")).lower() not in self.restricted]
        if count:
            return PlainTextResponse(str(len(rows)))
        if "$orderby" in params:
            for part in reversed([p.strip() for p in params["$orderby"].split(",")]):
                name, _, direction = part.partition(" ")
                rows.sort(key=functools.partial(_sort_key, name), reverse=direction.strip() == "desc")
        skip = int(params.get("$skip", 0))
        top = int(params["$top"]) if "$top" in params else None
        rows = rows[skip : skip + top if top is not None else None]
        if params.get("$select", "").strip() not in ("", "*"):
            rows = [_select(row, params["$select"]) for row in rows]
        body = json.dumps({"odata.metadata": f"{request.base_url}#{entity}", "value": rows}, ensure_ascii=False)
        return Response(body.encode(), media_type="application/json;charset=utf-8")

    def _write_result(self, method: str, target: str, body: dict[str, Any]) -> Response:
        with self._lock:
            if method == "PATCH":
                match = re.fullmatch(re.escape(RESULTS) + r"\(Заказ_Key=guid'([0-9a-fA-F\-]+)'\)", target)
                if match is None:
                    return _error(400, "6", "Неверный URL")
                order_ref = match.group(1).lower()
                if order_ref not in self.results:
                    return _error(404, "9", "Экземпляр сущности не найден")
            else:
                if target != RESULTS:
                    return _error(400, "6", "Неверный URL")
                order_ref = str(body.get("Заказ_Key", "")).lower()
                if order_ref in self.results:  # 1C never upserts on POST
                    return _error(400, "15", "Сущность с таким ключом уже существует")
            self.pushes.append({"order": order_ref, **body})
            record = self.results.get(order_ref)
            if record is None or int(body.get("Версия", 0)) >= int(record.get("Версия", 0)):
                self.results[order_ref] = {**(record or {}), **body}
            return JSONResponse({"Заказ_Key": order_ref, **self.results[order_ref]})

    async def _soap(self, request: Request) -> Response:
        return await self._serve(request, self._soap_handler)

    async def _soap_handler(self, request: Request) -> Response:
        envelope = xmlsafe.parse(await request.body(), request.headers.get("content-type"))
        soap = etree.QName(envelope).namespace or SOAP11
        body = envelope.find(f"{{{soap}}}Body")
        if body is None or len(body) == 0:
            return self._fault(soap, "no Body")
        call = body[0]
        name = etree.QName(call).localname

        def child(element: Any, tag: str) -> Any:
            return element.find(f"{{{NS}}}{tag}")

        with self._lock:
            if name == "GetChangedOrders":
                cursor_element = child(call, "Cursor")
                cursor = int(cursor_element.text) if cursor_element is not None and cursor_element.text else 0
                limit = int(child(call, "Limit").text)
                answer = self._changed(cursor, limit)
            elif name == "GetOrders":
                refs = [e.text for e in call.iter(f"{{{NS}}}Ref") if e.text]
                answer = _element("OrderList", [_order_xml(self.soap_state(r)) for r in refs if r in self.orders])
            elif name == "CountChanges":
                cursor_element = child(call, "Cursor")
                cursor = int(cursor_element.text) if cursor_element is not None and cursor_element.text else 0
                answer = _leaf("return", str(len({ref for seq, ref, _ in self.log if seq > cursor})))
            elif name == "PutLoyaltyResults":
                accepted = 0
                for result in call.iter(f"{{{NS}}}Result"):
                    values = {etree.QName(e).localname: e.text for e in result}
                    order_ref = str(values["OrderRef"]).lower()
                    self.pushes.append({"order": order_ref, **values})
                    record = self.results.get(order_ref)
                    if record is None or int(values["Version"] or 0) >= int(record.get("Version", 0) or 0):
                        self.results[order_ref] = values
                    accepted += 1
                answer = _leaf("return", str(accepted))
            else:
                return self._fault(soap, f"unknown operation {name}")
        if answer.tag != f"{{{NS}}}return":
            answer.tag = f"{{{NS}}}return"
        wrapper = etree.Element(f"{{{NS}}}{name}Response", nsmap={"m": NS})
        wrapper.append(answer)
        return self._envelope(soap, wrapper)

    def _changed(self, cursor: int, limit: int) -> Any:
        entries = [entry for entry in self.log if entry[0] > cursor]
        chosen: list[tuple[int, str, dict[str, Any]]] = []
        refs: set[str] = set()
        last = cursor
        for seq, ref, state in entries:
            if self.history:
                if len(chosen) == limit:
                    break
                chosen.append((seq, ref, state))
            elif ref in refs:
                pass
            elif len(chosen) < limit:
                refs.add(ref)
                chosen.append((seq, ref, self.soap_state(ref)))
            else:
                break
            last = seq
        left = [entry for entry in entries if entry[0] > last]
        return _element(
            "ChangedOrders",
            [
                *(_order_xml(state) for _, _, state in chosen),
                _leaf("NextCursor", str(last)),
                _leaf("More", "true" if left else "false"),
                _leaf("Remaining", str(len(left) if self.history else len({ref for _, ref, _ in left}))),
            ],
        )

    def _envelope(self, soap: str, payload: Any) -> Response:
        envelope = etree.Element(f"{{{soap}}}Envelope", nsmap={"soap": soap})
        etree.SubElement(envelope, f"{{{soap}}}Body").append(payload)
        media = "application/soap+xml; charset=utf-8" if soap == SOAP12 else "text/xml; charset=utf-8"
        body = etree.tostring(envelope, encoding="utf-8")
        if self.inject_dtd:
            body = b'<!DOCTYPE e [<!ENTITY boom "boom"><!ENTITY booms "&boom;&boom;&boom;">]>' + body
        return Response(b'<?xml version="1.0" encoding="utf-8"?>' + body, media_type=media)

    def _fault(self, soap: str, text: str) -> Response:
        envelope = etree.Element(f"{{{soap}}}Envelope", nsmap={"soap": soap})
        fault = etree.SubElement(etree.SubElement(envelope, f"{{{soap}}}Body"), f"{{{soap}}}Fault")
        if soap == SOAP12:
            etree.SubElement(etree.SubElement(fault, f"{{{soap}}}Code"), f"{{{soap}}}Value").text = "soap:Sender"
            etree.SubElement(etree.SubElement(fault, f"{{{soap}}}Reason"), f"{{{soap}}}Text").text = text
            media = "application/soap+xml; charset=utf-8"
        else:
            etree.SubElement(fault, "faultcode").text = "soap:Client"
            etree.SubElement(fault, "faultstring").text = text
            media = "text/xml; charset=utf-8"
        return Response(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), 500, media_type=media)

    async def _stats(self, _request: Request) -> Response:
        m = self.measure
        return JSONResponse(
            {
                "calls": m.count(),
                "max_in_flight": m.max_in_flight,
                "max_calls_per_second": m.max_in_window(1.0),
                "median_latency_ms": round(sorted(m.latencies())[len(m.latencies()) // 2] * 1000, 1)
                if m.latencies()
                else None,
                "orders": len(self.orders),
                "results": len(self.results),
            }
        )

    async def _behave(self, request: Request) -> Response:
        changes = json.loads(await request.body())
        for key, value in changes.items():
            if not hasattr(self.behaviour, key):
                return JSONResponse({"error": f"unknown setting {key}"}, 400)
            setattr(self.behaviour, key, type(getattr(self.behaviour, key))(value))
        return JSONResponse(self.behaviour.__dict__)

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PATCH"]
        return Starlette(
            routes=[
                Route("/{base:path}/odata/standard.odata/{rest:path}", self._odata, methods=methods),
                Route("/{base:path}/ws/loyalty", self._soap, methods=["POST"]),
                Route("/_fake/stats", self._stats, methods=["GET"]),
                Route("/_fake/behaviour", self._behave, methods=["POST"]),
            ]
        )

    @contextmanager
    def running(self, port: int = 0) -> Iterator[str]:
        """Serve on loopback (a real uvicorn server in a thread); yields the publication's base URL."""
        port = port or _free_port()
        server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name=f"fake-erp-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake ERP did not start")
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}/erp"
        finally:
            server.should_exit = True
            thread.join(timeout=20)


ACCESS_DENIED = "20"  # 1C's code: no right to the data, or a restricted record without allowedOnly
_IIS_404_15 = (
    "<!DOCTYPE html><html><head><title>IIS 10.0 Detailed Error - 404.15 - Not Found</title></head><body>"
    "<h3>HTTP Error 404.15 - Not Found</h3><h4>The request filtering module is configured to deny a request "
    "where the query string is too long.</h4></body></html>"
)
_APACHE_414 = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"><html><head><title>414 Request-URI Too Long</title>'
    "</head><body><h1>Request-URI Too Long</h1><p>The requested URL's length exceeds the capacity limit for "
    "this server.<br /></p></body></html>"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sort_key(name: str, row: dict[str, Any]) -> str:
    return str(row.get(name, ""))


def _error(status: int, code: str, message: str) -> Response:
    """An error as 1C's OData answers it: ``odata.error`` with 1C's own code."""
    return JSONResponse({"odata.error": {"code": code, "message": {"lang": "ru", "value": message}}}, status)


def _select(row: dict[str, Any], select: str) -> dict[str, Any]:
    """``$select``: header fields by name, tabular-part fields as ``Part/Field``; a part named
    without fields comes whole."""
    header: set[str] = set()
    parts: dict[str, set[str] | None] = {}
    for name in (n.strip() for n in select.split(",")):
        part, _, field_name = name.partition("/")
        if field_name:
            chosen = parts.setdefault(part, set())
            if chosen is not None:
                chosen.add(field_name)
        elif isinstance(row.get(name), list):
            parts[name] = None
        else:
            header.add(name)
    out = {k: v for k, v in row.items() if k in header}
    for part, fields in parts.items():
        out[part] = [
            item if fields is None else {k: v for k, v in item.items() if k in fields} for item in row.get(part) or []
        ]
    return out


def _leaf(name: str, text: str | None) -> Any:
    element = etree.Element(f"{{{NS}}}{name}", nsmap={"m": NS})
    if text is None:
        element.set(f"{{{XSI}}}nil", "true")
    else:
        element.text = text
    return element


def _element(name: str, children: list[Any]) -> Any:
    element = etree.Element(f"{{{NS}}}{name}", nsmap={"m": NS})
    element.extend(children)
    return element


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


ORDER_FIELDS = (
    "Ref",
    "Number",
    "Date",
    "DataVersion",
    "ChangedAt",
    "Posted",
    "DeletionMark",
    "Status",
    "CardRef",
    "CardNumber",
    "PartnerRef",
    "StoreRef",
)
LINE_FIELDS = (
    "LineId",
    "ItemRef",
    "CharacteristicRef",
    "ItemName",
    "PriceTypeRef",
    "Quantity",
    "Price",
    "Amount",
    "Cancelled",
    "Points",
)


def _order_xml(state: dict[str, Any]) -> Any:
    order = etree.Element(f"{{{NS}}}Order", nsmap={"m": NS})
    for key in ORDER_FIELDS:
        if state.get(key) is not None:
            order.append(_leaf(key, _value(state[key])))
    for line in state["Line"]:
        element = _element("Line", [])
        for key in LINE_FIELDS:
            if line.get(key) is not None:
                element.append(_leaf(key, _value(line[key])))
        order.append(element)
    for tag in ("Shipment", "Return"):
        for doc in state[tag]:
            element = _element(tag, [])
            for key in ("Ref", "DataVersion", "Date", "ChangedAt", "Posted", "DeletionMark"):
                element.append(_leaf(key, _value(doc[key])))
            for line in doc["Line"]:
                fields = [
                    _leaf("LineId", line["LineId"]),
                    _leaf("ItemRef", line["ItemRef"]),
                    _leaf("Quantity", _value(line["Quantity"])),
                ]
                element.append(_element("Line", fields))
            order.append(element)
    return order


def main() -> None:  # pragma: no cover - a development tool
    parser = argparse.ArgumentParser(description="A fake 1C:ERP (OData + LoyaltyErp web service) on loopback")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--orders", type=int, default=20, help="posted orders to generate on the demo cards")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--error-rate", type=float, default=0.0)
    args = parser.parse_args()
    erp = FakeErp(behaviour=Behaviour(latency=args.latency, capacity=args.capacity, error_rate=args.error_rate))
    erp.generate(args.orders, ["2700000000014", "2700000000021", "2700000000038"])
    with erp.running(args.port) as url:
        print(f"fake 1C:ERP at {url} (login {LOGIN!r}, password {PASSWORD!r}); stats at /_fake/stats; Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    main()

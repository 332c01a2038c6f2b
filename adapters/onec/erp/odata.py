"""The ERP through 1C's standard OData interface (``/odata/standard.odata``), with httpx.

Reads (assumed names, 1C:ERP 2.x / УТ 11 metadata; all configurable in ``erp.odata``):

* ``Document_ЗаказКлиента``: ``Ref_Key``, ``Number``, ``Date``, ``DataVersion``, ``Posted``,
  ``DeletionMark``, ``Статус``, ``КартаЛояльности_Key``, ``Партнер_Key``, ``Склад_Key`` and the
  tabular part ``Товары`` (returned inline) with ``LineNumber``, ``КодСтроки``,
  ``Номенклатура_Key``, ``Характеристика_Key``, ``ВидЦены_Key``, ``Количество``, ``Цена``,
  ``Сумма``, ``Отменено``, ``СуммаБонусныхБалловКСписанию``;
* ``Document_РеализацияТоваровУслуг`` (shipments): header ``ЗаказКлиента`` (a composite
  reference: value plus ``ЗаказКлиента_Type``) and per line ``ЗаказКлиента``,
  ``Номенклатура_Key``, ``Характеристика_Key``, ``Количество``;
* ``Document_ВозвратТоваровОтКлиента`` (returns): header and per line ``ДокументРеализации``;
* ``Catalog_КартыЛояльности``: the card number (``Штрихкод``) of a card reference.

The change feed needs a change timestamp on those three documents: 1C's ``DataVersion`` is an
opaque marker and the standard interface has no change tracking, so the integrator adds an
attribute (``ДатаИзменения`` by default) set to the current time on every write (see
``adapters/onec/erp/README.md``). The feed reads each document type ordered by that timestamp
from the cursor (minus ``overlap_seconds``, for writes that committed late), remembers which
documents it has taken at each timestamp, and batches references into ``or`` filters
(``batch_refs`` per call). Results are written into an independent information register
(``InformationRegister_ЛояльностьЗаказов``: PATCH of the order's record, POST when missing).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from adapters.onec.erp.calls import (
    ENTITY_EXISTS_CODE,
    CallAbandoned,
    EntityExists,
    RequestTooLong,
    basic_auth_header,
    call,
    classify_status,
    too_long,
)
from adapters.onec.erp.config import ErpConfig
from adapters.onec.erp.documents import (
    Document,
    DocumentLine,
    OrderDocument,
    OrderLine,
    OrderState,
    ref_or_none,
)
from adapters.onec.erp.mapping import map_state
from gateway.core.erp import (
    CallGuard,
    CallKind,
    ErpLoyaltyResult,
    ErpOrderChange,
    ErpPage,
    ErpRejected,
    ErpUnavailable,
)

A = TypeVar("A")
B = TypeVar("B")
FEEDS = ("orders", "shipments", "returns")
_SAFE = "'(),:=$/"
_EMPTY_DATE = "0001-01-01T00:00:00"


@dataclass
class _Feed:
    """Where one document type's change feed stands: the latest change timestamp taken and the
    documents taken at or after ``t - overlap`` (with the timestamp they were taken at)."""

    t: str | None = None
    seen: dict[str, str] = field(default_factory=dict)


def _load_cursor(cursor: str | None) -> dict[str, _Feed]:
    if not cursor:
        return {feed: _Feed() for feed in FEEDS}
    try:
        data = json.loads(cursor)
        return {feed: _Feed(data[feed]["t"], dict(data[feed]["seen"])) for feed in FEEDS}
    except (ValueError, KeyError, TypeError) as exc:
        raise ErpRejected(f"the stored OData cursor cannot be read: {cursor[:100]!r}") from exc


def _dump_cursor(feeds: dict[str, _Feed]) -> str:
    return json.dumps({feed: {"t": feeds[feed].t, "seen": feeds[feed].seen} for feed in FEEDS}, ensure_ascii=False)


def _when(value: Any) -> datetime | None:
    if not value or value == _EMPTY_DATE:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ErpRejected(f"not a 1C date: {value!r}") from exc


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise ErpRejected(f"not a number: {value!r}")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class ODataTransport:
    """``ErpPort`` over the standard OData interface."""

    def __init__(self, config: ErpConfig, guard: CallGuard, *, client: httpx.Client | None = None) -> None:
        self.config = config
        self.name = config.name
        self.names = config.odata
        self.guard = guard
        parallel = max([config.throttle.concurrency, *(w.concurrency for w in config.throttle.windows)])
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(config.read_timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel),
        )
        self._auth = basic_auth_header(config.login, config.password.get_secret_value())
        # Workers beyond the concurrency budget only wait for the throttle: the more calls wait, the
        # less of the budget is lost between dependent calls. The throttle caps the real concurrency.
        self._pool = ThreadPoolExecutor(max_workers=parallel + 4, thread_name_prefix=f"erp-{config.name}")
        self._ahead_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"erp-{config.name}-ahead")
        self._ahead: tuple[tuple[str, int], Future[list[tuple[list[dict[str, Any]], _Feed, bool]]]] | None = None
        self._cards: dict[str, str] = {}
        self._lock = threading.Lock()
        self._attempts = 0
        self._zone = ZoneInfo(config.mapping.timezone)
        self._max_query = config.odata.max_query_bytes  # lowered when the web server refuses less

    def close(self) -> None:
        self._ahead_pool.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False)
        self.client.close()

    # -- HTTP ---------------------------------------------------------------------------------

    def _url(self, entity: str, query: Iterable[tuple[str, str]] = ()) -> str:
        base = f"{self.config.root}{self.names.path}/{quote(entity, safe=_SAFE)}"
        encoded = _query(query)
        return f"{base}?{encoded}" if encoded else base

    def _request(self, method: str, url: str, what: str, kind: CallKind, body: Any = None) -> httpx.Response:
        def attempt() -> httpx.Response:
            with self._lock:
                self._attempts += 1
            headers = {"Authorization": self._auth, "Accept": "application/json"}
            content = None
            if body is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
                content = json.dumps(body, ensure_ascii=False).encode()
            try:
                response = self.client.request(method, url, headers=headers, content=content)
            except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # never reached the ERP
                raise ErpUnavailable(f"{what}: timeout ({type(exc).__name__})") from exc
            except httpx.TimeoutException as exc:  # sent: the ERP may still be working on it
                raise CallAbandoned(f"{what}: timeout ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise ErpUnavailable(f"{what}: {type(exc).__name__}") from exc
            status = response.status_code
            if status < 400 or (method == "PATCH" and status == 404):
                return response
            if too_long(status, response.text):
                raise RequestTooLong(
                    f"{what}: HTTP {status}, the web server refused a request of {len(url.encode())} bytes "
                    "(IIS maxQueryString / Apache LimitRequestLine): lower erp.odata.max_query_bytes",
                    status=status,
                )
            code, message = _odata_error(response)
            if method == "POST" and code == ENTITY_EXISTS_CODE:
                raise EntityExists(f"{what}: {message}", status=status)
            raise classify_status(status, what, message, code)

        return call(self.guard, kind, self.config.retry, what, attempt, attempts=1 if kind == "push" else None)

    def _read_query(self, query: Sequence[tuple[str, str]], select: Sequence[str]) -> list[tuple[str, str]]:
        """A GET of an entity set: JSON, only the fields needed, only the records the user may read."""
        full = [("$format", "json"), *query]
        if select:
            full.append(("$select", ",".join(select)))
        if self.names.allowed_only:
            full.append(("allowedOnly", "true"))
        return full

    def _fits(self, query: Sequence[tuple[str, str]]) -> bool:
        return len(_query(query)) <= self._max_query

    def _rows(
        self, entity: str, query: list[tuple[str, str]], what: str, select: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        full = self._read_query(query, select)
        if not self._fits(full):
            raise RequestTooLong(
                f"{what}: a query string of {len(_query(full))} bytes passes erp.odata.max_query_bytes "
                f"({self._max_query}); raise it if the publication allows longer requests"
            )
        response = self._request("GET", self._url(entity, full), what, "pull")
        try:
            data = json.loads(response.content, parse_float=Decimal)
            rows = data["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ErpUnavailable(f"{what}: the answer is not an OData JSON collection") from exc
        if not isinstance(rows, list):
            raise ErpUnavailable(f"{what}: the answer is not an OData JSON collection")
        return rows

    def _by_refs(
        self,
        entity: str,
        condition: Callable[[str], str],
        refs: Sequence[str],
        what: str,
        *,
        select: Sequence[str],
        posted: bool,
    ) -> list[dict[str, Any]]:
        """Every row matching ``condition(ref)`` for one of ``refs``, in parallel calls of as many
        references as fit the query-string budget (and ``batch_refs``). A call the web server
        still refuses for its length is split in two and the budget lowered; one reference that
        cannot be asked for alone is an error that says so, never a silent stop."""
        unique = sorted(set(refs))
        if not unique:
            return []

        def query_of(chunk: Sequence[str]) -> list[tuple[str, str]]:
            joined = " or ".join(f"({condition(ref)})" if len(chunk) > 1 else condition(ref) for ref in chunk)
            return [("$filter", f"({joined}) and Posted eq true" if posted else joined)]

        def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            try:
                return self._rows(entity, query_of(chunk), what, select)
            except RequestTooLong:
                if len(chunk) == 1:
                    raise
                with self._lock:  # what this publication refuses, the next calls do not try again
                    self._max_query = min(self._max_query, len(_query(self._read_query(query_of(chunk), select))) - 1)
                half = len(chunk) // 2
                return [*fetch(chunk[:half]), *fetch(chunk[half:])]

        chunks: list[list[str]] = []
        for ref in unique:
            last = chunks[-1] if chunks else []
            if 0 < len(last) < self.config.sync.batch_refs and self._fits(
                self._read_query(query_of([*last, ref]), select)
            ):
                last.append(ref)
                continue
            chunks.append([ref])
        rows: list[dict[str, Any]] = []
        for part in self._all(fetch, chunks):
            rows.extend(part)
        return rows

    def _all(self, work: Callable[[A], B], items: Iterable[A]) -> list[B]:
        """``work`` on every item in parallel; when one fails, wait for the others to finish
        (no call is left running behind the caller's back) and raise the first failure."""
        futures = [self._pool.submit(work, item) for item in items]
        wait(futures)
        return [future.result() for future in futures]

    # -- parsing ------------------------------------------------------------------------------

    def _changed(self, row: dict[str, Any]) -> datetime | None:
        if self.names.changed_field not in row:
            raise ErpRejected(
                f"the ERP's documents have no {self.names.changed_field!r} attribute: publish the change timestamp "
                "(see the 1C developer's notes) or configure erp.odata.changed_field"
            )
        return _when(row[self.names.changed_field])

    def _order(self, row: dict[str, Any]) -> OrderDocument:
        names = self.names
        lines = []
        for line in row.get(names.lines) or []:
            code = _line_code(line.get(names.line_code_field)) if names.line_code_field else None
            line_id = code or str(line.get("LineNumber"))
            lines.append(
                OrderLine(
                    line_id=line_id,
                    item_ref=ref_or_none(line.get("Номенклатура_Key")) or "",
                    characteristic_ref=ref_or_none(line.get("Характеристика_Key")),
                    item_name=(str(line.get("Содержание")) or None) if line.get("Содержание") else None,
                    price_type_ref=ref_or_none(line.get("ВидЦены_Key")),
                    quantity=_decimal(line.get("Количество")),
                    price=_decimal(line.get("Цена")),
                    amount=_decimal(line.get("Сумма")),
                    cancelled=bool(line.get("Отменено", False)),
                    points=_decimal(line.get(names.spend_field)) if names.spend_field else Decimal(0),
                )
            )
        return OrderDocument(
            ref=str(row["Ref_Key"]),
            number=str(row.get("Number") or "").strip() or None,
            data_version=str(row.get("DataVersion") or ""),
            date=_when(row.get("Date")) or datetime(1, 1, 1),
            changed=self._changed(row),
            posted=bool(row.get("Posted", False)),
            deleted=bool(row.get("DeletionMark", False)),
            status=(str(row.get(names.status_field)) or None) if row.get(names.status_field) else None,
            lines=tuple(lines),
            card_ref=ref_or_none(row.get(names.card_field)),
            partner_ref=ref_or_none(row.get(names.partner_field)),
            store_ref=ref_or_none(row.get(names.store_field)),
        )

    # -- what is read ------------------------------------------------------------------------

    def _select_order(self) -> list[str]:
        names = self.names
        header = ["Ref_Key", "Number", "Date", "DataVersion", "Posted", "DeletionMark", names.changed_field]
        header += [names.status_field, names.card_field, names.partner_field, names.store_field]
        fields = ["LineNumber", "Номенклатура_Key", "Характеристика_Key", "ВидЦены_Key", "Количество", "Цена"]
        fields += ["Сумма", "Отменено", *(f for f in (names.line_code_field, names.spend_field) if f)]
        return header + [f"{names.lines}/{f}" for f in fields]

    def _select_move(self, *, shipment: bool) -> list[str]:
        names = self.names
        link = names.shipment_order_field if shipment else names.return_shipment_field
        header = ["Ref_Key", "DataVersion", "Date", "Posted", "DeletionMark", names.changed_field, link, f"{link}_Type"]
        fields = ["Номенклатура_Key", "Характеристика_Key", "Количество", link, f"{link}_Type"]
        if shipment and names.line_code_field:
            fields.append(names.line_code_field)
        return header + [f"{names.lines}/{f}" for f in fields]

    def _select_feed(self, feed: str) -> list[str]:
        return self._select_order() if feed == "orders" else self._select_move(shipment=feed == "shipments")

    def _linked(self, field_name: str, entity: str) -> Callable[[str], str]:
        """Documents that name ``ref`` in the header or on any line (a sale «по нескольким
        заказам» leaves the header empty and names each line's order). The field is composite:
        1C matches it only through ``cast`` (a bare guid never matches)."""
        lines = self.names.lines

        def condition(ref: str) -> str:
            target = f"cast(guid'{ref}', '{entity}')"
            return f"{field_name} eq {target} or {lines}/any(d: d/{field_name} eq {target})"

        return condition

    def _ref_of(self, row: dict[str, Any], field_name: str, entity: str) -> str | None:
        """A composite reference's value, if it points to ``entity``."""
        kind = row.get(f"{field_name}_Type")
        if kind and not str(kind).endswith(entity):
            return None
        return ref_or_none(row.get(field_name) if field_name in row else row.get(f"{field_name}_Key"))

    def _document(self, row: dict[str, Any], link_field: str, link_entity: str) -> Document:
        code_field = self.names.line_code_field if link_entity == self.names.orders else None
        lines = tuple(
            DocumentLine(
                line_id=_line_code(line.get(code_field)) if code_field else None,
                item_ref=ref_or_none(line.get("Номенклатура_Key")) or "",
                characteristic_ref=ref_or_none(line.get("Характеристика_Key")),
                quantity=_decimal(line.get("Количество")),
                order_ref=self._ref_of(line, link_field, link_entity) if link_entity == self.names.orders else None,
                shipment_ref=self._ref_of(line, link_field, link_entity) if link_entity != self.names.orders else None,
            )
            for line in row.get(self.names.lines) or []
        )
        link = self._ref_of(row, link_field, link_entity)
        return Document(
            ref=str(row["Ref_Key"]),
            data_version=str(row.get("DataVersion") or ""),
            date=_when(row.get("Date")) or datetime(1, 1, 1),
            changed=self._changed(row),
            posted=bool(row.get("Posted", False)),
            deleted=bool(row.get("DeletionMark", False)),
            lines=lines,
            order_ref=link if link_entity == self.names.orders else None,
            shipment_ref=link if link_entity != self.names.orders else None,
        )

    def _shipment(self, row: dict[str, Any]) -> Document:
        return self._document(row, self.names.shipment_order_field, self.names.orders)

    def _return(self, row: dict[str, Any]) -> Document:
        return self._document(row, self.names.return_shipment_field, self.names.shipments)

    # -- the change feed ----------------------------------------------------------------------

    def _entity(self, feed: str) -> str:
        return {"orders": self.names.orders, "shipments": self.names.shipments, "returns": self.names.returns}[feed]

    def _read_feed(self, feed: str, state: _Feed, limit: int) -> tuple[list[dict[str, Any]], _Feed, bool]:
        """Up to ``limit`` documents of one type changed at or after the cursor (minus the overlap)
        that were not taken before in the very same version (timestamp and ``DataVersion``: 1C
        stamps to the second, and a document written twice in one second is still read twice)."""
        changed = self.names.changed_field
        overlap = timedelta(seconds=self.config.sync.overlap_seconds)
        query = [("$orderby", f"{changed} asc,Ref_Key asc"), ("$top", str(limit + len(state.seen)))]
        if state.t is not None:
            lower = datetime.fromisoformat(state.t) - overlap
            query.insert(0, ("$filter", f"{changed} ge datetime'{_stamp(lower)}'"))
        rows = self._rows(self._entity(feed), query, f"changed {feed}", self._select_feed(feed))
        more = len(rows) >= limit + len(state.seen)
        taken: list[tuple[dict[str, Any], str]] = []
        for row in rows:
            moment = self._changed(row)
            stamp = _stamp(moment) if moment is not None else _EMPTY_DATE
            version = f"{stamp}|{row.get('DataVersion') or ''}"
            if state.seen.get(str(row["Ref_Key"])) == version:
                continue  # taken before in this very version
            if len(taken) == limit:
                more = True
                break
            taken.append((row, version))
        if not taken:
            return [], state, more
        top = max([state.t or _EMPTY_DATE, *(version.split("|", 1)[0] for _, version in taken)])
        floor = _stamp(datetime.fromisoformat(top) - overlap) if top != _EMPTY_DATE else _EMPTY_DATE
        seen = {ref: version for ref, version in state.seen.items() if version.split("|", 1)[0] >= floor}
        seen.update({str(row["Ref_Key"]): version for row, version in taken if version.split("|", 1)[0] >= floor})
        return [row for row, _ in taken], _Feed(top, seen), more

    def _read_feeds(self, cursor: str | None, limit: int) -> list[tuple[list[dict[str, Any]], _Feed, bool]]:
        feeds = _load_cursor(cursor)
        return self._all(lambda feed: self._read_feed(feed, feeds[feed], limit), FEEDS)

    def changed_orders(self, cursor: str | None, limit: int) -> ErpPage:
        """One page. While the page's orders are assembled, the feeds of the next page are
        already read (that read needs only this page's cursor), so a sync with a backlog always
        has calls waiting for the throttle and uses the whole budget."""
        before = self._calls
        key = (cursor or "", limit)
        with self._lock:
            ahead, self._ahead = self._ahead, None
        results = ahead[1].result() if ahead is not None and ahead[0] == key else self._read_feeds(cursor, limit)
        (
            (order_rows, orders_next, orders_more),
            (ship_rows, ships_next, ships_more),
            (ret_rows, rets_next, rets_more),
        ) = results
        next_cursor = _dump_cursor({"orders": orders_next, "shipments": ships_next, "returns": rets_next})
        more = orders_more or ships_more or rets_more
        if more:
            read = self._ahead_pool.submit(self._read_feeds, next_cursor, limit)
            with self._lock:
                self._ahead = ((next_cursor, limit), read)
        orders = {str(r["Ref_Key"]): self._order(r) for r in order_rows}
        wanted: set[str] = set(orders)
        for row in ship_rows:
            document = self._shipment(row)
            wanted.update(r for r in (document.order_ref, *(line.order_ref for line in document.lines)) if r)
        returned_from: set[str] = set()
        for row in ret_rows:
            document = self._return(row)
            returned_from.update(
                r for r in (document.shipment_ref, *(line.shipment_ref for line in document.lines)) if r
            )
        if returned_from:
            for row in self._by_refs(
                self.names.shipments,
                _by_key,
                sorted(returned_from),
                "shipments of returns",
                select=self._select_move(shipment=True),
                posted=False,
            ):
                document = self._shipment(row)
                wanted.update(r for r in (document.order_ref, *(line.order_ref for line in document.lines)) if r)
        missing = sorted(wanted - set(orders))
        for row in self._by_refs(
            self.names.orders, _by_key, missing, "orders", select=self._select_order(), posted=False
        ):
            orders[str(row["Ref_Key"])] = self._order(row)
        changes = self._states(list(orders.values()))
        return ErpPage(changes=changes, next_cursor=next_cursor, more=more, calls=self._calls - before)

    def fetch_orders(self, order_ids: Sequence[str]) -> list[ErpOrderChange]:
        rows = self._by_refs(
            self.names.orders, _by_key, list(order_ids), "orders", select=self._select_order(), posted=False
        )
        return self._states([self._order(row) for row in rows])

    def backlog(self, cursor: str | None) -> int | None:
        feeds = _load_cursor(cursor)

        def count(feed: str) -> int:
            query = []
            if feeds[feed].t is not None:
                query.append(("$filter", f"{self.names.changed_field} gt datetime'{feeds[feed].t}'"))
            response = self._request(
                "GET", self._url(f"{self._entity(feed)}/$count", query), f"count of changed {feed}", "pull"
            )
            try:
                return int(response.text.strip())
            except ValueError as exc:
                raise ErpUnavailable(f"count of changed {feed}: not a number: {response.text[:50]!r}") from exc

        return sum(self._all(count, FEEDS))

    # -- assembling orders --------------------------------------------------------------------

    @property
    def _calls(self) -> int:
        """HTTP requests made so far (each retry attempt counts)."""
        with self._lock:
            return self._attempts

    def _states(self, orders: list[OrderDocument]) -> list[ErpOrderChange]:
        if not orders:
            return []
        refs = [order.ref for order in orders]
        card_refs = sorted({o.card_ref for o in orders if o.card_ref and o.card_ref not in self.config.mapping.cards})
        shipments = [
            self._shipment(row)
            for row in self._by_refs(
                self.names.shipments,
                self._linked(self.names.shipment_order_field, self.names.orders),
                refs,
                "shipments of orders",
                select=self._select_move(shipment=True),
                posted=True,
            )
        ]
        returns = [
            self._return(row)
            for row in self._by_refs(
                self.names.returns,
                self._linked(self.names.return_shipment_field, self.names.shipments),
                [s.ref for s in shipments],
                "returns of shipments",
                select=self._select_move(shipment=False),
                posted=True,
            )
        ]
        cards = self._card_numbers(card_refs)
        states = {order.ref: OrderState(order) for order in orders}
        sold: dict[str, list[tuple[str | None, DocumentLine]]] = {}  # sale -> (its line's order, line)
        for shipment in shipments:
            by_order: dict[str, list[DocumentLine]] = {}
            for line in shipment.lines:
                owner = line.order_ref or shipment.order_ref
                sold.setdefault(shipment.ref, []).append((owner, line))
                if owner in states:
                    by_order.setdefault(owner, []).append(line)
            for owner, lines in by_order.items():
                states[owner].shipments.append(_with_lines(shipment, lines))
        for document, by_order in _returned(returns, sold).items():
            for owner, lines in by_order.items():
                if owner in states:
                    states[owner].returns.append(_with_lines(document, lines))
        return [map_state(states[ref], self.config.mapping, cards) for ref in refs]

    def _card_numbers(self, refs: list[str]) -> dict[str, str]:
        with self._lock:
            known = {ref: self._cards[ref] for ref in refs if ref in self._cards}
        unknown = [ref for ref in refs if ref not in known]
        if unknown and self.names.cards:
            cards = self.names.cards
            select = ["Ref_Key", self.names.card_number_field]
            for row in self._by_refs(cards, _by_key, unknown, "loyalty cards", select=select, posted=False):
                number = str(row.get(self.names.card_number_field) or "").strip()
                if number:
                    known[str(row["Ref_Key"])] = number
            with self._lock:
                self._cards.update({ref: known[ref] for ref in unknown if ref in known})
        return known

    # -- results ------------------------------------------------------------------------------

    def push_results(self, results: Sequence[ErpLoyaltyResult]) -> None:
        register = self.names.results
        for result in results:
            record = {
                "Версия": result.version,
                "Статус": result.status,
                "НомерКарты": result.card_number,
                "БаллыСписано": result.points_spent,
                "БаллыОжидают": result.points_pending,
                "БаллыДоступны": result.points_available,
                "БаллыНачислено": result.points_accrued,
                "БаллыНеУдержано": result.points_shortfall,
                "БалансКарты": result.balance_available,
                "Обновлено": _stamp(result.updated_at.astimezone(self._zone).replace(tzinfo=None)),
            }
            key = f"{register}(Заказ_Key=guid'{result.order_id}')"
            what = f"loyalty result of order {result.order_id}"
            response = self._request("PATCH", self._url(key, [("$format", "json")]), what, "push", body=record)
            if response.status_code != 404:
                continue
            try:
                self._request(
                    "POST",
                    self._url(register, [("$format", "json")]),
                    what,
                    "push",
                    body={"Заказ_Key": result.order_id, **record},
                )
            except EntityExists:  # created meanwhile (1C never upserts on POST): write over it
                self._request("PATCH", self._url(key, [("$format", "json")]), what, "push", body=record)


def _returned(
    returns: list[Document], sold: dict[str, list[tuple[str | None, DocumentLine]]]
) -> dict[Document, dict[str, list[DocumentLine]]]:
    """Each return line onto the sale lines it takes back: the lines of the same goods of its
    sale, in line order, each no more than it shipped less what earlier returns took. A return
    line thus goes to the order (and the order line, by the sale line's code) that shipped the
    goods — once, even when the sale shipped several orders with the same goods."""
    left = {(ref, n): line.quantity for ref, lines in sold.items() for n, (_, line) in enumerate(lines)}
    out: dict[Document, dict[str, list[DocumentLine]]] = {}
    for document in sorted((d for d in returns if d.posted and not d.deleted), key=lambda d: (d.date, d.ref)):
        by_order = out.setdefault(document, {})
        for line in document.lines:
            sale = line.shipment_ref or document.shipment_ref or ""
            want = line.quantity
            for n, (owner, sold_line) in enumerate(sold.get(sale, [])):
                if want <= 0:
                    break
                same = sold_line.item_ref == line.item_ref and (
                    line.characteristic_ref is None or sold_line.characteristic_ref in (None, line.characteristic_ref)
                )
                take = min(want, left[(sale, n)]) if same else Decimal(0)
                if take <= 0:
                    continue
                left[(sale, n)] -= take
                want -= take
                if owner is not None:
                    by_order.setdefault(owner, []).append(replace(line, quantity=take, line_id=sold_line.line_id))
    return out


def _with_lines(document: Document, lines: list[DocumentLine]) -> Document:
    return Document(
        ref=document.ref,
        data_version=document.data_version,
        date=document.date,
        changed=document.changed,
        posted=document.posted,
        deleted=document.deleted,
        lines=tuple(lines),
        order_ref=document.order_ref,
        shipment_ref=document.shipment_ref,
    )


def _odata_error(response: httpx.Response) -> tuple[str | None, str]:
    """1C's own error code and message of an OData error answer (JSON ``odata.error``)."""
    try:
        error = response.json()["odata.error"]
        return str(error.get("code")), str(error["message"]["value"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, response.text[:200]


def _query(query: Iterable[tuple[str, str]]) -> str:
    """The query string as sent: percent-encoded UTF-8 (a Cyrillic letter takes six bytes)."""
    return "&".join(f"{key}={quote(value, safe=_SAFE)}" for key, value in query)


def _by_key(ref: str) -> str:
    return f"Ref_Key eq guid'{ref}'"


def _line_code(value: Any) -> str | None:
    """A line code (1C's Int64 comes as a JSON string, smaller numbers as numbers); 0 is none."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        code = int(str(value).strip())
    except ValueError:
        return None
    return str(code) if code > 0 else None

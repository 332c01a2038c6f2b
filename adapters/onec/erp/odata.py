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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from adapters.onec.erp.calls import basic_auth_header, call, classify_status
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

    def close(self) -> None:
        self._ahead_pool.shutdown(wait=False, cancel_futures=True)
        self._pool.shutdown(wait=False)
        self.client.close()

    # -- HTTP ---------------------------------------------------------------------------------

    def _url(self, entity: str, query: Iterable[tuple[str, str]] = ()) -> str:
        base = f"{self.config.root}{self.names.path}/{quote(entity, safe=_SAFE)}"
        parts = [f"{key}={quote(value, safe=_SAFE)}" for key, value in query]
        return f"{base}?{'&'.join(parts)}" if parts else base

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
            except httpx.TimeoutException as exc:
                raise ErpUnavailable(f"{what}: timeout ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise ErpUnavailable(f"{what}: {type(exc).__name__}") from exc
            if response.status_code >= 400 and not (method == "PATCH" and response.status_code == 404):
                raise classify_status(response.status_code, what, _odata_message(response))
            return response

        return call(self.guard, kind, self.config.retry, what, attempt, attempts=1 if kind == "push" else None)

    def _rows(self, entity: str, query: list[tuple[str, str]], what: str) -> list[dict[str, Any]]:
        response = self._request("GET", self._url(entity, [("$format", "json"), *query]), what, "pull")
        try:
            data = json.loads(response.content, parse_float=Decimal)
            rows = data["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ErpUnavailable(f"{what}: the answer is not an OData JSON collection") from exc
        if not isinstance(rows, list):
            raise ErpUnavailable(f"{what}: the answer is not an OData JSON collection")
        return rows

    def _by_refs(
        self, entity: str, field_name: str, refs: Sequence[str], what: str, *, cast_to: str | None, posted: bool
    ) -> list[dict[str, Any]]:
        """Every row whose ``field_name`` is one of ``refs``: ``batch_refs`` per call, in parallel."""
        unique = sorted(set(refs))
        if not unique:
            return []

        def literal(ref: str) -> str:
            return f"cast(guid'{ref}', '{cast_to}')" if cast_to else f"guid'{ref}'"

        def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            condition = " or ".join(f"{field_name} eq {literal(ref)}" for ref in chunk)
            if posted:
                condition = f"({condition}) and Posted eq true"
            return self._rows(entity, [("$filter", condition)], what)

        rows: list[dict[str, Any]] = []
        for part in self._all(fetch, _chunks(unique, self.config.sync.batch_refs)):
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
            code = line.get("КодСтроки")
            line_id = str(code) if code not in (None, "", 0, "0") else str(line.get("LineNumber"))
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

    def _ref_of(self, row: dict[str, Any], field_name: str, entity: str) -> str | None:
        """A composite reference's value, if it points to ``entity``."""
        kind = row.get(f"{field_name}_Type")
        if kind and not str(kind).endswith(entity):
            return None
        return ref_or_none(row.get(field_name) if field_name in row else row.get(f"{field_name}_Key"))

    def _document(self, row: dict[str, Any], link_field: str, link_entity: str) -> Document:
        lines = tuple(
            DocumentLine(
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
        rows = self._rows(self._entity(feed), query, f"changed {feed}")
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
                "Ref_Key",
                sorted(returned_from),
                "shipments of returns",
                cast_to=None,
                posted=False,
            ):
                document = self._shipment(row)
                wanted.update(r for r in (document.order_ref, *(line.order_ref for line in document.lines)) if r)
        missing = sorted(wanted - set(orders))
        for row in self._by_refs(self.names.orders, "Ref_Key", missing, "orders", cast_to=None, posted=False):
            orders[str(row["Ref_Key"])] = self._order(row)
        changes = self._states(list(orders.values()))
        return ErpPage(changes=changes, next_cursor=next_cursor, more=more, calls=self._calls - before)

    def fetch_orders(self, order_ids: Sequence[str]) -> list[ErpOrderChange]:
        rows = self._by_refs(self.names.orders, "Ref_Key", list(order_ids), "orders", cast_to=None, posted=False)
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
                self.names.shipment_order_field,
                refs,
                "shipments of orders",
                cast_to=self.names.orders,
                posted=True,
            )
        ]
        returns = [
            self._return(row)
            for row in self._by_refs(
                self.names.returns,
                self.names.return_shipment_field,
                [s.ref for s in shipments],
                "returns of shipments",
                cast_to=self.names.shipments,
                posted=True,
            )
        ]
        cards = self._card_numbers(card_refs)
        states = {order.ref: OrderState(order) for order in orders}
        order_of_shipment: dict[str, set[str]] = {}
        for shipment in shipments:
            by_order: dict[str, list[DocumentLine]] = {}
            for line in shipment.lines:
                owner = line.order_ref or shipment.order_ref
                if owner in states:
                    by_order.setdefault(owner, []).append(line)
            for owner, lines in by_order.items():
                order_of_shipment.setdefault(shipment.ref, set()).add(owner)
                states[owner].shipments.append(_with_lines(shipment, lines))
        for document in returns:
            by_order = {}
            for line in document.lines:
                shipment_ref = line.shipment_ref or document.shipment_ref
                for owner in order_of_shipment.get(shipment_ref or "", ()):
                    by_order.setdefault(owner, []).append(line)
            for owner, lines in by_order.items():
                states[owner].returns.append(_with_lines(document, lines))
        return [map_state(states[ref], self.config.mapping, cards) for ref in refs]

    def _card_numbers(self, refs: list[str]) -> dict[str, str]:
        with self._lock:
            known = {ref: self._cards[ref] for ref in refs if ref in self._cards}
        unknown = [ref for ref in refs if ref not in known]
        if unknown and self.names.cards:
            for row in self._by_refs(self.names.cards, "Ref_Key", unknown, "loyalty cards", cast_to=None, posted=False):
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
            if response.status_code == 404:
                self._request(
                    "POST",
                    self._url(register, [("$format", "json")]),
                    what,
                    "push",
                    body={"Заказ_Key": result.order_id, **record},
                )


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


def _odata_message(response: httpx.Response) -> str:
    try:
        error = response.json()["odata.error"]
        return str(error["message"]["value"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]

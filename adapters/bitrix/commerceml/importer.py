"""Applying what 1C sends back to the orders it was given.

For each package the order is looked up (``Ид``, then ``Номер``, then a subordinate document's
``Основание``) among the orders of ``orders_client``; its stored snapshot is taken and 1C's news
is merged into it:

* paid — ``Заказ оплачен``/``Оплачен`` true, ``Дата оплаты по 1С`` or ``Номер оплаты по 1С`` set,
  a ``Статус заказа`` mapped to ``paid``, or a payment document (not marked for deletion, not a
  return, posted unless it says otherwise);
* cancelled — ``Отменен`` or ``ПометкаУдаления`` true on the order, or a status mapped to it;
* shipped — in 2.x (one shipment per order) ``Отгружен`` true, ``Номер``/``Дата отгрузки по 1С``
  set or a status mapped to ``shipped`` ship whatever is not shipped yet; in 3.x each shipment
  document with ``Отгружен`` true (or posted, if it has no such requisite) ships its goods,
  matched to the order's lines by goods id; a shipment already applied is never applied again;
* returned — a ``Возврат товара`` document returns its goods (at most what was shipped).

News never takes anything back (1C saying "not paid" does not unpay an order). If the merged
snapshot equals the stored one, nothing is applied; otherwise it is applied as version + 1
under a key derived from the stored version and the new content — so importing the same file
twice, or two replicas importing it at once, changes the ledger once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from adapters.bitrix.commerceml.documents import Document, Item, Package
from adapters.bitrix.config import CommerceMLConfig
from contracts.errors import LoyaltyError
from contracts.orders import OrderQuantity, OrderRecord, OrderRequest, OrderReturn, OrderShipment
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.service import LoyaltyService


@dataclass
class ImportReport:
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


def _status_action(cfg: CommerceMLConfig, document: Document) -> str:
    status = document.requisites.get("статус заказа") or document.requisites.get("статуса заказа ид") or ""
    status = status.strip().lower()
    if status.startswith("[") and "]" in status:  # Bitrix style "[F] Выполнен"
        status = status.split("]", 1)[1].strip()
    return cfg.statuses.get(status, "none")


def _is_paid(cfg: CommerceMLConfig, package: Package) -> bool:
    order = package.order
    if order is not None and (
        order.flag("заказ оплачен", "оплачен")
        or order.value("дата оплаты по 1с", "номер оплаты по 1с")
        or _status_action(cfg, order) == "paid"
    ):
        return True
    for payment in package.subordinates:
        if payment.kind != "payment" or payment.deleted or payment.flag("признаквозврата", "отменен"):
            continue
        if "проведен" in payment.requisites and not payment.flag("проведен"):
            continue
        return True
    return False


def _is_cancelled(cfg: CommerceMLConfig, package: Package) -> bool:
    order = package.order
    return order is not None and (order.flag("отменен") or order.deleted or _status_action(cfg, order) == "cancelled")


def _parse_moment(value: str | None, zone: ZoneInfo) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace(" ", "T")
    try:
        moment = datetime.fromisoformat(text if "T" in text else f"{text}T00:00:00")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _fmt(quantity: Decimal) -> Decimal:
    """At most three places, no trailing zeros, never an exponent (``10``, not ``1E+1``)."""
    value = quantity.quantize(Decimal("0.001"))
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


class _Lines:
    """The order's lines with what is still shippable / returnable on each."""

    def __init__(self, snapshot: OrderRequest) -> None:
        self.lines = list(snapshot.lines)
        shipped = snapshot.shipped()
        returned = snapshot.returned()
        self.unshipped = {ln.line_id: ln.quantity - shipped.get(ln.line_id, Decimal(0)) for ln in self.lines}
        self.returnable = {
            ln.line_id: shipped.get(ln.line_id, Decimal(0)) - returned.get(ln.line_id, Decimal(0)) for ln in self.lines
        }

    def _take(self, left: dict[str, Decimal], items: Iterable[Item]) -> list[OrderQuantity]:
        taken: dict[str, Decimal] = {}
        for item in items:
            if item.quantity is None or item.quantity <= 0:
                continue
            wanted = item.quantity
            for line in self.lines:
                if wanted <= 0:
                    break
                if item.id not in (line.item, line.line_id):
                    continue
                take = min(wanted, left[line.line_id])
                if take > 0:
                    left[line.line_id] -= take
                    taken[line.line_id] = taken.get(line.line_id, Decimal(0)) + take
                    wanted -= take
        return [OrderQuantity(line_id=k, quantity=_fmt(v)) for k, v in taken.items() if v > 0]

    def ship(self, items: list[Item]) -> list[OrderQuantity]:
        if not items:
            return self.ship_rest()
        return self._take(self.unshipped, items)

    def ship_rest(self) -> list[OrderQuantity]:
        rest = [OrderQuantity(line_id=k, quantity=_fmt(v)) for k, v in self.unshipped.items() if v > 0]
        for key in self.unshipped:
            self.unshipped[key] = Decimal(0)
        return rest

    def give_back(self, items: list[Item]) -> list[OrderQuantity]:
        return self._take(self.returnable, items)


def merge(cfg: CommerceMLConfig, stored: OrderRequest, package: Package) -> OrderRequest:
    """The stored snapshot with 1C's news added (same version: the caller decides on it)."""
    zone = cfg.zone
    lines = _Lines(stored)
    shipments = list(stored.shipments)
    returns = list(stored.returns)
    known_shipments = {s.shipment_id for s in shipments}
    known_returns = {r.return_id for r in returns}
    order = package.order
    if order is not None and (
        order.flag("отгружен")
        or order.value("номер отгрузки по 1с", "дата отгрузки по 1с")
        or _status_action(cfg, order) == "shipped"
    ):
        shipment_id = f"1c:{order.value('номер отгрузки по 1с') or 'order'}"
        if shipment_id not in known_shipments:
            rest = lines.ship_rest()
            if rest:
                at = _parse_moment(order.value("дата отгрузки по 1с"), zone)
                shipments.append(OrderShipment(shipment_id=shipment_id, lines=rest, shipped_at=at))
                known_shipments.add(shipment_id)
    for document in package.subordinates:
        if document.deleted:
            continue
        doc_id = f"1c:{document.id or document.number or ''}"
        if document.kind == "shipment":
            posted = document.flag("отгружен") if "отгружен" in document.requisites else document.flag("проведен")
            if not posted or doc_id in known_shipments or doc_id == "1c:":
                continue
            shipped = lines.ship(document.items)
            if shipped:
                at = _parse_moment(document.value("дата отгрузки по 1с", "дата1с"), zone)
                shipments.append(OrderShipment(shipment_id=doc_id, lines=shipped, shipped_at=at))
                known_shipments.add(doc_id)
        elif document.kind == "return":
            if doc_id in known_returns or doc_id == "1c:" or not document.items:
                continue
            returned = lines.give_back(document.items)
            if returned:
                returns.append(OrderReturn(return_id=doc_id, lines=returned))
                known_returns.add(doc_id)
    data = stored.model_dump()
    data.update(
        paid=stored.paid or _is_paid(cfg, package),
        cancelled=stored.cancelled or _is_cancelled(cfg, package),
        shipments=[s.model_dump() for s in shipments],
        returns=[r.model_dump() for r in returns],
    )
    return OrderRequest.model_validate(data)


def _find(service: LoyaltyService, client_id: str, package: Package) -> OrderRecord | None:
    for ref in package.references():
        if len(ref) > 128:
            continue
        found = service.get_order(client_id, ref)
        if found is not None:
            return found
    return None


def apply_package(service: LoyaltyService, cfg: CommerceMLConfig, package: Package, report: ImportReport) -> None:
    refs = package.references()
    record = _find(service, cfg.orders_client, package)
    if record is None:
        report.skipped += 1
        report.warnings.append(f"Заказ №{refs[0] if refs else '?'} на сайте не найден.")
        return
    stored = record.snapshot
    try:
        merged = merge(cfg, stored, package)
    except ValueError as exc:  # 1C's news does not make a valid order (pydantic's errors are ValueErrors)
        report.skipped += 1
        report.warnings.append(f"Заказ №{stored.order_id}: {str(exc).splitlines()[0][:200]}")
        return
    if merged == stored:
        report.unchanged += 1
        return
    following = OrderRequest.model_validate({**merged.model_dump(), "version": stored.version + 1})
    key = f"cml:{stored.order_id}:{stored.version}:{canonical_hash('cml-order', merged)[:16]}"
    try:
        result = service.apply_order(cfg.orders_client, key, following)
    except LoyaltyError as exc:
        report.skipped += 1
        report.warnings.append(f"Заказ №{stored.order_id}: {exc.code.value}: {exc.message}")
        return
    if result.applied:
        report.applied += 1
    else:
        report.unchanged += 1

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

As a Bitrix site does (``Dev-tester/TechStore`` ``bitrix/modules/sale/general/order_loader.php``,
``updateOrderWithoutShipmentsPayments``), an order document is the order as 1C has it now:

* its goods rewrite the order's lines while the order is unpaid and nothing of it has shipped —
  a quantity changed, a line dropped (it then earns nothing), a line added at 1C's price; lines are
  matched by the ``ИдСтрокиЗаказа`` we sent, then by goods ``Ид``; services (``ТипНоменклатуры`` =
  ``Услуга``, the delivery) are not goods of the order. On a paid or shipped order an edit is
  refused with Bitrix's words and the rest of the news still applies;
* an order document that does not say ``Отменен`` (nor ``ПометкаУдаления``, nor a cancelling
  status) un-cancels a cancelled order.

Payment and shipment news never take anything back (1C saying "not paid" does not unpay an order). If the merged
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

from adapters.bitrix.commerceml import store
from adapters.bitrix.commerceml.documents import Document, Item, Package
from adapters.bitrix.config import CommerceMLConfig
from contracts.errors import LoyaltyError
from contracts.operations import CartLine
from contracts.orders import OrderQuantity, OrderRecord, OrderRequest, OrderReturn, OrderShipment
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.service import LoyaltyService


@dataclass
class ImportReport:
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


# The status ids ``mode=info`` lists (export.STATUSES), as 1C sends them back in ``Статуса заказа ИД``.
_STATUS_IDS = {"p": "paid", "f": "shipped", "c": "cancelled"}


def _status_action(cfg: CommerceMLConfig, document: Document) -> str:
    status_id = (document.requisites.get("статуса заказа ид") or "").strip().lower()
    if status_id in _STATUS_IDS:
        return _STATUS_IDS[status_id]
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


# Bitrix's own words (lang/ru/component.php, CC_BSC1_FINAL_NOT_EDIT).
FINAL_NOT_EDIT = "Заказ №{id} не может быть изменен (находится в финальном статусе, оплачен или разрешена доставка)."
_KOPECK = Decimal("0.01")


def _same_lines(a: list[CartLine], b: list[CartLine]) -> bool:
    return sorted(x.model_dump_json() for x in a) == sorted(x.model_dump_json() for x in b)


CATALOGUE_MISMATCH = (
    "Заказ №{id}: ни один товар документа 1С не найден в заказе (Ид товаров 1С и сайта не совпадают),"
    " строки заказа не изменены."
)


class CatalogueMismatch(ValueError):
    """None of 1C's goods is a line of the order: the ids of 1C and of the site differ, and
    rewriting the order from them would drop every line (Bitrix refuses goods it cannot find
    in its catalogue, CC_BSC1_PRODUCT_NOT_FOUND)."""


def edited_lines(stored: OrderRequest, items: list[Item]) -> list[CartLine]:
    """The order's lines as 1C lists them now (prices of known lines stay the site's: what we
    sent as ``ЦенаЗаЕдиницу`` already had the discounts in it)."""
    goods = [item for item in items if not item.service and item.id]
    known = {line.line_id for line in stored.lines} | {line.item for line in stored.lines}
    if goods and not any(item.id in known or item.line_ref in known for item in goods):
        raise CatalogueMismatch(CATALOGUE_MISMATCH.format(id=stored.order_id))
    remaining = {line.line_id: line for line in stored.lines}
    lines: list[CartLine] = []
    for item in items:
        if item.service or not item.id:
            continue
        line = remaining.pop(item.line_ref, None) if item.line_ref else None
        if line is None:
            line = next((ln for ln in remaining.values() if ln.item == item.id), None)
            if line is not None:
                del remaining[line.line_id]
        if item.quantity is None or item.quantity <= 0:
            continue  # 1C keeps a removed line at zero: it is gone
        quantity = _fmt(item.quantity)
        if line is not None:
            if quantity == line.quantity:
                lines.append(line)
                continue
            data = line.model_dump()
            data["quantity"] = quantity
            if line.amount is not None:  # the site's own line discount scales with the quantity
                data["amount"] = (line.amount * quantity / line.quantity).quantize(_KOPECK)
            lines.append(CartLine.model_validate(data))
        else:
            if item.price is None:
                raise ValueError(f"товар {item.id[:80]}: нет цены")
            lines.append(
                CartLine.model_validate(
                    {
                        "line_id": f"1c:{item.id}"[:128],
                        "item": item.id[:128],
                        "item_name": (item.name or item.id)[:256],
                        "quantity": quantity,
                        "price": item.price,
                    }
                )
            )
    return lines


def points_kept(stored: OrderRequest, lines: list[CartLine], points_by_line: dict[str, int]) -> int:
    """Points still paying once 1C's edit is applied: each line keeps the points that paid for
    the quantity it keeps (a dropped line's points go back to the customer); a line that grows
    or is new gets none, the customer never pays more points than at checkout."""
    before = {line.line_id: line.quantity for line in stored.lines}
    kept = Decimal(0)
    for line in lines:
        if line.line_id in before and line.line_id in points_by_line:
            kept += points_by_line[line.line_id] * min(line.quantity / before[line.line_id], Decimal(1))
    return min(stored.points_to_spend, int(kept))


def merge(
    cfg: CommerceMLConfig,
    stored: OrderRequest,
    package: Package,
    warnings: list[str] | None = None,
    points_by_line: dict[str, int] | None = None,
) -> OrderRequest:
    """The stored snapshot with 1C's news added (same version: the caller decides on it).
    ``points_by_line`` (the points paying for each line now) lets an edit of the lines give
    back the points of what 1C removed."""
    zone = cfg.zone
    order = package.order
    if order is not None and order.has_goods:
        try:
            wanted = edited_lines(stored, order.items)
        except CatalogueMismatch as exc:
            if warnings is not None:
                warnings.append(str(exc))
            wanted = list(stored.lines)
        if not _same_lines(wanted, stored.lines):
            if stored.paid or stored.shipments:
                if warnings is not None:
                    warnings.append(FINAL_NOT_EDIT.format(id=stored.order_id))
            else:
                points = stored.points_to_spend
                if points_by_line is not None:
                    points = points_kept(stored, wanted, points_by_line)
                edited = [line.model_dump() for line in wanted]
                stored = OrderRequest.model_validate(
                    {**stored.model_dump(), "lines": edited, "points_to_spend": points}
                )
    lines = _Lines(stored)
    shipments = list(stored.shipments)
    returns = list(stored.returns)
    known_shipments = {s.shipment_id for s in shipments}
    known_returns = {r.return_id for r in returns}
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
        # An order document says whether the order is cancelled now (un-cancel included);
        # payments and shipments alone say nothing about it.
        cancelled=_is_cancelled(cfg, package) if order is not None else stored.cancelled,
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
        spent = {line.line_id: line.points_spent for line in record.result.lines}
        merged = merge(cfg, stored, package, report.warnings, spent)
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
        # 1C made this version: the next ``query`` does not send it back (Bitrix's UPDATED_1C).
        store.remember_1c_version(service.db, cfg.orders_client, stored.order_id, result.version, service.clock())
    else:
        report.unchanged += 1

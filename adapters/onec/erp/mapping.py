"""ERP documents → ``contracts.orders.OrderRequest`` snapshots (pure: no I/O).

* lines: the order's ``Товары`` that are not ``Отменено``, keyed by ``КодСтроки``; goods,
  price types and stores through the ``mapping`` section (an unknown reference stays as it is
  and is reported as unmapped); price and amount rounded to kopecks; ``amount`` is the line's
  ``Сумма`` (after the ERP's own discounts);
* points paid: the lines' ``СуммаБонусныхБалловКСписанию`` (whole points);
* card: the order's card number (SOAP, or read from the card catalog), else ``mapping.cards``
  for the card reference, else ``mapping.partners`` for the partner. An order without a card is
  not a loyalty order (skipped); a card reference nobody can resolve fails the order;
* shipments and returns: posted, not deleted; each line goes to the order line the ERP names
  (a sale line's ``КодСтроки`` is its order line's), or else to the order's lines of the same
  goods in line order, never more than ordered (shipped) — what exceeds it (goods shipped over
  the order) earns nothing;
* cancelled: a deleted or unposted order, a status listed in ``cancelled_statuses``, or every
  line cancelled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from adapters.onec.erp.config import MappingConfig
from adapters.onec.erp.documents import Document, OrderLine, OrderState
from contracts.operations import CartLine
from contracts.orders import OrderQuantity, OrderRequest, OrderReturn, OrderShipment
from gateway.core.erp import ErpOrderChange, Unmapped

_KOPECK = Decimal("0.01")
_QUANTITY = Decimal("0.001")


def marker_of(state: OrderState) -> str:
    """A fingerprint of the state: the data versions of the order and of the documents that
    count (any write at the ERP changes a document's DataVersion)."""
    parts = [f"order:{state.order.ref}:{state.order.data_version}"]
    parts += sorted(f"shipment:{d.ref}:{d.data_version}" for d in state.shipments)
    parts += sorted(f"return:{d.ref}:{d.data_version}" for d in state.returns)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def localize(value: datetime, zone: ZoneInfo) -> datetime:
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def changed_at_of(state: OrderState, zone: ZoneInfo) -> datetime:
    """The latest change moment of any document of the state (the ERP's change timestamp; the
    document date when the ERP does not keep one)."""
    if state.changed_at is not None:
        return localize(state.changed_at, zone)
    moments = [state.order.changed or state.order.date]
    moments += [d.changed or d.date for d in (*state.shipments, *state.returns)]
    return max(localize(m, zone) for m in moments)


class _Allocator:
    """Quantities of shipment/return lines onto order lines (by the named line, else by goods)."""

    def __init__(self, lines: Iterable[OrderLine], capacity: Mapping[str, Decimal]) -> None:
        self.lines = list(lines)
        self.left = dict(capacity)

    def take(
        self, line_id: str | None, item_ref: str, characteristic: str | None, quantity: Decimal
    ) -> dict[str, Decimal]:
        taken: dict[str, Decimal] = {}
        # the named line (a sale line's КодСтроки is its order line's): with the same goods on two
        # lines, only the code tells which one was shipped; goods in line order only without a code
        named = [line for line in self.lines if line.line_id == line_id] if line_id is not None else []
        if named:
            candidates = named
        else:
            candidates = [
                line
                for line in self.lines
                if line.item_ref == item_ref
                and (characteristic is None or line.characteristic_ref in (None, characteristic))
            ]
        want = quantity
        for line in candidates:
            if want <= 0:
                break
            free = self.left.get(line.line_id, Decimal(0))
            got = min(free, want)
            if got > 0:
                taken[line.line_id] = taken.get(line.line_id, Decimal(0)) + got
                self.left[line.line_id] = free - got
                want -= got
        return taken


def _documents(
    documents: list[Document], allocator: _Allocator, zone: ZoneInfo
) -> list[tuple[Document, dict[str, Decimal], datetime]]:
    counted = [d for d in documents if d.posted and not d.deleted]
    out = []
    for document in sorted(counted, key=lambda d: (d.date, d.ref)):
        quantities: dict[str, Decimal] = {}
        for line in document.lines:
            for line_id, quantity in allocator.take(
                line.line_id, line.item_ref, line.characteristic_ref, line.quantity
            ).items():
                quantities[line_id] = quantities.get(line_id, Decimal(0)) + quantity
        quantities = {k: v for k, v in quantities.items() if v > 0}
        if quantities:
            out.append((document, quantities, localize(document.date, zone)))
    return out


def map_state(
    state: OrderState, config: MappingConfig, card_numbers: Mapping[str, str] | None = None
) -> ErpOrderChange:
    zone = ZoneInfo(config.timezone)
    order = state.order
    marker = marker_of(state)
    changed_at = changed_at_of(state, zone)

    def result(**values: object) -> ErpOrderChange:
        return ErpOrderChange(
            order_id=order.ref,
            marker=marker,
            changed_at=changed_at,
            number=order.number,
            **values,  # type: ignore[arg-type]
        )

    cancelled = (
        order.deleted or not order.posted or (order.status is not None and order.status in config.cancelled_statuses)
    )
    live = [line for line in order.lines if not line.cancelled and line.quantity > 0]
    if not order.lines:
        return result(skip="the order has no lines")
    if not live:
        cancelled = True
    card = order.card_number
    if card is None and order.card_ref is not None:
        card = config.cards.get(order.card_ref) or (card_numbers or {}).get(order.card_ref)
    if card is None and order.partner_ref is not None:
        card = config.partners.get(order.partner_ref)
    if card is None:
        if order.card_ref is not None and order.posted and not order.deleted:
            return result(problem=f"unknown loyalty card {order.card_ref}: add it to erp.mapping.cards")
        return result(skip="no loyalty card on the order")
    unmapped: list[Unmapped] = []
    shown = live or [line for line in order.lines if line.quantity > 0]
    if not shown:
        return result(skip="the order has no lines")
    cart = []
    for line in shown:
        item = config.goods.get(line.item_ref)
        if item is None:
            unmapped.append(Unmapped("goods", line.item_ref, line.item_name))
            item = line.item_ref
        price_type = None
        if line.price_type_ref is not None:
            price_type = config.price_types.get(line.price_type_ref)
            if price_type is None:
                unmapped.append(Unmapped("price_type", line.price_type_ref))
                price_type = line.price_type_ref
        cart.append(
            CartLine(
                line_id=line.line_id,
                item=item,
                item_name=line.item_name[:256] if line.item_name else None,
                price_type=price_type,
                quantity=line.quantity.quantize(_QUANTITY, rounding=ROUND_HALF_UP),
                price=line.price.quantize(_KOPECK, rounding=ROUND_HALF_UP),
                amount=line.amount.quantize(_KOPECK, rounding=ROUND_HALF_UP),
            )
        )
    store = None
    if order.store_ref is not None:
        store = config.stores.get(order.store_ref)
        if store is None:
            unmapped.append(Unmapped("store", order.store_ref))
            store = order.store_ref
    ordered = {line.line_id: line.quantity.quantize(_QUANTITY, rounding=ROUND_HALF_UP) for line in shown}
    shipped = _documents(state.shipments, _Allocator(shown, ordered), zone)
    shipped_total: dict[str, Decimal] = {}
    for _, quantities, _ in shipped:
        for line_id, quantity in quantities.items():
            shipped_total[line_id] = shipped_total.get(line_id, Decimal(0)) + quantity
    returned = _documents(state.returns, _Allocator(shown, shipped_total), zone)
    points = sum((line.points for line in live), Decimal(0)).to_integral_value(rounding=ROUND_DOWN)
    try:
        request = OrderRequest(
            order_id=order.ref,
            version=0,
            card_number=card,
            lines=cart,
            store=store,
            points_to_spend=int(points),
            placed_at=localize(order.date, zone),
            paid=order.status is not None and order.status in config.paid_statuses,
            cancelled=cancelled,
            shipments=[
                OrderShipment(
                    shipment_id=document.ref,
                    lines=[OrderQuantity(line_id=k, quantity=v) for k, v in sorted(quantities.items())],
                    shipped_at=at,
                )
                for document, quantities, at in shipped
            ],
            returns=[
                OrderReturn(
                    return_id=document.ref,
                    lines=[OrderQuantity(line_id=k, quantity=v) for k, v in sorted(quantities.items())],
                    returned_at=at,
                )
                for document, quantities, at in returned
            ],
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return result(problem=f"the order cannot be read: {where}: {first.get('msg')}", unmapped=tuple(unmapped))
    return result(request=request, unmapped=tuple(unmapped))

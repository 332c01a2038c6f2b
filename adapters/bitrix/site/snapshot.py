"""From a site order event to the order's snapshot (``contracts.orders.OrderRequest``).

Every order event carries the whole order, so each maps to one snapshot; the ledger applies
only the difference from what the order already posted, ignores snapshots that are not newer,
and so never moves an order backwards whatever the order of arrival.

Versions: the site's ``VERSION`` is applied as ``VERSION * VERSION_STRIDE``. What 1C sends back
through the CommerceML exchange is applied as the stored version + 1, so it fits between two
site versions without colliding with the site's next save, which is newer than any of it.
"""

from __future__ import annotations

import hashlib

from adapters.bitrix.site.payloads import OrderData, SiteLine
from contracts.operations import CartLine
from contracts.orders import OrderQuantity, OrderRequest, OrderReturn, OrderShipment

VERSION_STRIDE = 1000
_TAG_PREFIX = "bitrix-order:"


def cart_lines(lines: list[SiteLine]) -> list[CartLine]:
    return [
        CartLine(
            line_id=line.line_id,
            item=line.product_id,
            item_name=line.name,
            quantity=line.quantity,
            price=line.price,
            amount=line.amount,
        )
        for line in lines
    ]


def hold_tag(order_id: str) -> str:
    """The tag of an order's checkout hold (hold tags are at most 64 characters)."""
    tag = _TAG_PREFIX + order_id
    if len(tag) <= 64:
        return tag
    return _TAG_PREFIX + hashlib.sha256(order_id.encode()).hexdigest()[:40]


def order_snapshot(data: OrderData, card_number: str, hold_id: str | None) -> OrderRequest:
    """The snapshot of this order event. Only shipped shipments count (a shipment that is not
    deducted yet, or has no lines, is left out)."""
    shipments = [
        OrderShipment(
            shipment_id=shipment.shipment_id,
            lines=[OrderQuantity(line_id=item.line_id, quantity=item.quantity) for item in shipment.lines],
            shipped_at=shipment.shipped_at,
        )
        for shipment in data.shipments
        if shipment.shipped and shipment.lines
    ]
    returns = [
        OrderReturn(
            return_id=item.return_id,
            lines=[OrderQuantity(line_id=line.line_id, quantity=line.quantity) for line in item.lines],
            returned_at=item.returned_at,
        )
        for item in data.returns
    ]
    return OrderRequest(
        order_id=data.order_id,
        version=data.version * VERSION_STRIDE,
        card_number=card_number,
        lines=cart_lines(data.lines),
        store=data.store,
        promo_codes=list(data.promo_codes),
        points_to_spend=data.points_to_spend,
        hold_id=hold_id,
        placed_at=data.placed_at,
        paid=data.paid,
        cancelled=data.cancelled,
        shipments=shipments,
        returns=returns,
    )

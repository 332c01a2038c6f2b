"""What orders add to their customers' turnover (``order_turnover``): one row per shipment and
per return, rewritten from the order's snapshot each time a change of the order is applied.

Tier rules count a web or ERP order's goods when they ship, as a till receipt's when it closes;
a return takes its goods back out; a cancelled order counts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from contracts.orders import OrderRequest
from gateway.core.orders import PricedOrderLine, shares_of
from gateway.store.models_orders import Order, OrderTurnover


def book(session: Session, order: Order, request: OrderRequest, priced: Sequence[PricedOrderLine]) -> bool:
    """Make the order's turnover rows say what its applied snapshot says; whether they changed.
    A document the source sent without a date keeps the date it was first seen
    (``order.updated_at``, the time of this change, for a new one)."""
    existing = {
        row.document: row for row in session.exec(select(OrderTurnover).where(OrderTurnover.order_pk == order.id))
    }
    changed = False
    for share in shares_of(request, priced):
        row = existing.pop(share.document, None)
        if row is None:
            row = OrderTurnover(
                order_pk=order.id,
                account_id=order.account_id,
                document=share.document,
                occurred_at=share.at or order.updated_at,
                amount_kopecks=share.amount_kopecks,
            )
        elif (row.account_id, row.amount_kopecks, row.occurred_at) == (
            order.account_id,
            share.amount_kopecks,
            share.at or row.occurred_at,
        ):
            continue
        else:
            row.account_id = order.account_id
            row.amount_kopecks = share.amount_kopecks
            row.occurred_at = share.at or row.occurred_at
        session.add(row)
        changed = True
    for gone in existing.values():
        session.delete(gone)
        changed = True
    return changed

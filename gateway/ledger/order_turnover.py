"""What orders add to their customers' turnover (``order_turnover``): one row per shipment and
per return, rewritten from the order's snapshot each time a change of the order is applied.

Tier rules count a web or ERP order's goods when they ship, as a till receipt's when it closes;
a return takes its goods back out; a cancelled order counts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import TypeAdapter
from sqlalchemy import Connection, column, delete, insert, table
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from contracts.orders import OrderRequest, line_totals
from gateway.core.orders import OrderDocument, PricedOrderLine, TurnoverShare, order_turnover
from gateway.store.models_orders import Order, OrderTurnover
from gateway.store.types import UTCDateTime

_PRICED = TypeAdapter(list[PricedOrderLine])


def documents_of(request: OrderRequest) -> list[OrderDocument]:
    """The order's shipments, then its returns, in the order the source listed them."""
    shipments = [OrderDocument("shipment", s.shipment_id, s.shipped_at, line_totals([s])) for s in request.shipments]
    returns = [OrderDocument("return", r.return_id, r.returned_at, line_totals([r])) for r in request.returns]
    return shipments + returns


def shares_of(request: OrderRequest, priced: Sequence[PricedOrderLine]) -> list[TurnoverShare]:
    return order_turnover(priced, documents_of(request), cancelled=request.cancelled)


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


def rebuild(connection: Connection) -> int:
    """Write every order's turnover rows from its stored snapshot (the migration that added the
    table runs this once). Reads and writes only the columns it names, so later changes of the
    models do not break that migration. Returns the number of orders read."""
    orders = table(
        "orders",
        column("id"),
        column("account_id"),
        column("status"),
        column("snapshot_json"),
        column("priced_json"),
        column("updated_at", UTCDateTime()),
    )
    turnover = table(
        "order_turnover",
        column("order_pk"),
        column("account_id"),
        column("document"),
        column("occurred_at", UTCDateTime()),
        column("amount_kopecks"),
    )
    connection.execute(delete(turnover))
    count = 0
    for row in connection.execute(core_select(orders).where(orders.c.status != "cancelled")):
        count += 1
        request = OrderRequest.model_validate_json(row.snapshot_json)
        shares = shares_of(request, _PRICED.validate_json(row.priced_json))
        if shares:
            connection.execute(
                insert(turnover),
                [
                    {
                        "order_pk": row.id,
                        "account_id": row.account_id,
                        "document": share.document,
                        "occurred_at": share.at or row.updated_at,
                        "amount_kopecks": share.amount_kopecks,
                    }
                    for share in shares
                ],
            )
    return count

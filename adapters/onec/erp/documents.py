"""The ERP's documents as both transports read them, before mapping.

An order's state at the ERP is its customer order (``ЗаказКлиента`` with its ``Товары``) plus
every posted sales document that shipped it (``РеализацияТоваровУслуг``) and every posted return
of those goods (``ВозвратТоваровОтКлиента``). Dates are the ERP's local time without a zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

EMPTY_REF = "00000000-0000-0000-0000-000000000000"


def ref_or_none(value: object) -> str | None:
    """A 1C reference, or ``None`` for an empty one."""
    if value is None:
        return None
    text = str(value).strip()
    return None if not text or text == EMPTY_REF else text


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str  # КодСтроки: stable across edits (LineNumber shifts when a line is deleted)
    item_ref: str
    quantity: Decimal
    price: Decimal
    amount: Decimal  # Сумма: what the customer pays for the line, after the ERP's discounts
    characteristic_ref: str | None = None
    item_name: str | None = None
    price_type_ref: str | None = None
    cancelled: bool = False  # Отменено
    points: Decimal = Decimal(0)  # СуммаБонусныхБалловКСписанию


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """A line of a shipment or a return. ``line_id`` is the order's line when the ERP says so
    (the SOAP service does); otherwise the line is matched to the order by goods."""

    item_ref: str
    quantity: Decimal
    characteristic_ref: str | None = None
    line_id: str | None = None
    order_ref: str | None = None  # per-line order of a sales document that ships several orders
    shipment_ref: str | None = None  # per-line sales document of a return


@dataclass(frozen=True, slots=True)
class Document:
    """A shipment (sales document) or a return."""

    ref: str
    data_version: str
    date: datetime
    changed: datetime | None
    posted: bool
    deleted: bool
    lines: tuple[DocumentLine, ...]
    order_ref: str | None = None  # shipment: the order in its header
    shipment_ref: str | None = None  # return: the sales document in its header


@dataclass(frozen=True, slots=True)
class OrderDocument:
    ref: str
    number: str | None
    data_version: str
    date: datetime
    changed: datetime | None
    posted: bool
    deleted: bool
    status: str | None
    lines: tuple[OrderLine, ...]
    card_ref: str | None = None
    card_number: str | None = None  # when the transport already knows it (SOAP, or a catalog lookup)
    partner_ref: str | None = None
    store_ref: str | None = None


@dataclass(slots=True)
class OrderState:
    order: OrderDocument
    shipments: list[Document] = field(default_factory=list)
    returns: list[Document] = field(default_factory=list)
    changed_at: datetime | None = None  # when the ERP tells the state's change moment itself (SOAP)

"""Reading the documents 1C sends back (``КоммерческаяИнформация`` from 1C:ERP / УТ / КА).

Tolerant by design: element names are matched without namespace (CommerceML 2.05–2.10 declare
``urn:1C.ru:commerceml_2``, 3.x none), values are stripped (1C writes ``Код="796 "``), decimals
accept a comma, and a flag is true for ``true``/``да``/``1``. Two layouts:

* 2.x: each ``Документ`` is a whole order (``ХозОперация`` = ``Заказ товара``) whose
  ``ЗначенияРеквизитов`` say whether it is paid, shipped, cancelled;
* 3.x: a ``Контейнер`` holds the order document and its subordinate documents — payments
  (``Выплата наличных денег``, ``Выплата безналичных денег``, ``Эквайринговая операция``) and
  shipments (``Отпуск товара``) with their own goods and requisites. A subordinate document
  found outside a container names its order in ``Основание``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from lxml import etree

ORDER = "заказ товара"
PAYMENTS = frozenset({"выплата наличных денег", "выплата безналичных денег", "эквайринговая операция"})
SHIPMENT = "отпуск товара"
RETURN = "возврат товара"
TRUE_VALUES = frozenset({"true", "истина", "да", "1", "yes"})
# Flags 1C may also write as elements of the document itself rather than as requisites.
_FLAG_ELEMENTS = ("ПометкаУдаления", "Проведен", "Отменен", "Оплачен", "Отгружен")

Kind = Literal["order", "payment", "shipment", "return", "other"]


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in element if isinstance(c.tag, str) and local(c) == name), None)


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str) and local(c) == name]


def _text(element: etree._Element | None, name: str | None = None) -> str | None:
    node = _child(element, name) if element is not None and name else element
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


def parse_decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    cleaned = value.replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUE_VALUES


def _requisites(element: etree._Element) -> dict[str, str]:
    """``ЗначенияРеквизитов`` as {lower-case name: first non-empty value}."""
    found: dict[str, str] = {}
    block = _child(element, "ЗначенияРеквизитов")
    if block is not None:
        for item in _children(block, "ЗначениеРеквизита"):
            name = _text(item, "Наименование")
            if not name:
                continue
            values = [v.text.strip() for v in _children(item, "Значение") if v.text and v.text.strip()]
            found.setdefault(name.lower(), values[0] if values else "")
    for flag in _FLAG_ELEMENTS:
        value = _text(element, flag)
        if value is not None:
            found.setdefault(flag.lower(), value)
    return found


@dataclass(frozen=True)
class Item:
    """A ``Товар`` of a document: what 1C knows the goods by, and how many."""

    id: str | None
    name: str | None
    quantity: Decimal | None
    price: Decimal | None = None
    line_ref: str | None = None  # ИдСтрокиЗаказа we sent with the line, if 1C kept it
    service: bool = False  # ТипНоменклатуры = Услуга: delivery and the like, not goods of the order


@dataclass(frozen=True)
class Document:
    kind: Kind
    operation: str
    id: str | None
    number: str | None
    base: str | None  # Основание: the order a subordinate document belongs to
    requisites: dict[str, str]
    items: list[Item]
    has_goods: bool = False  # the document lists its goods (``Товары``), so they are what 1C has now

    def flag(self, *names: str) -> bool:
        return any(is_true(self.requisites.get(n)) for n in names)

    def value(self, *names: str) -> str | None:
        for name in names:
            value = self.requisites.get(name)
            if value and value.upper() != "T" and not value.startswith("0001-01-01"):
                return value
        return None

    @property
    def deleted(self) -> bool:
        return self.flag("пометкаудаления")


@dataclass
class Package:
    """One order's news: its document (if sent) and its subordinate documents."""

    order: Document | None
    subordinates: list[Document] = field(default_factory=list)

    def references(self) -> list[str]:
        """Ids the order may be known by, most specific first."""
        refs: list[str] = []
        documents = [self.order] if self.order is not None else []
        for document in documents:
            refs.extend(r for r in (document.id, document.number) if r)
        for sub in self.subordinates:
            if sub.base:
                refs.append(sub.base)
        return list(dict.fromkeys(refs))


def _kind(operation: str) -> Kind:
    op = operation.strip().lower()
    if op == ORDER:
        return "order"
    if op in PAYMENTS:
        return "payment"
    if op == SHIPMENT:
        return "shipment"
    if op == RETURN:
        return "return"
    return "other"


def parse_document(element: etree._Element) -> Document:
    operation = _text(element, "ХозОперация") or ""
    items: list[Item] = []
    goods = _child(element, "Товары")
    if goods is not None:
        for good in _children(goods, "Товар"):
            traits = _requisites(good)
            kind = (traits.get("типноменклатуры") or traits.get("видноменклатуры") or "").strip().lower()
            items.append(
                Item(
                    _text(good, "Ид"),
                    _text(good, "Наименование"),
                    parse_decimal(_text(good, "Количество")),
                    parse_decimal(_text(good, "ЦенаЗаЕдиницу")),
                    traits.get("идстрокизаказа") or None,
                    kind == "услуга",
                )
            )
    base = _text(element, "Основание")
    if base is None:
        bases = _child(element, "Основания")
        if bases is not None:
            base = _text(bases, "Основание") or _text(_child(bases, "Основание"), "Номер")
    return Document(
        kind=_kind(operation),
        operation=operation,
        id=_text(element, "Ид"),
        number=_text(element, "Номер"),
        base=base,
        requisites=_requisites(element),
        items=items,
        has_goods=goods is not None,
    )


def parse_top_level(element: etree._Element) -> Package | None:
    """A child of ``КоммерческаяИнформация``: a package, or None for what orders do not need
    (a catalogue, a list of counterparties, an unknown element)."""
    name = local(element)
    if name == "Контейнер":
        documents = [parse_document(d) for d in _children(element, "Документ")]
        orders = [d for d in documents if d.kind == "order"]
        others = [d for d in documents if d.kind != "order"]
        if not orders and not others:
            return None
        return Package(orders[0] if orders else None, others)
    if name == "Документ":
        document = parse_document(element)
        if document.kind == "order":
            return Package(document)
        if document.kind in ("payment", "shipment", "return"):
            return Package(None, [document])
    return None

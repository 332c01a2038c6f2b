"""The orders XML answered to ``mode=query``: the gateway's web orders as a 1C-Bitrix site sends
them to 1C (``КоммерческаяИнформация`` / ``Документ`` with ``ХозОперация`` = ``Заказ товара``).

What Bitrix sends is read in ``avshatalov48/bitrix-core-business`` (and the same file in
``Dev-tester/TechStore``) ``modules/sale/general/export.php``: ``OutputXmlDocument`` (the
document), ``getXmlBasketItems`` (the goods: ``ЦенаЗаЕдиницу`` is the price after the line's
discounts, ``Сумма`` = ``ЦенаЗаЕдиницу`` × ``Количество``, the line discount listed with
``УчтеноВСумме`` = true), ``getXmlOrderDiscount`` (a discount on the whole order: a document-level
``Скидка`` "Скидка на заказ" with ``УчтеноВСумме`` = false, already deducted from the document's
``Сумма``), ``getXmlSaleProperties`` (``Заказ оплачен``, ``Отменен``, ``Финальный статус``,
``Статус заказа`` as ``[F] Выполнен``, ``Статуса заказа ИД``).

**Points paying for an order travel as an order discount**, the way Bitrix sends its own order
discount: a document-level ``Скидка`` "Оплата бонусными баллами" with ``УчтеноВСумме`` = false.
The lines keep their money prices, so 1C sees exactly what was sold at which price, spreads the
points over the lines as it spreads any order discount, and the document's ``Сумма`` is the money
the customer still pays. When a line's discounted total does not divide by its quantity in whole
kopecks, its price is rounded up to the kopeck and the few kopecks this adds travel in the order
discount "Скидка на заказ", so ``Сумма`` = ``ЦенаЗаЕдиницу`` × ``Количество`` on every line and
the document still adds up to the kopeck.

Elements follow the CommerceML 2.10 schema's order (``doc/commerceml-2.10.xsd`` of
``dobromyslov/commerceml-parser``; our own minimal schema for what we emit is
``tests/data/commerceml/orders-2.10-minimal.xsd``). Bitrix writes ``Скидки`` before the price
of a line and ``Время`` after ``Контрагенты``; 1C reads both by name, the schema wants them where
they are here. CommerceML 3.1 wraps each order in a ``Контейнер``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from lxml import etree

from adapters.bitrix.config import CommerceMLConfig
from contracts.operations import CustomerResult
from contracts.orders import OrderRecord

_KOPECK = Decimal("0.01")
_FORMATS = {
    "ФорматДаты": "ДФ=yyyy-MM-dd; ДЛФ=DT",
    "ФорматВремени": "ДФ=ЧЧ:мм:сс; ДЛФ=T",
    "РазделительДатаВремя": "T",
    "ФорматСуммы": "ЧЦ=18; ЧДЦ=2; ЧРД=.",
    "ФорматКоличества": "ЧЦ=18; ЧДЦ=3; ЧРД=.",
}


@dataclass(frozen=True)
class SiteStatus:
    """An order status as a Bitrix site lists it (``mode=info``) and names it in ``query``."""

    id: str
    name: str


# The gateway's order states as the statuses of a Bitrix shop (``N``, ``P``, ``F`` are Bitrix's
# own ids for "accepted", "paid", "completed"); a cancelled order keeps its status in Bitrix and
# carries ``Отменен`` = true, so it gets a status of its own here only for ``mode=info``.
STATUSES: dict[str, SiteStatus] = {
    "placed": SiteStatus("N", "Принят, ожидается оплата"),
    "paid": SiteStatus("P", "Оплачен, формируется к отправке"),
    "partially_shipped": SiteStatus("D", "Частично отгружен"),
    "shipped": SiteStatus("F", "Выполнен"),
    "cancelled": SiteStatus("C", "Отменен"),
}
POINTS_DISCOUNT = "Оплата бонусными баллами"
ORDER_DISCOUNT = "Скидка на заказ"
LINE_DISCOUNT = "Скидка на товар"
POINTS_PAY_SYSTEM = SiteStatus("bonus", "Бонусные баллы")


@dataclass(frozen=True)
class ExportedOrder:
    record: OrderRecord
    customer: CustomerResult | None


def money(value: Decimal) -> str:
    return str(value.quantize(_KOPECK, rounding=ROUND_HALF_UP))


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _add(parent: etree._Element, name: str, text: str | None = None, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, name, attributes)
    if text is not None:
        element.text = text
    return element


def _requisite(parent: etree._Element, name: str, value: str) -> None:
    item = _add(parent, "ЗначениеРеквизита")
    _add(item, "Наименование", name)
    _add(item, "Значение", value)


def _discount(parent: etree._Element, name: str, amount: Decimal, *, included: bool) -> None:
    item = _add(parent, "Скидка")
    _add(item, "Наименование", name)
    _add(item, "Сумма", money(amount))
    _add(item, "УчтеноВСумме", _bool(included))


def _counterparty(parent: etree._Element, order: ExportedOrder) -> None:
    customer = order.customer
    card = order.record.snapshot.card_number
    name = (customer.name if customer and customer.name else None) or f"Покупатель по карте {card}"
    agents = _add(parent, "Контрагенты")
    agent = _add(agents, "Контрагент")
    _add(agent, "Ид", (customer.customer_id if customer else f"card-{card}")[:40])
    _add(agent, "Наименование", name[:250])
    _add(agent, "ПолноеНаименование", name[:250])
    if customer and (customer.phone or customer.email):
        contacts = _add(agent, "Контакты")
        if customer.phone:
            contact = _add(contacts, "Контакт")
            _add(contact, "Тип", "Телефон мобильный")
            _add(contact, "Значение", customer.phone)
        if customer.email:
            contact = _add(contacts, "Контакт")
            _add(contact, "Тип", "Почта")
            _add(contact, "Значение", customer.email)
    _add(agent, "Роль", "Покупатель")


@dataclass(frozen=True)
class LinePrice:
    """A line as 1C gets it: ``unit`` × ``quantity`` = ``total`` (to the kopeck for whole
    quantities), ``discount`` already in it, ``rounding`` kopecks added by rounding ``unit`` up."""

    unit: Decimal
    total: Decimal
    discount: Decimal
    rounding: Decimal


def line_price(amount: Decimal, discount: Decimal, quantity: Decimal) -> LinePrice:
    """The line's money total ``amount`` (after its discounts, before points) as a unit price."""
    unit = (amount / quantity).quantize(_KOPECK, rounding=ROUND_CEILING)
    total = (unit * quantity).quantize(_KOPECK, rounding=ROUND_HALF_UP)
    return LinePrice(unit, total, discount, max(total - amount, Decimal(0)))


def _document(parent: etree._Element, order: ExportedOrder, cfg: CommerceMLConfig, point_value: Decimal) -> None:
    snapshot, result = order.record.snapshot, order.record.result
    moment = (snapshot.placed_at or result.updated_at).astimezone(cfg.zone)
    by_line = {line.line_id: line for line in result.lines}
    prices: list[LinePrice] = []
    for line in snapshot.lines:
        priced = by_line.get(line.line_id)
        amount = priced.amount if priced is not None else line.total()
        own_discount = line.price * line.quantity - line.total() if line.amount is not None else Decimal(0)
        discount = (priced.discount if priced is not None else Decimal(0)) + max(own_discount, Decimal(0))
        prices.append(line_price(amount, discount, line.quantity))
    points_money = (Decimal(result.points_spent) * point_value).quantize(_KOPECK)
    rounding = sum((p.rounding for p in prices), Decimal(0))
    goods_total = sum((p.total for p in prices), Decimal(0))
    status = STATUSES.get(result.status, SiteStatus(result.status, result.status))

    document = _add(parent, "Документ")
    _add(document, "Ид", snapshot.order_id[:40])
    _add(document, "Номер", snapshot.order_id)
    _add(document, "Дата", moment.strftime("%Y-%m-%d"))
    _add(document, "ХозОперация", "Заказ товара")
    _add(document, "Роль", "Продавец")
    _add(document, "Валюта", "RUB")
    _add(document, "Курс", "1")
    _add(document, "Сумма", money(goods_total - rounding - points_money))
    _counterparty(document, order)
    _add(document, "Время", moment.strftime("%H:%M:%S"))
    _add(document, "Комментарий", f"Бонусная карта {snapshot.card_number}")
    if points_money > 0 or rounding > 0:
        discounts = _add(document, "Скидки")
        if points_money > 0:
            _discount(discounts, POINTS_DISCOUNT, points_money, included=False)
        if rounding > 0:
            _discount(discounts, ORDER_DISCOUNT, rounding, included=False)
    goods = _add(document, "Товары")
    for line, price in zip(snapshot.lines, prices, strict=True):
        priced = by_line.get(line.line_id)
        good = _add(goods, "Товар")
        _add(good, "Ид", line.item[:80])
        _add(good, "Наименование", (line.item_name or line.item)[:250])
        _add(good, "БазоваяЕдиница", "шт", Код="796", НаименованиеПолное="Штука", МеждународноеСокращение="PCE")
        requisites = _add(good, "ЗначенияРеквизитов")
        _requisite(requisites, "ВидНоменклатуры", "Товар")
        _requisite(requisites, "ТипНоменклатуры", "Товар")
        _requisite(requisites, "ИдСтрокиЗаказа", line.line_id)
        if priced is not None:
            _requisite(requisites, "Оплачено бонусами", str(priced.points_spent))
        _add(good, "ЦенаЗаЕдиницу", money(price.unit))
        _add(good, "Количество", _quantity(line.quantity))
        _add(good, "Сумма", money(price.total))
        if price.discount > 0:
            _discount(_add(good, "Скидки"), LINE_DISCOUNT, price.discount, included=True)
    requisites = _add(document, "ЗначенияРеквизитов")
    _requisite(requisites, "Заказ оплачен", _bool(snapshot.paid))
    _requisite(requisites, "Отменен", _bool(snapshot.cancelled))
    _requisite(requisites, "Финальный статус", _bool(result.status == "shipped"))
    _requisite(requisites, "Статус заказа", f"[{status.id}] {status.name}")
    _requisite(requisites, "Статуса заказа ИД", status.id)
    if points_money > 0:
        _requisite(requisites, "Метод оплаты", POINTS_PAY_SYSTEM.name)
        _requisite(requisites, "Метод оплаты ИД", POINTS_PAY_SYSTEM.id)
    _requisite(requisites, "Номер бонусной карты", snapshot.card_number)
    _requisite(requisites, "Оплачено бонусами", str(result.points_spent))
    _requisite(requisites, "Сумма оплаты бонусами", money(points_money))
    _requisite(requisites, "Бонусов начислено", str(result.points_available))
    _requisite(requisites, "Бонусов ожидает отгрузки", str(result.points_pending))
    _requisite(requisites, "Версия заказа", str(result.version))
    _requisite(requisites, "Дата изменения", result.updated_at.astimezone(cfg.zone).strftime("%Y-%m-%dT%H:%M:%S"))


def orders_xml(orders: list[ExportedOrder], cfg: CommerceMLConfig, point_value: Decimal, now: datetime) -> bytes:
    root = etree.Element(
        "КоммерческаяИнформация",
        {
            "ВерсияСхемы": cfg.schema_version,
            "ДатаФормирования": now.astimezone(cfg.zone).strftime("%Y-%m-%dT%H:%M:%S"),
            **_FORMATS,
        },
    )
    for order in orders:
        parent = _add(root, "Контейнер") if cfg.schema_version.startswith("3") else root
        _document(parent, order, cfg, point_value)
    return _serialize(root, cfg)


def info_xml(cfg: CommerceMLConfig) -> bytes:
    """``mode=info``: the site's order statuses, payment systems and delivery services, in
    Bitrix's words (``component.php``, ``CC_BSC1_DI_*`` of its ``lang/ru/component.php`` — the
    first letter of ``Cтатусы`` is a Latin C there, and 1C is built against that)."""
    root = etree.Element("Справочник")
    statuses = _add(root, "C\u0442атусы")
    for status in STATUSES.values():
        element = _add(statuses, "Элемент")
        _add(element, "Ид", status.id)
        _add(element, "Название", status.name)
    systems = _add(root, "ПлатежныеСистемы")
    element = _add(systems, "Элемент")
    _add(element, "Ид", POINTS_PAY_SYSTEM.id)
    _add(element, "Название", POINTS_PAY_SYSTEM.name)
    _add(element, "ТипОплаты", "Безналичная")
    _add(root, "СлужбыДоставки")  # the gateway delivers nothing; Bitrix lists none either then
    return _serialize(root, cfg)


def _serialize(root: etree._Element, cfg: CommerceMLConfig) -> bytes:
    body = etree.tostring(root, xml_declaration=True, encoding=cfg.encoding, pretty_print=True)
    assert isinstance(body, bytes)
    return body

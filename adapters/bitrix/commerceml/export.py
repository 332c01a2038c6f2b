"""The orders XML answered to ``mode=query``: the gateway's web orders as 1C expects them from a
1C-Bitrix site (``КоммерческаяИнформация`` / ``Документ`` with ``ХозОперация`` = ``Заказ товара``).

Points paying for an order are shown the way 1C books them, as a discount: each line carries a
``Скидка`` "Оплата бонусными баллами" included in its sum (``УчтеноВСумме``), so the document's
``Сумма`` is the money the customer pays. The card, the points spent and earned, and the state
of the order travel as ``ЗначенияРеквизитов``. CommerceML 3.1 wraps each order in a ``Контейнер``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

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
STATUS_NAMES = {
    "placed": "Принят",
    "paid": "Оплачен",
    "partially_shipped": "Частично отгружен",
    "shipped": "Отгружен",
    "cancelled": "Отменен",
}
POINTS_DISCOUNT = "Оплата бонусными баллами"


@dataclass(frozen=True)
class ExportedOrder:
    record: OrderRecord
    customer: CustomerResult | None


def _money(value: Decimal) -> str:
    return str(value.quantize(_KOPECK, rounding=ROUND_HALF_UP))


def _quantity(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


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


def _discount(parent: etree._Element, name: str, amount: Decimal) -> None:
    item = _add(parent, "Скидка")
    _add(item, "Наименование", name)
    _add(item, "Сумма", _money(amount))
    _add(item, "УчтеноВСумме", "true")


def _counterparty(parent: etree._Element, order: ExportedOrder) -> None:
    customer = order.customer
    card = order.record.snapshot.card_number
    name = (customer.name if customer and customer.name else None) or f"Покупатель по карте {card}"
    agents = _add(parent, "Контрагенты")
    agent = _add(agents, "Контрагент")
    _add(agent, "Ид", customer.customer_id if customer else f"card-{card}")
    _add(agent, "Наименование", name)
    _add(agent, "ПолноеНаименование", name)
    _add(agent, "Роль", "Покупатель")
    if customer and (customer.phone or customer.email):
        contacts = _add(agent, "Контакты")
        if customer.phone:
            contact = _add(contacts, "Контакт")
            _add(contact, "Тип", "ТелефонРабочий")
            _add(contact, "Значение", customer.phone)
        if customer.email:
            contact = _add(contacts, "Контакт")
            _add(contact, "Тип", "Почта")
            _add(contact, "Значение", customer.email)


def _document(parent: etree._Element, order: ExportedOrder, cfg: CommerceMLConfig, point_value: Decimal) -> None:
    snapshot, result = order.record.snapshot, order.record.result
    moment = (snapshot.placed_at or result.updated_at).astimezone(cfg.zone)
    by_line = {line.line_id: line for line in result.lines}
    document = _add(parent, "Документ")
    _add(document, "Ид", snapshot.order_id)
    _add(document, "Номер", snapshot.order_id)
    _add(document, "Дата", moment.strftime("%Y-%m-%d"))
    _add(document, "Время", moment.strftime("%H:%M:%S"))
    _add(document, "ХозОперация", "Заказ товара")
    _add(document, "Роль", "Продавец")
    _add(document, "Валюта", "RUB")
    _add(document, "Курс", "1")
    total = Decimal(0)
    goods = etree.Element("Товары")
    for line in snapshot.lines:
        priced = by_line.get(line.line_id)
        gross = line.total()
        discount = priced.discount if priced else Decimal(0)
        points_money = (Decimal(priced.points_spent) * point_value) if priced else Decimal(0)
        amount = (priced.amount if priced else gross) - points_money
        total += amount
        good = _add(goods, "Товар")
        _add(good, "Ид", line.item)
        _add(good, "Наименование", line.item_name or line.item)
        _add(good, "БазоваяЕдиница", "шт", Код="796", НаименованиеПолное="Штука", МеждународноеСокращение="PCE")
        _add(good, "ЦенаЗаЕдиницу", _money(gross / line.quantity))
        _add(good, "Количество", _quantity(line.quantity))
        _add(good, "Сумма", _money(amount))
        if discount > 0 or points_money > 0:
            discounts = _add(good, "Скидки")
            if discount > 0:
                _discount(discounts, "Скидка", discount)
            if points_money > 0:
                _discount(discounts, POINTS_DISCOUNT, points_money)
        requisites = _add(good, "ЗначенияРеквизитов")
        _requisite(requisites, "ВидНоменклатуры", "Товар")
        _requisite(requisites, "ТипНоменклатуры", "Товар")
        _requisite(requisites, "ИдСтрокиЗаказа", line.line_id)
        if priced is not None:
            _requisite(requisites, "Оплачено бонусами", str(priced.points_spent))
    _add(document, "Сумма", _money(total))
    _counterparty(document, order)
    _add(document, "Комментарий", f"Бонусная карта {snapshot.card_number}")
    document.append(goods)
    requisites = _add(document, "ЗначенияРеквизитов")
    _requisite(requisites, "Заказ оплачен", _bool(snapshot.paid))
    _requisite(requisites, "Отменен", _bool(snapshot.cancelled))
    _requisite(requisites, "Статус заказа", STATUS_NAMES.get(result.status, result.status))
    _requisite(requisites, "Номер бонусной карты", snapshot.card_number)
    _requisite(requisites, "Оплачено бонусами", str(result.points_spent))
    _requisite(requisites, "Сумма оплаты бонусами", _money(Decimal(result.points_spent) * point_value))
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
    body = etree.tostring(root, xml_declaration=True, encoding=cfg.encoding, pretty_print=True)
    assert isinstance(body, bytes)
    return body

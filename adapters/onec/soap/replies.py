"""Building replies in Manzana's shape: element order of its schema, its number formats
(money with two decimals, percents and quantities with three), its ``ReturnCode`` numbers and
Russian messages where clients compare them (``darthven/xcom-backend`` compares
``Message === 'Карта не найдена'``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from lxml import etree

from adapters.onec.soap.envelope import DEFAULT_NS
from adapters.onec.soap.wsdl import NS
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import BalanceResult

TWO, THREE = Decimal("0.01"), Decimal("0.001")

# (ReturnCode, message). 80241 and its text are Manzana's (recorded in Jeiwan/manzana-client
# spec/fixtures/vcr_cassettes/balance_request/wrong_card_number.yml); the other numbers are ours.
RETURN_CODES: dict[ErrorCode, tuple[int, str]] = {
    ErrorCode.CARD_NOT_FOUND: (80241, "Карта не найдена"),
    ErrorCode.CUSTOMER_NOT_FOUND: (80241, "Карта не найдена"),
    ErrorCode.VALIDATION_ERROR: (100, "Ошибка в запросе"),
    ErrorCode.CARD_BLOCKED: (201, "Карта заблокирована"),
    ErrorCode.CUSTOMER_ALREADY_EXISTS: (211, "Клиент уже зарегистрирован"),
    ErrorCode.CARD_ALREADY_EXISTS: (212, "Карта уже выдана"),
    ErrorCode.INSUFFICIENT_POINTS: (300, "Недостаточно бонусов на карте"),
    ErrorCode.POINTS_LIMIT_EXCEEDED: (301, "Превышена сумма оплаты бонусами"),
    ErrorCode.HOLD_NOT_FOUND: (310, "Транзакция не найдена"),
    ErrorCode.HOLD_EXPIRED: (311, "Резерв бонусов истёк"),
    ErrorCode.HOLD_ALREADY_RESOLVED: (312, "Резерв бонусов уже закрыт"),
    ErrorCode.HOLD_CARD_MISMATCH: (313, "Резерв сделан по другой карте"),
    ErrorCode.RECEIPT_NOT_FOUND: (400, "Чек продажи не найден"),
    ErrorCode.RECEIPT_ALREADY_COMMITTED: (401, "Чек с этим номером уже проведён с другим содержимым"),
    ErrorCode.REFUND_EXCEEDS_RECEIPT: (402, "Возврат больше покупки"),
    ErrorCode.PROMOCODE_NOT_FOUND: (510, "Купон не найден"),
    ErrorCode.PROMOCODE_UNAVAILABLE: (511, "Купон недоступен"),
    ErrorCode.IDEMPOTENCY_CONFLICT: (900, "Запрос с этим идентификатором уже выполнен с другим содержимым"),
    ErrorCode.IDEMPOTENCY_IN_FLIGHT: (901, "Запрос ещё выполняется, повторите позже"),
}
PROMO_ERRORS = (ErrorCode.PROMOCODE_NOT_FOUND, ErrorCode.PROMOCODE_UNAVAILABLE)


def el(tag: str, text: str | None = None, *children: etree._Element) -> etree._Element:
    """An element of Manzana's namespace; replies declare it once as the default namespace."""
    element = etree.Element(f"{{{NS}}}{tag}", nsmap=DEFAULT_NS)
    if text is not None:
        element.text = text
    for child in children:
        element.append(child)
    return element


def money(value: Decimal | int) -> str:
    return str(Decimal(value).quantize(TWO))


def three(value: Decimal | int) -> str:
    return str(Decimal(value).quantize(THREE))


def comma(value: Decimal) -> str:
    """Money in Manzana's messages: ``Начислено: 45,96``."""
    return money(value).replace(".", ",")


def transaction_number(transaction_id: str | None) -> int:
    """Manzana's ``TransactionID`` is an integer: the first 60 bits of our transaction's id (a
    UUID), so ``Rollback`` can find it again (``prefix_of``); requests that book nothing get a
    fresh number."""
    hex_digits = (transaction_id or str(uuid.uuid4())).replace("-", "")[:15]
    return int(hex_digits, 16)


def prefix_of(number: int) -> str | None:
    if not 0 <= number < 16**15:
        return None
    digits = f"{number:015x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:]}"


def base(
    tag: str, request_id: str, now: datetime, transaction_id: str | None, code: int, message: str
) -> etree._Element:
    """``ResponseBase``: TransactionID, RequestID, Processed, ReturnCode, Message."""
    reply = el(tag, None, el("TransactionID", str(transaction_number(transaction_id))))
    if request_id:
        reply.append(el("RequestID", request_id))
    reply.append(el("Processed", now.replace(tzinfo=None).isoformat(timespec="milliseconds")))
    reply.append(el("ReturnCode", str(code)))
    reply.append(el("Message", message))
    return reply


def ok(tag: str, request_id: str, now: datetime, transaction_id: str | None, message: str = "OK") -> etree._Element:
    return base(tag, request_id, now, transaction_id, 0, message)


def error(tag: str, request_id: str, now: datetime, failure: LoyaltyError) -> etree._Element:
    code, message = RETURN_CODES.get(failure.code, (999, f"Ошибка: {failure.message}"))
    return base(tag, request_id, now, None, code, message)


def balance_fields(element: etree._Element, balance: BalanceResult | None, point_value: Decimal) -> None:
    """``BalanceResponseBase``: CardNumber, CardBalance, CardActiveBalance (in money)."""
    if balance is None:
        return
    element.append(el("CardNumber", balance.card_number))
    element.append(el("CardBalance", money(balance.balance * point_value)))
    element.append(el("CardActiveBalance", money(balance.available * point_value)))

"""Each SOAP request kind, translated to ``contracts`` operations and back.

* ``ChequeRequest`` Soft + Sale: calculate, and hold ``PaidByBonus`` for the cheque (a later Soft
  of the same cheque replaces the hold); Fiscal + Sale: commit, spending the cheque's hold;
  Fiscal + Return: refund of the referenced sale (by position, else by amount); Soft + Return:
  a preview that changes nothing.
* ``BalanceRequest``: by card or mobile phone.
* ``BonusRequest`` with ``RequestReference``: releases the hold an earlier Soft cheque made.
* ``ContactInfoUpdateRequest``: registers the customer (a repeat for the same card is a no-op).

``RequestID`` (or ``RequestId``) is the idempotency key. Business outcomes come back in the
response (``ReturnCode`` 0 = ok, otherwise a stable number, our ``ErrorCode`` and a ``Message``),
as Manzana clients expect; a message that cannot be read is a SOAP Fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree
from pydantic import ValidationError

from adapters.onec.soap.envelope import SoapFault, local
from adapters.onec.soap.wsdl import NS
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import (
    BalanceRequest,
    BalanceResult,
    CalculateRequest,
    CancelRequest,
    CartLine,
    CommitRequest,
    HoldRequest,
    HoldResult,
    LookupCustomerRequest,
    RefundLine,
    RefundRequest,
    RegisterCustomerRequest,
)
from gateway.config import ClientConfig
from gateway.ledger.service import LoyaltyService


def el(tag: str, *content: etree._Element | str) -> etree._Element:
    """An element of our namespace with text and/or children."""
    element = etree.Element(f"{{{NS}}}{tag}", nsmap={"tns": NS})
    for item in content:
        if isinstance(item, str):
            element.text = item
        else:
            element.append(item)
    return element


HOLD_TAG = "soap-cheque"

RETURN_CODES: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 100,
    ErrorCode.CARD_NOT_FOUND: 200,
    ErrorCode.CARD_BLOCKED: 201,
    ErrorCode.CUSTOMER_NOT_FOUND: 210,
    ErrorCode.CUSTOMER_ALREADY_EXISTS: 211,
    ErrorCode.CARD_ALREADY_EXISTS: 212,
    ErrorCode.INSUFFICIENT_POINTS: 300,
    ErrorCode.POINTS_LIMIT_EXCEEDED: 301,
    ErrorCode.HOLD_NOT_FOUND: 310,
    ErrorCode.HOLD_EXPIRED: 311,
    ErrorCode.HOLD_ALREADY_RESOLVED: 312,
    ErrorCode.HOLD_CARD_MISMATCH: 313,
    ErrorCode.RECEIPT_NOT_FOUND: 400,
    ErrorCode.RECEIPT_ALREADY_COMMITTED: 401,
    ErrorCode.REFUND_EXCEEDS_RECEIPT: 402,
    ErrorCode.GIFT_CARD_NOT_FOUND: 500,
    ErrorCode.PROMOCODE_NOT_FOUND: 510,
    ErrorCode.PROMOCODE_UNAVAILABLE: 511,
    ErrorCode.IDEMPOTENCY_CONFLICT: 900,
    ErrorCode.IDEMPOTENCY_IN_FLIGHT: 901,
}


class Node:
    """Read access to a request element that tolerates the known client variations: element
    names in any case (``RequestId``/``RequestID``), with or without the namespace."""

    def __init__(self, element: etree._Element) -> None:
        self.element = element

    def children(self, name: str) -> list[Node]:
        wanted = name.lower()
        return [Node(c) for c in self.element if isinstance(c.tag, str) and local(c).lower() == wanted]

    def child(self, name: str) -> Node | None:
        found = self.children(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        node = self.child(name)
        if node is None:
            return None
        nil = node.element.get("{http://www.w3.org/2001/XMLSchema-instance}nil")
        value = (node.element.text or "").strip()
        return None if nil in ("true", "1") or not value else value

    def decimal(self, name: str) -> Decimal | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return Decimal(value.replace(",", "."))
        except InvalidOperation as exc:
            raise SoapFault("validation_error", f"{name}: {value!r} is not a number") from exc


@dataclass
class Call:
    service: LoyaltyService
    client: ClientConfig
    now: datetime


def _money(value: Decimal | int | None) -> str:
    return f"{Decimal(value or 0).quantize(Decimal('0.01'))}"


def _request_id(node: Node) -> str:
    value = node.text("RequestID")
    if not value:
        raise SoapFault("validation_error", f"{local(node.element)}: RequestID is required")
    if len(value) > 100:
        raise SoapFault("validation_error", "RequestID is longer than 100 characters")
    return value


def _card(node: Node) -> str | None:
    card = node.child("Card")
    if card is not None:
        return card.text("CardNumber") or (card.element.text or "").strip() or None
    return node.text("CardNumber")


def _receipt_id(node: Node) -> str:
    """Cheque numbers restart at every till and shift: a cheque is its unit, till, day and number."""
    number = node.text("Number")
    if not number:
        raise SoapFault("validation_error", "the cheque Number is required")
    moment = node.text("DateTime") or ""
    parts = [node.text("BusinessUnit") or "", node.text("POS") or "", moment[:10], number]
    return "|".join(parts)[:128]


def _points(call: Call, amount: Decimal | None) -> int:
    if not amount:
        return 0
    points = amount / call.service.program.point_value
    if points != points.to_integral_value() or points < 0:
        raise SoapFault("validation_error", f"PaidByBonus {amount} is not a whole number of points")
    return int(points)


def _lines(node: Node) -> list[CartLine]:
    lines: list[CartLine] = []
    for index, item in enumerate(node.children("Item"), start=1):
        summ, discount, discounted = item.decimal("Summ"), item.decimal("Discount"), item.decimal("SummDiscounted")
        amount = discounted if discounted is not None else (summ - (discount or 0) if summ is not None else None)
        try:
            lines.append(
                CartLine(
                    line_id=item.text("PositionNumber") or str(index),
                    item=item.text("Article") or f"position-{index}",
                    quantity=item.decimal("Quantity") or Decimal(1),
                    price=item.decimal("Price") or (amount or Decimal(0)),
                    amount=amount,
                )
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SoapFault("validation_error", f"Item[{index}].{first['loc'][0]}: {first['msg']}") from exc
    return lines


MAX_COUPONS = 5


def _coupons(node: Node) -> list[str]:
    """Promo codes of a cheque: ``Coupons/Coupon/Number`` (a single ``Coupon`` may be an object;
    a ``Coupon`` with the code as its text is read too)."""
    holder = node.child("Coupons")
    if holder is None:
        return []
    codes = []
    for coupon in holder.children("Coupon"):
        code = coupon.text("Number") or (coupon.element.text or "").strip()
        if code:
            codes.append(code)
    if len(codes) > MAX_COUPONS:
        raise SoapFault("validation_error", f"at most {MAX_COUPONS} Coupons per cheque")
    return codes


def _result_base(tag: str, request_id: str, call: Call, transaction: str | None) -> etree._Element:
    element = el(tag)
    element.append(el("TransactionID", transaction or str(uuid.uuid4())))
    element.append(el("RequestID", request_id))
    element.append(el("Processed", call.now.astimezone(UTC).isoformat()))
    element.append(el("ReturnCode", "0"))
    element.append(el("Message", "OK"))
    return element


def business_error(tag: str, request_id: str, call: Call, error: LoyaltyError) -> etree._Element:
    element = el(tag)
    element.append(el("TransactionID", str(uuid.uuid4())))
    element.append(el("RequestID", request_id))
    element.append(el("Processed", call.now.astimezone(UTC).isoformat()))
    element.append(el("ReturnCode", str(RETURN_CODES.get(error.code, 999))))
    element.append(el("Message", error.message))
    element.append(el("ErrorCode", error.code.value))
    return element


def _balance_fields(element: etree._Element, balance: BalanceResult | None, point_value: Decimal) -> None:
    if balance is None:
        return
    element.append(el("CardNumber", balance.card_number))
    element.append(el("CardBalance", _money(balance.balance * point_value)))
    element.append(el("CardActiveBalance", _money(balance.available * point_value)))


# ---------------------------------------------------------------------------------------------


def _open_cheque_hold(call: Call, card: str, receipt_id: str) -> HoldResult | None:
    for hold in call.service.find_holds(call.client.id, card, HOLD_TAG, ("open", "captured")):
        if hold.receipt_id == receipt_id and hold.expires_at > call.now:
            return hold
    return None


def cheque(call: Call, node: Node) -> etree._Element:
    request_id = _request_id(node)
    kind = (node.text("ChequeType") or "Soft").lower()
    operation = (node.text("OperationType") or "Sale").lower()
    if kind not in ("soft", "fiscal") or operation not in ("sale", "return"):
        raise SoapFault("validation_error", f"unknown ChequeType/OperationType {kind}/{operation}")
    try:
        if operation == "return":
            return _return_cheque(call, node, request_id, fiscal=kind == "fiscal")
        return _sale_cheque(call, node, request_id, fiscal=kind == "fiscal")
    except LoyaltyError as error:
        return business_error("ChequeResponse", request_id, call, error)


def _sale_cheque(call: Call, node: Node, request_id: str, *, fiscal: bool) -> etree._Element:
    service, pv = call.service, call.service.program.point_value
    card = _card(node)
    lines = _lines(node)
    coupons = _coupons(node)
    if not lines:
        raise SoapFault("validation_error", "a cheque needs at least one Item")
    receipt_id = _receipt_id(node)
    points = _points(call, node.decimal("PaidByBonus"))
    key = f"soap:{request_id}"
    hold = _open_cheque_hold(call, card, receipt_id) if card else None
    transaction: str | None = None
    if card is None:
        if points:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "PaidByBonus without a Card")
        calc = service.calculate(call.client.id, CalculateRequest(lines=lines, promo_codes=coupons))
        priced = {line.line_id: (0, 0, line.discount) for line in calc.lines}
        accrued, spent, available_payment, balance = 0, 0, 0, None
    elif fiscal:
        booked = service.commit(
            call.client.id,
            key,
            CommitRequest(
                receipt_id=receipt_id,
                card_number=card,
                lines=lines,
                hold_id=hold.hold_id if hold else None,
                points_to_spend=points,
                promo_codes=coupons,
            ),
        )
        transaction = booked.transaction_id
        priced = {line.line_id: (line.points_spent, line.points_accrued, line.discount) for line in booked.lines}
        accrued, spent, available_payment, balance = booked.points_accrued, booked.points_spent, 0, booked.balance
    else:
        # Price first (the cheque's current hold counts as available): a cheque over the limits
        # is answered with its error and changes nothing.
        calc = service.calculate(
            call.client.id,
            CalculateRequest(
                card_number=card,
                lines=lines,
                points_to_spend=points,
                hold_id=hold.hold_id if hold else None,
                promo_codes=coupons,
            ),
        )
        if hold is not None and hold.status == "open" and hold.points != points:
            service.cancel(call.client.id, f"soap-replace:{hold.hold_id}", CancelRequest(hold_id=hold.hold_id))
            hold = None
        if points and hold is None:
            hold = service.hold(
                call.client.id,
                key,
                HoldRequest(card_number=card, points=points, receipt_id=receipt_id, tag=HOLD_TAG),
            )
        transaction = hold.hold_id if hold else None
        priced = {line.line_id: (line.points_spent, line.points_accrued, line.discount) for line in calc.lines}
        accrued, spent, available_payment = calc.points_to_accrue, points, calc.max_points_payable
        balance = service.balance(call.client.id, BalanceRequest(card_number=card))
    # The program's discounts (segment, zone, promo code) are the gateway's to give: the cheque
    # comes back with them per line, so the till charges what the gateway books.
    total = sum((line.total() for line in lines), Decimal(0))
    discount = sum((priced.get(line.line_id, (0, 0, Decimal(0)))[2] for line in lines), Decimal(0))
    result = _result_base("ChequeResponse", request_id, call, transaction)
    _balance_fields(result, balance, pv)
    result.append(el("Summ", _money(total)))
    result.append(el("Discount", _money(discount)))
    result.append(el("SummDiscounted", _money(total - discount)))
    result.append(el("ChargedBonus", _money(accrued * pv)))
    result.append(el("AvailablePayment", _money(available_payment * pv)))
    result.append(el("WriteoffBonus", _money(spent * pv)))
    for line in lines:
        line_spent, line_accrued, line_discount = priced.get(line.line_id, (0, 0, Decimal(0)))
        result.append(
            el(
                "Item",
                el("PositionNumber", line.line_id),
                el("Article", line.item),
                el("Summ", _money(line.total())),
                el("Discount", _money(line_discount)),
                el("SummDiscounted", _money(line.total() - line_discount)),
                el("WriteoffBonus", _money(line_spent * pv)),
                el("ChargedBonus", _money(line_accrued * pv)),
            )
        )
    return result


def _return_cheque(call: Call, node: Node, request_id: str, *, fiscal: bool) -> etree._Element:
    service, pv = call.service, call.service.program.point_value
    reference = node.child("ChequeReference")
    if reference is None:
        raise SoapFault("validation_error", "a Return cheque needs a ChequeReference to its sale")
    sale_id = _receipt_id(reference)
    refund_id = _receipt_id(node)
    card = _card(node)
    result = _result_base("ChequeResponse", request_id, call, None)
    if not fiscal:  # a preview: nothing changes until the fiscal return
        balance = service.balance(call.client.id, BalanceRequest(card_number=card)) if card else None
        _balance_fields(result, balance, pv)
        return result
    items = node.children("Item")
    lines = [
        RefundLine(line_id=item.text("PositionNumber") or "", quantity=item.decimal("Quantity") or Decimal(1))
        for item in items
    ]
    key = f"soap:{request_id}"
    request = (
        RefundRequest(receipt_id=sale_id, refund_id=refund_id, lines=lines)
        if lines
        else RefundRequest(receipt_id=sale_id, refund_id=refund_id, full=True)
    )
    try:
        refund = service.refund(call.client.id, key, request)
    except LoyaltyError as error:
        amount = node.decimal("SummDiscounted") or node.decimal("Summ")
        if not lines or error.code != ErrorCode.VALIDATION_ERROR or not amount:
            raise
        # The return's positions are not the sale's: return by amount instead.
        refund = service.refund(
            call.client.id, f"{key}:amount", RefundRequest(receipt_id=sale_id, refund_id=refund_id, amount=amount)
        )
    result.find(f"{{{NS}}}TransactionID").text = refund_id  # type: ignore[union-attr]
    _balance_fields(result, refund.balance, pv)
    result.append(el("Summ", _money(refund.amount_refunded)))
    result.append(el("Discount", _money(0)))
    result.append(el("SummDiscounted", _money(refund.amount_refunded)))
    result.append(el("ChargedBonus", _money(-refund.points_reversed * pv)))
    result.append(el("AvailablePayment", _money(refund.money_to_return)))
    result.append(el("WriteoffBonus", _money(-refund.points_returned * pv)))
    return result


def balance(call: Call, node: Node) -> etree._Element:
    request_id = _request_id(node)
    try:
        card = _card(node)
        if card is None:
            phone_node = node.child("MobilePhone")
            phone = (phone_node.text("Number") or (phone_node.element.text or "").strip()) if phone_node else None
            if not phone:
                raise SoapFault("validation_error", "BalanceRequest needs a Card or a MobilePhone")
            customer = call.service.lookup_customer(call.client.id, LookupCustomerRequest(phone=phone))
            active = [c for c in customer.cards if c.status == "active"]
            if not active:
                raise LoyaltyError(ErrorCode.CARD_BLOCKED, customer_id=customer.customer_id)
            card = active[0].card_number
        result_balance = call.service.balance(call.client.id, BalanceRequest(card_number=card))
    except LoyaltyError as error:
        return business_error("BalanceResponse", request_id, call, error)
    result = _result_base("BalanceResponse", request_id, call, None)
    _balance_fields(result, result_balance, call.service.program.point_value)
    result.append(el("CardStatus", result_balance.card_status))
    return result


def bonus(call: Call, node: Node) -> etree._Element:
    request_id = _request_id(node)
    reference = node.text("RequestReference")
    if not reference:
        raise SoapFault("validation_error", "BonusRequest needs the RequestReference of the Soft cheque")
    try:
        stored = call.service.stored_result(call.client.id, f"soap:{reference}")
        if stored is None or stored[0] != "hold":
            raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, f"no hold was made by request {reference}")
        held = HoldResult.model_validate_json(stored[1])
        try:
            released = call.service.cancel(call.client.id, f"soap:{request_id}", CancelRequest(hold_id=held.hold_id))
            balance_now = released.balance
        except LoyaltyError as error:
            if error.code != ErrorCode.HOLD_ALREADY_RESOLVED:
                raise
            balance_now = call.service.balance(call.client.id, BalanceRequest(card_number=held.card_number))
    except LoyaltyError as error:
        return business_error("BonusResponse", request_id, call, error)
    result = _result_base("BonusResponse", request_id, call, held.hold_id)
    pv = call.service.program.point_value
    result.append(el("CardBalance", _money(balance_now.balance * pv)))
    result.append(el("CardActiveBalance", _money(balance_now.available * pv)))
    return result


def contact(call: Call, node: Node) -> etree._Element:
    request_id = _request_id(node)
    card = _card(node)
    phone = node.text("MobilePhone")
    email = node.text("EmailAddress")
    name = " ".join(p for p in (node.text("FirstName"), node.text("LastName")) if p) or None
    birth = node.text("BirthDate")
    try:
        if card is not None:
            try:
                known = call.service.lookup_customer(call.client.id, LookupCustomerRequest(card_number=card))
            except LoyaltyError as error:
                if error.code != ErrorCode.CARD_NOT_FOUND:
                    raise
            else:
                result = _result_base("ContactInfoUpdateResponse", request_id, call, known.customer_id)
                result.append(el("CardNumber", card))
                result.append(el("ContactID", known.customer_id))
                return result
        try:
            request = RegisterCustomerRequest(
                phone=phone, email=email, name=name, birth_date=birth[:10] if birth else None, card_number=card
            )
        except ValidationError as exc:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, str(exc.errors()[0]["msg"])) from exc
        created = call.service.register_customer(call.client.id, f"soap:{request_id}", request)
    except LoyaltyError as error:
        return business_error("ContactInfoUpdateResponse", request_id, call, error)
    result = _result_base("ContactInfoUpdateResponse", request_id, call, created.customer_id)
    result.append(el("CardNumber", created.cards[-1].card_number))
    result.append(el("ContactID", created.customer_id))
    return result


HANDLERS: dict[str, Callable[[Call, Node], etree._Element]] = {
    "chequerequest": cheque,
    "balancerequest": balance,
    "bonusrequest": bonus,
    "contactinfoupdaterequest": contact,
}


def process(call: Call, operation: etree._Element) -> etree._Element:
    """ProcessRequest: every request in ``request`` answered in order in ProcessRequestResult."""
    request = Node(operation).child("request")
    if request is None or len(request.element) == 0:
        raise SoapFault("validation_error", "ProcessRequest needs a request with at least one element")
    result = el("ProcessRequestResult")
    for child in request.element:
        if not isinstance(child.tag, str):
            continue
        handler = HANDLERS.get(local(child).lower())
        if handler is None:
            raise SoapFault("validation_error", f"unknown request {local(child)!r}")
        result.append(handler(call, Node(child)))
    return el("ProcessRequestResponse", result)


def request_summary(operation: etree._Element) -> dict[str, Any]:
    """For logs: which requests, without card numbers or phones."""
    request = Node(operation).child("request")
    return {"requests": [local(c) for c in request.element] if request is not None else []}

"""Reading a request element into typed values, before anything is executed.

Every request of a ``ProcessRequest`` is read first; a message with any unreadable request is a
``soap:Client`` fault and nothing of it is booked. Element names are matched case-insensitively
(``RequestId``/``RequestID``) with or without the namespace, and in any order (Savon, the Ruby
client of ``Jeiwan/manzana-client``, sends ``RequestID`` last).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from lxml import etree
from pydantic import ValidationError

from contracts.operations import CartLine
from gateway.soap_envelope import SoapFault, local

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
CARD_PATTERN = re.compile(r"^[0-9A-Za-z\-_]{1,64}$")
PHONE_PATTERN = re.compile(r"^\+?[0-9 ()\-]{10,20}$")
MAX_TEXT = 256
MAX_COUPONS = 5
MAX_ITEMS = 1000


class Node:
    """Read access to a request element that tolerates the known client variations."""

    def __init__(self, element: etree._Element) -> None:
        self.element = element

    @property
    def name(self) -> str:
        return local(self.element)

    def children(self, name: str) -> list[Node]:
        wanted = name.lower()
        return [Node(c) for c in self.element if isinstance(c.tag, str) and local(c).lower() == wanted]

    def child(self, name: str) -> Node | None:
        found = self.children(name)
        return found[0] if found else None

    def own_text(self) -> str | None:
        if self.element.get(XSI_NIL) in ("true", "1"):
            return None
        value = (self.element.text or "").strip()
        if len(value) > MAX_TEXT:
            raise SoapFault("validation_error", f"{self.name}: longer than {MAX_TEXT} characters")
        return value or None

    def text(self, name: str) -> str | None:
        node = self.child(name)
        return None if node is None else node.own_text()

    def attribute_or_text(self, name: str) -> str | None:
        """``ChequeType`` is an attribute in Manzana's schema; some clients send an element."""
        for attribute, value in self.element.attrib.items():
            if etree.QName(attribute).localname.lower() == name.lower():
                return str(value).strip() or None
        return self.text(name)

    def decimal(self, name: str) -> Decimal | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = Decimal(value.replace(",", "."))
        except InvalidOperation as exc:
            raise SoapFault("validation_error", f"{name}: {value!r} is not a number") from exc
        if not number.is_finite() or abs(number) >= Decimal(10) ** 12:
            raise SoapFault("validation_error", f"{name}: {value!r} is out of range")
        return number

    def moment(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SoapFault("validation_error", f"{name}: {value!r} is not an xs:dateTime") from exc


@dataclass(frozen=True)
class CardKey:
    """How a request names the customer: a card number or a mobile phone."""

    number: str | None = None
    phone: str | None = None


def phone_like(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return bool(PHONE_PATTERN.match(value)) and len(digits) in (10, 11)


def card_key(node: Node) -> CardKey | None:
    """``Card/CardNumber`` or ``Card/MobilePhone`` (Manzana's choice); a phone typed as the card
    number is read as a phone. A card number no card can have is the client's error."""
    card = node.child("Card")
    if card is None:
        return None
    phone = card.text("MobilePhone")
    if phone is not None:
        if not phone_like(phone):
            raise SoapFault("validation_error", f"Card/MobilePhone: {phone!r} is not a phone number")
        return CardKey(phone=phone)
    number = card.text("CardNumber") or card.text("Track2") or card.own_text()
    if number is None:
        return None
    if CARD_PATTERN.match(number):
        return CardKey(number=number)
    if phone_like(number):
        return CardKey(phone=number)
    raise SoapFault("validation_error", f"Card/CardNumber: {number!r} is not a card number")


def request_id(node: Node) -> str:
    """``RequestID`` is optional in Manzana's schema (a PHP SoapClient spelling it ``RequestId``
    drops it): echoed back when sent, never used to identify a cheque."""
    value = node.text("RequestID") or ""
    if len(value) > 100:
        raise SoapFault("validation_error", "RequestID is longer than 100 characters")
    return value


@dataclass(frozen=True)
class Item:
    """A cheque position as the client sent it (echoed back) and as a cart line."""

    position: str
    article: str
    name: str | None
    price: Decimal
    quantity: Decimal
    summ: Decimal
    summ_discounted: Decimal
    line: CartLine


def _item(node: Node, index: int) -> Item:
    position = node.text("PositionNumber") or str(index)
    quantity = node.decimal("Quantity")
    price = node.decimal("Price")
    summ = node.decimal("Summ")
    if quantity is None:
        quantity = Decimal(1)
    if summ is None:
        summ = (price or Decimal(0)) * quantity
    if price is None:
        price = summ / quantity if quantity else summ
    discounted = node.decimal("SummDiscounted")
    percent = node.decimal("Discount")
    if discounted is None:
        # Manzana's Discount is a percent of the line's Summ.
        discounted = summ * (1 - (percent or Decimal(0)) / 100)
    discounted = discounted.quantize(Decimal("0.01"))
    price_type = None
    for attribute in node.children("ExtendedAttribute"):
        if (attribute.text("Key") or "").lower() in ("pricetype", "price_type"):
            price_type = attribute.text("Value")
    try:
        line = CartLine(
            line_id=position,
            item=node.text("Article") or f"position-{position}",
            item_name=node.text("ArticleName"),
            price_type=price_type,
            quantity=quantity,
            price=price.quantize(Decimal("0.01")),
            amount=discounted,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SoapFault("validation_error", f"Item[{index}].{where}: {first['msg']}") from exc
    return Item(position, line.item, line.item_name, price, quantity, summ, discounted, line)


def items(node: Node) -> list[Item]:
    found = node.children("Item")
    if len(found) > MAX_ITEMS:
        raise SoapFault("validation_error", f"at most {MAX_ITEMS} Items per cheque")
    read = [_item(item, index) for index, item in enumerate(found, start=1)]
    if len({i.position for i in read}) != len(read):
        raise SoapFault("validation_error", "PositionNumber repeats within the cheque")
    return read


def coupons(node: Node) -> list[str]:
    """``Coupons/Coupon/Number`` (a ``Coupon`` with the code as its text is read too)."""
    holder = node.child("Coupons")
    if holder is None:
        return []
    codes = []
    for coupon in holder.children("Coupon"):
        code = coupon.text("Number") or coupon.own_text()
        if code:
            codes.append(code)
    if len(codes) > MAX_COUPONS:
        raise SoapFault("validation_error", f"at most {MAX_COUPONS} Coupons per cheque")
    return codes


@dataclass(frozen=True)
class Reference:
    business_unit: str
    pos: str
    number: str
    moment: datetime | None


@dataclass(frozen=True)
class Cheque:
    request_id: str
    fiscal: bool
    operation: str  # sale | return | rollback
    card: CardKey | None
    business_unit: str
    pos: str
    number: str | None
    moment: datetime | None
    summ: Decimal | None
    discount: Decimal | None
    summ_discounted: Decimal | None
    paid_by_bonus: Decimal
    items: list[Item] = field(default_factory=list)
    coupons: list[str] = field(default_factory=list)
    reference: Reference | None = None
    transaction_reference: int | None = None


def cheque(node: Node) -> Cheque:
    kind = (node.attribute_or_text("ChequeType") or "Soft").lower()
    operation = (node.text("OperationType") or "Sale").lower()
    if kind not in ("soft", "fiscal") or operation not in ("sale", "return", "rollback"):
        raise SoapFault("validation_error", f"unknown ChequeType/OperationType {kind}/{operation}")
    business_unit, pos = node.text("BusinessUnit") or "", node.text("POS") or ""
    reference = None
    ref_node = node.child("ChequeReference")
    if ref_node is not None:
        ref_number = ref_node.text("Number")
        if ref_number is None:
            raise SoapFault("validation_error", "ChequeReference needs the sale's Number")
        reference = Reference(
            ref_node.text("BusinessUnit") or business_unit,
            ref_node.text("POS") or pos,
            ref_number,
            ref_node.moment("DateTime"),
        )
    transaction_reference = None
    txn_node = node.child("TransactionReference")
    if txn_node is not None:
        value = txn_node.text("TransactionID")
        if value is None or not re.fullmatch(r"-?[0-9]{1,19}", value):
            raise SoapFault("validation_error", "TransactionReference/TransactionID must be an integer")
        transaction_reference = int(value)
    paid = node.decimal("PaidByBonus") or Decimal(0)
    if paid < 0:
        raise SoapFault("validation_error", "PaidByBonus cannot be negative")
    read = Cheque(
        request_id=request_id(node),
        fiscal=kind == "fiscal",
        operation=operation,
        card=card_key(node),
        business_unit=business_unit,
        pos=pos,
        number=node.text("Number"),
        moment=node.moment("DateTime"),
        summ=node.decimal("Summ"),
        discount=node.decimal("Discount"),
        summ_discounted=node.decimal("SummDiscounted"),
        paid_by_bonus=paid,
        items=items(node),
        coupons=coupons(node),
        reference=reference,
        transaction_reference=transaction_reference,
    )
    if operation == "rollback":
        if transaction_reference is None:
            raise SoapFault("validation_error", "a Rollback needs a TransactionReference/TransactionID")
    elif read.number is None:
        raise SoapFault("validation_error", "the cheque Number is required")
    if operation == "return" and reference is None:
        raise SoapFault("validation_error", "a Return cheque needs a ChequeReference to its sale")
    return read

"""``ChequeRequest``: each cheque kind as ``LoyaltyService`` operations, one ledger use case each.

* Soft + Sale: calculate; hold ``PaidByBonus`` for the cheque (a later Soft of the same cheque
  with other points replaces the hold).
* Fiscal + Sale: commit, spending the cheque's hold.
* Fiscal + Return: refund of the sale named by ``ChequeReference`` (by position, else by amount);
  Soft + Return: a preview that changes nothing.
* Rollback (``TransactionReference``): a fiscal sale is refunded whole, a Soft cheque's hold voided.

A cheque is identified as tills identify it — business unit, POS, number, type and content — not
by ``RequestID``, which clients reuse (``Jeiwan/manzana-client`` sends ``1234`` every time): the
idempotency key is derived from those, so a resent cheque books once and a new cheque is never
mistaken for an old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from lxml import etree

from adapters.onec.soap import replies
from adapters.onec.soap.reading import CardKey, Cheque, Item
from adapters.onec.soap.replies import el, money, three
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import (
    BalanceRequest,
    BalanceResult,
    CalculateRequest,
    CancelRequest,
    CommitRequest,
    HoldRequest,
    HoldResult,
    LookupCustomerRequest,
    RefundLine,
    RefundRequest,
    RefundResult,
)
from gateway.config import ClientConfig
from gateway.ledger.service import LoyaltyService

HOLD_TAG = "soap-cheque"
TAG = "ChequeResponse"


@dataclass
class Call:
    service: LoyaltyService
    client: ClientConfig
    now: datetime


@dataclass(frozen=True)
class Priced:
    """What the gateway answers for a cheque: per position (discount in money, points)."""

    discounts: dict[str, Decimal]
    spent: dict[str, int]
    accrued: dict[str, int]
    points_accrued: int
    points_spent: int
    points_payable: int


NOTHING = Priced({}, {}, {}, 0, 0, 0)


def cheque_key(cheque: Cheque, card: str | None) -> str:
    """The idempotency key: the cheque's identity and content, never its ``RequestID``/``DateTime``."""
    content = {
        "op": cheque.operation,
        "fiscal": cheque.fiscal,
        "unit": cheque.business_unit,
        "pos": cheque.pos,
        "number": cheque.number,
        "card": card,
        "items": [
            [i.position, i.line.item, str(i.quantity), str(i.price), str(i.summ_discounted)] for i in cheque.items
        ],
        "paid": str(cheque.paid_by_bonus),
        "coupons": cheque.coupons,
        "ref": [cheque.reference.business_unit, cheque.reference.pos, cheque.reference.number]
        if cheque.reference
        else None,
        "txn": cheque.transaction_reference,
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f"soap-cheque:{digest[:48]}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def receipt_id(business_unit: str, pos: str, number: str) -> str:
    return f"{business_unit}|{pos}|{number}"[:128]


def resolve_card(call: Call, cheque_card: CardKey | None) -> str | None:
    """The card a request names: its number, or the active card of the customer with that phone."""
    if cheque_card is None:
        return None
    if cheque_card.number is not None:
        return cheque_card.number
    assert cheque_card.phone is not None
    try:
        customer = call.service.lookup_customer(call.client.id, LookupCustomerRequest(phone=cheque_card.phone))
    except LoyaltyError as failure:
        if failure.code == ErrorCode.CUSTOMER_NOT_FOUND:
            raise LoyaltyError(ErrorCode.CARD_NOT_FOUND) from failure
        raise
    active = [c.card_number for c in customer.cards if c.status == "active"]
    if not active:
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, customer_id=customer.customer_id)
    return active[0]


def _points(call: Call, amount: Decimal) -> int:
    points = amount / call.service.program.point_value
    if points != points.to_integral_value():
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, f"PaidByBonus {amount} is not a whole number of points")
    return int(points)


def _open_hold(call: Call, card: str, receipt: str) -> HoldResult | None:
    for hold in call.service.find_holds(call.client.id, card, HOLD_TAG, ("open", "captured")):
        if hold.receipt_id == receipt and hold.expires_at > call.now:
            return hold
    return None


def _balance(call: Call, card: str | None) -> BalanceResult | None:
    if card is None:
        return None
    try:
        return call.service.balance(call.client.id, BalanceRequest(card_number=card))
    except LoyaltyError:
        return None


def process(call: Call, cheque: Cheque) -> etree._Element:
    card: str | None = None
    try:
        card = resolve_card(call, cheque.card)
        if cheque.operation == "rollback":
            return _rollback(call, cheque)
        if cheque.operation == "return":
            return _return(call, cheque, card)
        return _sale(call, cheque, card)
    except LoyaltyError as failure:
        reply = replies.error(TAG, cheque.request_id, call.now, failure)
        # Manzana gives the card's balances with an error where it knows the card.
        if failure.code not in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
            replies.balance_fields(reply, _balance(call, card), call.service.program.point_value)
        if failure.code in replies.PROMO_ERRORS:
            reply.append(_coupons(cheque.coupons, valid=False, message=replies.RETURN_CODES[failure.code][1]))
        return reply


def _sale(call: Call, cheque: Cheque, card: str | None) -> etree._Element:
    service = call.service
    points = _points(call, cheque.paid_by_bonus)
    assert cheque.number is not None
    receipt = receipt_id(cheque.business_unit, cheque.pos, cheque.number)
    key = cheque_key(cheque, card)
    lines = [i.line for i in cheque.items]
    store = cheque.business_unit or None
    transaction: str | None = None
    if not lines:
        # A cheque without positions (Manzana answers it, sale/no_positions.yml): nothing to book.
        if points:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "PaidByBonus on a cheque without Items")
        priced, balance = NOTHING, _balance(call, card)
        if card is not None and balance is None:
            raise LoyaltyError(ErrorCode.CARD_NOT_FOUND)
    elif card is None:
        if points:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "PaidByBonus without a Card")
        calc = service.calculate(call.client.id, CalculateRequest(lines=lines, store=store, promo_codes=cheque.coupons))
        priced = Priced({x.line_id: x.discount for x in calc.lines}, {}, {}, 0, 0, 0)
        balance = None
    elif cheque.fiscal:
        hold = _open_hold(call, card, receipt)
        request = CommitRequest(
            receipt_id=receipt,
            card_number=card,
            lines=lines,
            store=store,
            hold_id=hold.hold_id if hold else None,
            points_to_spend=points,
            promo_codes=cheque.coupons,
        )
        try:
            booked = service.commit(call.client.id, key, request)
        except LoyaltyError as failure:
            if failure.code != ErrorCode.RECEIPT_ALREADY_COMMITTED or cheque.moment is None:
                raise
            # Cheque numbers restart (per shift, per day): the same number with other content is
            # another day's cheque, booked under its day.
            dated = f"{receipt}|{cheque.moment.date().isoformat()}"[:128]
            booked = service.commit(call.client.id, key, request.model_copy(update={"receipt_id": dated}))
        transaction = booked.transaction_id
        priced = Priced(
            {x.line_id: x.discount for x in booked.lines},
            {x.line_id: x.points_spent for x in booked.lines},
            {x.line_id: x.points_accrued for x in booked.lines},
            booked.points_accrued,
            booked.points_spent,
            0,
        )
        balance = booked.balance
    else:
        hold = _open_hold(call, card, receipt)
        # Price first (the cheque's current hold counts as available): a cheque over the limits
        # is answered with its error and changes nothing.
        calc = service.calculate(
            call.client.id,
            CalculateRequest(
                card_number=card,
                lines=lines,
                store=store,
                points_to_spend=points,
                hold_id=hold.hold_id if hold else None,
                promo_codes=cheque.coupons,
            ),
        )
        if hold is not None and hold.status == "open" and hold.points != points:
            service.cancel(call.client.id, f"soap-replace:{hold.hold_id}", CancelRequest(hold_id=hold.hold_id))
            hold = None
        if points and hold is None:
            hold = service.hold(
                call.client.id, key, HoldRequest(card_number=card, points=points, receipt_id=receipt, tag=HOLD_TAG)
            )
        transaction = hold.hold_id if hold else None
        priced = Priced(
            {x.line_id: x.discount for x in calc.lines},
            {x.line_id: x.points_spent for x in calc.lines},
            {x.line_id: x.points_accrued for x in calc.lines},
            calc.points_to_accrue,
            points,
            calc.max_points_payable,
        )
        balance = _balance(call, card)
    pv = service.program.point_value
    accrued = priced.points_accrued * pv
    message = f"Начислено: {replies.comma(accrued)}" if accrued else "OK"
    reply = replies.ok(TAG, cheque.request_id, call.now, transaction, message)
    replies.balance_fields(reply, balance, pv)
    _totals_and_items(reply, cheque, priced, pv, status_bonuses=call.client.soap_status_bonuses)
    return reply


def _percent(summ: Decimal, discounted: Decimal) -> Decimal:
    """Manzana's ``Discount``: the percent by which ``SummDiscounted`` is below ``Summ``."""
    return (summ - discounted) / summ * 100 if summ else Decimal(0)


def _share(total: int, items: list[Item]) -> dict[str, int]:
    """``AvailablePayment`` per position: the cheque's, split by the positions' amounts."""
    amounts = [i.summ_discounted for i in items]
    whole = sum(amounts, Decimal(0))
    shares: dict[str, int] = {}
    given = 0
    for index, item in enumerate(items):
        part = total - given if index == len(items) - 1 else int(total * item.summ_discounted / whole) if whole else 0
        shares[item.position] = part
        given += part
    return shares


def _totals_and_items(
    reply: etree._Element, cheque: Cheque, priced: Priced, pv: Decimal, *, status_bonuses: bool = False
) -> None:
    summ = sum((i.summ for i in cheque.items), Decimal(0)) if cheque.items else (cheque.summ or Decimal(0))
    discounted = {i.position: i.summ_discounted - priced.discounts.get(i.position, Decimal(0)) for i in cheque.items}
    total = sum(discounted.values(), Decimal(0)) if cheque.items else (cheque.summ_discounted or summ)
    given = any(priced.discounts.values())
    # The cheque's Discount is echoed as sent unless the program gave one (Manzana echoes it).
    percent = _percent(summ, total) if given or cheque.discount is None else cheque.discount
    reply.append(el("Summ", money(summ)))
    reply.append(el("Discount", three(percent)))
    reply.append(el("SummDiscounted", money(total)))
    reply.append(el("ChargedBonus", money(priced.points_accrued * pv)))
    reply.append(el("AvailablePayment", money(priced.points_payable * pv)))
    reply.append(el("WriteoffBonus", money(priced.points_spent * pv)))
    if cheque.coupons:
        reply.append(_coupons(cheque.coupons, valid=True, message="Купон применен"))
    payable = _share(priced.points_payable, cheque.items)
    for item in cheque.items:
        line = el(
            "Item",
            None,
            el("PositionNumber", item.position),
            el("Article", item.article),
        )
        if item.name is not None:
            line.append(el("ArticleName", item.name))
        line.append(el("Price", money(item.price)))
        line.append(el("Quantity", three(item.quantity)))
        line.append(el("Summ", money(item.summ)))
        line.append(el("Discount", three(_percent(item.summ, discounted[item.position]))))
        line.append(el("SummDiscounted", money(discounted[item.position])))
        line.append(el("AvailablePayment", money(payable[item.position] * pv)))
        line.append(el("ChargedBonus", money(priced.accrued.get(item.position, 0) * pv)))
        line.append(el("WriteoffBonus", money(priced.spent.get(item.position, 0) * pv)))
        if status_bonuses:
            line.append(el("ActiveChargedBonus", money(priced.accrued.get(item.position, 0) * pv)))
            for tag in ("ChargedStatusBonus", "ActiveChargedStatusBonus", "WriteoffStatusBonus"):
                line.append(el(tag, money(0)))  # the program has no status bonuses
        reply.append(line)


def _coupons(codes: list[str], *, valid: bool, message: str) -> etree._Element:
    """``Coupons`` with Manzana's ``ApplicabilityCode`` (``0``: not applied, as xcom-backend reads it)."""
    holder = el("Coupons")
    for code in codes:
        holder.append(
            el(
                "Coupon",
                None,
                el("Number", code),
                el("ApplicabilityMessage", message),
                el("ApplicabilityCode", "1" if valid else "0"),
            )
        )
    return holder


def _sale_candidates(cheque: Cheque) -> list[str]:
    """The sale a return names: by unit, POS and number — on the day it names in any UTC offset,
    else whatever day (tills send the reference time in another offset than the sale's)."""
    reference = cheque.reference
    assert reference is not None
    plain = receipt_id(reference.business_unit, reference.pos, reference.number)
    days: list[str] = []
    if reference.moment is not None:
        days.append(reference.moment.date().isoformat())
        if reference.moment.tzinfo is not None:
            days.append(reference.moment.astimezone(UTC).date().isoformat())
    return [*(f"{plain}|{day}"[:128] for day in dict.fromkeys(days)), plain]


def _return(call: Call, cheque: Cheque, card: str | None) -> etree._Element:
    pv = call.service.program.point_value
    if not cheque.fiscal:  # a preview: nothing changes until the fiscal return
        reply = replies.ok(TAG, cheque.request_id, call.now, None)
        replies.balance_fields(reply, _balance(call, card), pv)
        _totals_and_items(reply, cheque, NOTHING, pv)
        return reply
    assert cheque.number is not None
    key = cheque_key(cheque, card)
    refund_id = f"{receipt_id(cheque.business_unit, cheque.pos, cheque.number)}|{key[-12:]}"[:128]
    lines = [RefundLine(line_id=i.position, quantity=i.quantity) for i in cheque.items]
    amount = sum((i.summ_discounted for i in cheque.items), Decimal(0)) or cheque.summ_discounted or cheque.summ
    refund: RefundResult | None = None
    for sale in _sale_candidates(cheque):
        try:
            # One key per candidate sale: a resent return must meet its first result, not a
            # conflict with the payload of another candidate.
            refund = _refund_sale(call, f"{key}:{_digest(sale)}", sale, refund_id, lines, amount)
            break
        except LoyaltyError as failure:
            if failure.code != ErrorCode.RECEIPT_NOT_FOUND:
                raise
    if refund is None:
        raise LoyaltyError(ErrorCode.RECEIPT_NOT_FOUND, receipt_id=cheque.reference.number if cheque.reference else "")
    reversed_money = refund.points_reversed * pv
    message = f"OK. Списано: {replies.comma(reversed_money)}" if reversed_money else "OK"
    reply = replies.ok(TAG, cheque.request_id, call.now, None, message)
    replies.balance_fields(reply, refund.balance, pv)
    reply.append(el("Summ", money(refund.amount_refunded)))
    reply.append(el("Discount", three(0)))
    reply.append(el("SummDiscounted", money(refund.amount_refunded)))
    # A return gives back the points spent on the goods and writes off those earned on them.
    reply.append(el("ChargedBonus", money(refund.points_returned * pv)))
    reply.append(el("AvailablePayment", money(0)))
    reply.append(el("WriteoffBonus", money(reversed_money)))
    for item in cheque.items:
        reply.append(
            el(
                "Item",
                None,
                el("PositionNumber", item.position),
                el("Article", item.article),
                el("Price", money(item.price)),
                el("Quantity", three(item.quantity)),
                el("Summ", money(item.summ)),
                el("Discount", three(_percent(item.summ, item.summ_discounted))),
                el("SummDiscounted", money(item.summ_discounted)),
                el("AvailablePayment", money(0)),
                el("WriteoffBonus", money(0)),
            )
        )
    return reply


def _refund_sale(
    call: Call, key: str, sale: str, refund_id: str, lines: list[RefundLine], amount: Decimal | None
) -> RefundResult:
    service = call.service
    if not lines:
        return service.refund(call.client.id, key, RefundRequest(receipt_id=sale, refund_id=refund_id, full=True))
    try:
        return service.refund(call.client.id, key, RefundRequest(receipt_id=sale, refund_id=refund_id, lines=lines))
    except LoyaltyError as failure:
        if failure.code != ErrorCode.VALIDATION_ERROR or not amount:
            raise
    # The return's positions are not the sale's: return by amount instead.
    return service.refund(
        call.client.id, f"{key}:amount", RefundRequest(receipt_id=sale, refund_id=refund_id, amount=amount)
    )


def _rollback(call: Call, cheque: Cheque) -> etree._Element:
    """Undo the transaction a ``TransactionReference`` names (recorded in
    ``rollback/success_simple.yml``: the reply's amounts are all zero)."""
    service, pv = call.service, call.service.program.point_value
    assert cheque.transaction_reference is not None
    prefix = replies.prefix_of(cheque.transaction_reference)
    found = service.find_transaction(call.client.id, prefix) if prefix else None
    if found is None:
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, transaction_id=str(cheque.transaction_reference))
    if found.kind == "receipt":
        assert found.receipt_id is not None
        refunded = service.refund(
            call.client.id,
            f"soap-rollback:{found.id}",
            RefundRequest(receipt_id=found.receipt_id, refund_id=f"rollback:{found.id}", full=True),
        )
        balance: BalanceResult | None = refunded.balance
    else:
        try:
            balance = service.cancel(
                call.client.id, f"soap-rollback:{found.id}", CancelRequest(hold_id=found.id)
            ).balance
        except LoyaltyError as failure:
            if failure.code != ErrorCode.HOLD_ALREADY_RESOLVED:
                raise
            balance = _balance(call, found.card_number)
    reply = replies.ok(TAG, cheque.request_id, call.now, None)
    replies.balance_fields(reply, balance, pv)
    for tag in ("Summ", "Discount", "SummDiscounted", "ChargedBonus", "AvailablePayment", "WriteoffBonus"):
        reply.append(el(tag, three(0) if tag == "Discount" else money(0)))
    return reply

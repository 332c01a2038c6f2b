"""Endpoints of ``/hs/loyaltyservice/<method>`` (also under any infobase prefix, with or without
a trailing slash, GET or POST), dispatched by method name.

Reply rules of the contract: JSON replies always carry ``Error``, ``ErrorMessage`` and
``Version`` (we add ``ErrorCode``, our stable code) and come with HTTP 200 even for handled
business errors; ``ping``, ``unlock…`` and ``writeoff…`` answer plain text, errors of the latter
as HTTP 500 with UTF-8 text; wrong credentials are HTTP 401 in the same forms.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from adapters.onec.loyaltyservice.config import OneCConfig
from adapters.onec.loyaltyservice.messages import cashier_text
from adapters.onec.loyaltyservice.translate import SOURCE, calculation_reply, parse_cart
from adapters.onec.loyaltyservice.wire import (
    WireError,
    as_bool,
    as_decimal,
    as_points,
    format_date,
    parse_body,
    parse_date,
    parse_query,
)
from contracts.accounts import PromoCheckRequest, PromoCodeInfo, PromoReleaseRequest, PromoReserveRequest
from contracts.errors import ERROR_CATALOGUE, ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import (
    BalanceRequest,
    CalculateRequest,
    CancelRequest,
    CaptureRequest,
    CustomerResult,
    GiftCardHoldRequest,
    GiftCardInfoRequest,
    GiftCardRedeemRequest,
    GiftCardReleaseRequest,
    GiftCardResult,
    HoldRequest,
    HoldResult,
    LookupCustomerRequest,
    RegisterCustomerRequest,
)
from gateway.config import ClientConfig
from gateway.ledger.idempotency import wait_out_in_flight
from gateway.ledger.mappings import Unmapped
from gateway.ledger.phones import mask_phone, normalize_phone
from gateway.ledger.service import LoyaltyService

log = logging.getLogger("adapters.onec.loyaltyservice")

LOCK_TAG = "1c-lock"
Kind = Literal["json", "text"]


@dataclass
class Call:
    service: LoyaltyService
    cfg: OneCConfig
    client: ClientConfig
    params: dict[str, str]
    body: bytes
    now: datetime
    json_body: dict[str, Any] | None = field(default=None)

    def param(self, name: str) -> str | None:
        value = self.params.get(name.lower())
        if value in (None, ""):
            value = None
            body = self.body_json()
            for key, item in body.items():
                if str(key).lower() == name.lower() and item not in (None, ""):
                    value = str(item).strip()
        return value

    def body_json(self) -> dict[str, Any]:
        if self.json_body is None:
            self.json_body = parse_body(self.body)
        return self.json_body


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _ok(call: Call, payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "Error": False, "ErrorMessage": "", "Version": call.cfg.version}


def _lookup(call: Call) -> CustomerResult:
    """Identify the customer from whatever the till sent: card number, card GUID, phone…"""
    keys: list[tuple[str, str]] = [
        ("ClientCardID", "card_number"),
        ("CardGUID", "card_ref"),
        ("Phone", "phone"),
        ("PhoneNumber", "phone"),
        ("Email", "email"),
        ("ClientGUID", "customer_id"),
    ]
    for param, field_name in keys:
        value = call.param(param)
        if value:
            if field_name == "card_number":
                value = value.replace(" ", "")
            try:
                request = LookupCustomerRequest.model_validate({field_name: value})
            except ValueError as exc:
                raise LoyaltyError(ErrorCode.VALIDATION_ERROR, f"{param}: {exc}") from exc
            return call.service.lookup_customer(call.client.id, request)
    raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "give ClientCardID, CardGUID, Phone, Email or ClientGUID")


def _card_number(call: Call, customer: CustomerResult) -> str:
    """The card to work with: the one the till read, else the customer's active card."""
    wanted = (call.param("ClientCardID") or "").replace(" ", "")
    guid = call.param("CardGUID")
    for card in customer.cards:
        if (wanted and card.card_number == wanted) or (guid and card.card_ref.lower() == guid.lower()):
            return card.card_number
    active = [c for c in customer.cards if c.status == "active"]
    if not active:
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, customer_id=customer.customer_id)
    return active[0].card_number


def _client_ref(customer: CustomerResult) -> dict[str, str]:
    return {"Ref": customer.customer_id, "Name": customer.name or ""}


def _birth_date(call: Call, customer: CustomerResult) -> str:
    if customer.birth_date is None:
        return format_date(None, call.cfg.zone)
    return datetime.combine(customer.birth_date, dtime()).isoformat()


def _open_lock(call: Call, card: str) -> HoldResult | None:
    for hold in call.service.find_holds(call.client.id, card, LOCK_TAG, ("open",)):
        if hold.expires_at > call.now:
            return hold
    return None


def _lock_generation(call: Call, card: str) -> str:
    """Part of a new lock's idempotency key: two concurrent requests for the same card agree on
    it (and so create one lock), a lock after a resolved one gets a fresh key."""
    previous = call.service.find_holds(call.client.id, card, LOCK_TAG, ("open", "captured", "committed", "voided"))
    return previous[0].hold_id if previous else "first"


def _ensure_lock(call: Call, card: str, available: int) -> HoldResult | None:
    existing = _open_lock(call, card)
    if existing is not None or available <= 0:
        return existing
    key = f"1c:lock:{card}:{_lock_generation(call, card)}"
    request = HoldRequest(card_number=card, points=available, tag=LOCK_TAG, ttl_seconds=call.cfg.lock_ttl_seconds)
    try:
        return wait_out_in_flight(lambda: call.service.hold(call.client.id, key, request))
    except LoyaltyError as exc:
        if exc.code in (ErrorCode.IDEMPOTENCY_CONFLICT, ErrorCode.INSUFFICIENT_POINTS):
            return _open_lock(call, card)  # a concurrent twin locked the points first
        raise


# ---------------------------------------------------------------------------------------------
# handlers
# ---------------------------------------------------------------------------------------------


def ping(call: Call) -> str:
    return "ok"


def getclientbonuses(call: Call) -> dict[str, Any]:
    program = call.service.program
    empty: dict[str, Any] = {
        "BonusCount": 0,
        "BonusRate": float(program.point_value) if program.point_value % 1 else int(program.point_value),
        "BonusCurrency": call.cfg.bonus_currency,
        "PaymentPercent": float(program.redemption.max_share_percent)
        if program.redemption.max_share_percent % 1
        else int(program.redemption.max_share_percent),
        "CardRef": "",
        "Barcode": "",
        "MagneticCode": "",
        "EndDate": format_date(None, call.cfg.zone),
        "ClientNotFound": True,
    }
    try:
        customer = _lookup(call)
        card = _card_number(call, customer)
    except LoyaltyError as exc:
        if exc.code in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
            return _ok(call, empty)
        raise
    balance = call.service.balance(call.client.id, BalanceRequest(card_number=card))
    if balance.card_status != "active":
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, card_number=card)
    count = balance.available
    if as_bool(call.param("BlockBonuses")):
        lock = _ensure_lock(call, card, balance.available)
        count = lock.points if lock is not None else 0
    info = next(c for c in customer.cards if c.card_number == card)
    return _ok(
        call,
        {**empty, "BonusCount": count, "CardRef": info.card_ref, "Barcode": card, "ClientNotFound": False},
    )


def unlockclientbonuses(call: Call) -> str:
    card = _card_number(call, _lookup(call))
    for hold in call.service.find_holds(call.client.id, card, LOCK_TAG, ("open",)):
        try:
            call.service.cancel(call.client.id, f"1c:unlock:{hold.hold_id}", CancelRequest(hold_id=hold.hold_id))
        except LoyaltyError as exc:
            if exc.code != ErrorCode.HOLD_ALREADY_RESOLVED:  # resolved meanwhile: nothing to unlock
                raise
    return "ok"


def writeoffclientbonuses(call: Call) -> str:
    card = _card_number(call, _lookup(call))
    points = as_points(call.param("BonusesCount"), "BonusesCount")
    if points == 0:
        return "ok"
    sale = call.param("TypeOperationSale") is None or as_bool(call.param("TypeOperationSale"))
    holds = call.service.find_holds(call.client.id, card, LOCK_TAG, ("open", "captured"))
    same_captured = next((h for h in holds if h.status == "captured" and h.captured_points == points), None)
    if not sale:
        # A return at the till before the receipt was booked: give the written-off points back.
        if same_captured is None:
            raise LoyaltyError(
                ErrorCode.HOLD_NOT_FOUND,
                "no written-off bonuses of this amount await their receipt; return them with the return receipt",
            )
        call.service.cancel(
            call.client.id, f"1c:writeoff-return:{same_captured.hold_id}", CancelRequest(hold_id=same_captured.hold_id)
        )
        return "ok"
    lock = _open_lock(call, card)
    if lock is None and same_captured is not None:
        lock = same_captured  # a retried write-off: capturing again with the same key changes nothing
    if lock is None:  # 1C wrote off without reading the card first: lock exactly what it takes
        key = f"1c:writeoff-lock:{card}:{_lock_generation(call, card)}"
        request = HoldRequest(card_number=card, points=points, tag=LOCK_TAG, ttl_seconds=call.cfg.lock_ttl_seconds)
        lock = wait_out_in_flight(lambda: call.service.hold(call.client.id, key, request))
    capture = CaptureRequest(hold_id=lock.hold_id, points=points, window_seconds=call.cfg.capture_window_seconds)
    wait_out_in_flight(lambda: call.service.capture(call.client.id, f"1c:writeoff:{lock.hold_id}", capture))
    return "ok"


def findclientcard(call: Call) -> dict[str, Any]:
    try:
        customer = _lookup(call)
        card = _card_number(call, customer)
    except LoyaltyError as exc:
        if exc.code in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
            return _ok(call, {"ClientNotFound": True})
        raise
    info = next(c for c in customer.cards if c.card_number == card)
    card_type = call.cfg.default_card_type
    return _ok(
        call,
        {
            "ClientNotFound": False,
            "CardRef": info.card_ref,
            "CardID": card,
            "Barcode": card,
            "MagneticCode": "",
            "CardType": {"Ref": card_type.ref, "Name": card_type.name},
            "IsBlocked": info.status != "active",
            "Client": _client_ref(customer),
            "PhoneNumber": customer.phone or "",
            "Email": customer.email or "",
            "DateOfBirth": _birth_date(call, customer),
        },
    )


def issueclientcard(call: Call) -> dict[str, Any]:
    phone = call.param("Phone") or call.param("PhoneNumber")
    email = call.param("Email")
    number = (call.param("ClientCardID") or "").replace(" ", "") or None
    if as_bool(call.param("GenerateNumber")):
        number = None
    type_uid = call.param("ClientCardTypeUID")
    if type_uid and type_uid.lower() not in {t.ref.lower() for t in call.cfg.card_types}:
        call.service.report_unmapped([Unmapped(SOURCE, "card_type", type_uid, None)])
    birth = parse_date(call.param("DateOfBirth"), call.cfg.zone)

    def reply(customer: CustomerResult, card: str, *, existing: bool, else_client: bool = False) -> dict[str, Any]:
        info = next(c for c in customer.cards if c.card_number == card)
        return _ok(
            call,
            {
                "ExistingCard": existing,
                "ElseClient": else_client,
                "CardRef": info.card_ref,
                "CardID": card,
                "Client": _client_ref(customer),
                "PhoneNumber": customer.phone or "",
                "Email": customer.email or "",
                "DateOfBirth": _birth_date(call, customer),
            },
        )

    if number is not None:
        try:
            holder = call.service.lookup_customer(call.client.id, LookupCustomerRequest(card_number=number))
        except LoyaltyError as exc:
            if exc.code != ErrorCode.CARD_NOT_FOUND:
                raise
        else:
            same = (phone is None or holder.phone == _normalized(phone)) and (
                email is None or (holder.email or "") == email.strip().lower()
            )
            if same:
                return reply(holder, number, existing=True)
            # The card belongs to someone else: say so without showing their data.
            return _ok(
                call,
                {
                    "ExistingCard": True,
                    "ElseClient": True,
                    "CardID": number,
                    "CardRef": "",
                    "Client": {"Ref": "", "Name": ""},
                    "PhoneNumber": "",
                    "Email": "",
                    "DateOfBirth": format_date(None, call.cfg.zone),
                },
            )
    for field_name, value in (("phone", phone), ("email", email)):
        if value:
            try:
                known = call.service.lookup_customer(
                    call.client.id, LookupCustomerRequest.model_validate({field_name: value})
                )
            except LoyaltyError as exc:
                if exc.code != ErrorCode.CUSTOMER_NOT_FOUND:
                    raise
            else:
                return reply(known, _card_number_of(known), existing=True)
    if not (phone or email or number):
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "give Phone, Email or ClientCardID")
    request = RegisterCustomerRequest(
        phone=phone,
        email=email,
        name=call.param("Client") or call.param("ClientName"),
        birth_date=birth.astimezone(call.cfg.zone).date() if birth else None,
        card_number=number,
    )
    key = f"1c:issue:{phone or ''}:{(email or '').lower()}:{number or ''}"
    created = call.service.register_customer(call.client.id, key, request)
    return reply(created, created.cards[-1].card_number, existing=False)


def _normalized(phone: str) -> str | None:
    try:
        return normalize_phone(phone)
    except LoyaltyError:
        return None


def _card_number_of(customer: CustomerResult) -> str:
    active = [c for c in customer.cards if c.status == "active"]
    if not active:
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, customer_id=customer.customer_id)
    return active[0].card_number


def getcardtypes(call: Call) -> dict[str, Any]:
    return _ok(
        call,
        {"CardTypes": [{"Ref": t.ref, "Name": t.name, "Default": t.default} for t in call.cfg.card_types]},
    )


def calculatediscounts(call: Call) -> dict[str, Any]:
    cart = parse_cart(call.cfg, call.body_json())
    call.service.report_unmapped(cart.unmapped)
    card: str | None = None
    blocked = False
    for number in cart.card_numbers:
        try:
            customer = call.service.lookup_customer(call.client.id, LookupCustomerRequest(card_number=number))
        except (LoyaltyError, ValueError):
            continue
        info = next(c for c in customer.cards if c.card_number == number)
        card, blocked = number, info.status != "active"
        break
    active = card if card is not None and not blocked else None
    lock = _open_lock(call, active) if active is not None else None
    request = CalculateRequest(
        card_number=active, lines=cart.lines, store=cart.store, hold_id=lock.hold_id if lock else None
    )
    result = call.service.calculate(call.client.id, request)
    if active is not None and not cart.is_return:
        for hold in call.service.find_holds(call.client.id, active, LOCK_TAG, ("open", "captured")):
            call.service.remember_cart(call.client.id, hold.hold_id, cart.lines)
            break
    reply = calculation_reply(
        call.cfg,
        call.service.program,
        cart,
        result if active else None,
        call.now,
        card_found=card is not None,
        card_blocked=blocked,
        locked=lock.points if lock is not None else 0,
    )
    return _ok(call, reply)


def useautomaticdiscounts(call: Call) -> dict[str, Any]:
    return _ok(call, {"UseAutomaticDiscounts": call.cfg.use_automatic_discounts})


GIFT_LOCK_TAG = "1c-gift-lock"


def _gift_number(call: Call) -> str:
    number = call.param("GiftCardNumber")
    if number:
        return number.replace(" ", "")
    uid = call.param("GiftCardUID")
    if uid:
        return call.service.gift_card_info(call.client.id, GiftCardInfoRequest(ref=uid)).number
    raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "give GiftCardNumber or GiftCardUID")


def _gift_reply(call: Call, info: GiftCardResult, locked: Decimal = Decimal(0)) -> dict[str, Any]:
    payload = {
        "GiftCard": {"GiftCardName": info.name, "GiftCardRef": info.ref},
        "GiftCardNumber": info.number,
        "GiftCardValue": _money(info.nominal),
        "GiftCardBalance": _money(info.available + locked),
        "Blocked": info.blocked or info.expired,
    }
    return _ok(call, payload)


def _money(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _gift_not_found(call: Call, number: str) -> dict[str, Any]:
    return {
        "GiftCard": {"GiftCardName": "", "GiftCardRef": call.param("GiftCardUID") or ""},
        "GiftCardNumber": number,
        "GiftCardValue": 0,
        "GiftCardBalance": 0,
        "Blocked": False,
        "Error": True,
        "ErrorMessage": cashier_text(ErrorCode.GIFT_CARD_NOT_FOUND),
        "ErrorCode": ErrorCode.GIFT_CARD_NOT_FOUND.value,
        "Version": call.cfg.version,
    }


def _open_gift_lock(call: Call, number: str) -> tuple[str, int] | None:
    for hold_id, status, amount, _ in call.service.gift_card_holds(call.client.id, number, GIFT_LOCK_TAG):
        if status == "open":
            return hold_id, amount
    return None


def getgiftcardinfo(call: Call) -> dict[str, Any]:
    try:
        number = _gift_number(call)
        info = call.service.gift_card_info(call.client.id, GiftCardInfoRequest(number=number))
    except LoyaltyError as exc:
        if exc.code == ErrorCode.GIFT_CARD_NOT_FOUND:
            return _gift_not_found(call, call.param("GiftCardNumber") or "")
        raise
    lock = _open_gift_lock(call, number)
    return _gift_reply(call, info, kopecks_to_money(lock[1]) if lock else Decimal(0))


def checkgiftcard(call: Call) -> dict[str, Any]:
    """Like getgiftcardinfo, and locks what is left for this till until written off or unlocked."""
    try:
        number = _gift_number(call)
        info = call.service.gift_card_info(call.client.id, GiftCardInfoRequest(number=number))
    except LoyaltyError as exc:
        if exc.code == ErrorCode.GIFT_CARD_NOT_FOUND:
            return _gift_not_found(call, call.param("GiftCardNumber") or "")
        raise
    lock = _open_gift_lock(call, number)
    if lock is None and info.available > 0 and not (info.blocked or info.expired):
        holds = call.service.gift_card_holds(call.client.id, number, GIFT_LOCK_TAG)
        key = f"1c:gift-lock:{number}:{holds[0][0] if holds else 'first'}"
        request = GiftCardHoldRequest(
            number=number, amount=info.available, ttl_seconds=call.cfg.lock_ttl_seconds, tag=GIFT_LOCK_TAG
        )
        held = call.service.gift_card_hold(call.client.id, key, request)
        return _gift_reply(call, held, held.held or Decimal(0))
    return _gift_reply(call, info, kopecks_to_money(lock[1]) if lock else Decimal(0))


def unlockgiftcard(call: Call) -> str:
    number = _gift_number(call)
    call.service.gift_card_info(call.client.id, GiftCardInfoRequest(number=number))  # unknown -> not found
    for hold_id, status, _, _ in call.service.gift_card_holds(call.client.id, number, GIFT_LOCK_TAG):
        if status == "open":
            try:
                call.service.gift_card_release(
                    call.client.id, f"1c:gift-unlock:{hold_id}", GiftCardReleaseRequest(hold_id=hold_id)
                )
            except LoyaltyError as exc:
                if exc.code != ErrorCode.HOLD_ALREADY_RESOLVED:
                    raise
    return "ok"


def writeoffgiftcard(call: Call) -> str:
    number = _gift_number(call)
    raw = call.param("GiftCardWriteOffAmount")
    amount = as_decimal(raw, "GiftCardWriteOffAmount")
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise WireError("GiftCardWriteOffAmount: a positive amount with at most two decimals")
    holds = call.service.gift_card_holds(call.client.id, number, GIFT_LOCK_TAG)
    lock_id = next((h[0] for h in holds if h[1] == "open"), None)
    if lock_id is None:  # a retried write-off: redeeming again under the same key changes nothing
        lock_id = next((h[0] for h in holds if h[1] == "committed" and h[3] == money_to_kopecks(amount)), None)
    if lock_id is None:  # written off without a check first: lock exactly the amount
        key = f"1c:gift-writeoff-lock:{number}:{holds[0][0] if holds else 'first'}"
        request_hold = GiftCardHoldRequest(
            number=number, amount=amount, tag=GIFT_LOCK_TAG, ttl_seconds=call.cfg.lock_ttl_seconds
        )
        lock_id = call.service.gift_card_hold(call.client.id, key, request_hold).hold_id
    request = GiftCardRedeemRequest(number=number, amount=amount, hold_id=lock_id)
    call.service.gift_card_redeem(call.client.id, f"1c:gift-writeoff:{lock_id}", request)
    return "ok"


PROMO_LOCK_TAG = "1c-promo-lock"


def _promo_reply(call: Call, info: PromoCodeInfo | None, status: str | None = None) -> dict[str, Any]:
    if info is None:
        return _ok(
            call,
            {
                "PromocodeIsAvalible": False,
                "PromocodeStatus": cashier_text(ErrorCode.PROMOCODE_NOT_FOUND),
                "PromocodeDiscountDescription": "",
                "PromocodeDiscount": 0,
            },
        )
    discount = info.discount_percent if info.discount_percent is not None else info.discount_amount
    shown = f"{discount}%" if info.discount_percent is not None else f"{discount} руб."
    return _ok(
        call,
        {
            "PromocodeIsAvalible": info.available and status is None,
            "PromocodeStatus": status or info.status,
            "PromocodeDiscountDescription": f"{info.description} ({shown})",
            "PromocodeDiscount": _money(discount or Decimal(0)),
        },
    )


def _promo_request(call: Call, card: bool) -> PromoReserveRequest | None:
    code = call.param("Promocode")
    number = ((call.param("ClientCardID") or "").replace(" ", "") or None) if card else None
    try:
        return PromoReserveRequest(
            code=code or "", card_number=number, ttl_seconds=call.cfg.lock_ttl_seconds, tag=PROMO_LOCK_TAG
        )
    except ValueError:  # no code, or characters no code has: it is simply not found
        return None


def _reserve_promo(call: Call, request: PromoReserveRequest) -> dict[str, Any]:
    try:
        info = call.service.promo_reserve(call.client.id, f"1c:promo-lock:{uuid.uuid4()}", request)
    except LoyaltyError as exc:
        if exc.code == ErrorCode.PROMOCODE_NOT_FOUND:
            return _promo_reply(call, None)
        if exc.code != ErrorCode.PROMOCODE_UNAVAILABLE:
            raise
        check = PromoCheckRequest(code=request.code, card_number=request.card_number)
        return _promo_reply(call, call.service.promo_check(call.client.id, check), exc.message)
    return _promo_reply(call, info)


def promocodeinfo(call: Call) -> dict[str, Any]:
    """Check a promo code and, if it can be used, reserve it for this till (a campaign code:
    no other till can take it until the receipt consumes it, ``unlockpromocode``, or the lock's
    TTL). A code that cannot be used answers ``PromocodeIsAvalible: false`` with the reason."""
    request = _promo_request(call, card=True)
    if request is None:
        return _promo_reply(call, None)
    try:
        return _reserve_promo(call, request)
    except LoyaltyError as exc:
        if exc.code not in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CARD_BLOCKED):
            raise
    return _reserve_promo(call, request.model_copy(update={"card_number": None}))  # judge the code alone


def unlockpromocode(call: Call) -> str:
    """Release this till's reservations of the code (none for an unknown or program-file code)."""
    request = _promo_request(call, card=False)
    if request is None:
        return "ok"
    try:
        call.service.promo_release(
            call.client.id, f"1c:promo-unlock:{uuid.uuid4()}", PromoReleaseRequest(code=request.code)
        )
    except LoyaltyError as exc:
        if exc.code != ErrorCode.PROMOCODE_NOT_FOUND:
            raise
    return "ok"


HANDLERS: dict[str, tuple[Callable[[Call], Any], Kind]] = {
    "ping": (ping, "text"),
    "getclientbonuses": (getclientbonuses, "json"),
    "unlockclientbonuses": (unlockclientbonuses, "text"),
    "writeoffclientbonuses": (writeoffclientbonuses, "text"),
    "findclientcard": (findclientcard, "json"),
    "issueclientcard": (issueclientcard, "json"),
    "getcardtypes": (getcardtypes, "json"),
    "calculatediscounts": (calculatediscounts, "json"),
    "getgiftcardinfo": (getgiftcardinfo, "json"),
    "checkgiftcard": (checkgiftcard, "json"),
    "unlockgiftcard": (unlockgiftcard, "text"),
    "writeoffgiftcard": (writeoffgiftcard, "text"),
    "promocodeinfo": (promocodeinfo, "json"),
    "unlockpromocode": (unlockpromocode, "text"),
    "useautomaticdiscounts": (useautomaticdiscounts, "json"),
}


# ---------------------------------------------------------------------------------------------
# transport
# ---------------------------------------------------------------------------------------------


def _error(kind: Kind, cfg: OneCConfig, code: ErrorCode, detail: str | None, status: int | None = None) -> Response:
    text = cashier_text(code, detail)
    headers = {"WWW-Authenticate": 'Basic realm="loyaltyservice", charset="UTF-8"'} if status == 401 else None
    if kind == "text":
        return PlainTextResponse(f"{text} ({code.value})", status_code=status or 500, headers=headers)
    body = {"Error": True, "ErrorMessage": text, "ErrorCode": code.value, "Version": cfg.version}
    return JSONResponse(body, status_code=status or 200, headers=headers)


def _log_context(params: dict[str, str]) -> str:
    shown = []
    for key, value in params.items():
        if "phone" in key:
            value = mask_phone(value)
        shown.append(f"{key}={value}")
    return "&".join(shown)


async def handle(request: Request, method: str) -> Response:
    cfg: OneCConfig = request.app.state.config.onec
    entry = HANDLERS.get(method.lower())
    if entry is None:
        return _error("json", cfg, ErrorCode.NOT_FOUND, f"метод {method}", status=404)
    handler, kind = entry
    try:
        client = request.app.state.authenticator.from_header(request.headers.get("authorization"))
    except LoyaltyError as exc:
        return _error(kind, cfg, exc.code, None, status=401)
    service: LoyaltyService = request.app.state.service
    call = Call(
        service=service,
        cfg=cfg,
        client=client,
        params=parse_query(request.scope.get("query_string", b"")),
        body=await request.body(),
        now=service.clock(),
    )
    try:
        # The service is synchronous (database I/O): run it off the event loop.
        result = await run_in_threadpool(handler, call)
    except WireError as exc:
        return _error(kind, cfg, ErrorCode.VALIDATION_ERROR, str(exc))
    except LoyaltyError as exc:
        if exc.code not in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
            log.info("1c %s by %s (%s): %s", method, client.id, _log_context(call.params), exc.code.value)
        detail = exc.message if exc.message != ERROR_CATALOGUE[exc.code].description else None
        return _error(kind, cfg, exc.code, detail)
    except Exception:
        log.exception("1c %s by %s failed", method, client.id)
        return _error(kind, cfg, ErrorCode.INTERNAL_ERROR, None, status=500)
    if kind == "text":
        return PlainTextResponse(str(result), status_code=200)
    return JSONResponse(result, status_code=200)


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    paths = ["/hs/loyaltyservice/{method}", "/{prefix:path}/hs/loyaltyservice/{method}"]
    for path in paths:
        for suffix in ("", "/"):
            router.add_api_route(path + suffix, handle, methods=["GET", "POST"], response_class=Response)
    return router

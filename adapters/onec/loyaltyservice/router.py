"""Endpoints of ``/hs/loyaltyservice/<method>`` (under any infobase prefix, with or without a
trailing slash, GET or POST), dispatched by method name; each translates one till call into one
ledger operation (``gateway.ledger.till`` for reservations and write-offs) and back.

Reply rules, from 1C's own server of the contract (1C:УНФ / УТ 11
``HTTPServices/СерверЛояльности``) and from how 1C:УНФ's cashier workplace reads them
(``DataProcessors/РабочееМестоКассира/Forms/ФормаРМК/Ext/Form/Module.bsl``):

* JSON replies carry ``Error``, ``ErrorMessage``, ``Version`` (we add ``ErrorCode``, our stable
  code) with HTTP 200 even for business errors — the till shows ``ErrorMessage``;
* ``calculatediscounts`` errors are a plain-text body with HTTP 200: the till shows a body that
  is not JSON as the error text (``ОбщегоНазначенияРМК.РассчитатьАвтоматическиеСкидки``);
* write-offs and unlocks answer fixed Russian texts the till compares word for word; any other
  text makes it unlock and warn the cashier;
* any status above 200 is an error whose body the till never reads: 401 (credentials) and 500
  (our fault) only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from adapters.onec.loyaltyservice.config import OneCConfig
from adapters.onec.loyaltyservice.messages import (
    BONUSES_UNLOCKED,
    BONUSES_WRITTEN_OFF,
    CARD_NOT_FOUND,
    GIFT_CARD_NOT_FOUND,
    GIFT_CARD_UNLOCKED,
    GIFT_CARD_WRITTEN_OFF,
    PROMOCODE_UNLOCKED,
    cashier_text,
)
from adapters.onec.loyaltyservice.translate import (
    MAX_CARD_CHARS,
    SOURCE,
    Cart1C,
    calculation_reply,
    discount_ref,
    loyalty_card,
    parse_cart,
)
from adapters.onec.loyaltyservice.wire import (
    MAX_BODY_BYTES,
    WireError,
    as_bool,
    as_decimal,
    format_day,
    guid,
    json_number,
    parse_body,
    parse_date,
    parse_query,
)
from contracts.accounts import PromoCheckRequest, PromoCodeInfo, PromoReleaseRequest, PromoReserveRequest
from contracts.errors import ERROR_CATALOGUE, ErrorCode, LoyaltyError
from contracts.operations import (
    BalanceRequest,
    CalculateRequest,
    CustomerResult,
    GiftCardInfoRequest,
    GiftCardResult,
    LookupCustomerRequest,
    RegisterCustomerRequest,
)
from gateway.config import ClientConfig
from gateway.ledger.mappings import Unmapped
from gateway.ledger.phones import mask_phone, normalize_phone
from gateway.ledger.service import LoyaltyService
from gateway.ledger.till import (
    GiftReserveRequest,
    GiftUnlockRequest,
    GiftWriteOffRequest,
    TillCartRequest,
    TillReserveRequest,
    TillUnlockRequest,
    TillWriteOffRequest,
)

log = logging.getLogger("adapters.onec.loyaltyservice")

LOCK_TAG = "1c-lock"
GIFT_LOCK_TAG = "1c-gift-lock"
PROMO_LOCK_TAG = "1c-promo-lock"
Kind = Literal["json", "text", "calc"]
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


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
        """A query parameter; an unset one (``K=``) is None."""
        value = self.params.get(name.lower())
        return value if value not in (None, "") else None

    def body_json(self) -> dict[str, Any]:
        if self.json_body is None:
            self.json_body = parse_body(self.body)
        return self.json_body


@dataclass
class Found:
    customer: CustomerResult
    card: str


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _ok(call: Call, payload: dict[str, Any]) -> dict[str, Any]:
    return {"Error": False, "ErrorMessage": "", "Version": call.cfg.version, **payload}


def _card_param(call: Call) -> str | None:
    value = (call.param("ClientCardID") or "").replace(" ", "").replace("\u00a0", "")
    if len(value) > MAX_CARD_CHARS:
        raise WireError(f"ClientCardID: longer than {MAX_CARD_CHARS} characters")
    return value or None


def _lookup(call: Call, request: LookupCustomerRequest) -> CustomerResult | None:
    try:
        return call.service.lookup_customer(call.client.id, request)
    except LoyaltyError as exc:
        if exc.code in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
            return None
        raise


def _request(field_name: str, value: str) -> LookupCustomerRequest | None:
    try:
        return LookupCustomerRequest.model_validate({field_name: value})
    except ValueError:
        return None  # not a card number / phone / e-mail at all: nobody has it


def _choose_card(customer: CustomerResult, number: str | None, ref: str | None) -> str | None:
    for card in customer.cards:
        if (number and card.card_number == number) or (ref and card.card_ref.lower() == ref.lower()):
            return card.card_number
    active = [c for c in customer.cards if c.status == "active"]
    return active[0].card_number if active else None


def _find(call: Call) -> list[Found]:
    """Cards the till means: by its card code, card GUID, phone (``*`` + last digits searches by
    the end of the number), e-mail or client GUID — in the order 1C's server tries them."""
    number = _card_param(call)
    card_guid = guid(call.param("CardGUID"))
    candidates: list[CustomerResult] = []
    if number is not None:
        request = _request("card_number", number)
        found = _lookup(call, request) if request is not None else None
        if found is not None:
            return [Found(found, number)]
    if card_guid is not None:
        request = _request("card_ref", card_guid)
        found = _lookup(call, request) if request is not None else None
        if found is not None:
            card = _choose_card(found, None, card_guid)
            return [Found(found, card)] if card else []
    phone = call.param("Phone") or call.param("PhoneNumber")
    if phone:
        if phone.startswith("*"):
            candidates = call.service.till_customers_by_phone_ending(
                call.client.id, "".join(filter(str.isdigit, phone))
            )
        else:
            request = _request("phone", phone)
            found = _lookup(call, request) if request is not None else None
            candidates = [found] if found is not None else []
    if not candidates:
        for key, field_name in (("Email", "email"), ("ClientGUID", "customer_id")):
            value = call.param(key)
            if value and field_name == "customer_id":
                value = guid(value)
            if value:
                request = _request(field_name, value)
                found = _lookup(call, request) if request is not None else None
                if found is not None:
                    candidates = [found]
                    break
    result: list[Found] = []
    for customer in candidates:
        card = _choose_card(customer, None, None)
        if card is not None:
            result.append(Found(customer, card))
    return result


def _one(call: Call) -> Found | None:
    found = _find(call)
    return found[0] if found else None


def _card_info(found: Found) -> tuple[str, str]:
    """(card GUID, status) of the found card."""
    info = next(c for c in found.customer.cards if c.card_number == found.card)
    return info.card_ref, info.status


def _loyalty_card(call: Call, found: Found, points: int, search_type: str = "") -> dict[str, Any]:
    card_ref, status = _card_info(found)
    customer = found.customer
    return loyalty_card(
        call.cfg,
        call.service.program,
        barcode=found.card,
        card_ref=card_ref,
        client_ref=customer.customer_id,
        name=customer.name or "",
        phone=customer.phone or "",
        email=customer.email or "",
        birth=format_day(customer.birth_date),
        points=points,
        blocked=status != "active",
        search_type=search_type,
    )


def _reserve(call: Call, card: str) -> int:
    """Reserve the card's points for this till (1C's server locks them when the till asks):
    the points the till may now spend. A company card that may not spend is refused here."""
    request = TillReserveRequest(card_number=card, tag=LOCK_TAG, ttl_seconds=call.cfg.lock_ttl_seconds)
    return call.service.till_reserve(call.client.id, request).reserved


def _reserve_quietly(call: Call, card: str) -> int | None:
    """As ``_reserve`` while the till looks a card up or calculates: a card that may not spend is
    still found and calculated, with no points to pay (None)."""
    try:
        return _reserve(call, card)
    except LoyaltyError as exc:
        if exc.code == ErrorCode.MEMBER_MAY_NOT_SPEND:
            return None
        raise


def _spendable(call: Call, card: str) -> int:
    """Available points plus what this till has reserved already."""
    balance = call.service.balance(call.client.id, BalanceRequest(card_number=card))
    return balance.available + call.service.till_reservation(call.client.id, card, LOCK_TAG)[1]


# ---------------------------------------------------------------------------------------------
# bonuses
# ---------------------------------------------------------------------------------------------


def ping(call: Call) -> str:
    return "ok"


def getclientbonuses(call: Call) -> dict[str, Any]:
    program = call.service.program
    reply: dict[str, Any] = {
        "BonusCount": 0,
        "BonusRate": json_number(program.point_value),
        "BonusCurrency": call.cfg.bonus_currency,
        "PaymentPercent": json_number(program.redemption.max_share_percent),
        "CardRef": "",
        "Barcode": "",
        "MagneticCode": "",
        "EndDate": format_day(None),
        "ClientNotFound": True,
    }
    found = _one(call)
    if found is None:
        return _ok(call, reply)
    card_ref, status = _card_info(found)
    count = 0
    if status == "active":
        count = _reserve(call, found.card) or _spendable(call, found.card)
    return _ok(
        call, {**reply, "BonusCount": count, "CardRef": card_ref, "Barcode": found.card, "ClientNotFound": False}
    )


def findclientcard(call: Call) -> dict[str, Any]:
    """``LoyaltyCardsList`` of every card found; with ``BlockBonuses=1`` and one active card,
    its points are reserved for the till (as 1C's server does)."""
    found = _find(call)
    block = call.param("BlockBonuses") == "1"
    phone = call.param("Phone") or ""
    search_type = "ПоследниеЦифрыТелефона" if phone.startswith("*") else ""
    cards: list[dict[str, Any]] = []
    for item in found[:10]:
        _, status = _card_info(item)
        points = 0
        if status == "active":
            reserved = _reserve_quietly(call, item.card) if block and len(found) == 1 else 0
            points = 0 if reserved is None else reserved or _spendable(call, item.card)
        cards.append(_loyalty_card(call, item, points, search_type))
    return _ok(call, {"LoyaltyCardsList": cards})


def salesturnover(call: Call) -> dict[str, Any]:
    found = _one(call)
    if found is None:
        return _ok(call, {"CardRef": "", "SellCount": 0, "Barcode": "", "MagneticCode": "", "ClientNotFound": True})
    card_ref, _ = _card_info(found)
    return _ok(
        call, {"CardRef": card_ref, "SellCount": 0, "Barcode": found.card, "MagneticCode": "", "ClientNotFound": False}
    )


def unlockclientbonuses(call: Call) -> str:
    found = _one(call)
    if found is None:
        return CARD_NOT_FOUND
    call.service.till_unlock(call.client.id, TillUnlockRequest(card_number=found.card, tag=LOCK_TAG))
    return BONUSES_UNLOCKED


def writeoffclientbonuses(call: Call) -> str:
    """``BonusesCount`` is the money the receipt took in points (``Строка(СуммаБонусов)``:
    ``67,04``, ``1 500``); it becomes points through the program's point value, rounded up
    (``gateway.ledger.till.points_for_amount``). Each call is one capture."""
    found = _one(call)
    if found is None:
        return CARD_NOT_FOUND
    raw = call.param("BonusesCount")
    if raw is None:
        return "Количество баллов не указано"
    amount = as_decimal(raw, "BonusesCount")
    if amount <= 0:
        raise WireError("BonusesCount: a positive amount is required")
    request = TillWriteOffRequest(
        card_number=found.card,
        tag=LOCK_TAG,
        amount=amount,
        ttl_seconds=call.cfg.lock_ttl_seconds,
        window_seconds=call.cfg.capture_window_seconds,
    )
    call.service.till_write_off(call.client.id, request)
    return BONUSES_WRITTEN_OFF


# ---------------------------------------------------------------------------------------------
# cards
# ---------------------------------------------------------------------------------------------


def _issue_reply(
    call: Call, customer: CustomerResult | None, card: str, *, existing: bool, else_client: bool
) -> dict[str, Any]:
    program = call.service.program
    info = next((c for c in customer.cards if c.card_number == card), None) if customer else None
    shown = customer if customer is not None and not else_client else None
    return _ok(
        call,
        {
            "ExistingCard": existing,
            "ElseClient": else_client,
            "CardRef": info.card_ref if info and not else_client else "",
            "CardID": card if not else_client else "",
            "Barcode": card if not else_client else "",
            "MagneticCode": "",
            "Client": (shown.name or "") if shown else "",
            "PhoneNumber": (shown.phone or "") if shown else "",
            "Email": (shown.email or "") if shown else "",
            "DateOfBirth": format_day(shown.birth_date if shown else None),
            "BonusCount": 0,
            "BonusRate": json_number(program.point_value),
            "BonusCurrency": call.cfg.bonus_currency,
            "PaymentPercent": json_number(program.redemption.max_share_percent),
        },
    )


def _normalized(phone: str | None) -> str | None:
    if not phone:
        return None
    try:
        return normalize_phone(phone)
    except LoyaltyError:
        return None


def issueclientcard(call: Call) -> dict[str, Any]:
    # No referrer here: the till sends a fixed parameter set (1C:УНФ, СерверЛояльностиПолучательДанных-
    # КлиентСервер.ПараметрыЗапросаВыдатьКартуКлиенту: ПараметрыМетодовБонуснойПодсистемы + Client), with
    # no field for one; the site or an operator sets it afterwards (PATCH /api/v1/customers/{id}).
    phone = call.param("Phone") or call.param("PhoneNumber")
    email = call.param("Email")
    number = None if as_bool(call.param("GenerateNumber")) else _card_param(call)
    type_uid = guid(call.param("ClientCardTypeUID"))
    if type_uid and type_uid.lower() not in {t.ref.lower() for t in call.cfg.card_types}:
        call.service.report_unmapped([Unmapped(SOURCE, "card_type", type_uid, None)])
    birth = parse_date(call.param("DateOfBirth"), call.cfg.zone)
    if number is not None:
        holder = _lookup(call, LookupCustomerRequest(card_number=number))
        if holder is not None:
            same = (phone is None or holder.phone == _normalized(phone)) and (
                email is None or (holder.email or "") == email.strip().lower()
            )
            return _issue_reply(call, holder, number, existing=True, else_client=not same)
    for field_name, value in (("phone", phone), ("email", email)):
        request = _request(field_name, value) if value else None
        known = _lookup(call, request) if request is not None else None
        if known is not None:
            card = _choose_card(known, None, None)
            if card is None:
                raise LoyaltyError(ErrorCode.CARD_BLOCKED, customer_id=known.customer_id)
            return _issue_reply(call, known, card, existing=True, else_client=False)
    if not (phone or email or number):
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "укажите телефон, e-mail или номер карты")
    try:
        registration = RegisterCustomerRequest(
            phone=phone,
            email=email,
            name=(call.param("Client") or "")[:200] or None,
            birth_date=birth.astimezone(call.cfg.zone).date() if birth else None,
            card_number=number,
        )
    except ValueError as exc:
        raise WireError(str(exc).splitlines()[0]) from exc
    key = f"1c:issue:{phone or ''}:{(email or '').lower()}:{number or ''}"
    created = call.service.register_customer(call.client.id, key, registration)
    return _issue_reply(call, created, created.cards[-1].card_number, existing=False, else_client=False)


def getcardtypes(call: Call) -> list[dict[str, Any]]:
    """A top-level array (``ФормаРМК.ЗаполнитьТаблицуВидовКарт`` reads a Массив), with the
    Russian keys of older servers as 1C's own server still sends them."""
    return [
        {
            "CardTypeID": t.ref,
            "CardTypeDescription": t.name,
            "IsPerson": t.is_person,
            "GenerateNumer": t.generate_number,
            "Идентификатор": t.ref,
            "Наименование": t.name,
            "ЭтоИменнаяКарта": t.is_person,
            "ГенерироватьНомер": t.generate_number,
        }
        for t in call.cfg.card_types
    ]


# ---------------------------------------------------------------------------------------------
# calculation
# ---------------------------------------------------------------------------------------------


def _promo_state(call: Call, cart: Cart1C, card: str | None, total: Decimal) -> dict[str, str | None]:
    """Promo code -> None if it applies, else why not (in the cashier's words)."""
    state: dict[str, str | None] = {}
    for promo in cart.promos:
        try:
            info = call.service.promo_check(
                call.client.id, PromoCheckRequest(code=promo.code, card_number=card, amount=total)
            )
        except (LoyaltyError, ValueError):
            state[promo.code.upper()] = cashier_text(ErrorCode.PROMOCODE_NOT_FOUND)
            continue
        state[promo.code.upper()] = None if info.available else info.status
    return state


def calculatediscounts(call: Call) -> dict[str, Any]:
    cart = parse_cart(call.cfg, call.body_json())
    call.service.report_unmapped(cart.unmapped)
    found: Found | None = None
    for card_id in cart.card_ids:
        field_name = "card_ref" if guid(card_id) and len(card_id) == 36 and card_id.count("-") == 4 else "card_number"
        request = _request(field_name, card_id)
        customer = _lookup(call, request) if request is not None else None
        if customer is not None:
            card = card_id if field_name == "card_number" else _choose_card(customer, None, card_id)
            if card is not None:
                found = Found(customer, card)
                break
    active: str | None = None
    hold_id: str | None = None
    if found is not None and _card_info(found)[1] == "active":
        active = found.card
        if cart.block_bonuses and not cart.is_return:
            _reserve_quietly(call, active)
        hold_id, _ = call.service.till_reservation(call.client.id, active, LOCK_TAG)
    total = sum((line.total() for line in cart.lines), Decimal(0))
    promo_state = _promo_state(call, cart, active, total)
    applicable = [p.code for p in cart.promos if promo_state.get(p.code.upper()) is None]
    calculation = CalculateRequest(
        card_number=active, lines=cart.lines, store=cart.store, promo_codes=applicable, hold_id=hold_id
    )
    result = call.service.calculate(call.client.id, calculation)
    if active is not None and not cart.is_return:
        # The cart goes with this session's open reservation only, never an earlier capture.
        call.service.till_remember_cart(
            call.client.id, TillCartRequest(card_number=active, tag=LOCK_TAG, lines=cart.lines)
        )
    card_reply = None
    if found is not None:
        card_reply = _loyalty_card(call, found, _spendable(call, active) if active else 0)
    reply = calculation_reply(
        call.cfg, call.service.program, cart, result, call.now, card=card_reply, promo_state=promo_state
    )
    return _ok(call, reply)


def no_discounts_to_choose(call: Call) -> list[dict[str, Any]]:
    """getcontrolleddiscountslist / getlistonpaydiscounts: the till reads a top-level array
    (ФормаРМК ``ЗаполнитьТаблицуУправляемыхСкидок``, ``ЗаполнитьТаблицуСкидокЗависящихОтВидаОплаты``);
    the program has no discounts a cashier picks by hand or by payment type."""
    return []


def useautomaticdiscounts(call: Call) -> dict[str, Any]:
    return _ok(call, {"UseAutomaticDiscounts": call.cfg.use_automatic_discounts})


# ---------------------------------------------------------------------------------------------
# gift certificates
# ---------------------------------------------------------------------------------------------


def _gift_number(call: Call) -> str | None:
    number = (call.param("GiftCardNumber") or "").replace(" ", "")
    if len(number) > MAX_CARD_CHARS:
        raise WireError(f"GiftCardNumber: longer than {MAX_CARD_CHARS} characters")
    if number:
        return number
    uid = guid(call.param("GiftCardUID"))
    if uid:
        try:
            return call.service.gift_card_info(call.client.id, GiftCardInfoRequest(ref=uid)).number
        except (LoyaltyError, ValueError):
            return None
    return None


def _gift_reply(call: Call, info: GiftCardResult, balance: Decimal) -> dict[str, Any]:
    return _ok(
        call,
        {
            "GiftCard": {"GiftCardName": info.name, "GiftCardRef": info.ref},
            "GiftCardNumber": info.number,
            "GiftCardValue": json_number(info.nominal),
            "GiftCardBalance": json_number(balance),
            "Blocked": info.blocked or info.expired,
        },
    )


def getgiftcardinfo(call: Call) -> dict[str, Any]:
    """The certificate's nominal and what this till may pay with it — reserved for the till,
    as 1C's server does when the till reads a certificate."""
    number = _gift_number(call)
    if number is None:
        raise LoyaltyError(ErrorCode.GIFT_CARD_NOT_FOUND)
    request = GiftReserveRequest(number=number, tag=GIFT_LOCK_TAG, ttl_seconds=call.cfg.lock_ttl_seconds)
    reserved = call.service.gift_till_reserve(call.client.id, request)
    return _gift_reply(call, reserved.card, reserved.reserved)


def checkgiftcard(call: Call) -> dict[str, Any]:
    """Before selling a certificate: ``GiftCardUsed`` is true if it exists already (sold)."""
    number = _gift_number(call)
    used = False
    if number is not None:
        try:
            call.service.gift_card_info(call.client.id, GiftCardInfoRequest(number=number))
            used = True
        except LoyaltyError as exc:
            if exc.code != ErrorCode.GIFT_CARD_NOT_FOUND:
                raise
    return _ok(call, {"GiftCardUsed": used})


def unlockgiftcard(call: Call) -> str:
    number = _gift_number(call)
    if number is None:
        return GIFT_CARD_NOT_FOUND
    try:
        call.service.gift_till_unlock(call.client.id, GiftUnlockRequest(number=number, tag=GIFT_LOCK_TAG))
    except LoyaltyError as exc:
        if exc.code == ErrorCode.GIFT_CARD_NOT_FOUND:
            return GIFT_CARD_NOT_FOUND
        raise
    return GIFT_CARD_UNLOCKED


def writeoffgiftcard(call: Call) -> str:
    """``GiftCardWriteOffAmount`` is money; negative on a return (``ФормаРМК.СписатьПодарочныйСертификат``
    sends ``Строка(-СуммаСертификата)``): that money goes back onto the certificate."""
    number = _gift_number(call)
    if number is None:
        return GIFT_CARD_NOT_FOUND
    amount = as_decimal(call.param("GiftCardWriteOffAmount"), "GiftCardWriteOffAmount")
    if amount == 0:
        raise WireError("GiftCardWriteOffAmount: the amount is zero")
    request = GiftWriteOffRequest(
        number=number, tag=GIFT_LOCK_TAG, amount=amount, ttl_seconds=call.cfg.lock_ttl_seconds
    )
    try:
        call.service.gift_till_write_off(call.client.id, request)
    except LoyaltyError as exc:
        if exc.code == ErrorCode.GIFT_CARD_NOT_FOUND:
            return GIFT_CARD_NOT_FOUND
        raise
    return GIFT_CARD_WRITTEN_OFF


# ---------------------------------------------------------------------------------------------
# promo codes
# ---------------------------------------------------------------------------------------------


def _promo_reply(call: Call, info: PromoCodeInfo | None, status: str | None = None) -> dict[str, Any]:
    if info is None:
        return _ok(
            call,
            {
                "PromocodeIsAvalible": False,
                "PromocodeStatus": cashier_text(ErrorCode.PROMOCODE_NOT_FOUND),
                "PromocodeDiscountDescription": "",
                "PromocodeDiscount": {"Ref": "", "Name": ""},
            },
        )
    discount = info.discount_percent if info.discount_percent is not None else info.discount_amount
    shown = f"{discount}%" if info.discount_percent is not None else f"{discount} руб."
    description = f"{info.description} ({shown})"
    return _ok(
        call,
        {
            "PromocodeIsAvalible": info.available and status is None,
            "PromocodeStatus": status or info.status,
            "PromocodeDiscountDescription": description,
            # {Ref, Name}: the till keeps Ref as the promo code's discount and shows Name.
            "PromocodeDiscount": {**discount_ref(f"promo:{info.code.upper()}"), "Name": description},
        },
    )


def _promo_request(call: Call, card: bool) -> PromoReserveRequest | None:
    code = call.param("Promocode")
    number = _card_param(call) if card else None
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
    if request is not None:
        try:
            call.service.promo_release(
                call.client.id, f"1c:promo-unlock:{uuid.uuid4()}", PromoReleaseRequest(code=request.code)
            )
        except LoyaltyError as exc:
            if exc.code != ErrorCode.PROMOCODE_NOT_FOUND:
                raise
    return PROMOCODE_UNLOCKED


HANDLERS: dict[str, tuple[Callable[[Call], Any], Kind]] = {
    "ping": (ping, "text"),
    "getclientbonuses": (getclientbonuses, "json"),
    "unlockclientbonuses": (unlockclientbonuses, "text"),
    "writeoffclientbonuses": (writeoffclientbonuses, "text"),
    "findclientcard": (findclientcard, "json"),
    "salesturnover": (salesturnover, "json"),
    "issueclientcard": (issueclientcard, "json"),
    "getcardtypes": (getcardtypes, "json"),
    "calculatediscounts": (calculatediscounts, "calc"),
    "getgiftcardinfo": (getgiftcardinfo, "json"),
    "checkgiftcard": (checkgiftcard, "json"),
    "unlockgiftcard": (unlockgiftcard, "text"),
    "writeoffgiftcard": (writeoffgiftcard, "text"),
    "promocodeinfo": (promocodeinfo, "json"),
    "unlockpromocode": (unlockpromocode, "text"),
    "useautomaticdiscounts": (useautomaticdiscounts, "json"),
    "getcontrolleddiscountslist": (no_discounts_to_choose, "json"),
    "getlistonpaydiscounts": (no_discounts_to_choose, "json"),
}


# ---------------------------------------------------------------------------------------------
# transport
# ---------------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    import json

    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text.encode("utf-8"), status_code=status, media_type=JSON_TYPE, headers=headers)


def _text(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(text.encode("utf-8"), status_code=status, media_type=TEXT_TYPE, headers=headers)


def _error(kind: Kind, cfg: OneCConfig, code: ErrorCode, detail: str | None, status: int = 200) -> Response:
    text = cashier_text(code, detail)
    headers = {"WWW-Authenticate": 'Basic realm="loyaltyservice", charset="UTF-8"'} if status == 401 else None
    if kind in ("text", "calc"):
        return _text(text, status, headers)
    body = {"Error": True, "ErrorMessage": text, "ErrorCode": code.value, "Version": cfg.version}
    return _json(body, status, headers)


def _log_context(params: dict[str, str]) -> str:
    shown = []
    for key, value in params.items():
        if "phone" in key:
            value = mask_phone(value)
        shown.append(f"{key}={value[:64]}")
    return "&".join(shown)


async def handle(request: Request, method: str) -> Response:
    cfg: OneCConfig = request.app.state.config.onec
    entry = HANDLERS.get(method.lower())
    if entry is None:
        return _error("json", cfg, ErrorCode.NOT_FOUND, f"метод {method[:64]}", status=404)
    handler, kind = entry
    try:
        authenticator = request.app.state.authenticator
        client = authenticator.from_header(request.headers.get("authorization"), capability="loyalty")
    except LoyaltyError as exc:
        return _error(kind, cfg, exc.code, None, status=401)
    service: LoyaltyService = request.app.state.service
    params: dict[str, str] = {}
    try:
        params = parse_query(request.scope.get("query_string", b""))
        body = await _bounded_body(request)
        call = Call(service=service, cfg=cfg, client=client, params=params, body=body, now=service.clock())
        # The service is synchronous (database I/O): run it off the event loop.
        result = await run_in_threadpool(handler, call)
    except WireError as exc:
        log.info("1c %s by %s: bad request: %s", method, client.id, exc)
        return _error(kind, cfg, ErrorCode.VALIDATION_ERROR, str(exc))
    except LoyaltyError as exc:
        if exc.code not in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
            log.info("1c %s by %s (%s): %s", method, client.id, _log_context(params), exc.code.value)
        detail = exc.message if exc.message != ERROR_CATALOGUE[exc.code].description else None
        return _error(kind, cfg, exc.code, detail)
    except ValueError as exc:  # a contract model refused a value the wire let through
        log.info("1c %s by %s: invalid value: %s", method, client.id, str(exc).splitlines()[0])
        return _error(kind, cfg, ErrorCode.VALIDATION_ERROR, str(exc).splitlines()[0][:200])
    except Exception:
        log.exception("1c %s by %s failed", method, client.id)
        return _error(kind, cfg, ErrorCode.INTERNAL_ERROR, None, status=500)
    if kind == "text":
        return _text(str(result))
    return _json(result)


DRAIN_BYTES = 16 * 1024 * 1024  # of an oversized body read and thrown away, so the till reads our reply


async def _bounded_body(request: Request) -> bytes:
    """The body, kept no further than ``MAX_BODY_BYTES``: a larger one is the till's error text,
    not a connection error (the gateway's generic body limit leaves 1C's paths to this). The
    rest of an oversized body is read and discarded up to ``DRAIN_BYTES`` (memory stays bounded)
    so that the till, still sending, is not cut off before it reads the reply."""
    body = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received <= MAX_BODY_BYTES:
            body += chunk
        elif received > DRAIN_BYTES:
            break
    if received > MAX_BODY_BYTES:
        raise WireError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    paths = ["/hs/loyaltyservice/{method}", "/{prefix:path}/hs/loyaltyservice/{method}"]
    for path in paths:
        for suffix in ("", "/"):
            router.add_api_route(path + suffix, handle, methods=["GET", "POST"], response_class=Response)
    return router

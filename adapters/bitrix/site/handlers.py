"""What each site event does. Every handler takes the service, the site's client id and the
event's ``data`` and returns the JSON-ready result; every write runs under an idempotency key
derived from the event's content, so a retry (under a new event id) changes nothing twice."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from adapters.bitrix.config import SiteConfig
from adapters.bitrix.site.payloads import CartData, Customer, HoldData, OrderData, UserData
from adapters.bitrix.site.snapshot import cart_lines, hold_tag, order_snapshot
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import (
    CalculateRequest,
    CancelRequest,
    CustomerResult,
    HoldRequest,
    LookupCustomerRequest,
    RegisterCustomerRequest,
)
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.idempotency import wait_out_in_flight
from gateway.ledger.phones import mask_phone
from gateway.ledger.service import LoyaltyService

log = logging.getLogger("adapters.bitrix.site")

T = TypeVar("T")
ALL_HOLD_STATES = ("open", "captured", "committed", "voided")


@dataclass(frozen=True)
class SiteCall:
    service: LoyaltyService
    cfg: SiteConfig
    client_id: str
    event_id: str


def _active_card(customer: CustomerResult) -> str:
    active = [c.card_number for c in customer.cards if c.status == "active"]
    if not active:
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, customer_id=customer.customer_id)
    return active[0]


def find_card(call: SiteCall, customer: Customer | None) -> str | None:
    """The customer's card: the one the site sent, else the active card of the customer with this
    phone or e-mail; None when the gateway does not know them."""
    if customer is None:
        return None
    if customer.card_number:
        return customer.card_number
    for field, value in (("phone", customer.phone), ("email", customer.email)):
        if not value:
            continue
        try:
            found = call.service.lookup_customer(call.client_id, LookupCustomerRequest.model_validate({field: value}))
        except LoyaltyError as exc:
            if exc.code == ErrorCode.CUSTOMER_NOT_FOUND:
                continue
            raise
        return _active_card(found)
    return None


def _require_card(call: SiteCall, customer: Customer) -> str:
    card = find_card(call, customer)
    if card is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, "no loyalty customer with this card, phone or e-mail")
    return card


def _dump(result: BaseModel) -> dict[str, Any]:
    return result.model_dump(mode="json")


def _release(call: SiteCall, hold_id: str) -> None:
    """Void a checkout hold (a no-op if it was resolved meanwhile)."""
    try:
        wait_out_in_flight(
            lambda: call.service.cancel(call.client_id, f"bitrix:hold-cancel:{hold_id}", CancelRequest(hold_id=hold_id))
        )
    except LoyaltyError as exc:
        if exc.code not in (ErrorCode.HOLD_ALREADY_RESOLVED, ErrorCode.HOLD_EXPIRED, ErrorCode.HOLD_NOT_FOUND):
            raise


# ---------------------------------------------------------------------------------------------


def calculate(call: SiteCall, data: dict[str, Any]) -> dict[str, Any]:
    cart = CartData.model_validate(data)
    card = find_card(call, cart.customer)
    request = CalculateRequest(
        lines=cart_lines(cart.lines),
        store=cart.store,
        card_number=card,
        promo_codes=list(cart.promo_codes),
        points_to_spend=cart.points_to_spend if card else 0,
    )
    return _dump(call.service.calculate(call.client_id, request))


def hold(call: SiteCall, data: dict[str, Any]) -> dict[str, Any]:
    """Reserve the points the new order is paid with (one open hold per order, tagged with it).

    A later call with other points replaces the hold; zero points release it. Once the order
    itself is known, its snapshots spend or give back the difference directly: no new hold."""
    req = HoldData.model_validate(data)
    service = call.service
    if service.get_order(call.client_id, req.order_id) is not None:
        return {"order_id": req.order_id, "hold": None, "order_known": True}
    card = _require_card(call, req.customer)
    tag = hold_tag(req.order_id)
    now = service.clock()
    open_holds = [h for h in service.find_holds(call.client_id, card, tag, ("open",)) if h.expires_at > now]
    if req.points_to_spend and open_holds and open_holds[0].points == req.points_to_spend:
        return {"order_id": req.order_id, "hold": _dump(open_holds[0]), "order_known": False}
    for stale in open_holds:
        _release(call, stale.hold_id)
    if not req.points_to_spend:
        return {"order_id": req.order_id, "hold": None, "order_known": False}
    previous = service.find_holds(call.client_id, card, tag, ALL_HOLD_STATES)
    generation = previous[0].hold_id if previous else "first"
    request = HoldRequest(
        card_number=card,
        points=req.points_to_spend,
        receipt_id=req.order_id,
        ttl_seconds=call.cfg.hold_ttl_seconds,
        tag=tag,
    )
    key = f"bitrix:hold:{req.order_id}:{generation}:{req.points_to_spend}"
    made = wait_out_in_flight(lambda: service.hold(call.client_id, key, request))
    log.info("site order %s: %d points held on the card", req.order_id, made.points)
    return {"order_id": req.order_id, "hold": _dump(made), "order_known": False}


def order(call: SiteCall, data: dict[str, Any]) -> dict[str, Any]:
    """Apply the order's snapshot (the ledger applies a version once and never goes back)."""
    req = OrderData.model_validate(data)
    service = call.service
    card = _require_card(call, req.customer)
    holds = service.find_holds(call.client_id, card, hold_tag(req.order_id), ALL_HOLD_STATES)
    snapshot = order_snapshot(req, card, holds[0].hold_id if holds else None)
    # The ledger is idempotent on (order, version) whatever the key; a key per event makes a
    # repeated snapshot answer with the order's current state (applied: false), not an old reply.
    key = f"bitrix:order:{req.order_id}:{snapshot.version}:{call.event_id}"
    result = wait_out_in_flight(lambda: service.apply_order(call.client_id, key, snapshot))
    if result.status == "cancelled" and holds and holds[0].status == "open":
        _release(call, holds[0].hold_id)  # cancelled before it spent anything: free the points now
    log.info(
        "site order %s v%d: %s (applied=%s, spent %d, pending %d, available %d)",
        req.order_id,
        req.version,
        result.status,
        result.applied,
        result.points_spent,
        result.points_pending,
        result.points_available,
    )
    return _dump(result)


def _referrer(call: SiteCall, referral_code: str) -> str | None:
    """The customer a referral code names (a card number or a phone: the phone is the card).
    An unknown one is dropped, not refused: the event comes from the site's queue after the user
    registered, and a mistyped code must not keep them from becoming a customer."""
    try:
        lookup = LookupCustomerRequest(card_number=referral_code)
        return call.service.lookup_customer(call.client_id, lookup).customer_id
    except LoyaltyError as exc:
        if exc.code not in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
            raise
        log.warning(
            "site user registration names an unknown referral code %s: registered without it", mask_phone(referral_code)
        )
        return None


def register(call: SiteCall, data: dict[str, Any]) -> dict[str, Any]:
    """The new site user becomes a customer (with a card and the welcome bonus); a user whose
    phone or e-mail already belongs to a customer is linked to that customer instead."""
    req = UserData.model_validate(data)
    service = call.service
    request = RegisterCustomerRequest(
        phone=req.phone,
        email=req.email,
        name=req.name,
        birth_date=req.birth_date,
        card_number=req.card_number,
        external_ref=f"bitrix-user:{req.user_id}",
        referrer_customer_id=_referrer(call, req.referrer_card) if req.referrer_card else None,
    )
    key = f"bitrix:user:{req.user_id}:{canonical_hash('bitrix-user', request)[:16]}"
    try:
        customer = wait_out_in_flight(lambda: service.register_customer(call.client_id, key, request))
    except LoyaltyError as exc:
        if exc.code != ErrorCode.CUSTOMER_ALREADY_EXISTS or not exc.details.get("customer_id"):
            raise
        lookup = LookupCustomerRequest(customer_id=str(exc.details["customer_id"]))
        customer = service.lookup_customer(call.client_id, lookup)
    log.info(
        "site user %s: customer %s (%s)",
        req.user_id,
        customer.customer_id,
        "registered" if customer.created else f"linked, phone {mask_phone(customer.phone)}",
    )
    return _dump(customer)


Handler = Callable[[SiteCall, dict[str, Any]], dict[str, Any]]

ORDER_EVENTS = (
    "OnSaleOrderSaved",
    "OnSaleOrderPaid",
    "OnSaleStatusOrderChange",
    "OnSaleOrderCanceled",
    "OnShipmentDeducted",
    "OnSaleShipmentDelivery",
    "OrderReturned",
)
HANDLERS: dict[str, Handler] = {
    "OnBeforeSaleOrderFinalAction": calculate,
    "OnSaleOrderBeforeSaved": hold,
    **{name: order for name in ORDER_EVENTS},
    "OnAfterUserRegister": register,
}

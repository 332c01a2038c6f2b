"""``ProcessRequest`` / ``ProcessRequestInfo``: every request read first, then each executed.

* ``ChequeRequest``: ``cheques.py``.
* ``BalanceRequest``: by ``Card/CardNumber`` or ``Card/MobilePhone``.
* ``BonusRequest`` with ``RequestReference`` (ours): releases the hold an earlier Soft cheque made,
  named by the ``TransactionID`` of its reply (as ``Rollback`` does).
* ``ContactInfoUpdateRequest`` (ours): registers the customer — flat fields or ``ContactID`` and
  ``Attribute`` Key/Value pairs; for a known card (or phone) it changes the customer's name,
  e-mail and birth date through the ledger's profile change, and a repeat changes nothing.

Business outcomes come back in the response (``ReturnCode`` 0 = ok, otherwise a number and a
Russian ``Message``), as Manzana clients expect; a message with any request that cannot be read is
a SOAP Fault, and then none of its requests was executed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from lxml import etree
from pydantic import ValidationError

from adapters.onec.soap import cheques, reading, replies
from adapters.onec.soap.cheques import Call
from adapters.onec.soap.reading import Node
from adapters.onec.soap.replies import el
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import (
    BalanceRequest,
    CancelRequest,
    CustomerResult,
    LookupCustomerRequest,
    RegisterCustomerRequest,
)
from contracts.profiles import UpdateCustomerRequest
from gateway.ledger.transaction_lookup import FoundTransaction
from gateway.soap_envelope import SoapFault, local

__all__ = ["Call", "process", "request_summary"]

Executor = Callable[[Call], etree._Element]


def _cheque(node: Node) -> Executor:
    read = reading.cheque(node)
    return lambda call: cheques.process(call, read)


def _balance(node: Node) -> Executor:
    request_id = reading.request_id(node)
    card_key = reading.card_key(node)
    if card_key is None:
        # Older clients of ours sent MobilePhone beside the Card.
        phone = node.child("MobilePhone")
        number = (phone.text("Number") or phone.own_text()) if phone is not None else None
        if number is None:
            raise SoapFault("validation_error", "BalanceRequest needs a Card (CardNumber or MobilePhone)")
        card_key = reading.CardKey(phone=number)

    def run(call: Call) -> etree._Element:
        try:
            card = cheques.resolve_card(call, card_key)
            assert card is not None
            balance = call.service.balance(call.client.id, BalanceRequest(card_number=card))
            if balance.card_status != "active":
                raise LoyaltyError(ErrorCode.CARD_BLOCKED, card_number=card)
        except LoyaltyError as failure:
            return replies.error("BalanceResponse", request_id, call.now, failure)
        reply = replies.ok("BalanceResponse", request_id, call.now, None)
        replies.balance_fields(reply, balance, call.service.program.point_value)
        if card_key.phone is not None:
            reply.append(el("Phone", card_key.phone))  # as Manzana answers a balance by phone
        return reply

    return run


def _bonus(node: Node) -> Executor:
    request_id = reading.request_id(node)
    reference = node.text("RequestReference")
    if not reference:
        raise SoapFault("validation_error", "BonusRequest needs the RequestReference of the Soft cheque")

    def run(call: Call) -> etree._Element:
        service = call.service
        try:
            held = _hold_of_request(call, reference)
            try:
                balance = service.cancel(
                    call.client.id, f"soap-bonus:{held.id}", CancelRequest(hold_id=held.id)
                ).balance
            except LoyaltyError as failure:
                if failure.code != ErrorCode.HOLD_ALREADY_RESOLVED:
                    raise
                balance = service.balance(call.client.id, BalanceRequest(card_number=held.card_number))
        except LoyaltyError as failure:
            return replies.error("BonusResponse", request_id, call.now, failure)
        reply = replies.ok("BonusResponse", request_id, call.now, held.id)
        replies.balance_fields(reply, balance, service.program.point_value)
        return reply

    return run


def _hold_of_request(call: Call, reference: str) -> FoundTransaction:
    """The hold a Soft cheque made, named by the ``TransactionID`` its reply gave."""
    prefix = replies.prefix_of(int(reference)) if reference.lstrip("-").isdigit() and len(reference) < 20 else None
    found = call.service.find_transaction(call.client.id, prefix) if prefix else None
    if found is None or found.kind != "hold":
        raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, f"no hold was made by transaction {reference}")
    return found


CONTACT_KEYS = {"mobilephone": "phone", "phone": "phone", "emailaddress": "email", "email": "email"}


def _contact(node: Node) -> Executor:
    request_id = reading.request_id(node)
    card_key = reading.card_key(node)
    values: dict[str, str | None] = {
        "phone": node.text("MobilePhone"),
        "email": node.text("EmailAddress"),
        "first": node.text("FirstName"),
        "last": node.text("LastName"),
        "birth": node.text("BirthDate"),
    }
    for attribute in node.children("Attribute"):
        key = (attribute.text("Key") or "").lower()
        target = CONTACT_KEYS.get(key) or {"firstname": "first", "lastname": "last", "birthdate": "birth"}.get(key)
        if target:
            values[target] = attribute.text("Value")
    name = " ".join(p for p in (values["first"], values["last"]) if p) or None
    birth = values["birth"]
    card = card_key.number if card_key else None
    try:
        registration = RegisterCustomerRequest(
            phone=values["phone"] or (card_key.phone if card_key else None),
            email=values["email"],
            name=name,
            birth_date=birth[:10] if birth else None,
            card_number=card,
        )
    except ValidationError as exc:
        raise SoapFault("validation_error", f"ContactInfoUpdateRequest: {exc.errors()[0]['msg']}") from exc

    def run(call: Call) -> etree._Element:
        tag = "ContactInfoUpdateResponse"
        try:
            if card is not None:
                try:
                    known = call.service.lookup_customer(call.client.id, LookupCustomerRequest(card_number=card))
                except LoyaltyError as failure:
                    if failure.code != ErrorCode.CARD_NOT_FOUND:
                        raise
                else:
                    _update_known(call, known, registration)
                    reply = replies.ok(tag, request_id, call.now, None)
                    reply.append(el("CardNumber", card))
                    reply.append(el("ContactID", known.customer_id))
                    return reply
            # Keyed by content: clients reuse RequestIDs.
            key = "soap-contact:" + hashlib.sha256(registration.model_dump_json().encode()).hexdigest()[:48]
            created = call.service.register_customer(call.client.id, key, registration)
        except LoyaltyError as failure:
            return replies.error(tag, request_id, call.now, failure)
        reply = replies.ok(tag, request_id, call.now, None)
        reply.append(el("CardNumber", created.cards[-1].card_number))
        reply.append(el("ContactID", created.customer_id))
        return reply

    return run


def _update_known(call: Call, known: CustomerResult, given: RegisterCustomerRequest) -> None:
    """What the message says differently of a known customer goes through ``update_customer``
    (one transaction, recorded in the customer's change history); fields it leaves out stay."""
    changes: dict[str, Any] = {}
    if given.name and given.name != known.name:
        changes["name"] = given.name
    if given.email and given.email.strip().lower() != known.email:
        changes["email"] = given.email
    if given.birth_date and given.birth_date != known.birth_date:
        changes["birth_date"] = given.birth_date
    if not changes:
        return
    update = UpdateCustomerRequest(customer_id=known.customer_id, **changes)
    # A fresh key per call: a key by content would swallow a change back to a value the customer
    # had before (A → B → A → B). Repeats are still safe — the patch sets absolute values, a
    # repeat finds nothing different and never gets here, and the ledger compares under the
    # account's lock.
    call.service.update_customer(call.client.id, f"soap-contact-update:{uuid.uuid4()}", update)


READERS: dict[str, tuple[str, Callable[[Node], Executor]]] = {
    "chequerequest": ("ChequeResponse", _cheque),
    "balancerequest": ("BalanceResponse", _balance),
    "bonusrequest": ("BonusResponse", _bonus),
    "contactinfoupdaterequest": ("ContactInfoUpdateResponse", _contact),
}
MAX_REQUESTS = 20


def _requests(operation: etree._Element, batched: bool) -> list[etree._Element]:
    request = Node(operation).child("request")
    if request is not None and batched:
        request = request.child("Requests")
    if request is None:
        raise SoapFault("validation_error", "ProcessRequest needs a request with at least one element")
    found = [c for c in request.element if isinstance(c.tag, str)]
    if not found:
        raise SoapFault("validation_error", "ProcessRequest needs a request with at least one element")
    if len(found) > MAX_REQUESTS:
        raise SoapFault("validation_error", f"at most {MAX_REQUESTS} requests per message")
    return found


def process(call: Call, operation: etree._Element) -> etree._Element:
    """Every request answered in order; all are read before any is executed."""
    batched = local(operation) == "ProcessRequestInfo"
    executors: list[Executor] = []
    for child in _requests(operation, batched):
        reader = READERS.get(local(child).lower())
        if reader is None:
            raise SoapFault("validation_error", f"unknown request {local(child)!r}")
        executors.append(reader[1](Node(child)))
    results = [execute(call) for execute in executors]
    if batched:
        return el(
            "ProcessRequestInfoResponse", None, el("ProcessRequestInfoResult", None, el("Responses", None, *results))
        )
    return el("ProcessRequestResponse", None, el("ProcessRequestResult", None, *results))


def request_summary(operation: etree._Element) -> dict[str, Any]:
    """For logs: which requests, without card numbers or phones."""
    try:
        return {"requests": [local(c) for c in _requests(operation, local(operation) == "ProcessRequestInfo")]}
    except SoapFault:
        return {"requests": []}

"""Processing of stored Bitrix24 events (the outbox deliverer of destination ``bitrix24``).

A contact event fetches the whole contact (``crm.contact.get``) with the REST client and makes
sure the person is a loyalty customer: found by phone, e-mail or card number, or else
registered (with the card from the configured user field, if any). An existing customer takes
the contact's name, e-mail and birth date through the ledger's profile change (``update_customer``,
recorded in the customer's change history); the phone stays, as it is how the customer is found.
Every registration or change runs under a key derived from the portal, the contact and what it
writes, so a redelivered message never registers or records twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.bitrix.b24.client import Bitrix24Client, Bitrix24Error
from adapters.bitrix.config import Bitrix24Config, PortalConfig
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import CustomerResult, LookupCustomerRequest, RegisterCustomerRequest
from contracts.profiles import UpdateCustomerRequest
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.phones import mask_phone, normalize_phone
from gateway.ledger.service import LoyaltyService
from gateway.outbound.relay import PermanentDeliveryError, RetryableDeliveryError
from gateway.store.models import OutboxMessage
from gateway.store.models_bitrix import Bitrix24Event

log = logging.getLogger("adapters.bitrix.b24")


@dataclass(frozen=True)
class Contact:
    id: str
    name: str | None
    phones: list[str]
    emails: list[str]
    birth_date: date | None
    card_number: str | None


def _values(multifield: Any) -> list[str]:
    """``PHONE``/``EMAIL`` are lists of ``{"VALUE": …, "VALUE_TYPE": …}``."""
    if not isinstance(multifield, list):
        return []
    return [str(item["VALUE"]).strip() for item in multifield if isinstance(item, dict) and item.get("VALUE")]


def _birth_date(value: Any) -> date | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def parse_contact(raw: dict[str, Any], card_field: str | None) -> Contact:
    parts = [raw.get(k) for k in ("NAME", "SECOND_NAME", "LAST_NAME")]
    name = " ".join(str(p).strip() for p in parts if p and str(p).strip()) or None
    card = raw.get(card_field) if card_field else None
    if isinstance(card, list):  # a multiple user field
        card = card[0] if card else None
    return Contact(
        id=str(raw.get("ID", "")),
        name=name[:256] if name else None,
        phones=_values(raw.get("PHONE")),
        emails=_values(raw.get("EMAIL")),
        birth_date=_birth_date(raw.get("BIRTHDATE")),
        card_number=(str(card).strip() or None) if card else None,
    )


def _first_phone(phones: list[str]) -> str | None:
    for raw in phones:
        try:
            return normalize_phone(raw)
        except LoyaltyError:
            continue
    return None


def _first_email(emails: list[str]) -> str | None:
    for raw in emails:
        try:
            RegisterCustomerRequest(email=raw.lower())
        except ValueError:
            continue
        return raw.lower()
    return None


def _existing(service: LoyaltyService, client_id: str, keys: list[tuple[str, str]]) -> CustomerResult | None:
    for field, value in keys:
        try:
            return service.lookup_customer(client_id, LookupCustomerRequest.model_validate({field: value}))
        except LoyaltyError as exc:
            if exc.code not in (ErrorCode.CUSTOMER_NOT_FOUND, ErrorCode.CARD_NOT_FOUND):
                raise
    return None


def sync_contact(
    service: LoyaltyService, portal: PortalConfig, client: Bitrix24Client, contact_id: str
) -> tuple[str, str]:
    """Make the contact a customer; returns (status, detail) for the event's record."""
    raw = client.call("crm.contact.get", {"id": contact_id})
    if not isinstance(raw, dict):
        return "failed", "crm.contact.get returned no contact"
    contact = parse_contact(raw, portal.card_field)
    phone = _first_phone(contact.phones)
    email = _first_email(contact.emails)
    card = contact.card_number
    keys = [(f, v) for f, v in (("phone", phone), ("email", email), ("card_number", card)) if v]
    if not keys:
        return "ignored", "the contact has no phone, e-mail or card number"
    found = _existing(service, portal.client, keys)
    if found is not None:
        return _update(service, portal, contact, email, found)
    request = RegisterCustomerRequest(
        phone=phone,
        email=email,
        name=contact.name,
        birth_date=contact.birth_date,
        card_number=card,
        external_ref=f"b24:{portal.member_id}:contact:{contact_id}"[:128],
    )
    key = f"b24:{portal.member_id}:contact:{contact_id}:{canonical_hash('b24-contact', request)[:16]}"
    try:
        customer = service.register_customer(portal.client, key, request)
    except LoyaltyError as exc:
        if exc.code == ErrorCode.CUSTOMER_ALREADY_EXISTS:
            return "processed", f"already a customer: {exc.details.get('customer_id', '')}"
        raise
    log.info(
        "Bitrix24 contact %s registered as customer %s (phone %s)", contact_id, customer.customer_id, mask_phone(phone)
    )
    return "processed", f"registered: {customer.customer_id}"


def _update(
    service: LoyaltyService, portal: PortalConfig, contact: Contact, email: str | None, found: CustomerResult
) -> tuple[str, str]:
    """Copy what the contact changed onto the customer; what the contact leaves empty stays."""
    changes: dict[str, Any] = {}
    if contact.name and contact.name != found.name:
        changes["name"] = contact.name
    if email and email != found.email:
        changes["email"] = email
    if contact.birth_date and contact.birth_date != found.birth_date:
        changes["birth_date"] = contact.birth_date
    if not changes:
        return "processed", f"already a customer: {found.customer_id}"
    request = UpdateCustomerRequest(customer_id=found.customer_id, **changes)
    # A fresh key per delivery: a key by content would swallow a change back to a value the
    # contact had before (A → B → A → B). A redelivery is still safe: the patch sets absolute
    # values, so it finds nothing different and never gets here.
    key = f"b24:{portal.member_id}:contact:{contact.id}:update:{uuid.uuid4()}"
    try:
        result = service.update_customer(portal.client, key, request)
    except LoyaltyError as exc:
        if exc.code == ErrorCode.CUSTOMER_ALREADY_EXISTS:  # the e-mail belongs to another customer
            return "failed", f"e-mail taken by customer {exc.details.get('customer_id', '')}"
        raise
    return "processed", f"updated: {found.customer_id} ({', '.join(result.changed) or 'no change'})"


class Bitrix24Deliverer:
    """``Deliverer`` of the outbox destination ``bitrix24``."""

    def __init__(self, service: LoyaltyService, section: Bitrix24Config, clients: dict[str, Bitrix24Client]) -> None:
        self.service = service
        self.section = section
        self.clients = clients

    def _finish(self, row_id: int, status: str, detail: str) -> None:
        with self.service.db.write() as session:
            row = session.get(Bitrix24Event, row_id)
            if row is None:
                return
            row.status = status
            row.detail = detail[:1000]
            row.processed_at = self.service.clock() if status not in ("queued", "processing") else None
            session.add(row)

    def __call__(self, message: OutboxMessage) -> None:
        data: dict[str, Any] = json.loads(message.payload_json)["data"]
        row_id = int(data["row"])
        portal = self.section.portal(str(data["member_id"]))
        client = self.clients.get(str(data["member_id"]))
        if portal is None or client is None:
            self._finish(row_id, "failed", "the portal is no longer configured")
            raise PermanentDeliveryError(f"portal {data['member_id']!r} is not configured")
        # From now on a new call about this contact gets a row of its own: what it changed may
        # not be in what we are about to fetch.
        self._finish(row_id, "processing", f"attempt {message.attempts}")
        try:
            status, detail = sync_contact(self.service, portal, client, str(data["id"]))
        except Bitrix24Error as exc:
            if exc.not_found:
                self._finish(row_id, "ignored", "the contact no longer exists")
                return
            if exc.retryable:
                self._finish(row_id, "queued", f"will retry: {exc}")
                raise RetryableDeliveryError(str(exc)) from exc
            self._finish(row_id, "failed", str(exc))
            raise PermanentDeliveryError(str(exc)) from exc
        except LoyaltyError as exc:
            if exc.code == ErrorCode.IDEMPOTENCY_IN_FLIGHT:
                raise RetryableDeliveryError(exc.message) from exc
            self._finish(row_id, "failed", f"{exc.code.value}: {exc.message}")
            raise PermanentDeliveryError(f"{exc.code.value}: {exc.message}") from exc
        self._finish(row_id, status, detail)

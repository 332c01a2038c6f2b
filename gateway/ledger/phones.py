"""Phone numbers: normalized to E.164 (Russia by default, so ``8 912 …`` becomes ``+7912…``)
and masked wherever they could reach a log."""

from __future__ import annotations

import re

import phonenumbers
from sqlalchemy import case
from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, LoyaltyError
from gateway.store.models import Card, Customer

# What a person types for a phone: digits with an optional leading ``+`` and the usual
# separators. Anything else (letters, a 13-digit EAN card number) is never read as a phone.
_PHONE_LIKE = re.compile(r"^\+?[\d\s\-()]{10,20}$")


def normalize_phone(raw: str, region: str = "RU") -> str:
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "phone: not a phone number", field="phone") from exc
    if not phonenumbers.is_possible_number(number):
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "phone: not a possible phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str | None) -> str:
    """``+79123456789`` -> ``+7912***6789``: enough to tell customers apart in a log, no more."""
    if not phone:
        return ""
    if len(phone) <= 6:
        return "***"
    return phone[:4] + "***" + phone[-4:]


def phone_in_card_field(raw: str, region: str = "RU") -> str | None:
    """The E.164 phone a card number field holds, when it holds one in a common notation
    (``+7 912 345-67-89``, ``89123456789``, ``79123456789``, ``9123456789``), else None."""
    if not _PHONE_LIKE.match(raw.strip()):
        return None
    digits = re.sub(r"\D", "", raw)
    if not 10 <= len(digits) <= 15:
        return None
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def card_for_phone(session: Session, raw: str) -> Card | None:
    """The card a phone typed as the card number stands for (the phone is the card): a card
    whose number is that phone (``79123456789`` or ``89123456789``), else the card of the
    customer with that phone — an active one first, the newest of those."""
    phone = phone_in_card_field(raw)
    if phone is None:
        return None
    numbers = [phone.lstrip("+")]
    if phone.startswith("+7"):
        numbers.append("8" + phone[2:])  # the Russian trunk form, as tills print it
    for number in numbers:
        if number != raw:
            card = session.get(Card, number)
            if card is not None:
                return card
    active_first = case((col(Card.status) == "active", 0), else_=1)
    return session.exec(
        select(Card)
        .join(Customer, col(Customer.id) == col(Card.customer_id))
        .where(col(Customer.phone) == phone, col(Customer.merged_into).is_(None))
        .order_by(active_first, col(Card.created_at).desc(), col(Card.number))
        .limit(1)
    ).first()

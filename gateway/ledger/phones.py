"""Phone numbers: normalized to E.164 (Russia by default, so ``8 912 …`` becomes ``+7912…``)
and masked wherever they could reach a log."""

from __future__ import annotations

import phonenumbers

from contracts.errors import ErrorCode, LoyaltyError


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

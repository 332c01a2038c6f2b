"""A mailing's text: the template filled for one customer, the unsubscribe footer advertising
carries, and how many SMS parts (what an SMS costs) a text takes."""

from __future__ import annotations

from typing import Any

from gateway.mailings.config import Channel

# The GSM 03.38 default alphabet (and its extension table, two septets each): an SMS in it holds
# 160 characters (153 per part when split); any other character makes the message UCS-2, 70
# characters (67 per part) — every Cyrillic SMS is UCS-2.
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€")

# What the preview fills a template with to count SMS parts: as long as real values tend to be.
SAMPLE = {
    "name": "Александра",
    "card": "2900000000000",
    "balance": 12345,
    "promo_code": "SALE-ABCD-EFGH-JK",
    "gift_points": 500,
    "gift_expires": "31.12.2026",
}


def sms_parts(text: str) -> int:
    if all(ch in _GSM or ch in _GSM_EXTENDED for ch in text):
        septets = len(text) + sum(1 for ch in text if ch in _GSM_EXTENDED)
        return 1 if septets <= 160 else -(-septets // 153)
    units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
    return 1 if units <= 70 else -(-units // 67)


def full_template(template: str, *, advertising: bool, channel: Channel, footers: dict[Channel, str]) -> str:
    """The template with the unsubscribe footer when advertising does not show its link itself."""
    if not advertising or "{unsubscribe_url}" in template:
        return template
    footer = footers.get(channel, "Отписаться: {unsubscribe_url}")
    return f"{template} {footer}" if channel == "sms" else f"{template}{footer}"


def render(template: str, values: dict[str, Any]) -> str:
    return template.format(**values)


def parts_of(channel: Channel, template: str, unsubscribe_url_length: int) -> int:
    """SMS parts of a typical message of this template (e-mail: 1)."""
    if channel != "sms":
        return 1
    sample = render(template, {**SAMPLE, "unsubscribe_url": "h" * unsubscribe_url_length})
    return sms_parts(sample)

"""The card as a picture a till's scanner reads: EAN-13 when the card number is one (as the
demo cards and most printed plastic cards are), Code 128 for any other number."""

from __future__ import annotations

from io import BytesIO

from barcode import EAN13, Code128  # type: ignore[import-untyped]  # python-barcode ships no types
from barcode.base import Barcode  # type: ignore[import-untyped]
from barcode.writer import ImageWriter  # type: ignore[import-untyped]

# Modules 0.33 mm wide at 300 dpi are 4 pixels: a phone screen shows them sharply and a hand
# scanner reads them at arm's length; the quiet zone is EAN's own minimum (11 modules).
_OPTIONS = {"module_width": 0.33, "module_height": 18.0, "quiet_zone": 4.0, "font_size": 8, "text_distance": 3.0}


def _is_ean13(number: str) -> bool:
    if len(number) != 13 or not number.isdigit():
        return False
    digits = [int(ch) for ch in number]
    checksum = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12])) % 10) % 10
    return checksum == digits[12]


def card_barcode_png(card_number: str) -> bytes:
    """A PNG of the card number's barcode (with the number printed under it)."""
    code: Barcode
    if _is_ean13(card_number):
        code = EAN13(card_number[:12], writer=ImageWriter())
    else:
        code = Code128(card_number, writer=ImageWriter())
    out = BytesIO()
    code.write(out, options=dict(_OPTIONS))
    return out.getvalue()

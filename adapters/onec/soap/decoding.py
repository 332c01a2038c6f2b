"""A SOAP message in any encoding, as UTF-8 for the parser — after the DTD check.

``gateway.xmlsafe`` looks for ``<!DOCTYPE`` in the raw bytes, which sees nothing in UTF-16,
UTF-32 or UTF-7 text. Here the body is decoded first (byte-order mark, then the XML declaration,
then the HTTP charset, else UTF-8), the check runs on the text, and the parser gets UTF-8 without
a declaration, so it never guesses an encoding of its own.
"""

from __future__ import annotations

import codecs
import re

from gateway.xmlsafe import UnsafeXml

_DOCTYPE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._\-]+)", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NUL_PATTERNS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)


def _encoding(body: bytes, content_type: str | None) -> str:
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    for pattern, name in _NUL_PATTERNS:
        if body.startswith(pattern):
            return name
    declared = _DECLARED.match(body[:256])
    if declared:
        return declared.group(1).decode("ascii")
    match = _CHARSET.search(content_type or "")
    return match.group(1) if match else "utf-8"


def to_utf8(body: bytes, content_type: str | None) -> bytes:
    """The body as UTF-8 without an XML declaration; refused if it carries a DTD in any encoding."""
    encoding = _encoding(body, content_type)
    try:
        text = body.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise UnsafeXml(f"cannot decode the message as {encoding}") from exc
    if _DOCTYPE.search(text):
        raise UnsafeXml("DTDs and entity declarations are not accepted")
    return _DECLARATION.sub("", text, count=1).encode("utf-8")

"""Parsing XML from the network without trusting it.

No DTDs (any ``<!DOCTYPE`` is refused before parsing, which stops XXE and billion-laughs alike),
no entity resolution, no network access, a bounded size and nesting depth, comments and
processing instructions dropped. Declared encodings (windows-1251 included) are honoured.
Shared by every adapter that reads XML from the network (SOAP, CommerceML).
"""

from __future__ import annotations

import re

from lxml import etree

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_\-]+)", re.IGNORECASE)


class UnsafeXml(ValueError):
    """The document is refused: too big, too deep, malformed, or carrying a DTD."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _depth(element: etree._Element, limit: int) -> None:
    stack = [(element, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise UnsafeXml(f"nesting deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in node)


def parse(
    body: bytes, content_type: str | None = None, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> etree._Element:
    if len(body) > max_bytes:
        raise UnsafeXml(f"message larger than {max_bytes} bytes")
    if _DOCTYPE.search(body):
        raise UnsafeXml("DTDs and entity declarations are not accepted")
    stripped = body.lstrip()
    if content_type and not stripped.startswith((b"<?xml", b"\xef\xbb\xbf")):
        # No XML declaration: the HTTP charset is the only word on the encoding.
        match = _CHARSET.search(content_type)
        if match and match.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
            try:
                body = body.decode(match.group(1)).encode("utf-8")
            except (LookupError, UnicodeDecodeError) as exc:
                raise UnsafeXml(f"cannot decode the body as {match.group(1)}") from exc
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"malformed XML: {exc.msg}") from exc
    if root is None:
        raise UnsafeXml("empty document")
    _depth(root, max_depth)
    return root

"""Parsing XML from the network without trusting it.

No DTDs (any ``<!DOCTYPE`` is refused before parsing, which stops XXE and billion-laughs alike),
no entity resolution, no network access, a bounded size and nesting depth, comments and
processing instructions dropped. Declared encodings (windows-1251 included) are honoured.
Shared by every adapter that reads XML from the network (SOAP, CommerceML).

``parse`` reads a small message at once; ``iter_children`` streams a large document (a CommerceML
exchange file of many megabytes) chunk by chunk and hands out the root's children one at a time,
freeing each after use, so memory stays bounded by one chunk and the largest child, not the file.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator

from lxml import etree

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class UnsafeXml(ValueError):
    """The document is refused: too big, too deep, malformed, or carrying a DTD."""


# A message is decoded before the DTD check (byte-order mark, then the XML declaration, then the
# HTTP charset, else UTF-8): a ``<!DOCTYPE`` in UTF-16, UTF-32 or UTF-7 text has no ASCII bytes to
# find. The parser then gets UTF-8 without a declaration, so it never guesses an encoding itself.
_TEXT_DOCTYPE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
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
    if _TEXT_DOCTYPE.search(text):
        raise UnsafeXml("DTDs and entity declarations are not accepted")
    return _DECLARATION.sub("", text, count=1).encode("utf-8")


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
    body = to_utf8(body, content_type)
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"malformed XML: {exc.msg}") from exc
    if root is None:
        raise UnsafeXml("empty document")
    _depth(root, max_depth)
    return root


STREAM_MAX_BYTES = 512 * 1024 * 1024
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_OVERLAP = 16  # bytes of the previous chunk kept to find a DOCTYPE split across two chunks


def _pull_parser() -> etree.XMLPullParser:
    return etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def iter_children(
    chunks: Iterable[bytes], *, max_bytes: int = STREAM_MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Iterator[etree._Element]:
    """Stream a document and yield each child of its root element once it is complete.

    The same refusals as ``parse`` apply to the whole stream (a DTD or entity declaration
    anywhere, more than ``max_bytes``, nesting deeper than ``max_depth``, malformed XML, and
    UTF-16, which the DTD scan could not see through). A yielded element is valid until the
    next one is requested; it is then removed from the tree. The root (``child.getparent()``)
    keeps its attributes."""
    parser = _pull_parser()
    total = 0
    depth = 0
    tail = b""
    first = True
    try:
        for chunk in chunks:
            if not chunk:
                continue
            if first:
                if chunk.startswith(_UTF16_BOMS):
                    raise UnsafeXml("UTF-16 documents are not accepted: use UTF-8 or windows-1251")
                first = False
            total += len(chunk)
            if total > max_bytes:
                raise UnsafeXml(f"document larger than {max_bytes} bytes")
            if _DOCTYPE.search(tail + chunk):
                raise UnsafeXml("DTDs and entity declarations are not accepted")
            tail = chunk[-_OVERLAP:]
            parser.feed(chunk)
            for event, element in parser.read_events():
                if not isinstance(element, etree._Element):  # pragma: no cover - only start-ns events
                    continue
                if event == "start":
                    depth += 1
                    if depth > max_depth:
                        raise UnsafeXml(f"nesting deeper than {max_depth} levels")
                    continue
                depth -= 1
                if depth == 1:
                    yield element
                    parent = element.getparent()
                    element.clear()
                    element.tail = None
                    if parent is not None:
                        parent.remove(element)
        if first:
            raise UnsafeXml("empty document")
        root = parser.close()
        if root is None:  # pragma: no cover - close() raises on an incomplete document
            raise UnsafeXml("empty document")
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"malformed XML: {exc.msg}") from exc

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

import re
from collections.abc import Iterable, Iterator

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

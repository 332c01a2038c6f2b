"""An HTTP/1.1 server protocol that accepts request targets as 1C writes them.

1C's loyalty client concatenates query values without URL-encoding them, so a request line can
carry raw UTF-8 (Cyrillic names) or spaces: ``GET /hs/loyaltyservice/issueclientcard?Client=Иван
Петров HTTP/1.1``. Strict parsers (httptools, h11) answer 400 to that. This protocol rewrites
the request line before the parser sees it, percent-encoding exactly the bytes a URL may not
contain (bytes >= 0x80, spaces, controls, ``"<>\\^`{|}``); everything else, ``+`` included,
passes through untouched. The query parser of the 1C adapter decodes ``%XX`` back to the same
bytes, so the application sees what 1C meant. Only the request line is touched: headers and
bodies are parsed as strictly as before.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_REQUEST_LINE = 64 * 1024
_UNSAFE = frozenset(b'"<>\\^`{|}')


def _encode_target(target: bytes) -> bytes:
    out = bytearray()
    for byte in target:
        if byte >= 0x80 or byte <= 0x20 or byte == 0x7F or byte in _UNSAFE:
            out += b"%%%02X" % byte
        else:
            out.append(byte)
    return bytes(out)


def rewrite_request_line(line: bytes) -> bytes:
    """``METHOD <raw target> HTTP/x.y\\r\\n`` -> the same line with a valid target."""
    body = line.rstrip(b"\r\n")
    ending = line[len(body) :]
    method, sep, rest = body.partition(b" ")
    target, sep2, version = rest.rpartition(b" ")
    if not sep or not sep2 or not version.startswith(b"HTTP/") or not method.isalpha():
        return line  # not a request line we understand: let the parser reject it
    return method + b" " + _encode_target(target) + b" " + version + ending


class TolerantHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the request-line rewrite above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending_line = b""
        self._between_messages = True

    def on_message_begin(self) -> None:
        self._between_messages = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._between_messages = True

    def data_received(self, data: bytes) -> None:
        if self._between_messages or self._pending_line:
            data = self._pending_line + data
            start = len(data) - len(data.lstrip(b"\r\n"))  # blank lines before a request are allowed
            end = data.find(b"\n", start)
            if end < 0 and len(data) < MAX_REQUEST_LINE:
                self._pending_line = data  # wait for the whole request line
                return
            self._pending_line = b""
            if end >= 0:
                data = data[:start] + rewrite_request_line(data[start : end + 1]) + data[end + 1 :]
        super().data_received(data)

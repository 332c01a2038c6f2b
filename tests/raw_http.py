"""A raw HTTP/1.1 client for sending requests exactly as 1C writes them (unencoded query values,
raw UTF-8 bytes in the request target, JSON bodies on GET) — which httpx would normalize."""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), (self.status, self.body)
        return json.loads(self.body)


def basic_header(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def raw_request(
    base_url: str,
    method: str,
    target: str | bytes,
    *,
    auth: str | None,
    body: bytes | None = None,
    content_type: str = "application/json; charset=utf-8",
) -> RawResponse:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw_target = target if isinstance(target, bytes) else target.encode("utf-8")  # raw bytes, unencoded
    lines = [
        f"Host: {host}:{port}",
        "Connection: close",
        "User-Agent: 1C+Enterprise/8.3",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    head = method.encode() + b" " + raw_target + b" HTTP/1.1\r\n" + ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(head + (body or b""))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    header_blob, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = header_blob.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    return RawResponse(status=int(status_line.split()[1]), headers=headers, body=payload)

"""Helpers of the security tests (tests/test_security_*.py): a configuration with a second till
client and one granted gift-certificate issue, and their credentials."""

from __future__ import annotations

from gateway.config import DEMO_CONFIG, ClientConfig, GatewayConfig, load_config
from tests.support import basic

OTHER_TILL = basic("касса-2", "other-till-password")
CASHDESK = basic("cashdesk", "cashdesk-password")  # a till granted gift_cards.issue
ERP = basic("erp", "demo-erp")


def two_tills_config() -> GatewayConfig:
    """The demo configuration plus a second till fleet and a till allowed to issue certificates."""
    config = load_config(DEMO_CONFIG)
    extra = [
        ClientConfig(id="tills-2", kind="till", login="касса-2", password="other-till-password"),
        ClientConfig(
            id="cashdesk", kind="till", login="cashdesk", password="cashdesk-password", grants=["gift_cards.issue"]
        ),
    ]
    return config.model_copy(update={"clients": [*config.clients, *extra]})


def head_only(base_url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """Send a request's head (and ``body``, possibly less than it declares) and read the answer:
    a limit checked before the body is read answers without waiting for the rest."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head + body)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]

"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests and benchmarks
of the e-mail channel.

aiosmtpd implements the server side of RFC 5321 with STARTTLS (RFC 3207), implicit TLS and AUTH
(RFC 4954; https://aiosmtpd.aio-libs.org/en/latest/smtp.html). The mailbox answers RCPT for the
addresses it is told to refuse with the reply given (``550 5.1.1 …`` permanent, ``451 4.3.0 …``
transient), as a real server does for an unknown or over-quota mailbox.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


@dataclass
class Mailbox:
    refuse: dict[str, str] = field(default_factory=dict)  # address -> the RCPT reply
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, session.ssl is not None, login)
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [r.message for r in self.messages if address in r.rcpt_tos]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


@contextmanager
def smtp_server(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    logins: dict[str, str] | None = None,
) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1: plain, with STARTTLS required, or TLS from the first byte;
    with ``logins`` it requires AUTH (LOGIN/PLAIN) with one of them."""
    mailbox = Mailbox()
    kwargs: dict[str, Any] = {}
    if logins is not None:

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and logins.get(data.login.decode()) == data.password.decode()
            return AuthResult(success=ok, handled=False, auth_data=data)

        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=starttls is not None)
    if starttls is not None:
        kwargs.update(tls_context=starttls, require_starttls=True)
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=implicit_tls, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, mailbox)
    finally:
        controller.stop()

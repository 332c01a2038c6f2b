"""E-mail over SMTP (RFC 5321), a ``MessageProvider`` beside the SMS and Telegram ones.

The connection is plain, upgraded with STARTTLS (RFC 3207) or TLS from the first byte ("SSL",
port 465, RFC 8314), with an optional AUTH login; the credentials come from the configuration
file's ``${ENV}`` references, never the file itself. An advertising message carries
``List-Unsubscribe`` with its unsubscribe link and ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 2369, RFC 8058: the mail client POSTs to the link).

Who a message goes to is not in the outgoing message (the cascade knows phones): the provider
asks ``envelope_of`` — built by the composition root — for the address, subject and link.

Reply codes (RFC 5321 §4.2.1): 4yz are transient (retry later), 5yz permanent (this provider
will never deliver it); a dropped connection or a timeout is transient. A server does not dedupe,
so after an unknown outcome the cascade does not send the same message again through it.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Literal

from gateway.core.messaging import OutgoingMessage, RetryableSendError, SendResult, TerminalSendError

Security = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    from_address: str
    from_name: str | None = None
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = None  # None: the system's trusted CAs, host name checked


@dataclass(frozen=True)
class EmailEnvelope:
    """Where a message goes and what goes around its text."""

    to: str
    subject: str
    unsubscribe_url: str | None = None


EnvelopeOf = Callable[[OutgoingMessage], EmailEnvelope | None]


def mask_email(address: str) -> str:
    """``ivan.petrov@example.ru`` -> ``i***@example.ru``: enough to tell apart in a log."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


class SmtpProvider:
    name = "smtp"
    dedupes = False

    def __init__(self, settings: SmtpSettings, envelope_of: EnvelopeOf) -> None:
        self.settings = settings
        self.envelope_of = envelope_of
        self._domain = settings.from_address.rpartition("@")[2] or "localhost"

    def build(self, message: OutgoingMessage, envelope: EmailEnvelope) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = formataddr((self.settings.from_name or "", self.settings.from_address))
        mail["To"] = envelope.to
        mail["Subject"] = envelope.subject
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        # Our stable id: a retry that does go out twice is one thread, recognisable as the same.
        mail["Message-ID"] = f"<{message.message_id.replace(':', '.')}@{self._domain}>"
        if envelope.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{envelope.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(message.text)
        return mail

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = s.tls_context or ssl.create_default_context()
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        if s.security == "starttls":
            smtp.starttls(context=context)
        return smtp

    def send(self, message: OutgoingMessage) -> SendResult:
        envelope = self.envelope_of(message)
        if envelope is None:
            raise TerminalSendError(self.name, "the customer has no e-mail address")
        mail = self.build(message, envelope)
        try:
            with self._connect() as smtp:
                if self.settings.username:
                    try:
                        smtp.login(self.settings.username, self.settings.password or "")
                    except UnicodeEncodeError as exc:  # smtplib sends AUTH in ASCII only
                        raise TerminalSendError(self.name, "the SMTP login or password is not ASCII") from exc
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            self._fail(code, f"recipient {mask_email(envelope.to)} refused: {reply!r}")
        except smtplib.SMTPAuthenticationError as exc:
            raise TerminalSendError(self.name, f"login refused: {exc.smtp_code}") from exc
        except smtplib.SMTPResponseException as exc:
            self._fail(exc.smtp_code, f"{exc.smtp_code} {exc.smtp_error!r}")
        except smtplib.SMTPServerDisconnected as exc:
            raise RetryableSendError(self.name, f"disconnected: {exc}") from exc
        except smtplib.SMTPException as exc:  # e.g. no STARTTLS offered: a setup mistake, not a blip
            raise TerminalSendError(self.name, f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # refused, unreachable, timed out, a TLS failure
            raise RetryableSendError(self.name, f"{type(exc).__name__}: {exc}") from exc
        if refused:  # pragma: no cover - one recipient: refused means SMTPRecipientsRefused
            raise TerminalSendError(self.name, f"recipient {mask_email(envelope.to)} refused")
        return SendResult(self.name, str(mail["Message-ID"]))

    def _fail(self, code: int, reason: str) -> None:
        if 400 <= code < 500:
            raise RetryableSendError(self.name, reason)
        raise TerminalSendError(self.name, reason)

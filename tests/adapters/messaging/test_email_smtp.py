"""The SMTP e-mail provider against a real SMTP server on loopback (aiosmtpd, ``testing/mail.py``):
plain, STARTTLS with a login, TLS from the first byte; the List-Unsubscribe header of RFC 2369 /
RFC 8058; 4yz replies retryable, 5yz terminal (RFC 5321 §4.2.1)."""

from __future__ import annotations

import ssl

import pytest
import trustme

from adapters.email.smtp import EmailEnvelope, SmtpProvider, SmtpSettings, mask_email
from gateway.core.messaging import OutgoingMessage, RetryableSendError, TerminalSendError
from testing.mail import smtp_server

TEXT = "Анна, скидка 15 % на краски до воскресенья. Отписаться: https://shop.example/u/abc"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def message(ident: str = "m:1234567890abcdef:cust-1") -> OutgoingMessage:
    return OutgoingMessage(message_id=ident, phone="+79990000001", text=TEXT)


def envelope(to: str = "anna@example.ru", link: str | None = "https://shop.example/u/abc") -> EmailEnvelope:
    return EmailEnvelope(to=to, subject="Скидка на краски", unsubscribe_url=link)


def provider(settings: SmtpSettings, found: EmailEnvelope | None) -> SmtpProvider:
    return SmtpProvider(settings, lambda _message: found)


def test_a_message_arrives_in_utf8_with_its_subject_sender_and_one_click_unsubscribe() -> None:
    with smtp_server(logins=None, starttls=None) as server:
        settings = SmtpSettings(server.host, server.port, "news@shop.example", "Строймаркет", security="none")
        result = provider(settings, envelope()).send(message())
        [received] = server.mailbox.messages
    mail = received.message
    assert received.rcpt_tos == ["anna@example.ru"]
    assert received.mail_from == "news@shop.example"
    assert mail["Subject"] == "Скидка на краски"
    assert "Строймаркет" in str(mail["From"])
    assert mail.get_content().strip() == TEXT
    assert mail["List-Unsubscribe"] == "<https://shop.example/u/abc>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"] == "<m.1234567890abcdef.cust-1@shop.example>"
    assert result.provider == "smtp" and result.provider_message_id == mail["Message-ID"]


def test_a_service_message_has_no_unsubscribe_header() -> None:
    with smtp_server() as server:
        settings = SmtpSettings(server.host, server.port, "news@shop.example", security="none")
        provider(settings, envelope(link=None)).send(message())
        [received] = server.mailbox.messages
    assert received.message["List-Unsubscribe"] is None


def test_starttls_with_a_login_encrypts_before_the_password_is_sent(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    with smtp_server(starttls=server_context, logins={"shop": "s3cret-Pass"}) as server:
        settings = SmtpSettings(
            server.host,
            server.port,
            "news@shop.example",
            security="starttls",
            username="shop",
            password="s3cret-Pass",
            tls_context=client_context,
        )
        provider(settings, envelope()).send(message())
        [received] = server.mailbox.messages
    assert received.tls and received.login == "shop"


def test_a_wrong_password_is_terminal(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
    with smtp_server(starttls=server_context, logins={"shop": "right"}) as server:
        settings = SmtpSettings(
            server.host, server.port, "news@shop.example", username="shop", password="wrong", tls_context=client_context
        )
        with pytest.raises(TerminalSendError, match="login refused: 535"):
            provider(settings, envelope()).send(message())
        assert server.mailbox.messages == []


def test_tls_from_the_first_byte(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
    with smtp_server(implicit_tls=server_context) as server:
        settings = SmtpSettings(
            server.host, server.port, "news@shop.example", security="ssl", tls_context=client_context
        )
        provider(settings, envelope()).send(message())
        [received] = server.mailbox.messages
    assert received.rcpt_tos == ["anna@example.ru"]


def test_an_untrusted_certificate_is_not_accepted(server_context: ssl.SSLContext) -> None:
    with smtp_server(starttls=server_context) as server:
        settings = SmtpSettings(server.host, server.port, "news@shop.example", security="starttls")
        with pytest.raises(RetryableSendError, match="SSL"):
            provider(settings, envelope()).send(message())
        assert server.mailbox.messages == []


def test_an_unknown_mailbox_is_terminal_and_a_full_one_retryable_and_neither_logs_the_address() -> None:
    with smtp_server() as server:
        server.mailbox.refuse["gone@example.ru"] = "550 5.1.1 No such user"
        server.mailbox.refuse["full@example.ru"] = "452 4.2.2 Mailbox full"
        settings = SmtpSettings(server.host, server.port, "news@shop.example", security="none")
        with pytest.raises(TerminalSendError) as gone:
            provider(settings, envelope("gone@example.ru")).send(message())
        with pytest.raises(RetryableSendError) as full:
            provider(settings, envelope("full@example.ru")).send(message())
        assert server.mailbox.messages == []
    assert "gone@" not in gone.value.reason and "g***@example.ru" in gone.value.reason
    assert "full@" not in full.value.reason


def test_a_server_that_is_not_there_is_retryable_and_a_customer_without_an_address_terminal() -> None:
    with smtp_server() as server:
        port = server.port
    settings = SmtpSettings("127.0.0.1", port, "news@shop.example", security="none", timeout=2)
    with pytest.raises(RetryableSendError):
        provider(settings, envelope()).send(message())
    with pytest.raises(TerminalSendError, match="no e-mail address"):
        provider(settings, None).send(message())


def test_addresses_are_masked_for_logs() -> None:
    assert mask_email("ivan.petrov@example.ru") == "i***@example.ru"
    assert mask_email("nonsense") == "***"

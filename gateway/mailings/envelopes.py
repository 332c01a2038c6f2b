"""Where an e-mail goes: the cascade carries a message id, a phone and a text; the e-mail provider
asks this lookup for the address, the subject and (advertising) the unsubscribe link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select as sa_select
from sqlmodel import col

from gateway.config import GatewayConfig
from gateway.mailings import unsubscribe
from gateway.store.db import Database
from gateway.store.models import Customer
from gateway.store.models_mailings import Mailing, MailingRecipient

DEFAULT_SUBJECT = "Сообщение программы лояльности"


@dataclass(frozen=True)
class Envelope:
    to: str
    subject: str
    unsubscribe_url: str | None


def envelope_lookup(db: Database, config: GatewayConfig) -> Callable[[str, str], Envelope | None]:
    """``lookup(message id, phone)``: a mailing's message by its recipient row; any other message
    (a chain that sends notifications by e-mail) to the address of the customer with the phone."""
    public_url = config.mailings.public_url

    def lookup(message_id: str, phone: str) -> Envelope | None:
        with db.read() as session:
            row = session.execute(
                sa_select(
                    col(Customer.email),
                    col(Mailing.subject),
                    col(Mailing.kind),
                    col(Mailing.id),
                    col(Customer.id),
                )
                .select_from(MailingRecipient)
                .join(Mailing, col(Mailing.id) == col(MailingRecipient.mailing_id))
                .join(Customer, col(Customer.id) == col(MailingRecipient.customer_id))
                .where(col(MailingRecipient.notification_id) == message_id)
            ).first()
            if row is None:
                email = session.execute(
                    sa_select(col(Customer.email)).where(col(Customer.phone) == phone, col(Customer.phone) != "")
                ).scalar_one_or_none()
                return Envelope(email, DEFAULT_SUBJECT, None) if email else None
            email, subject, kind, mailing_id, customer_id = row
            key = unsubscribe.link_key(session) if kind == "advertising" else None
        if email is None:
            return None
        link = (
            unsubscribe.url(public_url, unsubscribe.make_token(key, mailing_id, customer_id, "email"))
            if key is not None and public_url
            else None
        )
        return Envelope(email, subject or DEFAULT_SUBJECT, link)

    return lookup

"""The port every message provider implements (SMS.ru, SMSC, SMS Aero, Telegram, console).

A provider sends one message and says what happened. It raises ``RetryableSendError`` when the
same message may succeed later (a timeout, a 5xx, "service busy"), ``TerminalSendError`` when it
never will from this provider (a bad number, a limit reached, no Telegram account) — the cascade
then tries the next provider — and returns normally with the provider's id and cost when the
message was accepted. ``DuplicateSendError`` is a terminal error that means the provider already
has this message: it counts as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal, Protocol

MessageKind = Literal["verification", "notification"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    message_id: str  # ours, stable across retries; providers that accept a client id get it
    phone: str  # E.164
    text: str
    kind: MessageKind = "notification"
    code: str | None = None  # the verification code itself, for providers that send codes natively
    chat_id: str | None = None  # a Telegram chat, when the customer linked one
    ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    provider_message_id: str | None
    cost: Decimal | None = None
    status: str = "accepted"


class SendError(Exception):
    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class RetryableSendError(SendError):
    """May succeed later from the same provider."""


class TerminalSendError(SendError):
    """Will not succeed from this provider; try the next one."""


class DuplicateSendError(TerminalSendError):
    """The provider already accepted this very message: it is sent."""


class MessageProvider(Protocol):
    name: str
    dedupes: bool  # accepts our message id, so a resend after an unknown outcome is safe

    def send(self, message: OutgoingMessage) -> SendResult: ...


def shown_date(day: date) -> str:
    """A day as customers read it in a message: 02.01.2027."""
    return day.strftime("%d.%m.%Y")

"""The provider cascade: the outbox deliverer of customer messages.

For each message the chain of its kind is tried in order (e.g. Telegram, then SMS.ru, then
SMSC). Each provider gets a few quick tenacity retries on retryable errors only; a terminal
error moves on to the next provider; a duplicate counts as sent. Every call is recorded *before*
it is made, so after a crash an attempt with an unknown outcome is never repeated on a provider
that cannot dedupe (the same message is never sent twice by one provider). When every provider
fails, a retryable failure puts the message back in the outbox queue and a terminal one
dead-letters it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlmodel import col, select
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from gateway.core.messaging import (
    DuplicateSendError,
    MessageProvider,
    OutgoingMessage,
    RetryableSendError,
    SendResult,
    TerminalSendError,
)
from gateway.ledger.context import Clock, utc_now
from gateway.ledger.phones import mask_phone
from gateway.outbound.relay import PermanentDeliveryError, RetryableDeliveryError
from gateway.store.db import Database
from gateway.store.models import Notification, NotificationAttempt, OutboxMessage

log = logging.getLogger("gateway.notify")


@dataclass(frozen=True)
class CascadeSettings:
    quick_retries: int = 3
    wait_multiplier: float = 0.2
    wait_max: float = 2.0


class Cascade:
    def __init__(
        self,
        db: Database,
        providers: Mapping[str, MessageProvider],
        chains: Mapping[str, Sequence[str]],
        *,
        clock: Clock = utc_now,
        settings: CascadeSettings | None = None,
    ) -> None:
        self.db = db
        self.providers = dict(providers)
        self.chains = {kind: list(chain) for kind, chain in chains.items()}
        self.clock = clock
        self.settings = settings or CascadeSettings()

    def __call__(self, message: OutboxMessage) -> None:
        notification_id = json.loads(message.payload_json)["notification_id"]
        with self.db.read() as session:
            notification = session.get(Notification, notification_id)
            attempts = list(
                session.exec(
                    select(NotificationAttempt).where(NotificationAttempt.notification_id == notification_id)
                ).all()
            )
        if notification is None:
            raise PermanentDeliveryError(f"notification {notification_id} does not exist")
        if notification.status == "sent":
            return
        outgoing = OutgoingMessage(
            message_id=notification.id,
            phone=notification.phone,
            text=notification.text,
            kind="verification" if notification.kind == "verification" else "notification",
            code=notification.code,
            chat_id=notification.chat_id,
            ttl_seconds=notification.ttl_seconds,
        )
        errors: list[str] = []
        retry_later = False
        for name in self.chains.get(notification.kind, []):
            provider = self.providers[name]
            past = [a for a in attempts if a.provider == name]
            if any(a.outcome == "terminal" for a in past):
                errors.append(f"{name}: refused earlier")
                continue
            if any(a.outcome == "unknown" for a in past) and not provider.dedupes:
                errors.append(f"{name}: an earlier attempt's outcome is unknown; not sent again")
                continue
            attempt_id = self._start(notification.id, name)
            try:
                result = self._send(provider, outgoing)
            except DuplicateSendError as exc:
                self._finish(attempt_id, "duplicate", error=exc.reason)
                self._sent(notification.id, SendResult(name, None, None, "duplicate"))
                return
            except TerminalSendError as exc:
                self._finish(attempt_id, "terminal", error=exc.reason)
                errors.append(f"{name}: {exc.reason}")
                continue
            except RetryableSendError as exc:
                self._finish(attempt_id, "retryable", error=exc.reason)
                errors.append(f"{name}: {exc.reason}")
                retry_later = True
                continue
            self._finish(attempt_id, "sent", result=result)
            self._sent(notification.id, result)
            log.info(
                "%s message %s to %s sent by %s",
                notification.topic,
                notification.id,
                mask_phone(notification.phone),
                name,
            )
            return
        summary = "; ".join(errors) or "no provider configured for this kind of message"
        self._failed(notification.id, summary, final=not retry_later)
        if retry_later:
            raise RetryableDeliveryError(summary)
        raise PermanentDeliveryError(summary)

    def _send(self, provider: MessageProvider, message: OutgoingMessage) -> SendResult:
        for attempt in Retrying(
            stop=stop_after_attempt(self.settings.quick_retries),
            wait=wait_exponential_jitter(multiplier=self.settings.wait_multiplier, max=self.settings.wait_max),
            retry=retry_if_exception_type(RetryableSendError),
            reraise=True,
        ):
            with attempt:
                return provider.send(message)
        raise AssertionError("unreachable")  # pragma: no cover

    def _start(self, notification_id: str, provider: str) -> int:
        with self.db.write() as session:
            attempt = NotificationAttempt(notification_id=notification_id, provider=provider, started_at=self.clock())
            session.add(attempt)
            session.flush()
            assert attempt.id is not None
            return attempt.id

    def _finish(
        self, attempt_id: int, outcome: str, *, result: SendResult | None = None, error: str | None = None
    ) -> None:
        with self.db.write() as session:
            attempt = session.get(NotificationAttempt, attempt_id)
            assert attempt is not None
            attempt.outcome = outcome
            attempt.finished_at = self.clock()
            attempt.error = error[:500] if error else None
            if result is not None:
                attempt.provider_message_id = result.provider_message_id
                attempt.cost = str(result.cost) if result.cost is not None else None
            session.add(attempt)

    def _sent(self, notification_id: str, result: SendResult) -> None:
        with self.db.write() as session:
            notification = session.get(Notification, notification_id)
            assert notification is not None
            notification.status = "sent"
            notification.provider = result.provider
            notification.provider_message_id = result.provider_message_id
            notification.cost = str(result.cost) if result.cost is not None else None
            notification.sent_at = self.clock()
            notification.last_error = None
            session.add(notification)

    def _failed(self, notification_id: str, error: str, *, final: bool) -> None:
        with self.db.write() as session:
            notification = session.get(Notification, notification_id)
            assert notification is not None
            notification.last_error = error[:500]
            if final:
                notification.status = "failed"
            session.add(notification)


@dataclass
class ProviderStats:
    provider: str
    sent: int = 0
    failed_attempts: int = 0
    cost: Decimal = Decimal(0)


def provider_stats(db: Database) -> list[ProviderStats]:
    """Messages sent and money spent per provider (from every recorded attempt)."""
    totals: dict[str, ProviderStats] = {}
    with db.read() as session:
        for attempt in session.exec(select(NotificationAttempt).order_by(col(NotificationAttempt.id))).all():
            entry = totals.setdefault(attempt.provider, ProviderStats(attempt.provider))
            if attempt.outcome in ("sent", "duplicate"):
                entry.sent += 1
            elif attempt.outcome in ("terminal", "retryable"):
                entry.failed_attempts += 1
            if attempt.cost:
                entry.cost += Decimal(attempt.cost)
    return [totals[name] for name in sorted(totals)]

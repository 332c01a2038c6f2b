"""The outbox relay: claims due messages, delivers them, records the outcome.

* Claiming is a short transaction that leases a batch (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  so two relays never lease the same message; ``BEGIN IMMEDIATE`` serializes them on SQLite).
* Delivery happens outside any transaction, with a few quick tenacity retries (exponential
  backoff with jitter) on retryable errors only.
* A message that still fails is rescheduled with a growing, jittered delay; after
  ``max_attempts`` (or at once on a permanent error) it is dead-lettered with its last error.
* A relay that dies mid-delivery leaves a lease that lapses; the message is then delivered again
  under the same id — at least once, never lost.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_
from sqlmodel import col, select
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from gateway.ledger.context import Clock, utc_now
from gateway.store.db import Database
from gateway.store.models import OutboxMessage

log = logging.getLogger("gateway.outbound.relay")


class RetryableDeliveryError(Exception):
    """The receiver may accept it later: a timeout, a refused connection, a 5xx, a 429."""


class PermanentDeliveryError(Exception):
    """The receiver will never accept it as it is: a 4xx other than 408/429."""


Deliverer = Callable[[OutboxMessage], None]


@dataclass(frozen=True)
class RelaySettings:
    batch: int = 50
    lease: timedelta = timedelta(minutes=5)
    max_attempts: int = 12
    quick_retries: int = 3
    base_delay: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(hours=1)


@dataclass
class RelayPass:
    claimed: int = 0
    delivered: int = 0
    rescheduled: int = 0
    dead: int = 0


def next_delay(attempts: int, settings: RelaySettings, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter in [0.5, 1.5) of the nominal delay, capped."""
    nominal: timedelta = min(settings.base_delay * (2 ** max(attempts - 1, 0)), settings.max_delay)
    jittered: timedelta = nominal * (0.5 + rng.random())
    return jittered


class Relay:
    def __init__(
        self,
        db: Database,
        deliverers: Mapping[str, Deliverer],
        *,
        settings: RelaySettings | None = None,
        clock: Clock = utc_now,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.deliverers = dict(deliverers)
        self.settings = settings or RelaySettings()
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{id(self):x}"
        self._rng = random.Random()

    def claim(self) -> list[OutboxMessage]:
        now = self.clock()
        with self.db.write() as session:
            stmt = (
                select(OutboxMessage)
                .where(
                    or_(
                        and_(col(OutboxMessage.state) == "pending", col(OutboxMessage.next_attempt_at) <= now),
                        and_(col(OutboxMessage.state) == "delivering", col(OutboxMessage.lease_until) < now),
                    )
                )
                .order_by(col(OutboxMessage.id))
                .limit(self.settings.batch)
            )
            if not self.db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            messages = list(session.exec(stmt).all())
            for message in messages:
                message.state = "delivering"
                message.attempts += 1
                message.lease_until = now + self.settings.lease
                message.leased_by = self.worker_id
                session.add(message)
            return messages

    def _deliver(self, message: OutboxMessage) -> None:
        deliverer = self.deliverers.get(message.destination)
        if deliverer is None:
            raise PermanentDeliveryError(f"no deliverer configured for {message.destination!r}")
        for attempt in Retrying(
            stop=stop_after_attempt(self.settings.quick_retries),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            retry=retry_if_exception_type(RetryableDeliveryError),
            reraise=True,
        ):
            with attempt:
                deliverer(message)

    def _finish(self, message_id: int, error: Exception | None, result: RelayPass) -> None:
        now = self.clock()
        with self.db.write() as session:
            row = session.get(OutboxMessage, message_id)
            if row is None or row.state != "delivering" or row.leased_by != self.worker_id:
                return  # our lease lapsed and another relay took the message over
            row.lease_until = None
            row.leased_by = None
            if error is None:
                row.state = "delivered"
                row.delivered_at = now
                row.last_error = None
                result.delivered += 1
            elif isinstance(error, PermanentDeliveryError) or row.attempts >= self.settings.max_attempts:
                row.state = "dead"
                row.last_error = f"{type(error).__name__}: {error}"[:1000]
                result.dead += 1
                log.warning("outbox message %s to %s dead-lettered: %s", row.id, row.destination, row.last_error)
            else:
                row.state = "pending"
                row.last_error = f"{type(error).__name__}: {error}"[:1000]
                row.next_attempt_at = now + next_delay(row.attempts, self.settings, self._rng)
                result.rescheduled += 1
            session.add(row)

    def run_once(self) -> RelayPass:
        result = RelayPass()
        messages = self.claim()
        result.claimed = len(messages)
        for message in messages:
            assert message.id is not None
            try:
                self._deliver(message)
            except (RetryableDeliveryError, PermanentDeliveryError) as error:
                self._finish(message.id, error, result)
            except Exception as error:  # a deliverer bug must not kill the relay: retry later
                log.exception("deliverer for %s failed unexpectedly", message.destination)
                self._finish(message.id, RetryableDeliveryError(repr(error)), result)
            else:
                self._finish(message.id, None, result)
        return result

    def retry_dead(self, message_id: int | None = None) -> int:
        """Operator replay: put dead-lettered messages (one, or all) back in the queue."""
        now = self.clock()
        with self.db.write() as session:
            stmt = select(OutboxMessage).where(OutboxMessage.state == "dead")
            if message_id is not None:
                stmt = stmt.where(OutboxMessage.id == message_id)
            rows = session.exec(stmt).all()
            for row in rows:
                row.state = "pending"
                row.attempts = 0
                row.next_attempt_at = now
                session.add(row)
            return len(rows)

"""The periodic worker: resolves holds past their deadline, expires lots, purges old idempotency
keys and relays the outbox.

Each pass works in bounded batches inside short transactions, so it never blocks tills for long,
and every step is safe to run twice or from several processes at once (each account is locked
before it is touched; a hold is voided only if it is still open under that lock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gateway.ledger.accounts import expire_due_lots_batch
from gateway.ledger.context import Ctx
from gateway.ledger.idempotency import purge_expired
from gateway.ledger.service import LoyaltyService
from gateway.outbound.relay import Relay

log = logging.getLogger("gateway.workers")


def run_once(service: LoyaltyService, relay: Relay | None = None, batch: int | None = None) -> dict[str, int]:
    """One pass of every maintenance job; returns what each did."""
    batch = batch or service.program.holds.sweep_batch
    resolved = service.sweep_expired_holds(batch)
    now = service.clock()
    with service.db.write() as session:
        expired = expire_due_lots_batch(Ctx(service.db, session, service.program, now, "system:expiry"), batch)
    purged = purge_expired(service.db, now)
    done = {"holds_resolved": resolved, "points_expired": expired, "keys_purged": purged}
    if relay is not None:
        sent = relay.run_once()
        done.update(outbox_delivered=sent.delivered, outbox_rescheduled=sent.rescheduled, outbox_dead=sent.dead)
    return done


DAILY_JOBS_EVERY = 600.0  # seconds between runs of the (idempotent) date-driven notification jobs


class WorkerRunner:
    def __init__(
        self,
        service: LoyaltyService,
        interval: float,
        relay: Relay | None = None,
        daily_jobs: Callable[[LoyaltyService], int] | None = None,
    ) -> None:
        self.service = service
        self.interval = interval
        self.relay = relay
        self.daily_jobs = daily_jobs
        self._last_daily = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gateway-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = run_once(self.service, self.relay)
                if self.daily_jobs is not None and time.monotonic() - self._last_daily > DAILY_JOBS_EVERY:
                    self._last_daily = time.monotonic()
                    done["notifications_scheduled"] = self.daily_jobs(self.service)
                if any(done.values()):
                    log.info("maintenance pass: %s", done)
            except Exception:  # keep the worker alive; the next pass retries
                log.exception("maintenance pass failed")
            self._stop.wait(self.interval)

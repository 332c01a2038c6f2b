"""The periodic worker: resolves holds past their deadline, expires lots, purges old idempotency
keys, relays the outbox, and runs the other periodic jobs (notifications, ERP sync, program jobs).

Each pass works in bounded batches inside short transactions, so it never blocks tills for long,
and every step is safe to run twice or from several processes at once (each account is locked
before it is touched; a hold is voided only if it is still open under that lock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PeriodicJob:
    """A job the worker runs every ``every_seconds`` (at the first pass, then on schedule).

    ``run`` returns what it did as counters (merged into the pass's log line). A job must be
    idempotent and safe to run from several replicas at once: it is run by every worker."""

    name: str
    every_seconds: float
    run: Callable[[], dict[str, int]]
    stop: Callable[[], None] | None = None  # called when the worker stops (a job that runs in a thread of its own)


class WorkerRunner:
    def __init__(
        self,
        service: LoyaltyService,
        interval: float,
        relay: Relay | None = None,
        jobs: Sequence[PeriodicJob] = (),
    ) -> None:
        self.service = service
        self.interval = interval
        self.relay = relay
        self.jobs = tuple(jobs)
        self._last_run: dict[str, float] = {}
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
        for job in self.jobs:
            if job.stop is not None:
                job.stop()

    def run_due_jobs(self) -> dict[str, int]:
        """Run every job whose period has passed; a failing job does not stop the others."""
        done: dict[str, int] = {}
        for job in self.jobs:
            last = self._last_run.get(job.name)
            if last is not None and time.monotonic() - last < job.every_seconds:
                continue
            self._last_run[job.name] = time.monotonic()
            try:
                done.update({f"{job.name}.{k}": v for k, v in job.run().items()})
            except Exception:  # keep the worker alive; the job runs again at its next period
                log.exception("periodic job %s failed", job.name)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = run_once(self.service, self.relay)
                done.update(self.run_due_jobs())
                if any(done.values()):
                    log.info("maintenance pass: %s", done)
            except Exception:  # keep the worker alive; the next pass retries
                log.exception("maintenance pass failed")
            self._stop.wait(self.interval)

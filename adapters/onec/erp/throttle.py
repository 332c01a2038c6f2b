"""A throttle that spares the ERP, shared by every gateway replica through the database.

Every call to the ERP — sync pulls and result pushes, each retry attempt — is granted by the
throttle first and reported to it when it ends. Three limits apply:

* **concurrency**: at most ``concurrency`` calls in flight. A granted call holds a slot (a row
  of ``erp_throttle_calls``) leased until its timeout plus ``slot_lease_seconds``, so a process
  that dies mid-call frees its slot when the lease lapses. A call we stop waiting for (our read
  timeout) is still being worked on at the ERP: it keeps its slot until the ERP's own execution
  limit has passed (``erp_execution_limit_seconds``), so concurrency holds as the ERP counts it;
* **rate**: at most ``C = ceil(r)`` calls in any window of ``C / r`` seconds (``r`` calls/s;
  for an integer rate that is exactly "r calls in any 1-second window"). A call counts against
  the window from the moment it is granted until ``W = C / r`` seconds after it *finished*:
  whenever the ERP actually received the request, it was inside that interval, so the limit
  holds as measured by the ERP itself, whatever the network or the scheduler delayed. Calls are
  also spread out (one every ``W / C`` seconds at most) instead of arriving in bursts of ``C``;
  a caller that only waits for the rate gets a *reserved* start time and sleeps until then;
* **working hours / quiet windows**: the budget (rate and concurrency) depends on the local time
  at the ERP (``windows``; rate 0 is a quiet window: no calls at all).

**Adaptive slowdown** (AIMD): the allowed rate is the window's rate times a factor in
``[min_factor, 1]``. When the ERP's response time (an EWMA over all replicas' calls) passes the
target, or a call fails as retryable (timeout, 5xx, 429/503), the factor is multiplied by
``decrease`` (at most once per ``interval_seconds``); while the ERP is healthy it grows back by
``increase`` per interval. Factor and EWMA live in the ``erp_throttle`` row.

Atomicity: grant and release are one short write transaction each, serialized on the ERP's
``erp_throttle`` row — ``SELECT … FOR UPDATE`` on PostgreSQL (replicas on several hosts),
``BEGIN IMMEDIATE`` on SQLite (several processes on one host).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from adapters.onec.erp.calls import CallAbandoned
from adapters.onec.erp.config import ThrottleConfig, ThrottleWindow
from gateway.core.erp import CallKind, ErpRejected, ErpUnavailable
from gateway.ledger.context import Clock, utc_now
from gateway.store.db import Database
from gateway.store.models_erp import ErpThrottle, ErpThrottleCall

log = logging.getLogger("adapters.onec.erp.throttle")

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KEEP_FINISHED = timedelta(minutes=2)  # finished calls older than this no longer matter (status shows 60 s)
_POLL = 0.05  # seconds between tries while every slot is busy (a release in this process wakes waiters at once)


class ThrottleTimeout(ErpUnavailable):
    """No permission within the allowed wait (budget exhausted, or a quiet window)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """What the throttle allows right now."""

    window: str  # "default", "09:00-19:00"…
    base_rate: float
    concurrency: int
    factor: float

    @property
    def rate(self) -> float:
        return self.base_rate * self.factor

    @property
    def quiet(self) -> bool:
        return self.base_rate == 0 or self.concurrency == 0


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    budget: Budget
    latency_ewma_ms: float | None
    in_flight: int
    calls_last_minute: int
    failures_last_minute: int
    calls_total: int
    failures_total: int


def _minutes(clock_text: str) -> int:
    hours, minutes = clock_text.split(":")
    return int(hours) * 60 + int(minutes)


def _in_window(window: ThrottleWindow, local: datetime) -> bool:
    start, end = _minutes(window.start), _minutes(window.end)
    now = local.hour * 60 + local.minute
    today = _DAYS[local.weekday()]
    yesterday = _DAYS[(local.weekday() - 1) % 7]
    if start < end:
        return today in window.days and start <= now < end
    return (today in window.days and now >= start) or (yesterday in window.days and now < end)


def window_at(config: ThrottleConfig, now: datetime) -> tuple[str, float, int]:
    """(label, calls per second, concurrency) of the budget in force at ``now``."""
    local = now.astimezone(ZoneInfo(config.timezone))
    for window in config.windows:
        if _in_window(window, local):
            return f"{window.start}-{window.end}", float(window.rate_per_second), window.concurrency
    return "default", float(config.rate_per_second), config.concurrency


def rate_window(rate: float) -> tuple[int, float]:
    """(calls, seconds): at most ``calls`` in any window of ``seconds`` gives ``rate`` calls/s."""
    calls = max(1, math.ceil(rate - 1e-9))
    return calls, calls / rate


class DbThrottle:
    """The throttle of one ERP. Thread-safe; one instance per process is enough, but any number
    of instances (processes, hosts) on one database share the same budget."""

    def __init__(
        self,
        db: Database,
        erp: str,
        config: ThrottleConfig,
        *,
        call_timeout_seconds: float,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        push_wait_seconds: float = 10.0,
    ) -> None:
        self.db = db
        self.erp = erp
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.lease = timedelta(seconds=call_timeout_seconds + config.slot_lease_seconds)
        self.push_wait_seconds = push_wait_seconds
        self._rng = random.Random()
        self._released = threading.Condition()

    # -- the guard every transport calls ------------------------------------------------------

    @contextmanager
    def __call__(self, kind: CallKind) -> Iterator[None]:
        wait = self.push_wait_seconds if kind == "push" else self.config.max_wait_seconds
        call_id = self.acquire(kind, max_wait=wait)
        started = time.monotonic()
        outcome = "ok"
        try:
            yield
        except ErpRejected:
            outcome = "rejected"
            raise
        except CallAbandoned:
            outcome = "abandoned"
            raise
        except BaseException:
            outcome = "failed"
            raise
        finally:
            finished = self.clock()  # before the release's transaction: the call is over now
            try:
                self.release(call_id, time.monotonic() - started, outcome, finished_at=finished)
            except Exception:  # the slot's lease lapses by itself; never hide the call's own outcome
                log.exception("could not release ERP call %s", call_id)

    # -- grant and release --------------------------------------------------------------------

    def acquire(self, kind: CallKind, max_wait: float | None = None) -> int:
        """Wait for permission to make one call; returns the call's id (to ``release`` it).

        When only the rate holds the call back, the throttle *reserves* the moment the budget
        frees (the end of the oldest call in the window plus the window) and the caller sleeps
        until then without touching the database again: the call starts on time even when the
        database is busy with the ledger's own writes."""
        deadline = time.monotonic() + (self.config.max_wait_seconds if max_wait is None else max_wait)
        while True:
            remaining = deadline - time.monotonic()
            call_id, start, wait, reason = self._try_grant(kind, horizon=max(remaining, 0.0))
            if call_id is not None:
                if start is not None:
                    delay = (start - self.clock()).total_seconds()
                    if delay > 0:
                        self.sleep(delay)
                return call_id
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait < 0:
                raise ThrottleTimeout(f"no ERP call permitted within the allowed wait: {reason}")
            pause = min(wait + self._rng.uniform(0, 0.002), remaining, 1.0)
            if wait == _POLL and self.sleep is time.sleep:
                with self._released:  # a slot freed in this process ends the wait early
                    self._released.wait(pause)
            else:
                self.sleep(pause)

    def _lock(self, session: Session, now: datetime) -> ErpThrottle:
        stmt = select(ErpThrottle).where(col(ErpThrottle.erp) == self.erp)
        if not self.db.is_sqlite:
            stmt = stmt.with_for_update()
        row = session.execute(stmt).scalar_one_or_none()
        if row is None:
            try:
                with session.begin_nested():
                    session.add(ErpThrottle(erp=self.erp, updated_at=now))
            except IntegrityError:  # another replica created it first
                pass
            row = session.execute(stmt).scalar_one()
        assert isinstance(row, ErpThrottle)
        return row

    def budget(self, row: ErpThrottle | None, now: datetime) -> Budget:
        label, base, concurrency = window_at(self.config, now)
        factor = row.factor if (row is not None and self.config.adaptive.enabled) else 1.0
        return Budget(label, base, concurrency, factor)

    def _try_grant(self, kind: CallKind, horizon: float) -> tuple[int | None, datetime | None, float, str]:
        """(call id, reserved start or None for "now", seconds to wait before trying again, why not)."""
        now = self.clock()
        with self.db.write() as session:
            row = self._lock(session, now)
            budget = self.budget(row, now)
            if budget.quiet:  # no waiting through a quiet window: the caller tries again after it
                return None, None, -1.0, f"quiet window {budget.window}"
            calls, window = rate_window(budget.rate)
            end = func.coalesce(col(ErpThrottleCall.finished_at), col(ErpThrottleCall.lease_until))
            session.execute(
                delete(ErpThrottleCall).where(col(ErpThrottleCall.erp) == self.erp, end < now - _KEEP_FINISHED)
            )
            occupying = session.execute(
                select(col(ErpThrottleCall.finished_at), col(ErpThrottleCall.lease_until)).where(
                    col(ErpThrottleCall.erp) == self.erp, end > now - timedelta(seconds=window)
                )
            ).all()
            in_flight = sum(1 for finished, lease in occupying if finished is None and lease > now)
            if in_flight >= budget.concurrency:  # reserved calls count as in flight
                return None, None, _POLL, f"{in_flight} calls in flight (concurrency {budget.concurrency})"
            reason = f"{calls} calls per {window:.2f} s used"
            # smoothing (GCRA): calls follow a schedule of one every ``window / calls`` seconds, with
            # one call of slack to catch up after a pause, rather than bursts of ``calls``
            spacing = timedelta(seconds=window / calls)
            begins = max(now, row.next_at - spacing) if row.next_at is not None else now
            if len(occupying) >= calls:
                # ends known for sure: finished calls, and calls of dead processes (lease lapsed)
                known = sorted(f if f is not None else lease for f, lease in occupying if f is not None or lease <= now)
                needed = len(occupying) - calls + 1
                if len(known) < needed:
                    return None, None, _POLL, reason
                begins = max(begins, known[needed - 1] + timedelta(seconds=window))
            ahead = (begins - now).total_seconds()
            if ahead > min(horizon, window + 1.0):
                return None, None, max(ahead - window - 1.0, 0.01), reason
            start = begins if begins > now else None
            row.next_at = max(row.next_at or begins, begins) + spacing
            session.add(row)
            call = ErpThrottleCall(
                erp=self.erp,
                holder=f"{uuid.uuid4().hex[:12]}:{threading.get_ident()}"[:64],
                kind=kind,
                granted_at=begins,
                lease_until=begins + self.lease,
            )
            session.add(call)
            session.flush()
            assert call.id is not None
            return call.id, start, 0.0, ""

    def release(
        self, call_id: int, latency_seconds: float, outcome: str, *, finished_at: datetime | None = None
    ) -> None:
        """The call ended: free its slot (it keeps counting against the rate window for ``W``
        seconds after ``finished_at``) and feed its latency and outcome to the adaptive factor.

        An ``abandoned`` call (our timeout fired) has not ended at the ERP, which still works on
        it: its slot stays taken until the ERP's own execution limit (``erp_execution_limit_seconds``)
        has passed since we gave up, so our retries do not pile up on a slow ERP."""
        now = self.clock()
        adaptive = self.config.adaptive
        with self.db.write() as session:
            row = self._lock(session, now)
            call = session.get(ErpThrottleCall, call_id)
            if call is not None and call.finished_at is None and outcome == "abandoned":
                limit = timedelta(seconds=self.config.erp_execution_limit_seconds)
                # the ERP received the call at the latest now, so it is done by now + its own limit
                call.lease_until = now + limit
                call.outcome = outcome
                session.add(call)
            elif call is not None and call.finished_at is None:
                call.finished_at = min(finished_at or now, now)
                call.latency_ms = latency_seconds * 1000
                call.outcome = outcome
                session.add(call)
            row.calls += 1
            failed = outcome in ("failed", "abandoned")
            if failed:
                row.failures += 1
            latency_ms = latency_seconds * 1000
            alpha = float(adaptive.smoothing)
            if outcome != "rejected":
                previous = row.latency_ewma_ms
                row.latency_ewma_ms = latency_ms if previous is None else alpha * latency_ms + (1 - alpha) * previous
            if adaptive.enabled:
                self._adjust(row, now, failed)
            row.updated_at = now
            session.add(row)
        with self._released:
            self._released.notify_all()

    def _adjust(self, row: ErpThrottle, now: datetime, failed: bool) -> None:
        adaptive = self.config.adaptive
        interval = timedelta(seconds=float(adaptive.interval_seconds))
        due = row.last_adjust_at is None or now - row.last_adjust_at >= interval
        slow = row.latency_ewma_ms is not None and row.latency_ewma_ms > adaptive.target_latency_ms
        if (failed or slow) and due:
            factor = max(float(adaptive.min_factor), row.factor * float(adaptive.decrease))
            if factor < row.factor:
                log.warning(
                    "ERP %s %s: allowed rate factor %.2f -> %.2f (latency %.0f ms, target %d ms)",
                    self.erp,
                    "failing" if failed else "slow",
                    row.factor,
                    factor,
                    row.latency_ewma_ms or 0,
                    adaptive.target_latency_ms,
                )
            row.factor = factor
            row.last_adjust_at = now
            row.last_decrease_at = now
        elif not failed and not slow and row.factor < 1.0 and due:
            row.factor = min(1.0, row.factor + float(adaptive.increase))
            row.last_adjust_at = now

    # -- status -------------------------------------------------------------------------------

    def status(self) -> ThrottleStatus:
        now = self.clock()
        with self.db.read() as session:
            row = session.get(ErpThrottle, self.erp)
            recent = session.execute(
                select(col(ErpThrottleCall.finished_at), col(ErpThrottleCall.lease_until), col(ErpThrottleCall.outcome))
                .where(col(ErpThrottleCall.erp) == self.erp)
                .where(col(ErpThrottleCall.granted_at) > now - timedelta(seconds=60))
            ).all()
        in_flight = sum(1 for finished, lease, _ in recent if finished is None and lease > now)
        return ThrottleStatus(
            budget=self.budget(row, now),
            latency_ewma_ms=row.latency_ewma_ms if row is not None else None,
            in_flight=in_flight,
            calls_last_minute=len(recent),
            failures_last_minute=sum(1 for *_, outcome in recent if outcome == "failed"),
            calls_total=row.calls if row is not None else 0,
            failures_total=row.failures if row is not None else 0,
        )

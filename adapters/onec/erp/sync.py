"""Incremental order sync with an ERP, and the push of loyalty results back to it.

**Sync.** One replica at a time (a lease on ``erp_sync_state``) reads the ERP's change feed
page by page from a durable cursor, applies every order of a page with
``LoyaltyService.apply_order(client_id, key=f"erp:{order}:{version}", snapshot)`` and only then
stores the page's next cursor, so a crash re-reads a page (harmlessly: applying is idempotent)
and never skips one. The next page is fetched while the current one is applied. An order that
cannot be mapped or applied (unknown card, more points than allowed…) is recorded with the
reason in ``erp_orders`` (``gateway sync status``, ``gateway tx stuck``), does not block the
others, and is read again later (and whenever it changes at the ERP).

**Versions.** 1C's ``DataVersion`` is an opaque marker, not an order, so the version of a state
is derived from the ERP's change moment of the state (the latest change timestamp of the order
and of its shipments and returns), in milliseconds, times 1000:

    version = changed_at_ms * 1000                  (a state with a later change moment)
    version = previous version + 1                  (same change moment, another marker)

A state that changed later at the ERP always gets a larger version; a state read again gets the
same version (so the same idempotency key); an older state that arrives after a newer one gets a
smaller version, which ``apply_order`` ignores: an order never moves backwards. Two different
states with the very same change moment (1C stamps to the second) are told apart by the order
they are read in, which is real time because one replica syncs at a time.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters.onec.erp.config import ErpConfig
from adapters.onec.erp.throttle import window_at
from contracts.errors import LoyaltyError
from gateway.core.erp import ErpError, ErpOrderChange, ErpPage, ErpPort, ErpRejected
from gateway.ledger.mappings import Unmapped
from gateway.ledger.service import LoyaltyService
from gateway.store.models_erp import ErpOrder, ErpSyncState

log = logging.getLogger("adapters.onec.erp.sync")

TIE_SLOTS = 1000


def derive_version(previous: ErpOrder | None, change: ErpOrderChange) -> int:
    """The version of ``change`` given the last state seen of the same order (see the module)."""
    base = max(int(change.changed_at.timestamp() * 1000), 0) * TIE_SLOTS  # an empty 1C date is year 1
    if previous is None or previous.version <= 0:
        return base
    if change.marker == previous.marker:
        return previous.version
    if base // TIE_SLOTS == previous.version // TIE_SLOTS:
        return previous.version + 1
    return base


@dataclass
class SyncReport:
    pages: int = 0
    changes: int = 0
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    stale: int = 0
    retried: int = 0
    calls: int = 0
    error: str | None = None
    busy: bool = False  # another replica holds the sync lease
    failures: list[tuple[str, str]] = field(default_factory=list)

    def counters(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "stale": self.stale,
            "retried": self.retried,
            "errors": int(self.error is not None),
        }


@dataclass(frozen=True)
class SyncProgress:
    pages: int
    changes: int
    applied: int
    remaining: int | None


class ErpSync:
    """The sync of one ERP (safe to run from every replica: one of them works at a time)."""

    def __init__(
        self,
        service: LoyaltyService,
        config: ErpConfig,
        port: ErpPort,
        *,
        owner: str | None = None,
    ) -> None:
        self.service = service
        self.config = config
        self.port = port
        self.erp = config.name
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"[:64]
        self.stopping = threading.Event()  # set on shutdown: the run ends after the page it applies

    # -- lease and cursor ---------------------------------------------------------------------

    def _ensure_state(self, session: Session) -> None:
        if session.get(ErpSyncState, self.erp) is None:
            try:
                with session.begin_nested():
                    session.add(ErpSyncState(erp=self.erp, updated_at=self.service.clock()))
            except IntegrityError:  # another replica created it first
                pass

    def _take_lease(self) -> bool:
        now = self.service.clock()
        until = now + timedelta(seconds=self.config.sync.lease_seconds)
        with self.service.db.write() as session:
            self._ensure_state(session)
            taken = session.execute(
                update(ErpSyncState)
                .where(
                    col(ErpSyncState.erp) == self.erp,
                    or_(
                        col(ErpSyncState.lease_owner).is_(None),
                        col(ErpSyncState.lease_until) < now,
                        col(ErpSyncState.lease_owner) == self.owner,
                    ),
                )
                .values(lease_owner=self.owner, lease_until=until, last_run_at=now, updated_at=now)
            )
            return bool(taken.rowcount)  # type: ignore[attr-defined]

    def _release_lease(self, error: str | None) -> None:
        now = self.service.clock()
        with self.service.db.write() as session:
            row = session.get(ErpSyncState, self.erp)
            if row is None or row.lease_owner != self.owner:
                return
            row.lease_owner = None
            row.lease_until = None
            row.last_error = error[:1000] if error else None
            if error is None:
                row.last_success_at = now
            row.updated_at = now
            session.add(row)

    def cursor(self) -> str | None:
        with self.service.db.read() as session:
            row = session.get(ErpSyncState, self.erp)
            return row.cursor if row is not None else None

    def _advance(self, page: ErpPage, applied: int) -> bool:
        """Store the page's next cursor (and renew the lease) — only if the lease is still ours."""
        now = self.service.clock()
        with self.service.db.write() as session:
            row = session.get(ErpSyncState, self.erp)
            if row is None or row.lease_owner != self.owner:
                return False
            row.cursor = page.next_cursor
            row.lease_until = now + timedelta(seconds=self.config.sync.lease_seconds)
            row.pages += 1
            row.changes_seen += len(page.changes)
            row.orders_applied += applied
            if page.remaining is not None:
                row.backlog = page.remaining
            elif not page.more:
                row.backlog = 0
            row.updated_at = now
            session.add(row)
            return True

    # -- one run ------------------------------------------------------------------------------

    def run(self, max_pages: int | None = None, on_page: Callable[[SyncProgress], None] | None = None) -> SyncReport:
        """Catch up: pages until the feed is exhausted (or ``max_pages``), after retrying failed
        orders that are due. Never raises for an ERP failure: the report says what happened."""
        report = SyncReport()
        budget_label, base_rate, _ = window_at(self.config.throttle, self.service.clock())
        if base_rate == 0:
            report.error = f"quiet window {budget_label}: no calls to the ERP now"
            return report
        if not self._take_lease():
            report.busy = True
            return report
        error: str | None = None
        try:
            self._retry_failed(report)
            self._pages(report, max_pages or self.config.sync.max_pages_per_run, on_page)
        except ErpError as exc:
            error = f"{type(exc).__name__}: {exc}"
            report.error = error
            log.warning("ERP %s sync stopped: %s", self.erp, error)
        finally:
            self._release_lease(error)
        return report

    def _pages(self, report: SyncReport, max_pages: int, on_page: Callable[[SyncProgress], None] | None) -> None:
        """Apply pages in feed order while a reader thread fetches the next ones (up to
        ``fetch_ahead`` pages ahead): the ERP is read at the pace of the throttle, not of the
        ledger. Only the applying loop stores cursors."""
        pages: queue.Queue[ErpPage | BaseException | None] = queue.Queue(maxsize=self.config.sync.fetch_ahead)
        stop = threading.Event()

        def hand_over(item: ErpPage | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            cursor, count = self.cursor(), 0
            try:
                while not stop.is_set():
                    page = self.port.changed_orders(cursor, self.config.sync.page_size)
                    count += 1
                    if not hand_over(page):
                        return
                    if not page.more or count >= max_pages:
                        hand_over(None)
                        return
                    cursor = page.next_cursor
            except BaseException as exc:  # handed to the applying loop, which raises it
                hand_over(exc)

        reader = threading.Thread(target=read, name=f"erp-sync-{self.erp}-reader", daemon=True)
        reader.start()
        try:
            while not self.stopping.is_set() and (item := pages.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                report.pages += 1
                report.calls += item.calls
                applied = report.applied
                for change in item.changes:
                    self._apply(change, report)
                if not self._advance(item, report.applied - applied):
                    raise ErpRejected("the sync lease was lost to another replica; stopping")
                if on_page is not None:
                    on_page(SyncProgress(report.pages, report.changes, report.applied, item.remaining))
        finally:
            stop.set()  # a read in progress ends by itself; its page is read again next run
            reader.join(timeout=1.0)

    def _retry_failed(self, report: SyncReport) -> None:
        if self.config.sync.retry_failed_batch == 0:
            return
        now = self.service.clock()
        with self.service.db.read() as session:
            refs = list(
                session.exec(
                    select(ErpOrder.order_ref)
                    .where(
                        ErpOrder.erp == self.erp,
                        ErpOrder.state == "failed",
                        col(ErpOrder.next_retry_at) <= now,
                    )
                    .order_by(col(ErpOrder.next_retry_at))
                    .limit(self.config.sync.retry_failed_batch)
                ).all()
            )
        if not refs:
            return
        changes = self.port.fetch_orders(refs)
        found = {change.order_id for change in changes}
        for change in changes:
            report.retried += 1
            self._apply(change, report)
        for ref in set(refs) - found:  # gone at the ERP (deleted for good): stop retrying it
            self._record(ref, None, None, "failed", error=("not found at the ERP", "not_found"), retry=False)

    # -- one order ----------------------------------------------------------------------------

    def _previous(self, order_ref: str) -> ErpOrder | None:
        with self.service.db.read() as session:
            return session.get(ErpOrder, (self.erp, order_ref))

    def _apply(self, change: ErpOrderChange, report: SyncReport) -> str:
        report.changes += 1
        if change.unmapped:
            self.service.report_unmapped([Unmapped(self.erp, u.kind, u.ref, u.name) for u in change.unmapped])
        previous = self._previous(change.order_id)
        if previous is not None and previous.marker == change.marker and previous.state in ("applied", "skipped"):
            report.unchanged += 1
            return "unchanged"
        version = derive_version(previous, change)
        if previous is not None and previous.version > 0 and version < previous.version:
            report.stale += 1  # an older state than one already seen: never move backwards
            return "stale"
        if change.problem is not None:
            return self._failed(change, version, change.problem, "mapping", report)
        if change.skip is not None or change.request is None:
            self._record(change.order_id, change, version, "skipped", error=(change.skip or "nothing to apply", None))
            report.skipped += 1
            return "skipped"
        request = change.request.model_copy(update={"version": version})
        applied_before = previous is not None and previous.applied_version > 0
        if request.cancelled and not applied_before:
            self._record(change.order_id, change, version, "skipped", error=("cancelled before it was applied", None))
            report.skipped += 1
            return "skipped"
        try:
            result = self.service.apply_order(self.config.client_id, f"erp:{change.order_id}:{version}", request)
        except LoyaltyError as exc:
            return self._failed(change, version, exc.message, exc.code.value, report)
        self._record(change.order_id, change, version, "applied", applied=result.version)
        if result.applied:
            report.applied += 1
        else:
            report.stale += 1
        return "applied"

    def _failed(self, change: ErpOrderChange, version: int, reason: str, code: str, report: SyncReport) -> str:
        self._record(change.order_id, change, version, "failed", error=(reason, code))
        report.failed += 1
        report.failures.append((change.number or change.order_id, reason))
        log.warning("ERP order %s (%s) not applied: %s", change.order_id, change.number or "", reason)
        return "failed"

    def _record(
        self,
        order_ref: str,
        change: ErpOrderChange | None,
        version: int | None,
        state: str,
        *,
        applied: int | None = None,
        error: tuple[str, str | None] | None = None,
        retry: bool = True,
    ) -> None:
        now = self.service.clock()
        with self.service.db.write() as session:
            row = session.get(ErpOrder, (self.erp, order_ref))
            if row is None:
                if change is None:
                    return
                row = ErpOrder(
                    erp=self.erp,
                    order_ref=order_ref,
                    marker=change.marker,
                    changed_at=change.changed_at,
                    version=version or 0,
                    state=state,
                    first_seen_at=now,
                    updated_at=now,
                )
            if change is not None:
                row.marker = change.marker
                row.changed_at = change.changed_at
                row.number = (change.number or "")[:64] or None
            if version is not None and version > row.version:
                row.version = version
            if applied is not None and applied > row.applied_version:
                row.applied_version = applied
            row.state = state
            row.updated_at = now
            if state == "failed":
                row.failures += 1
                row.error = (error[0] if error else "failed")[:1000]
                row.error_code = error[1] if error else None
                delay = self.config.sync.retry_failed_seconds * 2 ** min(row.failures - 1, 6)
                row.next_retry_at = now + timedelta(seconds=delay) if retry else None
            else:
                row.failures = 0
                row.error = error[0][:1000] if error else None
                row.error_code = None
                row.next_retry_at = None
            session.add(row)


class BackgroundSync:
    """The periodic job: starts a sync run in a thread of its own (a catch-up through a gentle
    budget can take minutes, and the worker's loop must keep sweeping holds and relaying the
    outbox meanwhile) and reports the last finished run."""

    def __init__(self, sync: ErpSync) -> None:
        self.sync = sync
        self._thread: threading.Thread | None = None
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def _run(self) -> None:
        try:
            counters = self.sync.run().counters()
        except Exception:  # a bug must not kill the job for good: the next period runs again
            log.exception("ERP %s sync run failed", self.sync.erp)
            counters = {"errors": 1}
        with self._lock:
            self._last = counters

    def stop(self, timeout: float = 10.0) -> None:
        """Let the run in progress finish the page it applies (its cursor is stored), then end."""
        self.sync.stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def __call__(self) -> dict[str, int]:
        with self._lock:
            done, self._last = self._last, {}
            if self.sync.stopping.is_set():
                return done
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"erp-sync-{self.sync.erp}", daemon=True)
                self._thread.start()
        return done

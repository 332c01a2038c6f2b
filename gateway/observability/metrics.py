"""Prometheus metrics: what requests and the ledger did (counters and histograms, updated as
they happen) and what is waiting in the database (gauges read on each scrape by cheap, indexed
queries: open holds, stuck requests, outbox backlog and dead letters, the ERP throttle,
recent notifications and their cost).

Several server processes (``gateway serve --processes N``) share their counters through
prometheus-client's multiprocess mode: ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before the processes start, and any of them answers ``/metrics`` for all. The
database gauges are the same whichever process answers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlmodel import col

from gateway.store.db import Database
from gateway.store.models import JournalEntry, Notification, OutboxMessage

Rows = Callable[..., list[tuple[object, ...]]]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STUCK_AFTER = timedelta(seconds=60)
NOTIFICATION_WINDOW = timedelta(hours=24)

REQUESTS = Counter(
    "gateway_requests_total",
    "Requests answered, by protocol, operation and HTTP status",
    ["protocol", "operation", "status"],
)
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer a request, by protocol and operation",
    ["protocol", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LEDGER_OUTCOMES = Counter(
    "gateway_ledger_operations_total",
    "Mutating ledger operations by outcome (held, committed, refunded… or failed with its error code)",
    ["operation", "outcome", "code"],
)


def record_ledger_outcome(operation: str, outcome: str, code: str = "") -> None:
    LEDGER_OUTCOMES.labels(operation, outcome, code).inc()


class DatabaseCollector(Collector):
    """Gauges read from the database when Prometheus scrapes (never cached: always current)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self._db = db
        self._clock = clock or (lambda: datetime.now(UTC))

    def collect(self) -> Iterator[Metric]:
        now = self._clock()  # the ledger's clock: "stuck" and "recent" as the ledger sees time
        with self._db.read() as session:

            def rows(sql: str, **params: object) -> list[tuple[object, ...]]:
                return [tuple(r) for r in session.execute(text(sql), params).all()]

            yield _gauge(
                "gateway_open_holds",
                "Holds not yet committed, cancelled or voided",
                rows("SELECT count(*) FROM holds WHERE status = 'open'"),
            )
            yield _gauge(
                "gateway_stuck_requests",
                f"Requests received but neither applied nor refused for over {STUCK_AFTER.seconds} s "
                "(a process died mid-request; `gateway tx stuck`)",
                [
                    tuple(
                        session.execute(
                            select(func.count())
                            .select_from(JournalEntry)
                            .where(
                                col(JournalEntry.state) == "received",
                                col(JournalEntry.updated_at) < now - STUCK_AFTER,
                            )
                        ).one()
                    )
                ],
            )
            outbox = GaugeMetricFamily(
                "gateway_outbox_messages",
                "Outbox messages not delivered, by state (dead = dead letters)",
                labels=["state"],
            )
            counts = {
                row[0]: row[1]
                for row in rows(
                    "SELECT state, count(*) FROM outbox WHERE state IN ('pending', 'delivering', 'dead') GROUP BY state"
                )
            }
            for state in ("pending", "delivering", "dead"):
                outbox.add_metric([state], float(str(counts.get(state, 0))))
            yield outbox
            oldest = session.execute(
                select(func.min(col(OutboxMessage.created_at))).where(col(OutboxMessage.state) == "pending")
            ).scalar()
            yield _gauge(
                "gateway_outbox_oldest_pending_age_seconds",
                "Age of the oldest undelivered message",
                [(_age(now, oldest),)],
            )
            yield from self._erp(rows)
            yield from self._notifications(now, session)

    @staticmethod
    def _erp(rows: Rows) -> Iterable[Metric]:
        factor = GaugeMetricFamily(
            "gateway_erp_throttle_factor",
            "Share of the ERP budget the adaptive throttle allows now (1 = all)",
            labels=["erp"],
        )
        latency = GaugeMetricFamily("gateway_erp_latency_ewma_seconds", "Smoothed latency of ERP calls", labels=["erp"])
        calls = CounterMetricFamily("gateway_erp_calls", "ERP calls granted by the throttle", labels=["erp"])
        failures = CounterMetricFamily("gateway_erp_call_failures", "ERP calls that failed", labels=["erp"])
        for erp, f, ewma, n, failed in rows("SELECT erp, factor, latency_ewma_ms, calls, failures FROM erp_throttle"):
            factor.add_metric([str(erp)], float(str(f)))
            latency.add_metric([str(erp)], float(str(ewma)) / 1000 if ewma is not None else 0.0)
            calls.add_metric([str(erp)], float(str(n)))
            failures.add_metric([str(erp)], float(str(failed)))
        in_flight = GaugeMetricFamily(
            "gateway_erp_calls_in_flight", "ERP calls granted and not finished", labels=["erp"]
        )
        for erp, n in rows("SELECT erp, count(*) FROM erp_throttle_calls WHERE finished_at IS NULL GROUP BY erp"):
            in_flight.add_metric([str(erp)], float(str(n)))
        return (factor, latency, calls, failures, in_flight)

    @staticmethod
    def _notifications(now: datetime, session: Session) -> Iterable[Metric]:
        window = int(NOTIFICATION_WINDOW.total_seconds())
        sent = GaugeMetricFamily(
            "gateway_notifications_recent",
            f"Customer messages of the last {window} s by status and provider",
            labels=["status", "provider"],
        )
        cost = GaugeMetricFamily(
            "gateway_notification_cost_recent_rub",
            f"What the providers charged for the last {window} s of messages",
            labels=["provider"],
        )
        totals: dict[str, Decimal] = {}
        counted: dict[tuple[str, str], int] = {}
        # Costs are stored as the provider's decimal strings: summed exactly here, not in SQL.
        recent = select(col(Notification.status), col(Notification.provider), col(Notification.cost)).where(
            col(Notification.created_at) >= now - NOTIFICATION_WINDOW
        )
        for status, provider, price in session.execute(recent).all():
            key = (str(status), str(provider or ""))
            counted[key] = counted.get(key, 0) + 1
            if price:
                try:
                    totals[key[1]] = totals.get(key[1], Decimal(0)) + Decimal(str(price))
                except InvalidOperation:
                    continue
        for (status, provider), n in sorted(counted.items()):
            sent.add_metric([status, provider], n)
        for provider, amount in sorted(totals.items()):
            cost.add_metric([provider], float(amount))
        return (sent, cost)


def _gauge(name: str, doc: str, result: list[tuple[object, ...]]) -> GaugeMetricFamily:
    value = result[0][0] if result else 0
    return GaugeMetricFamily(name, doc, value=float(str(value or 0)))


def _age(now: datetime, then: object) -> float:
    if then is None:
        return 0.0
    if isinstance(then, str):
        then = datetime.fromisoformat(then)
    if not isinstance(then, datetime):
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


def render(db: Database, clock: Callable[[], datetime] | None = None) -> tuple[bytes, str]:
    """The exposition of this process's (or all processes') metrics plus the database gauges."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry.register(_Forward(REGISTRY))
    registry.register(DatabaseCollector(db, clock))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward(Collector):
    """This process's default registry, inside a scrape registry that also holds the database."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        return self._inner.collect()

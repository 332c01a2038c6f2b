"""The throttle that spares the ERP, measured at the ERP: never more calls per second or in
flight than the budget, most of the budget used when work waits, working hours and quiet
windows, adaptive slowdown and recovery, one budget for every replica, slots of dead processes
freed by their lease, calls we gave up on still counted while the ERP works on them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.onec.erp.config import ThrottleConfig, ThrottleWindow
from adapters.onec.erp.odata import ODataTransport
from adapters.onec.erp.throttle import ThrottleTimeout, rate_window, window_at
from gateway.store.db import Database
from gateway.store.models_erp import ErpThrottle
from testing.fake_erp import Behaviour, FakeErp, Line
from tests.erp_helpers import Load, erp_config, throttle_for
from tests.support import FakeClock, wait_for

MOSCOW_MONDAY_10 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 10:00 in Moscow (UTC+3)
MOSCOW_MONDAY_23 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
MOSCOW_SATURDAY_10 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
MOSCOW_TUESDAY_0230 = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # Tuesday 02:30 in Moscow


def test_working_hours_night_and_quiet_windows() -> None:
    config = ThrottleConfig(
        rate_per_second=Decimal(10),
        concurrency=4,
        windows=[
            ThrottleWindow(start="02:00", end="03:00", rate_per_second=Decimal(0), concurrency=0),
            ThrottleWindow(
                start="09:00", end="19:00", days=["mon", "tue", "wed", "thu", "fri"], rate_per_second=2, concurrency=2
            ),
            ThrottleWindow(start="22:00", end="06:00", days=["sun"], rate_per_second=Decimal(20), concurrency=8),
        ],
    )
    assert window_at(config, MOSCOW_MONDAY_10) == ("09:00-19:00", 2.0, 2)
    assert window_at(config, MOSCOW_MONDAY_23) == ("default", 10.0, 4)
    assert window_at(config, MOSCOW_SATURDAY_10) == ("default", 10.0, 4)  # weekends are nights
    assert window_at(config, MOSCOW_TUESDAY_0230) == ("02:00-03:00", 0.0, 0)  # the nightly backup
    sunday_night = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)  # Sunday 23:00 Moscow
    monday_early = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # Monday 01:00 Moscow: still Sunday's night
    assert window_at(config, sunday_night)[0] == window_at(config, monday_early)[0] == "22:00-06:00"


def test_the_default_budget_is_gentle_in_working_hours() -> None:
    config = ThrottleConfig()
    assert window_at(config, MOSCOW_MONDAY_10) == ("09:00-19:00", 2.0, 2)
    assert window_at(config, MOSCOW_MONDAY_23) == ("default", 10.0, 4)


def test_rate_window() -> None:
    assert rate_window(10) == (10, 1.0)
    assert rate_window(2) == (2, 1.0)
    calls, seconds = rate_window(3.5)
    assert calls == 4 and seconds == pytest.approx(4 / 3.5)
    assert rate_window(0.25) == (1, 4.0)


@pytest.mark.parametrize("rate,concurrency", [(10, 3), (4, 1)])
def test_never_exceeded_and_nearly_all_used_with_a_backlog(
    database_url: str, clock: FakeClock, rate: int, concurrency: int
) -> None:
    erp = FakeErp(behaviour=Behaviour(latency=0.01, load_factor=0.2))
    with erp.running() as url:
        config = erp_config(url, throttle={"rate_per_second": rate, "concurrency": concurrency})
        with Load(throttle_for(database_url, config, clock), url, threads=6):
            time.sleep(1.0)  # warm up
            start, end = time.monotonic(), time.monotonic() + 6.0
            time.sleep(6.0)
        measure = erp.measure
        assert measure.max_in_window(1.0) <= rate
        assert measure.max_in_flight <= concurrency
        used = measure.rate(start, end) / rate
        assert used >= 0.9, f"only {used:.0%} of the allowed rate used with work waiting"


def test_two_replicas_share_one_budget(database_url: str, clock: FakeClock) -> None:
    """Two workers, each with its own engine (as separate processes or hosts would be), on one
    database: the ERP sees one budget, not two."""
    erp = FakeErp(behaviour=Behaviour(latency=0.02, load_factor=0.2))
    with erp.running() as url:
        config = erp_config(url, throttle={"rate_per_second": 8, "concurrency": 2})
        first, second = throttle_for(database_url, config, clock), throttle_for(database_url, config, clock)
        with Load(first, url, threads=4) as a, Load(second, url, threads=4) as b:
            time.sleep(5.0)
        assert not a.errors and not b.errors
        assert a.calls > 5 and b.calls > 5  # both really worked
        assert erp.measure.max_in_window(1.0) <= 8
        assert erp.measure.max_in_flight <= 2


def test_the_slot_of_a_dead_process_is_freed_by_its_lease(database_url: str, clock: FakeClock) -> None:
    config = erp_config(
        "http://127.0.0.1:9",
        throttle={"rate_per_second": 100, "concurrency": 1, "slot_lease_seconds": 5},
        connect_timeout_seconds=1,
        read_timeout_seconds=1,
    )
    dead, alive = throttle_for(database_url, config, clock), throttle_for(database_url, config, clock)
    dead.acquire("pull")  # granted, never released: its process died mid-call
    with pytest.raises(ThrottleTimeout):
        alive.acquire("pull", max_wait=0.3)
    clock.advance(seconds=8)  # past the call timeouts (2 s) plus the slot lease (5 s)
    call = alive.acquire("pull", max_wait=0.3)
    alive.release(call, 0.01, "ok")


def test_a_quiet_window_grants_nothing(database_url: str, clock: FakeClock) -> None:
    config = erp_config(
        "http://127.0.0.1:9",
        throttle={"windows": [{"start": "00:00", "end": "24:00", "rate_per_second": 0, "concurrency": 0}]},
    )
    throttle = throttle_for(database_url, config, clock)
    assert throttle.status().budget.quiet
    with pytest.raises(ThrottleTimeout, match="quiet window"):
        throttle.acquire("pull", max_wait=0.2)


def test_latency_tripled_slows_the_gateway_down_and_it_recovers(database_url: str, clock: FakeClock) -> None:
    erp = FakeErp(behaviour=Behaviour(latency=0.1, load_factor=0.1))
    with erp.running() as url:
        config = erp_config(
            url,
            throttle={
                "rate_per_second": 10,
                "concurrency": 4,
                "adaptive": {"target_latency_ms": 200, "decrease": 0.5, "increase": 0.15, "interval_seconds": 0.5},
            },
        )
        throttle = throttle_for(database_url, config, clock)
        with Load(throttle, url, threads=8):
            time.sleep(2.0)
            normal = erp.measure.rate(*_window(4.0))
            erp.behaviour.latency = 0.3  # the managers' month-end: the ERP answers three times slower
            slowed_at = time.monotonic()
            assert wait_for(lambda: _factor(database_url, config.name) <= 0.5, timeout=10)
            reacted = time.monotonic() - slowed_at
            slow = erp.measure.rate(*_window(4.0))
            erp.behaviour.latency = 0.1
            assert wait_for(lambda: _factor(database_url, config.name) >= 0.99, timeout=60)
            recovered = erp.measure.rate(*_window(4.0))
        assert reacted < 10  # "within seconds"
        assert erp.measure.max_in_window(1.0) <= 10
        assert slow <= 0.6 * normal, (normal, slow)
        assert recovered >= 0.8 * normal, (normal, recovered)


def _window(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


def _factor(database_url: str, erp: str) -> float:
    db = Database(database_url)
    try:
        with db.read() as session:
            row = session.get(ErpThrottle, erp)
            return row.factor if row is not None else 1.0
    finally:
        db.dispose()


def test_a_call_abandoned_by_our_timeout_keeps_its_slot_until_the_erp_is_done(
    database_url: str, clock: FakeClock
) -> None:
    """Issue 18: the ERP hangs longer than our read timeout. The gateway stops waiting, but the
    ERP still works on the call — so the retry (and every other caller) waits until the ERP can
    be assumed done (``erp_execution_limit_seconds``): the ERP itself never sees more calls in
    flight than the budget (before: 4 at the ERP against a budget of 2)."""
    erp = FakeErp(behaviour=Behaviour(latency=0.01, hang_next=4, hang_seconds=1.2))
    refs = [erp.create_order([Line(1, "goods-a", Decimal(1), Decimal(100))]) for _ in range(4)]
    with erp.running() as url:
        config = erp_config(
            url,
            read_timeout_seconds=0.3,
            throttle={"concurrency": 2, "rate_per_second": 50, "erp_execution_limit_seconds": 1.5},
            retry={"attempts": 5},
            mapping={"cards": {}},
        )
        port = ODataTransport(config, throttle_for(database_url, config, clock))
        errors: list[BaseException] = []

        def read(ref: str) -> None:
            try:
                port.fetch_orders([ref])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(ref,)) for ref in refs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        port.close()
    assert not errors, errors
    # calls we abandoned after 0.3 s, which the ERP worked on to the end
    assert sum(1 for seconds in erp.measure.latencies() if seconds >= 1.2) >= 2
    assert erp.measure.max_in_flight <= 2

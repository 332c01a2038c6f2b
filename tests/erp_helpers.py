"""What the ERP sync tests share: a configuration pointing at the fake ERP, a service on the
test database, cards, and a load generator that calls the ERP through the throttle."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import httpx

from adapters.onec.erp.calls import basic_auth_header
from adapters.onec.erp.config import ErpConfig
from adapters.onec.erp.throttle import DbThrottle
from contracts.operations import BalanceRequest, BalanceResult
from gateway.config import DEMO_CONFIG, GatewayConfig, load_config
from gateway.ledger.service import LoyaltyService
from gateway.store.db import Database
from testing.erp import ERP_CLIENT, erp_config
from testing.fake_erp import LOGIN, PASSWORD, FakeErp
from tests.support import FakeClock, card_with_points

__all__ = ["ERP_CLIENT", "erp_config"]  # re-exported for the ERP tests


T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the ERP tests' "now"


def at(minutes: int) -> datetime:
    """``minutes`` after T0."""
    return T0 + timedelta(minutes=minutes)


def gateway_config(erp: ErpConfig) -> GatewayConfig:
    return load_config(DEMO_CONFIG).model_copy(update={"erp": erp})


def service_on(database_url: str, clock: FakeClock, config: GatewayConfig | None = None) -> LoyaltyService:
    from gateway.wiring import subscriptions

    config = config or load_config(DEMO_CONFIG)
    return LoyaltyService(Database(database_url), config.program, clock, subscriptions(config))


def new_card(service: LoyaltyService, erp: FakeErp, points: int = 1000) -> tuple[str, str]:
    """A registered customer's card with ``points`` available, known to the fake ERP's card
    catalog; returns (card number, the ERP's card reference)."""
    number = card_with_points(service, points, f"27{random.randrange(10**10, 10**11)}")
    return number, erp.add_card(number)


def balance(service: LoyaltyService, card: str) -> BalanceResult:
    return service.balance("test", BalanceRequest(card_number=card))


def throttle_for(database_url: str, config: ErpConfig, clock: FakeClock) -> DbThrottle:
    """A throttle with its own database engine, like another process would have."""
    return DbThrottle(
        Database(database_url),
        config.name,
        config.throttle,
        call_timeout_seconds=config.connect_timeout_seconds + config.read_timeout_seconds,
        clock=clock,
    )


class Load:
    """Threads that call the ERP through a throttle as fast as it lets them, until stopped."""

    def __init__(self, throttle: DbThrottle, base_url: str, threads: int) -> None:
        self.throttle = throttle
        self.url = f"{base_url}/odata/standard.odata/{quote('Document_ЗаказКлиента')}"
        self.headers = {"Authorization": basic_auth_header(LOGIN, PASSWORD)}
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.calls = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]

    def _work(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self.stop.is_set():
                try:
                    with self.throttle("pull"):
                        response = http.get(self.url, params={"$format": "json", "$top": "1"}, headers=self.headers)
                        response.raise_for_status()
                    with self._lock:
                        self.calls += 1
                except BaseException as exc:
                    self.errors.append(exc)
                    return

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def steady(seconds: float) -> tuple[float, float]:
    """(start, end) monotonic times of a measurement window starting now."""
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


D = Decimal

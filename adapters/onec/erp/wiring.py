"""The ERP integration's parts for one service, built by the composition root
(``gateway/wiring.py``) and handed to the relay, the periodic jobs and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.onec.erp import build_transport
from adapters.onec.erp.config import ErpConfig
from adapters.onec.erp.pusher import DESTINATION, ErpResultPusher
from adapters.onec.erp.sync import BackgroundSync, ErpSync
from adapters.onec.erp.throttle import DbThrottle
from gateway.core.erp import ErpPort
from gateway.ledger.service import LoyaltyService
from gateway.outbound.outbox import Subscription
from gateway.outbound.relay import Deliverer
from gateway.workers.runner import PeriodicJob


@dataclass
class ErpRuntime:
    """One throttle, one transport (one connection pool), the sync and the pusher of one ERP."""

    config: ErpConfig
    throttle: DbThrottle
    port: ErpPort
    sync: ErpSync
    pusher: ErpResultPusher


def build_runtime(service: LoyaltyService, config: ErpConfig) -> ErpRuntime:
    throttle = DbThrottle(
        service.db,
        config.name,
        config.throttle,
        call_timeout_seconds=config.connect_timeout_seconds + config.read_timeout_seconds,
        clock=service.clock,
    )
    port = build_transport(config, throttle)
    return ErpRuntime(config, throttle, port, ErpSync(service, config, port), ErpResultPusher(service, config, port))


def subscriptions(config: ErpConfig | None) -> list[Subscription]:
    """The ERP receives ``order.updated`` of its own client's orders (the results to write back)."""
    if config is None or not config.sync.push:
        return []
    return [Subscription(DESTINATION, frozenset({"order.updated"}), clients=frozenset({config.client_id}))]


def deliverers(runtime: ErpRuntime | None) -> dict[str, Deliverer]:
    if runtime is None or not runtime.config.sync.push:
        return {}
    return {DESTINATION: runtime.pusher}


def jobs(runtime: ErpRuntime | None) -> list[PeriodicJob]:
    if runtime is None:
        return []
    background = BackgroundSync(runtime.sync)
    name = f"erp_sync.{runtime.config.name}"
    return [PeriodicJob(name, runtime.config.sync.interval_seconds, background, stop=background.stop)]

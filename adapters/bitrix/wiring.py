"""What ``gateway.wiring`` builds for the Bitrix adapter: the outbox deliverer of Bitrix24 events
(with one REST client, and so one leaky bucket, per portal) and the clean-up job."""

from __future__ import annotations

from datetime import timedelta

from adapters.bitrix.b24.client import Bitrix24Client
from adapters.bitrix.b24.contacts import Bitrix24Deliverer
from adapters.bitrix.b24.events import DESTINATION
from adapters.bitrix.commerceml import exchange
from adapters.bitrix.maintenance import purge_bitrix24_events
from adapters.bitrix.site import replay
from gateway.config import ConfigError, GatewayConfig
from gateway.ledger.service import LoyaltyService
from gateway.outbound.relay import Deliverer
from gateway.workers.runner import PeriodicJob

CLEANUP_EVERY = 600.0


def check_clients(config: GatewayConfig) -> None:
    """Every client the ``bitrix:`` section names must be one of ``clients``."""
    if config.bitrix is None:
        return
    known = {c.id for c in config.clients}
    missing = [
        f"{where}: no client {client!r}" for where, client in config.bitrix.client_ids().items() if client not in known
    ]
    if missing:
        raise ConfigError("\n".join(missing))


def build_deliverers(service: LoyaltyService, config: GatewayConfig) -> dict[str, Deliverer]:
    check_clients(config)
    if config.bitrix is None or config.bitrix.bitrix24 is None:
        return {}
    section = config.bitrix.bitrix24
    clients = {
        portal.member_id: Bitrix24Client(
            portal.webhook_url,
            rate_per_second=portal.rate_per_second,
            burst=portal.burst,
            timeout_seconds=portal.timeout_seconds,
            max_attempts=portal.max_attempts,
        )
        for portal in section.portals
    }
    return {DESTINATION: Bitrix24Deliverer(service, section, clients)}


def build_jobs(service: LoyaltyService, config: GatewayConfig) -> list[PeriodicJob]:
    section = config.bitrix
    if section is None:
        return []

    def cleanup() -> dict[str, int]:
        done: dict[str, int] = {}
        now = service.clock()
        if section.site is not None:
            keep = timedelta(seconds=2 * section.site.replay_window_seconds + 60)
            done["site_events_purged"] = replay.purge(service.db, now - keep)
        if section.commerceml is not None:
            done["exchange_sessions_purged"] = exchange.purge(service, section.commerceml)
        if section.bitrix24 is not None:
            keep = timedelta(days=section.bitrix24.keep_events_days)
            done["bitrix24_events_purged"] = purge_bitrix24_events(service.db, now - keep)
        return done

    return [PeriodicJob("bitrix", CLEANUP_EVERY, cleanup)]

"""Builds the running parts from the configuration: service, outbox subscriptions, message
providers and their cascade, the relay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from adapters.bitrix import wiring as bitrix_wiring
from adapters.bitrix.maintenance import failed_exchange_files
from adapters.email.smtp import EmailEnvelope, SmtpProvider, SmtpSettings
from adapters.onec.erp import wiring as erp_wiring
from adapters.sms.console import ConsoleProvider
from adapters.sms.smsaero import SmsAero
from adapters.sms.smsc import Smsc
from adapters.sms.smsru import SmsRu
from adapters.sms.telegram import Telegram
from adapters.telegram_bot import BotApi, TelegramBot, TelegramPoller, TelegramSender
from adapters.vk import VkApi, VkBot, VkSender
from gateway.bots.chats import ChatStore
from gateway.bots.conversation import BotConversation
from gateway.bots.delivery import BotProvider
from gateway.bots.fallback import send_unread_on
from gateway.config import ConfigError, GatewayConfig, NotificationsConfig, Settings
from gateway.core.messaging import MessageProvider, OutgoingMessage
from gateway.ledger import program_jobs
from gateway.ledger.context import Clock, utc_now
from gateway.ledger.referrals import ReferralRefunds
from gateway.ledger.service import LoyaltyService
from gateway.mailings import grants as mailing_grants
from gateway.mailings import planner as mailing_planner
from gateway.mailings.envelopes import envelope_lookup
from gateway.notify.cascade import Cascade
from gateway.notify.queue import DESTINATION
from gateway.notify.triggers import NotificationTriggers
from gateway.notify.verification import PhoneVerification
from gateway.outbound.outbox import Subscription
from gateway.outbound.relay import Deliverer, Relay, RelaySettings
from gateway.outbound.webhooks import WebhookDeliverer
from gateway.reports.rollups import fold as fold_report_rollups
from gateway.store.db import Database
from gateway.workers import accounts_jobs
from gateway.workers.runner import PeriodicJob

NOTIFICATION_JOBS_EVERY = 600.0  # seconds between runs of the (idempotent) date-driven notification jobs
MAILING_JOBS_EVERY = 30.0  # seconds between planner passes over sending mailings and open grants
PROGRAM_JOBS_EVERY = 600.0  # the daily program job (tiers, segments, birthdays) checks this often for work
REPORT_ROLLUPS_EVERY = 10.0  # seconds between folds of new receipts and ledger entries into the report rollups


def subscriptions(config: GatewayConfig) -> list[Subscription]:
    hooks = [Subscription(f"webhook:{hook.id}", frozenset(hook.events)) for hook in config.webhooks]
    return hooks + erp_wiring.subscriptions(config.erp)


def build_erp(service: LoyaltyService, config: GatewayConfig) -> erp_wiring.ErpRuntime | None:
    """The ERP integration's parts (one throttle and connection pool), or None without ``erp:``;
    build it once and pass it to ``build_relay`` and ``build_jobs`` so that both share it."""
    return erp_wiring.build_runtime(service, config.erp) if config.erp is not None else None


def operator_notices(service: LoyaltyService) -> Callable[[], list[str]]:
    """What integrations ask an operator to look at, one line each, for the operator page
    (today: 1C exchange files that could not be applied, with the reason)."""
    return lambda: failed_exchange_files(service.db)


def build_service(settings: Settings, config: GatewayConfig, clock: Clock = utc_now) -> LoyaltyService:
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    return LoyaltyService(
        db,
        config.program,
        clock,
        subscriptions(config),
        in_flight_lease=timedelta(seconds=settings.in_flight_lease_seconds),
        event_hooks=[NotificationTriggers(config.notifications).on_events, ReferralRefunds(db, config.program)],
        capture_settlers={c.id: frozenset(c.settles_captures_of) for c in config.clients if c.settles_captures_of},
    )


def build_providers(config: NotificationsConfig) -> dict[str, MessageProvider]:
    providers: dict[str, MessageProvider] = {}
    for name, spec in config.providers.items():
        if spec.type == "console":
            providers[name] = ConsoleProvider(Path(spec.path or "gateway-messages.jsonl"))
        elif spec.type == "smsru":
            providers[name] = SmsRu(spec.api_id or "", spec.sender)
        elif spec.type == "smsc":
            providers[name] = Smsc(spec.login or "", spec.password or "", spec.sender)
        elif spec.type == "smsaero":
            providers[name] = SmsAero(spec.email or "", spec.api_key or "", spec.sign or "")
        elif spec.type == "smtp":
            continue  # needs the database (who a message goes to): built by mail_providers
        elif spec.type == "bot":
            continue  # needs the database: built by bot_providers
        else:
            providers[name] = Telegram(spec.gateway_token, spec.bot_token)
    return providers


def build_cascade(
    service: LoyaltyService, config: GatewayConfig, providers: dict[str, MessageProvider] | None = None
) -> Cascade:
    chosen = providers if providers is not None else build_providers(config.notifications)
    chosen = {**bot_providers(service, config), **chosen}
    chosen = {**mail_providers(service, config), **chosen}
    return Cascade(service.db, chosen, cascade_chains(config), clock=service.clock)


def cascade_chains(config: GatewayConfig) -> dict[str, list[str]]:
    """The notification chains plus one per mailing channel (``mailings.chains``; SMS defaults to
    the notification chain)."""
    chains = {kind: list(chain) for kind, chain in config.notifications.chains.items()}
    chains[mailing_planner.notification_kind("sms")] = list(
        config.mailings.chains.get("sms") or config.notifications.chains["notification"]
    )
    chains[mailing_planner.notification_kind("email")] = list(config.mailings.chains.get("email", []))
    return chains


def mail_providers(service: LoyaltyService, config: GatewayConfig) -> dict[str, MessageProvider]:
    """Message providers of ``type: smtp``: e-mail, addressed by the mailing's recipient."""
    lookup = envelope_lookup(service.db, config)

    def envelope_of(message: OutgoingMessage) -> EmailEnvelope | None:
        found = lookup(message.message_id, message.phone)
        return EmailEnvelope(found.to, found.subject, found.unsubscribe_url) if found else None

    providers: dict[str, MessageProvider] = {}
    for name, spec in config.notifications.providers.items():
        if spec.type == "smtp":
            settings = SmtpSettings(
                host=spec.host or "",
                port=spec.port or {"ssl": 465, "starttls": 587}.get(spec.security, 25),
                from_address=spec.from_address or "",
                from_name=spec.from_name,
                security=spec.security,
                username=spec.login,
                password=spec.password,
            )
            providers[name] = SmtpProvider(settings, envelope_of)
    return providers


def build_relay(
    service: LoyaltyService,
    config: GatewayConfig,
    providers: dict[str, MessageProvider] | None = None,
    erp: erp_wiring.ErpRuntime | None = None,
) -> Relay:
    deliverers: dict[str, Deliverer] = {
        f"webhook:{hook.id}": WebhookDeliverer(hook.url, hook.secret, hook.timeout_seconds) for hook in config.webhooks
    }
    deliverers[DESTINATION] = build_cascade(service, config, providers)
    deliverers.update(erp_wiring.deliverers(erp or build_erp(service, config)))
    deliverers.update(bitrix_wiring.build_deliverers(service, config))
    max_attempts = max((hook.max_attempts for hook in config.webhooks), default=RelaySettings.max_attempts)
    return Relay(service.db, deliverers, settings=RelaySettings(max_attempts=max_attempts), clock=service.clock)


def build_jobs(
    service: LoyaltyService, config: GatewayConfig, erp: erp_wiring.ErpRuntime | None = None
) -> list[PeriodicJob]:
    """Every periodic job beside the maintenance pass, for ``serve`` and ``gateway worker``."""
    triggers = NotificationTriggers(config.notifications)
    jobs = [
        PeriodicJob(
            "notifications",
            NOTIFICATION_JOBS_EVERY,
            lambda: {"scheduled": triggers.run_daily_jobs(service)},
        ),
    ]
    jobs.extend(bitrix_wiring.build_jobs(service, config))
    jobs.extend(erp_wiring.jobs(erp or build_erp(service, config)))
    jobs.extend(accounts_jobs.build_jobs(service))
    jobs.append(PeriodicJob("program", PROGRAM_JOBS_EVERY, lambda: program_jobs.run_daily(service)))
    jobs.append(
        PeriodicJob("report-rollups", REPORT_ROLLUPS_EVERY, lambda: fold_report_rollups(service.db, service.clock()))
    )
    jobs.append(
        PeriodicJob(
            "mailings",
            MAILING_JOBS_EVERY,
            lambda: {**mailing_planner.plan_due(service, config), **mailing_grants.run_due(service)},
        )
    )
    jobs.extend(bot_jobs(service, config))
    return jobs


@dataclass(frozen=True)
class Bots:
    """The chat bots of the ``bots:`` section: what the webhook routes and the polling job call."""

    telegram: TelegramBot | None = None
    vk: VkBot | None = None
    telegram_api: BotApi | None = None


BOT_UPDATES_KEPT = timedelta(days=2)  # Telegram keeps an unanswered update 24 h; VK retries for less
BOT_CLEANUP_EVERY = 3600.0
BOT_FALLBACK_EVERY = 300.0  # seconds between looks for unread bot messages


def build_bots(service: LoyaltyService, config: GatewayConfig) -> Bots:
    section = config.bots
    if section is None:
        return Bots()
    conversation = BotConversation(service, section, PhoneVerification(service, config.notifications))
    telegram = api = vk = None
    if section.telegram is not None:
        api = BotApi(section.telegram.token, section.telegram.api_url)
        telegram = TelegramBot(conversation, api)
    if section.vk is not None:
        vk_api = VkApi(section.vk.access_token, section.vk.api_version, section.vk.api_url)
        vk = VkBot(conversation, vk_api)
    return Bots(telegram, vk, api)


def bot_providers(service: LoyaltyService, config: GatewayConfig) -> dict[str, MessageProvider]:
    """Message providers of ``type: bot``: a notification goes to the customer's bot chat."""
    chats = ChatStore(service.db)
    providers: dict[str, MessageProvider] = {}
    for name, spec in config.notifications.providers.items():
        if spec.type != "bot":
            continue
        bots = config.bots
        if spec.bot == "telegram" and bots is not None and bots.telegram is not None:
            api = BotApi(bots.telegram.token, bots.telegram.api_url)
            providers[name] = BotProvider(name, "telegram", chats, TelegramSender(api), service.clock)
        elif spec.bot == "vk" and bots is not None and bots.vk is not None:
            vk_api = VkApi(bots.vk.access_token, bots.vk.api_version, bots.vk.api_url)
            providers[name] = BotProvider(name, "vk", chats, VkSender(vk_api), service.clock)
        else:
            raise ConfigError(f"notifications.providers.{name}: no bots.{spec.bot} section for this provider")
    return providers


def bot_jobs(service: LoyaltyService, config: GatewayConfig) -> list[PeriodicJob]:
    """Long polling of the Telegram bot (``mode: polling``), unread bot messages sent on by the
    next provider (``unread_fallback_hours``) and forgetting old handled updates."""
    if config.bots is None:
        return []
    chats = ChatStore(service.db)
    jobs = [
        PeriodicJob(
            "bots",
            BOT_CLEANUP_EVERY,
            lambda: {"bot_updates_purged": chats.purge_updates(service.clock() - BOT_UPDATES_KEPT)},
        )
    ]
    hours = config.bots.unread_fallback_hours
    if hours is not None:
        quiet = config.notifications.quiet_hours
        jobs.append(
            PeriodicJob(
                "bot_unread_fallback",
                BOT_FALLBACK_EVERY,
                lambda: {"bot_unread_sent_on": send_unread_on(service.db, hours, service.clock(), quiet)},
            )
        )
    telegram = config.bots.telegram
    if telegram is not None and telegram.mode == "polling":
        bots = build_bots(service, config)
        assert bots.telegram is not None and bots.telegram_api is not None
        poller = TelegramPoller(bots.telegram, bots.telegram_api, telegram.poll_timeout_seconds)
        jobs.append(PeriodicJob("telegram_polling", 1.0, poller, stop=poller.stop))
    return jobs

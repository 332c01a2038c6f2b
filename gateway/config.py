"""Gateway configuration: environment settings and the integrator's configuration file.

Environment (pydantic-settings, prefix ``GATEWAY_``) says *where*: database URL, config file,
listen address. The configuration file (YAML) says *what*: the loyalty program, the clients
allowed to call us with their credentials, and demo seed data. Secrets in the file may be given
as ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``) so they need not be stored in it.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.bitrix.config import BitrixConfig
from adapters.onec.erp.config import ErpConfig
from adapters.onec.loyaltyservice.config import OneCConfig
from contracts.operations import CardNumber
from gateway.bots.config import BotsConfig
from gateway.core.program import Program
from gateway.mailings.config import MailingsConfig

DEMO_CONFIG = Path(__file__).parent / "demo" / "gateway.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None, extra="ignore")

    database_url: str = Field(default="sqlite:///./gateway.db", description="sqlite:///FILE or postgresql://…")
    config: Path = Field(default=DEMO_CONFIG, description="The gateway configuration file (YAML)")
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    log_format: Literal["plain", "json"] = Field(default="plain", description="Log lines: plain text or JSON lines")
    workers: bool = Field(default=True, description="Run the hold sweeper inside `serve`")
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    db_pool_size: int = Field(default=10, ge=1)
    auto_migrate: bool = Field(default=True, description="Apply database migrations on start")
    seed_demo: bool = Field(default=True, description="Create the configuration's demo cards on start")
    in_flight_lease_seconds: float = Field(
        default=60, ge=1, le=3600, description="How long a request's idempotency claim outlives a dead process"
    )


class ClientConfig(BaseModel):
    """A system allowed to call the gateway: a till fleet, the site, the ERP, an operator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    kind: Literal["till", "site", "erp", "operator", "marketer"]
    name: str | None = None
    login: str | None = Field(default=None, description="HTTP Basic login (may be Cyrillic)")
    password: str | None = None
    tokens: list[str] = Field(default_factory=list, description="Bearer tokens")
    grants: list[Literal["gift_cards.issue"]] = Field(
        default_factory=list, description="Operations beyond the kind's role (docs/security.md, the role matrix)"
    )
    settles_captures_of: list[str] = Field(
        default_factory=list,
        description="Till clients whose written-off points this client's receipts settle (the back office "
        "forwarding those tills' receipts); a till's own receipts always settle its write-offs",
    )
    soap_status_bonuses: bool = Field(
        default=False,
        description="SOAP cheque Items also carry ActiveChargedBonus and the *StatusBonus fields of later "
        "Manzana versions (clients such as xcom-backend read them unconditionally)",
    )

    @model_validator(mode="after")
    def _has_credentials(self) -> ClientConfig:
        if (self.login is None) != (self.password is None):
            raise ValueError("give both login and password, or neither")
        if self.login is None and not self.tokens:
            raise ValueError("a client needs a login/password or at least one token")
        if any(len(t) < 16 for t in self.tokens):
            raise ValueError("tokens must be at least 16 characters")
        return self


class WebhookConfig(BaseModel):
    """An HTTP endpoint that receives ledger events through the outbox (at least once)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_\-]+$")
    url: str = Field(pattern=r"^https?://[^\s]+$")
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    secret: str | None = Field(default=None, min_length=16, description="HMAC-SHA256 signing secret")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=12, ge=1, le=100)

    @model_validator(mode="after")
    def _known_events(self) -> WebhookConfig:
        from gateway.outbound.events import EVENT_NAMES

        groups = {name.split(".")[0] + ".*" for name in EVENT_NAMES}
        unknown = [e for e in self.events if e != "*" and e not in EVENT_NAMES and e not in groups]
        if unknown:
            raise ValueError(f"unknown events {unknown}; known: {', '.join(EVENT_NAMES)}")
        return self


class ProviderConfig(BaseModel):
    """One message provider account. Secrets belong in the environment: ``${SMSRU_API_ID}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["console", "smsru", "smsc", "smsaero", "telegram", "bot", "smtp"]
    path: str | None = Field(default=None, description="console: the file messages are written to")
    api_id: str | None = None  # smsru
    login: str | None = None  # smsc
    password: str | None = None  # smsc
    email: str | None = None  # smsaero
    api_key: str | None = None  # smsaero
    sender: str | None = None  # smsru, smsc: the approved sender name
    sign: str | None = None  # smsaero
    gateway_token: str | None = None  # telegram Gateway API (codes by phone)
    bot_token: str | None = None  # telegram Bot API (chats)
    host: str | None = None  # smtp (login, password: the SMTP login)
    port: int | None = Field(default=None, ge=1, le=65535)  # smtp: 587 starttls, 465 ssl, 25 none
    security: Literal["starttls", "ssl", "none"] = "starttls"  # smtp
    from_address: str | None = None  # smtp: the sender, e.g. news@shop.ru
    from_name: str | None = None  # smtp: the sender's name, e.g. Строймаркет
    bot: Literal["telegram", "vk"] | None = None  # bot: the chats of this bot (the `bots:` section)

    @model_validator(mode="after")
    def _credentials(self) -> ProviderConfig:
        required = {
            "smsru": ("api_id",),
            "smsc": ("login", "password"),
            "smsaero": ("email", "api_key", "sign"),
        }.get(self.type, ())
        missing = [name for name in required if not getattr(self, name)]
        if missing:
            raise ValueError(f"{self.type} needs {', '.join(missing)}")
        if self.type == "telegram" and not (self.gateway_token or self.bot_token):
            raise ValueError("telegram needs gateway_token and/or bot_token")
        if self.type == "smtp" and not (self.host and self.from_address):
            raise ValueError("smtp needs host and from_address")
        if self.type == "bot" and self.bot is None:
            raise ValueError("bot needs bot: telegram or vk")
        return self


class VerificationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code_length: int = Field(default=6, ge=4, le=8)
    ttl_seconds: int = Field(default=300, ge=30, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=20)
    resend_interval_seconds: int = Field(default=60, ge=0, le=3600)
    max_per_phone_per_hour: int = Field(default=5, ge=1, le=100)
    max_per_ip_per_hour: int = Field(default=20, ge=1, le=10_000)


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "Europe/Moscow"


DEFAULT_TEMPLATES = {
    "verification": "Код подтверждения: {code}. Никому его не сообщайте.",
    "points_accrued": "Начислено бонусов: {points}. Баланс: {balance}.",
    "points_spent": "Списано бонусов: {points}. Баланс: {balance}.",
    "points_expiring": "{points} бонусов сгорят {date}. Успейте потратить!",
    "birthday": "С днём рождения, {name}! Ждём вас в наших магазинах.",
}

# Lifecycle triggers (gateway/notify/lifecycle.py): a file that names no text for one gets these.
LIFECYCLE_TEMPLATES = {
    "win_back": "{name}, давно вас не видели! Дарим {gift_points} бонусов, они действуют до {gift_expires}.",
    "win_back_follow_up": "{name}, мы скучаем! Заходите — ваши бонусы ждут: {balance}.",
    "tier_changed": "{name}, ваш уровень теперь «{tier}».",
    "tier_close": "{name}, до уровня «{tier}» осталось купить на {missing} ₽ до {date}.",
    "points_expired": "Сгорело бонусов: {points}. Баланс: {balance}.",
    "balance_high": "{name}, у вас накопилось {balance} бонусов — потратьте их на следующую покупку!",
    "phone_unconfirmed": "{name}, подтвердите, пожалуйста, номер телефона — так ваши бонусы ({balance}) под защитой.",
    "phone_unconfirmed_again": "{name}, напоминаем: номер телефона ещё не подтверждён. Бонусов на карте: {balance}.",
}

# The fields each trigger fills a template with: check-config rejects a template naming another.
TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    "verification": frozenset({"code"}),
    "points_accrued": frozenset({"points", "balance"}),
    "points_spent": frozenset({"points", "balance"}),
    "points_expiring": frozenset({"points", "date"}),
    "birthday": frozenset({"name"}),
    "win_back": frozenset({"name", "days", "gift_points", "gift_expires", "balance"}),
    "win_back_follow_up": frozenset({"name", "days", "balance"}),
    "tier_changed": frozenset({"name", "tier", "old_tier"}),
    "tier_close": frozenset({"name", "tier", "missing", "date"}),
    "points_expired": frozenset({"points", "balance"}),
    "balance_high": frozenset({"name", "balance", "threshold"}),
    "phone_unconfirmed": frozenset({"name", "days", "balance"}),
    "phone_unconfirmed_again": frozenset({"name", "days", "balance"}),
}


def template_problems(topic: str, text: str) -> list[str]:
    """What stops ``text`` from being filled by its trigger: a field it does not provide, a
    positional ``{}``, an unbalanced brace. Empty when the template is fine."""
    provided = TEMPLATE_FIELDS.get(topic)
    if provided is None:
        return []
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for name in fields:
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if base not in provided:
            shown = "{" + name + "}"
            problems.append(f"{shown} is not a field of this message (it has: {', '.join(sorted(provided))})")
    return problems


class WinBackConfig(BaseModel):
    """No purchase (receipt or order) for ``after_days`` → a message, optional gift points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_days: int = Field(default=60, ge=1, le=3650)
    within_days: int = Field(
        default=30, ge=1, le=3650, description="Lapses older than after_days + this are left alone (no backlog)"
    )
    gift_points: int = Field(default=0, ge=0, le=1_000_000)
    gift_expiry_days: int | None = Field(default=30, ge=1, le=3650, description="None: the gift never expires")
    follow_up_days: int | None = Field(default=None, ge=1, le=3650, description="A second message M days later")


class BalanceHighConfig(BaseModel):
    """Available points at or above ``points`` → "у вас накопилось N бонусов — потратьте": once
    per crossing (again only after the balance fell below and rose again), or again after
    ``repeat_days`` while it stays above."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: int = Field(default=1000, ge=1, le=10**12)
    repeat_days: int | None = Field(
        default=None, ge=1, le=3650, description="Remind again after this many days while the balance stays above"
    )


class PhoneUnconfirmedConfig(BaseModel):
    """A customer registered with a phone never confirmed by a code: a reminder ``after_days``
    after registration, once, and optionally a second one ``again_after_days`` after it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_days: int = Field(default=3, ge=1, le=3650)
    again_after_days: int | None = Field(
        default=None, ge=1, le=3650, description="A second reminder, days after registration"
    )
    within_days: int = Field(
        default=30, ge=1, le=3650, description="Reminders older than this many days are not sent (no backlog)"
    )

    @model_validator(mode="after")
    def _second_after_first(self) -> PhoneUnconfirmedConfig:
        if self.again_after_days is not None and self.again_after_days <= self.after_days:
            raise ValueError("again_after_days must be later than after_days")
        return self


class TierCloseConfig(BaseModel):
    """Turnover within ``percent`` of the next tier while the window ends within ``days``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: int = Field(default=20, ge=1, le=99)
    days: int = Field(default=14, ge=1, le=366)


class NotificationsConfig(BaseModel):
    """Who sends customer messages, in which order, with which texts, and when not to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: dict[str, ProviderConfig] = Field(
        default_factory=lambda: {"console": ProviderConfig(type="console", path="gateway-messages.jsonl")}
    )
    chains: dict[str, list[str]] = Field(
        default_factory=lambda: {"verification": ["console"], "notification": ["console"]},
        description="Providers tried in order for each kind of message (e.g. telegram, then smsru, then smsc)",
    )
    triggers: list[
        Literal[
            "points_accrued",
            "points_spent",
            "points_expiring",
            "birthday",
            "win_back",
            "tier_changed",
            "tier_close",
            "points_expired",
            "balance_high",
            "phone_unconfirmed",
        ]
    ] = Field(default_factory=list, description="Which ledger events send customers a message")
    webhook_only: list[
        Literal["win_back", "tier_changed", "tier_close", "points_expired", "balance_high", "phone_unconfirmed"]
    ] = Field(
        default_factory=list,
        description="Lifecycle triggers that only emit their webhook event (customer.<trigger>): the CRM writes "
        "to the customer itself",
    )
    templates: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    expiring_days: int = Field(default=7, ge=1, le=90)
    quiet_hours: QuietHours | None = None
    verification: VerificationPolicy = VerificationPolicy()
    win_back: WinBackConfig = WinBackConfig()
    tier_close: TierCloseConfig = TierCloseConfig()
    balance_high: BalanceHighConfig = BalanceHighConfig()
    phone_unconfirmed: PhoneUnconfirmedConfig = PhoneUnconfirmedConfig()
    since_days: int = Field(
        default=3, ge=1, le=60, description="tier_changed, points_expired: changes this recent are announced"
    )

    def template(self, topic: str) -> str:
        """The text for ``topic``: the file's, else the built-in one of a lifecycle trigger."""
        return self.templates.get(topic) or LIFECYCLE_TEMPLATES[topic]

    @field_validator("templates")
    @classmethod
    def _templates_fillable(cls, templates: dict[str, str]) -> dict[str, str]:
        # One error per template, located at its own key: check-config names the template's line.
        problems = [
            InitErrorDetails(
                type=PydanticCustomError("template", "{problem}", {"problem": problem}), loc=(topic,), input=text
            )
            for topic, text in templates.items()
            for problem in template_problems(topic, text)
        ]
        if problems:
            raise ValidationError.from_exception_data("templates", problems)
        return templates

    @model_validator(mode="after")
    def _chains_known(self) -> NotificationsConfig:
        if set(self.chains) != {"verification", "notification"}:
            raise ValueError("chains needs exactly `verification` and `notification`")
        for kind, chain in self.chains.items():
            unknown = [name for name in chain if name not in self.providers]
            if unknown or not chain:
                raise ValueError(f"chains.{kind}: unknown or no providers {unknown}")
        missing = [t for t in DEFAULT_TEMPLATES if t not in self.templates]
        if missing:
            raise ValueError(f"templates missing: {', '.join(missing)}")
        return self


class DemoCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    card_number: CardNumber
    phone: str | None = None
    name: str | None = None
    points: int = Field(default=0, ge=0)


class DemoSeed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cards: list[DemoCard] = Field(default_factory=list)


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    program: Program
    clients: list[ClientConfig] = Field(min_length=1)
    onec: OneCConfig = Field(default_factory=OneCConfig, description="1C loyaltyservice contract and mappings")
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    demo: DemoSeed | None = None
    erp: ErpConfig | None = None
    bitrix: BitrixConfig | None = None
    mailings: MailingsConfig = Field(default_factory=MailingsConfig, description="Mailings to an audience")
    bots: BotsConfig | None = Field(default=None, description="Chat bots for customers (Telegram, VK)")

    @model_validator(mode="after")
    def _unique_clients(self) -> GatewayConfig:
        ids = [c.id for c in self.clients]
        if len(ids) != len(set(ids)):
            raise ValueError("client ids must be unique")
        logins = [c.login for c in self.clients if c.login]
        if len(logins) != len(set(logins)):
            raise ValueError("client logins must be unique")
        tokens = [t for c in self.clients for t in c.tokens]
        if len(tokens) != len(set(tokens)):
            raise ValueError("client tokens must be unique")
        hooks = [w.id for w in self.webhooks]
        if len(hooks) != len(set(hooks)):
            raise ValueError("webhook ids must be unique")
        for channel, chain in self.mailings.chains.items():
            unknown = [name for name in chain if name not in self.notifications.providers]
            if unknown or not chain:
                raise ValueError(f"mailings.chains.{channel}: unknown or no providers {unknown}")
        return self

    @model_validator(mode="after")
    def _bot_providers_have_their_bot(self) -> GatewayConfig:
        for name, spec in self.notifications.providers.items():
            if spec.type == "bot" and (self.bots is None or getattr(self.bots, spec.bot or "") is None):
                raise ValueError(f"notifications.providers.{name}: no bots.{spec.bot} section for this provider")
        return self


class ConfigError(Exception):
    """The configuration file is invalid; the message names the file, line and key."""


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _line_index(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map every key path of a YAML document to its 1-based line number."""
    lines: dict[tuple[Any, ...], int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            for sub, line in _line_index(value_node, (*path, key)).items():
                lines.setdefault(sub, line)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, index)))
    return lines


def parse_config(text: str, source: str = "<config>") -> GatewayConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or node is None:
        raise ConfigError(f"{source}: the file must be a mapping with `program` and `clients`")
    lines = _line_index(node)
    data = _expand_env(data, source)
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
            key = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{source}:{line or '?'}: {key}: {error['msg']}")
        raise ConfigError("\n".join(problems)) from exc


def load_config(path: Path) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, str(path))

"""The ``bitrix:`` section of the gateway configuration: the 1C-Bitrix shop, its Bitrix24 portals
and the CommerceML exchange with 1C.

Every part is optional: a section that is absent switches its endpoints off (they answer 404).
Secrets may come from the environment (``${BITRIX_SITE_SECRET}``) like every other secret of the
configuration file. This module imports nothing of the gateway, so ``gateway.config`` can use it.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.core.timezones import TimeZoneName

ClientId = str
StatusAction = Literal["paid", "shipped", "cancelled", "none"]

_WEBHOOK_URL = re.compile(r"^https?://[^/\s]+/rest/\d+/[^/\s]+/?$")


class SiteConfig(BaseModel):
    """Events of the 1C-Bitrix site module (``POST /bitrix/site/events``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client: ClientId = Field(default="site", description="The `clients` entry the site acts as")
    secret: str = Field(min_length=16, description="Shared HMAC-SHA256 secret of the site module")
    previous_secrets: list[str] = Field(
        default_factory=list, description="Secrets still accepted while the site module is being switched to a new one"
    )
    replay_window_seconds: int = Field(
        default=300, ge=30, le=3600, description="How far an event's timestamp may be from the gateway's clock"
    )
    hold_ttl_seconds: int | None = Field(
        default=None, ge=60, le=7 * 24 * 3600, description="How long checkout holds live (default: the program's)"
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=16 * 1024 * 1024)

    @field_validator("previous_secrets")
    @classmethod
    def _long_enough(cls, values: list[str]) -> list[str]:
        if any(len(v) < 16 for v in values):
            raise ValueError("secrets must be at least 16 characters")
        return values

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret, *self.previous_secrets)


class PortalConfig(BaseModel):
    """One Bitrix24 portal: the outbound webhook that calls us and the incoming webhook we call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    member_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    domain: str | None = Field(default=None, max_length=253, description="e.g. shop.bitrix24.ru (informational)")
    application_token: str = Field(
        min_length=8, description="`auth[application_token]` Bitrix24 sends with every outbound webhook call"
    )
    webhook_url: str = Field(
        description="Incoming webhook for REST calls: https://<portal>/rest/<user>/<secret>/ (keep it secret)"
    )
    client: ClientId = Field(default="site", description="The client customers from this portal are registered by")
    card_field: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^UF_[A-Z0-9_]+$",
        description="Contact user field carrying a loyalty card number, e.g. UF_CRM_LOYALTY_CARD",
    )
    rate_per_second: float = Field(default=2.0, gt=0, le=100, description="Client-side leaky bucket: drain rate")
    burst: int = Field(default=50, ge=1, le=1000, description="Client-side leaky bucket: capacity")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=5, ge=1, le=20, description="Attempts per REST call on retryable errors")

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str) -> str:
        if not _WEBHOOK_URL.match(value):
            raise ValueError("expected https://<portal>/rest/<user id>/<webhook secret>/")
        return value if value.endswith("/") else value + "/"


class Bitrix24Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    portals: list[PortalConfig] = Field(min_length=1)
    keep_events_days: int = Field(default=30, ge=1, le=3650, description="Processed events are kept this long")

    @model_validator(mode="after")
    def _unique(self) -> Bitrix24Config:
        ids = [p.member_id for p in self.portals]
        if len(ids) != len(set(ids)):
            raise ValueError("portal member_id values must be unique")
        return self

    def portal(self, member_id: str) -> PortalConfig | None:
        return next((p for p in self.portals if p.member_id == member_id), None)


DEFAULT_STATUSES: dict[str, StatusAction] = {
    "отменен": "cancelled",
    "отменён": "cancelled",
    "оплачен": "paid",
    "отгружен": "shipped",
    "выполнен": "shipped",
    "закрыт": "shipped",
}


class CommerceMLConfig(BaseModel):
    """The site side of the 1C exchange protocol at ``/bitrix/admin/1c_exchange.php`` (``type=sale``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client: ClientId = Field(default="erp", description="The client whose login 1C uses (HTTP Basic on checkauth)")
    orders_client: ClientId = Field(
        default="site", description="Whose orders are exported to 1C and updated by what 1C sends back"
    )
    encoding: Literal["windows-1251", "utf-8"] = Field(
        default="windows-1251", description="Encoding of text replies and of the orders XML"
    )
    schema_version: Literal["2.05", "2.08", "2.09", "2.10", "3.1"] = Field(
        default="2.09", description="CommerceML version of exported orders (3.1 wraps each order in a Контейнер)"
    )
    file_limit: int = Field(
        default=2 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest chunk 1C may send at once"
    )
    max_file_bytes: int = Field(default=256 * 1024 * 1024, ge=1024, description="Largest file (or unzipped archive)")
    max_unzipped_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Most an archive of 1C may unpack to (checked before writing)"
    )
    max_unzip_ratio: int = Field(
        default=100, ge=1, le=100_000, description="Most an archive may unpack to, as a multiple of its own size"
    )
    zip: bool = Field(default=True, description="Offer zip=yes to 1C (archives are extracted with bounded sizes)")
    import_batch: int = Field(default=200, ge=1, le=100_000, description="Documents applied per `import` call")
    export_limit: int = Field(default=500, ge=1, le=100_000, description="Orders per `query`")
    session_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    keep_files_hours: int = Field(default=24, ge=1, le=24 * 90, description="Uploaded files are deleted after this")
    cookie_name: str = Field(default="PHPSESSID", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    timezone: TimeZoneName = Field(
        default="Europe/Moscow", description="1C dates carry no zone; they are local to this zone"
    )
    statuses: dict[str, StatusAction] = Field(
        default_factory=lambda: dict(DEFAULT_STATUSES),
        description="`Статус заказа` text from 1C (case-insensitive) -> what it means for the order",
    )

    @field_validator("statuses")
    @classmethod
    def _normalized(cls, value: dict[str, StatusAction]) -> dict[str, StatusAction]:
        return {k.strip().lower(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _limits(self) -> CommerceMLConfig:
        if self.file_limit > self.max_file_bytes:
            raise ValueError("file_limit must not exceed max_file_bytes")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class BitrixConfig(BaseModel):
    """``bitrix:``: the web shop on 1C-Bitrix, its Bitrix24 CRM and the CommerceML exchange."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: SiteConfig | None = None
    bitrix24: Bitrix24Config | None = None
    commerceml: CommerceMLConfig | None = None

    def client_ids(self) -> dict[str, ClientId]:
        """Every client id the section refers to, by where it is used (checked against `clients`)."""
        used: dict[str, ClientId] = {}
        if self.site is not None:
            used["bitrix.site.client"] = self.site.client
        if self.bitrix24 is not None:
            for index, portal in enumerate(self.bitrix24.portals):
                used[f"bitrix.bitrix24.portals[{index}].client"] = portal.client
        if self.commerceml is not None:
            used["bitrix.commerceml.client"] = self.commerceml.client
            used["bitrix.commerceml.orders_client"] = self.commerceml.orders_client
        return used

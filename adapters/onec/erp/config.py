"""The ``erp:`` section of the gateway configuration: where the ERP is, how to call it, how
gently, and how its references map to ours.

```yaml
erp:
  base_url: "http://erp.example.local/erp"     # the 1C publication
  transport: odata                             # or soap
  login: "${ERP_LOGIN}"                        # may be Cyrillic: "Лояльность"
  password: "${ERP_PASSWORD}"
  client_id: erp                               # the gateway client the synced orders belong to
  throttle:
    rate_per_second: 10                        # nights
    concurrency: 4
    windows:                                   # working hours: gentler
      - {start: "09:00", end: "19:00", rate_per_second: 2, concurrency: 2}
  mapping:
    goods: {"<Номенклатура_Key>": "SKU-1"}
```
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gateway.core.timezones import TimeZoneName

Guid = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z\-{}]+$")]
Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
ODataName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-zА-Яа-яЁё_][A-Za-zА-Яа-яЁё0-9_]*$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ThrottleWindow(BaseModel):
    """A time of day with its own budget: working hours (gentle), a quiet window (rate 0:
    no calls at all, e.g. the ERP's nightly backup), a night (generous)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Clock
    end: Clock = Field(description="Exclusive; a window may wrap past midnight (22:00-06:00)")
    days: list[Weekday] = Field(default_factory=lambda: list(ALL_DAYS), min_length=1)
    rate_per_second: Decimal = Field(ge=0, le=1000, decimal_places=3)
    concurrency: int = Field(ge=0, le=64)

    @model_validator(mode="after")
    def _not_empty(self) -> ThrottleWindow:
        if self.start == self.end:
            raise ValueError("a window needs start != end")
        if (self.rate_per_second == 0) != (self.concurrency == 0):
            raise ValueError("a quiet window has both rate_per_second and concurrency 0")
        return self


class AdaptiveConfig(BaseModel):
    """Slow down when the ERP struggles (AIMD): multiply the allowed rate by ``decrease`` when
    its response time passes ``target_latency_ms`` or it fails, add ``increase`` of the budget
    back every ``interval_seconds`` while it is healthy again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    target_latency_ms: int = Field(default=800, ge=10, le=120_000)
    decrease: Decimal = Field(default=Decimal("0.5"), gt=0, lt=1)
    increase: Decimal = Field(default=Decimal("0.1"), gt=0, le=1, description="Share of the budget added back")
    min_factor: Decimal = Field(default=Decimal("0.1"), gt=0, le=1)
    interval_seconds: Decimal = Field(default=Decimal("1.0"), gt=0, le=600)
    smoothing: Decimal = Field(default=Decimal("0.3"), gt=0, le=1, description="EWMA weight of the newest latency")


class ThrottleConfig(BaseModel):
    """The budget of calls to one ERP, shared by every gateway replica through the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_second: Decimal = Field(default=Decimal(10), gt=0, le=1000, decimal_places=3)
    concurrency: int = Field(default=4, ge=1, le=64)
    timezone: TimeZoneName = "Europe/Moscow"
    windows: list[ThrottleWindow] = Field(
        default_factory=lambda: [
            ThrottleWindow(start="09:00", end="19:00", rate_per_second=Decimal(2), concurrency=2),
        ],
        description="First matching window wins; outside every window the defaults above apply",
    )
    adaptive: AdaptiveConfig = Field(default_factory=AdaptiveConfig)
    slot_lease_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="A dead process's slot is free again after the call timeout plus this"
    )
    max_wait_seconds: float = Field(default=300.0, gt=0, le=24 * 3600, description="Give up waiting for a slot")
    erp_execution_limit_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="A call we gave up on (our timeout) still occupies a slot at the ERP until it answers; the ERP "
        "is assumed done after this long (its own execution limit: IIS/Apache timeout of the publication)",
    )


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=4, ge=1, le=20)
    initial_seconds: float = Field(default=0.5, gt=0, le=60)
    max_seconds: float = Field(default=10.0, gt=0, le=600)
    jitter_seconds: float = Field(default=0.5, ge=0, le=60)


class ODataNames(BaseModel):
    """Names in the ERP's standard OData interface (1C:ERP 2 / УТ 11 metadata by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="/odata/standard.odata", pattern=r"^/[^\s?#]*$")
    orders: ODataName = "Document_ЗаказКлиента"
    shipments: ODataName = "Document_РеализацияТоваровУслуг"
    returns: ODataName = "Document_ВозвратТоваровОтКлиента"
    cards: ODataName | None = Field(
        default="Catalog_КартыЛояльности", description="Where a card reference's number is read (null: mapping only)"
    )
    card_number_field: ODataName = "Штрихкод"
    changed_field: ODataName = Field(
        default="ДатаИзменения",
        description="Change timestamp on orders, shipments and returns (an extension attribute set on every write)",
    )
    results: ODataName = Field(
        default="InformationRegister_ЛояльностьЗаказов", description="Independent register the results are written to"
    )
    shipment_order_field: ODataName = Field(
        default="ЗаказКлиента", description="Order of a sales document (header and lines; composite type)"
    )
    return_shipment_field: ODataName = Field(
        default="ДокументРеализации", description="Sales document of a return (header and lines; composite type)"
    )
    lines: ODataName = Field(default="Товары", description="The tabular part with the goods")
    card_field: ODataName = "КартаЛояльности_Key"
    partner_field: ODataName = "Партнер_Key"
    store_field: ODataName = "Склад_Key"
    spend_field: ODataName | None = Field(
        default="СуммаБонусныхБалловКСписанию", description="Per line: points the customer pays with"
    )
    status_field: ODataName = "Статус"
    line_code_field: ODataName | None = Field(
        default="КодСтроки",
        description="Line code an order line keeps across edits; a sale or return line names the order line by it",
    )
    allowed_only: bool = Field(
        default=True,
        description="Send allowedOnly=true: documents the ERP user may not read are left out instead of failing the "
        "whole request (1C answers 401, code 20, otherwise)",
    )
    max_query_bytes: int = Field(
        default=2000,
        ge=300,
        le=65_536,
        description="Longest query string sent (percent-encoded bytes): IIS request filtering refuses more than "
        "2048 by default (404.15), Apache more than 8190 for the whole request line (414)",
    )


class SoapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="/ws/loyalty", pattern=r"^/[^\s?#]*$", description="The published service's address")
    wsdl: str | None = Field(default=None, description="WSDL file (default: the one shipped with the gateway)")
    binding: Literal["soap11", "soap12"] = "soap12"


class MappingConfig(BaseModel):
    """ERP references → ours. Goods, stores and price types fall back to the ERP reference itself
    (recorded as unmapped for the integrator); a card that cannot be found fails the order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName = Field(
        default="Europe/Moscow", description="ERP dates carry no zone; they are local to this one"
    )
    cards: dict[Guid, str] = Field(default_factory=dict, description="Loyalty card ref -> card number")
    partners: dict[Guid, str] = Field(default_factory=dict, description="Partner ref -> card number (no card on order)")
    goods: dict[Guid, str] = Field(default_factory=dict, description="Номенклатура ref -> item code")
    stores: dict[Guid, str] = Field(default_factory=dict, description="Склад ref -> store code")
    price_types: dict[Guid, str] = Field(default_factory=dict, description="ВидЦены ref -> price type")
    paid_statuses: list[str] = Field(default_factory=list, description="Order statuses that mean «paid»")
    cancelled_statuses: list[str] = Field(default_factory=list, description="Order statuses that mean «cancelled»")


class SyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_seconds: float = Field(default=30.0, gt=0, le=24 * 3600, description="How often the sync job runs")
    page_size: int = Field(default=50, ge=1, le=1000)
    fetch_ahead: int = Field(default=3, ge=1, le=20, description="Pages read ahead while earlier pages are applied")
    max_pages_per_run: int = Field(default=100, ge=1, le=100_000)
    batch_refs: int = Field(
        default=20,
        ge=1,
        le=100,
        description="At most this many references per OData filter (fewer when a longer "
        "query would pass erp.odata.max_query_bytes)",
    )
    overlap_seconds: int = Field(
        default=5, ge=0, le=3600, description="Re-read this much before the cursor (late commits at the ERP)"
    )
    lease_seconds: float = Field(default=120.0, ge=5, le=3600, description="One replica syncs at a time")
    retry_failed_seconds: float = Field(default=300.0, ge=1, le=7 * 24 * 3600)
    retry_failed_batch: int = Field(default=20, ge=0, le=1000)
    push: bool = Field(default=True, description="Write loyalty results back to the ERP")


class ErpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="erp", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    base_url: str = Field(pattern=r"^https?://[^\s?#]+$", description="The 1C publication, e.g. http://host/erp")
    transport: Literal["odata", "soap"] = "odata"
    login: str = Field(min_length=1, max_length=128, description="HTTP Basic login (Cyrillic works: sent as UTF-8)")
    password: SecretStr = Field(max_length=256)
    client_id: str = Field(default="erp", min_length=1, max_length=64, description="Gateway client of the orders")
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    odata: ODataNames = Field(default_factory=ODataNames)
    soap: SoapConfig = Field(default_factory=SoapConfig)
    mapping: MappingConfig = Field(default_factory=MappingConfig)

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

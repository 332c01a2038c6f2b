"""The ``onec:`` section of the gateway configuration: how 1C's references map to our program."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.core.timezones import TimeZoneName

Guid = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z\-{}]+$")]


class Ref1C(BaseModel):
    """A 1C reference as the contract shows it: ``{"Ref": GUID, "Name": text}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: Guid
    name: str = Field(min_length=1, max_length=150)


class CardType(Ref1C):
    default: bool = False
    is_person: bool = Field(default=True, description="A personal card: the till asks for the holder's data")
    generate_number: bool = Field(default=True, description="The server numbers new cards of this type")


class OneCConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(
        default="3.0.8.73",
        pattern=r"^\d{1,4}\.\d{1,4}\.\d{1,4}\.\d{1,4}$",
        description="`Version` in every reply: four numbers. The till compares it with 3.0.5.1, 3.0.6.1 and "
        "3.0.7.1 to decide which calls it makes; 3.0.8.73 is what 1C:УНФ's own server answers",
    )
    timezone: TimeZoneName = Field(
        default="Europe/Moscow", description="1C dates carry no zone; they are local to this zone"
    )
    lock_ttl_seconds: int = Field(
        default=600, ge=30, le=24 * 3600, description="getclientbonuses locks a card's points this long at most"
    )
    capture_window_seconds: int | None = Field(
        default=None,
        ge=60,
        le=30 * 24 * 3600,
        description="How long written-off points wait for their receipt (default: the program's)",
    )
    bonus_currency: str = Field(default="руб.", max_length=16)
    use_automatic_discounts: bool = Field(default=True, description="Answer of useautomaticdiscounts")
    card_types: list[CardType] = Field(
        default_factory=lambda: [
            CardType(ref="5b0e6f2e-1c00-4c6b-9f1e-000000000001", name="Бонусная карта", default=True)
        ],
        min_length=1,
    )
    bonus_program: Ref1C = Field(
        default_factory=lambda: Ref1C(ref="5b0e6f2e-1c00-4c6b-9f1e-000000000002", name="Бонусная программа"),
        description="The 1C discount reference under which accrued points are announced",
    )
    goods: dict[Guid, str] = Field(default_factory=dict, description="1C Item Ref -> our item code")
    stores: dict[Guid, str] = Field(default_factory=dict, description="1C RetailStore Ref -> our store code")
    price_types: dict[Guid, str] = Field(
        default_factory=dict, description="1C price type Ref (`PriceType` of the cart) -> the program's price type"
    )
    store_price_types: dict[Guid, str] = Field(
        default_factory=dict,
        description="1C RetailStore Ref -> the program's price type of that store's retail prices (1C's server "
        "takes the store's retail price type when the cart names none)",
    )
    default_item: str | None = Field(
        default=None, description="Item code for goods missing from `goods` (null: use the 1C Ref itself)"
    )
    default_store: str | None = Field(
        default=None, description="Store code for stores missing from `stores` (null: use the 1C Ref itself)"
    )

    @model_validator(mode="after")
    def _one_default_card_type(self) -> OneCConfig:
        if sum(t.default for t in self.card_types) != 1:
            raise ValueError("exactly one card type must be `default: true`")
        if len({t.ref.lower() for t in self.card_types}) != len(self.card_types):
            raise ValueError("card type refs must be unique")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def default_card_type(self) -> CardType:
        return next(t for t in self.card_types if t.default)

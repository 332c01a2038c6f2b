"""What the site module sends: an envelope (``event_id``, ``event``, ``data``) and, per event,
the ``data`` models below. Unknown fields are refused so that a typo in the PHP module is
reported instead of silently ignored. Money is a decimal string with at most two places
(``"1250.50"``; PHP: ``number_format($x, 2, '.', '')``), quantities at most three."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.money import Money, Points, Quantity
from contracts.operations import CardNumber, Identifier


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(Payload):
    event_id: Identifier = Field(description="Unique per event (a UUID): a repeated id is answered, not re-applied")
    event: str = Field(min_length=1, max_length=64, description="The Bitrix event name, e.g. OnSaleOrderSaved")
    data: dict[str, Any]


class Customer(Payload):
    """Who the customer is, as the site knows them; the first of card, phone, e-mail that names a
    customer of the gateway is used."""

    user_id: Identifier | None = Field(default=None, description="Bitrix USER_ID (informational)")
    card_number: CardNumber | None = Field(default=None, description="The loyalty card stored on the user")
    phone: str | None = Field(default=None, min_length=5, max_length=32)
    email: str | None = Field(default=None, max_length=254)

    @property
    def known(self) -> bool:
        return bool(self.card_number or self.phone or self.email)


class SiteLine(Payload):
    """One basket item (``Bitrix\\Sale\\BasketItem``)."""

    line_id: Identifier = Field(description="Basket item ID: stable for the life of the order")
    product_id: Identifier = Field(description="PRODUCT_XML_ID (what 1C knows the goods by), or PRODUCT_ID")
    name: str | None = Field(default=None, max_length=256)
    quantity: Quantity
    price: Money = Field(description="Price of one unit after the site's own discounts (PRICE)")
    amount: Money | None = Field(default=None, description="Line total after the site's discounts; default price x qty")


class CartData(Payload):
    """``OnBeforeSaleOrderFinalAction``: price the cart; changes nothing."""

    customer: Customer | None = None
    lines: list[SiteLine] = Field(min_length=1, max_length=1000)
    points_to_spend: Points = 0
    promo_codes: list[Identifier] = Field(default_factory=list, max_length=5)
    store: Identifier | None = None


class HoldData(Payload):
    """``OnSaleOrderBeforeSaved``: reserve the points the customer pays the new order with."""

    order_id: Identifier
    customer: Customer
    points_to_spend: Points


class LineQuantity(Payload):
    line_id: Identifier
    quantity: Quantity


class ShipmentData(Payload):
    """A shipment (``Bitrix\\Sale\\Shipment``, not the system one); only shipped ones unlock points."""

    shipment_id: Identifier
    shipped: bool = Field(description="DEDUCTED == 'Y': the goods left the warehouse")
    shipped_at: AwareDatetime | None = None
    lines: list[LineQuantity] = Field(default_factory=list, max_length=1000)


class ReturnData(Payload):
    return_id: Identifier
    returned_at: AwareDatetime | None = None
    lines: list[LineQuantity] = Field(min_length=1, max_length=1000)


class OrderData(Payload):
    """Every order event: the whole order as it is now, with its VERSION."""

    order_id: Identifier = Field(description="ACCOUNT_NUMBER (or ID): the number 1C and the customer see")
    version: int = Field(ge=0, le=2**40, description="The order's VERSION: grows with every save")
    customer: Customer
    lines: list[SiteLine] = Field(min_length=1, max_length=1000)
    points_to_spend: Points = Field(default=0, description="Points the customer pays the order with")
    paid: bool = False
    cancelled: bool = False
    status: str | None = Field(default=None, max_length=64, description="STATUS_ID (informational)")
    placed_at: AwareDatetime | None = None
    shipments: list[ShipmentData] = Field(default_factory=list, max_length=1000)
    returns: list[ReturnData] = Field(default_factory=list, max_length=1000)
    promo_codes: list[Identifier] = Field(default_factory=list, max_length=5)
    store: Identifier | None = None

    @model_validator(mode="after")
    def _customer(self) -> OrderData:
        if not self.customer.known:
            raise ValueError("customer needs a card_number, phone or email")
        return self


class UserData(Payload):
    """``OnAfterUserRegister``: the new user becomes a loyalty customer with a card."""

    user_id: Identifier
    phone: str | None = Field(default=None, min_length=5, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    name: str | None = Field(default=None, max_length=256)
    birth_date: date | None = None
    card_number: CardNumber | None = Field(default=None, description="A card the customer already has, if any")
    referrer_card: CardNumber | None = Field(
        default=None, description="The referral code the visitor came with: the referrer's card number or phone"
    )

    @model_validator(mode="after")
    def _contact(self) -> UserData:
        if not (self.phone or self.email or self.card_number):
            raise ValueError("give a phone, an email or a card_number")
        return self

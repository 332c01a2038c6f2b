"""Normalized loyalty operations and their results.

Every inbound protocol produces one of the ``*Request`` models below and renders the matching
``*Result``. Amounts are ``Money`` (roubles, two decimals), points are whole integers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from contracts.money import Money, Points, Quantity

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
# Free text people type (names, reasons): no control characters but tab and line breaks. A NUL
# in particular is refused here with a validation error: PostgreSQL cannot store it in text.
PLAIN_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Name = Annotated[str, Field(max_length=256, pattern=PLAIN_TEXT)]
Phone = Annotated[str, Field(min_length=5, max_length=32, pattern=r"^[^\x00-\x1f\x7f]+$")]
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f]+"
Email = Annotated[str, Field(max_length=254, pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$")]
# A card number, or the phone that serves as the card (`+79121234567` as well as `89121234567`).
CardNumber = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\+?[0-9A-Za-z\-_]+$")]
PositivePoints = Annotated[int, Field(gt=0, le=10**12)]
_KOPECK = Decimal("0.01")


class Operation(BaseModel):
    """Base of every normalized request: strict about unknown fields so typos are reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OperationKind(StrEnum):
    CALCULATE = "calculate"
    HOLD = "hold"
    CAPTURE = "capture"
    COMMIT = "commit"
    OFFLINE_COMMIT = "offline_commit"
    CANCEL = "cancel"
    REFUND = "refund"
    BALANCE = "balance"
    REGISTER_CUSTOMER = "register_customer"
    LOOKUP_CUSTOMER = "lookup_customer"
    ISSUE_CARD = "issue_card"
    REPLACE_CARD = "replace_card"
    UPDATE_CUSTOMER = "update_customer"  # contracts/profiles.py
    GIFT_CARD_ISSUE = "gift_card_issue"
    GIFT_CARD_HOLD = "gift_card_hold"
    GIFT_CARD_REDEEM = "gift_card_redeem"
    GIFT_CARD_RELEASE = "gift_card_release"
    ORDER = "order"
    # accounts (contracts/accounts.py): certificates, promo campaigns, merging, company accounts
    GIFT_CARD_BATCH = "gift_card_batch"
    GIFT_CARD_BLOCK = "gift_card_block"
    GIFT_CARD_REFUND = "gift_card_refund"
    CAMPAIGN_CREATE = "campaign_create"
    CAMPAIGN_ACTIVE = "campaign_active"
    CAMPAIGN_GENERATE = "campaign_generate"
    PROMO_RESERVE = "promo_reserve"
    PROMO_RELEASE = "promo_release"
    MERGE_CUSTOMERS = "merge_customers"
    COMPANY_CREATE = "company_create"
    MEMBER_ADD = "member_add"
    MEMBER_ROLE = "member_role"
    MEMBER_REMOVE = "member_remove"


class CartLine(Operation):
    line_id: Identifier = Field(description="Line id unique within the receipt (1C LineUID, position no.)")
    item: Identifier = Field(description="Goods reference: SKU, article or 1C GUID")
    item_name: Name | None = None
    price_type: Identifier | None = None
    quantity: Quantity
    price: Money
    amount: Money | None = Field(
        default=None, description="Line total after the till's own discounts; defaults to price x quantity"
    )

    def total(self) -> Decimal:
        if self.amount is not None:
            return self.amount
        return (self.price * self.quantity).quantize(Decimal("0.01"))

    @model_validator(mode="after")
    def _amount_within_price(self) -> CartLine:
        # A line total is price x quantity less the till's discounts; one kopeck per unit (and one
        # more) covers prices rounded to kopecks. Anything above would accrue on money not paid.
        if self.amount is not None:
            ceiling = (self.price * self.quantity + self.quantity * _KOPECK + _KOPECK).quantize(
                _KOPECK, rounding=ROUND_HALF_UP
            )
            if self.amount > ceiling:
                raise ValueError(f"amount {self.amount} is above price x quantity ({self.price} x {self.quantity})")
        return self


class Cart(Operation):
    lines: list[CartLine] = Field(min_length=1, max_length=1000)
    store: Identifier | None = None

    @model_validator(mode="after")
    def _unique_lines(self) -> Cart:
        seen: set[str] = set()
        for line in self.lines:
            if line.line_id in seen:
                raise ValueError(f"duplicate line_id {line.line_id!r}")
            seen.add(line.line_id)
        return self


# The customer's choice of a discount or points, where the program offers one
# (gateway/core/rules/reward.py).
Reward = Literal["discount", "points"]


class ChoosesReward(Operation):
    """A request that may carry the customer's choice of a discount or points."""

    reward: Reward | None = Field(
        default=None,
        description="discount: the discount and no points; points: the points and no discount rule. Only where "
        "the program declares reward_choice (otherwise refused); absent: the program's default",
    )

    @model_serializer(mode="wrap")
    def _without_unmade_choice(self, handler: SerializerFunctionWrapHandler) -> object:
        # A request that makes no choice dumps (and so fingerprints) exactly as before the field
        # existed: receipts booked earlier keep their idempotency.
        data = handler(self)
        if isinstance(data, dict) and data.get("reward") is None:
            data.pop("reward", None)
        return data


class CalculateRequest(Cart, ChoosesReward):
    card_number: CardNumber | None = None
    promo_codes: list[Identifier] = Field(default_factory=list, max_length=5)
    points_to_spend: Points = 0
    hold_id: Identifier | None = Field(
        default=None, description="Points reserved by this hold of the card count as available (a till's lock)"
    )


class HoldRequest(Operation):
    card_number: CardNumber
    points: PositivePoints
    receipt_id: Identifier | None = None
    ttl_seconds: int | None = Field(default=None, ge=5, le=7 * 24 * 3600)
    store: Identifier | None = None
    tag: Identifier | None = Field(
        default=None, description="Purpose of the hold (e.g. '1c-lock'); open holds can be found by card and tag"
    )


class CaptureRequest(Operation):
    """Confirm that ``points`` of an open hold were taken as payment (the till wrote them off).

    The rest of the hold is released at once. The captured points stay reserved until the
    receipt that used them is committed; if no receipt arrives within the capture window, the
    gateway books the receipt itself from the last calculated cart (or as a points-only
    payment), so captured points are never given back by mistake.
    """

    hold_id: Identifier
    points: PositivePoints
    window_seconds: int | None = Field(default=None, ge=60, le=30 * 24 * 3600)
    lines: list[CartLine] | None = Field(default=None, min_length=1, max_length=1000)


class CommitRequest(Cart, ChoosesReward):
    receipt_id: Identifier
    card_number: CardNumber
    promo_codes: list[Identifier] = Field(default_factory=list, max_length=5)
    hold_id: Identifier | None = None
    points_to_spend: Points | None = Field(
        default=None,
        description="Points to spend. With a hold: at most the held points (default: all of them). "
        "Without a hold: if the card has a captured write-off of exactly these points (a till took them "
        "before the receipt arrived), the receipt books that write-off; otherwise they are spent directly.",
    )


class OfflineReceiptRequest(Cart):
    """A receipt a till closed while offline, posted later: accrual only, at its original time."""

    receipt_id: Identifier
    card_number: CardNumber
    occurred_at: AwareDatetime = Field(description="When the till closed the receipt (with its UTC offset)")


class CancelRequest(Operation):
    hold_id: Identifier


class RefundLine(Operation):
    line_id: Identifier
    quantity: Quantity


class RefundRequest(Operation):
    receipt_id: Identifier
    refund_id: Identifier = Field(description="Id of the return receipt; a refund is applied once per id")
    lines: list[RefundLine] | None = Field(default=None, min_length=1, max_length=1000)
    amount: Money | None = None
    full: bool = False

    @model_validator(mode="after")
    def _one_mode(self) -> RefundRequest:
        modes = sum([self.lines is not None, self.amount is not None, self.full])
        if modes != 1:
            raise ValueError("give exactly one of: lines, amount, full=true")
        if self.amount is not None and self.amount <= 0:
            raise ValueError("amount must be positive")
        return self


class BalanceRequest(Operation):
    card_number: CardNumber


class RegisterCustomerRequest(Operation):
    phone: Phone | None = None
    email: Email | None = None
    name: Name | None = None
    birth_date: date | None = None
    card_number: CardNumber | None = None
    external_ref: Identifier | None = None
    segment: Identifier | None = Field(
        default=None, description="The program's customer segment (default: the program's default segment)"
    )
    referrer_card: CardNumber | None = Field(
        default=None, description="Card of the intermediary (foreman, designer) who brought the customer"
    )
    referrer_customer_id: Identifier | None = Field(default=None, description="…or the intermediary's customer id")

    @model_validator(mode="after")
    def _contact(self) -> RegisterCustomerRequest:
        if not (self.phone or self.email or self.card_number):
            raise ValueError("give a phone, an e-mail or a card number")
        if self.referrer_card is not None and self.referrer_customer_id is not None:
            raise ValueError("give the referrer's card or customer id, not both")
        return self


class LookupCustomerRequest(Operation):
    phone: Phone | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^\x00-\x1f\x7f]+$")] | None = None
    card_number: CardNumber | None = None
    card_ref: Identifier | None = Field(default=None, description="The card's GUID (1C CardRef)")
    customer_id: Identifier | None = None

    @model_validator(mode="after")
    def _one_key(self) -> LookupCustomerRequest:
        keys = (self.phone, self.email, self.card_number, self.card_ref, self.customer_id)
        if sum(x is not None for x in keys) != 1:
            raise ValueError("give exactly one of: phone, email, card_number, card_ref, customer_id")
        return self


class IssueCardRequest(Operation):
    customer_id: Identifier
    card_number: CardNumber | None = None


class ReplaceCardRequest(Operation):
    card_number: CardNumber
    new_card_number: CardNumber | None = None
    reason: Name | None = None


class GiftCardIssueRequest(Operation):
    number: CardNumber | None = Field(default=None, description="Printed number; generated when absent")
    amount: Money = Field(gt=0)
    name: str = Field(default="Подарочный сертификат", min_length=1, max_length=150, pattern=PLAIN_TEXT)
    expires_at: AwareDatetime | None = None


class GiftCardInfoRequest(Operation):
    number: CardNumber | None = None
    ref: Identifier | None = None

    @model_validator(mode="after")
    def _one(self) -> GiftCardInfoRequest:
        if (self.number is None) == (self.ref is None):
            raise ValueError("give the gift card's number or its ref")
        return self


class GiftCardHoldRequest(Operation):
    number: CardNumber
    amount: Money = Field(gt=0)
    ttl_seconds: int | None = Field(default=None, ge=5, le=7 * 24 * 3600)
    tag: Identifier | None = None


class GiftCardRedeemRequest(Operation):
    number: CardNumber
    amount: Money = Field(gt=0)
    hold_id: Identifier | None = Field(default=None, description="Redeem from this hold; the rest is released")
    receipt_id: Identifier | None = None


class GiftCardReleaseRequest(Operation):
    hold_id: Identifier


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class ExpiringPoints(Result):
    points: int
    expires_at: datetime


class BalanceResult(Result):
    card_number: str
    customer_id: str
    card_status: Literal["active", "blocked", "replaced"]
    balance: int = Field(description="All points owned: available + held + pending")
    available: int
    held: int
    pending: int
    expiring: list[ExpiringPoints] = Field(default_factory=list)


class RuleApplication(Result):
    rule: str
    description: str
    line_id: str | None = None
    points: int = 0
    discount: Decimal = Decimal("0.00")


class LineResult(Result):
    line_id: str
    amount: Decimal
    discount: Decimal
    points_spent: int
    points_accrued: int


class CalculateResult(Result):
    card_number: str | None
    total_amount: Decimal
    total_discount: Decimal
    points_to_spend: int
    max_points_payable: int
    points_to_accrue: int
    amount_payable: Decimal = Field(description="Total after discounts and points")
    lines: list[LineResult]
    explanation: list[RuleApplication]
    balance: BalanceResult | None
    reward: Reward | None = Field(
        default=None, description="What the customer gets where the program lets them choose (else null)"
    )


class HoldResult(Result):
    hold_id: str
    card_number: str
    points: int
    status: Literal["open", "captured", "committed", "voided"]
    captured_points: int | None = None
    tag: str | None = None
    receipt_id: str | None = None
    transaction_id: str | None = None
    expires_at: datetime
    balance: BalanceResult


class CommitResult(Result):
    transaction_id: str
    receipt_id: str
    card_number: str
    total_amount: Decimal
    total_discount: Decimal = Decimal("0.00")
    points_spent: int
    points_accrued: int
    points_released: int = Field(description="Held points not spent and returned to the account")
    amount_paid_by_points: Decimal
    amount_payable: Decimal
    lines: list[LineResult]
    explanation: list[RuleApplication]
    balance: BalanceResult


class CancelResult(Result):
    hold_id: str
    status: Literal["voided"]
    points_released: int
    balance: BalanceResult


class RefundResult(Result):
    refund_id: str
    receipt_id: str
    amount_refunded: Decimal
    points_returned: int = Field(description="Points the customer had spent on the receipt, given back")
    points_returned_expired: int = Field(description="Of those, points whose lots had already expired")
    points_reversed: int = Field(description="Points earned on the receipt, taken back")
    points_shortfall: int = Field(
        description="Earned points that could not be taken back because they were already spent"
    )
    shortfall_amount: Decimal = Field(description="Money value of the shortfall, to withhold from cash")
    money_to_return: Decimal = Field(description="Cash/card amount to give back for this refund")
    balance: BalanceResult


class CardInfo(Result):
    card_number: str
    card_ref: str
    status: Literal["active", "blocked", "replaced"]
    replaced_by: str | None = None


class CustomerResult(Result):
    customer_id: str
    phone: str | None
    email: str | None
    name: str | None
    birth_date: date | None
    created: bool = False
    welcome_points: int = 0
    cards: list[CardInfo]
    segment: str | None = Field(default=None, description="The customer's segment in the loyalty program")
    tier: str | None = Field(default=None, description="The customer's tier (null: none yet)")
    referrer_id: str | None = Field(default=None, description="The customer who referred this one")


class CardResult(Result):
    customer_id: str
    card: CardInfo
    previous_card: CardInfo | None = None


class GiftCardResult(Result):
    number: str
    ref: str
    name: str
    nominal: Decimal
    balance: Decimal = Field(description="Money left on the certificate")
    available: Decimal = Field(description="Balance less open holds")
    blocked: bool
    expired: bool
    expires_at: datetime | None
    hold_id: str | None = None
    held: Decimal | None = None
    redeemed: Decimal | None = None


OPERATION_MODELS: dict[OperationKind, type[Operation]] = {
    OperationKind.CALCULATE: CalculateRequest,
    OperationKind.HOLD: HoldRequest,
    OperationKind.CAPTURE: CaptureRequest,
    OperationKind.COMMIT: CommitRequest,
    OperationKind.OFFLINE_COMMIT: OfflineReceiptRequest,
    OperationKind.CANCEL: CancelRequest,
    OperationKind.REFUND: RefundRequest,
    OperationKind.BALANCE: BalanceRequest,
    OperationKind.REGISTER_CUSTOMER: RegisterCustomerRequest,
    OperationKind.LOOKUP_CUSTOMER: LookupCustomerRequest,
    OperationKind.ISSUE_CARD: IssueCardRequest,
    OperationKind.REPLACE_CARD: ReplaceCardRequest,
    OperationKind.GIFT_CARD_ISSUE: GiftCardIssueRequest,
    OperationKind.GIFT_CARD_HOLD: GiftCardHoldRequest,
    OperationKind.GIFT_CARD_REDEEM: GiftCardRedeemRequest,
    OperationKind.GIFT_CARD_RELEASE: GiftCardReleaseRequest,
}

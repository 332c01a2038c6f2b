"""Operations on accounts beyond a single receipt: gift certificate batches, blocking and
refunds; promo-code campaigns with generated codes; merging two customers; company (B2B)
accounts shared by several contacts.

Like ``contracts.operations``, every ``*Request`` is strict (unknown fields are refused) and
every amount is ``Money`` (roubles, two decimals); points are whole integers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from contracts.money import Money
from contracts.operations import CardInfo, CardNumber, GiftCardResult, Identifier, Operation, Result

PromoCodeText = Annotated[
    str,
    Field(
        min_length=2,
        max_length=64,
        pattern=r"^[0-9A-Za-zА-Яа-яЁё_\- ]+$",
        description="A promo code as the customer types it (case, spaces and dashes do not matter)",
    ),
]
DiscountPercent = Annotated[Decimal, Field(gt=0, le=100, max_digits=7, decimal_places=4)]
PositiveMoney = Annotated[Money, Field(gt=0)]

# ---------------------------------------------------------------------------------------------
# Gift certificates
# ---------------------------------------------------------------------------------------------


class GiftCardBatchRequest(Operation):
    """Issue ``count`` printed certificates of ``amount`` roubles each, with fresh numbers.

    Numbers are 16 digits: ``prefix``, random digits and a Luhn check digit (a mistyped digit is
    caught at the till). Stock printed ahead of sale is issued ``blocked`` and unblocked when
    sold, so a number that leaks from the print shop is worth nothing until then."""

    count: int = Field(ge=1, le=10_000)
    amount: PositiveMoney
    name: str = Field(default="Подарочный сертификат", min_length=1, max_length=150)
    prefix: str = Field(default="29", pattern=r"^[0-9]{1,6}$")
    expires_at: AwareDatetime | None = None
    blocked: bool = False


class GiftCardNumberOut(Result):
    number: str
    ref: str


class GiftCardBatchResult(Result):
    batch_id: str
    count: int
    amount: Decimal
    name: str
    expires_at: datetime | None
    blocked: bool
    created_at: datetime
    cards: list[GiftCardNumberOut]


class GiftCardBlockRequest(Operation):
    number: CardNumber
    blocked: bool
    reason: str | None = Field(default=None, max_length=256)


class GiftCardRefundRequest(Operation):
    """Put money back on a certificate that paid for goods now returned (once per refund id)."""

    number: CardNumber
    refund_id: Identifier = Field(description="Id of the return receipt; applied once per client and id")
    amount: PositiveMoney
    receipt_id: Identifier | None = Field(
        default=None, description="The sale receipt: the refund is then limited to what was paid on it"
    )


class GiftCardHistoryItem(Result):
    at: datetime
    kind: Literal["issue", "redeem", "refund", "expire", "hold", "block", "unblock"]
    amount: Decimal | None = Field(default=None, description="Money moved: + onto the certificate, - off it")
    balance_after: Decimal | None = None
    hold_id: str | None = None
    hold_status: str | None = None
    receipt_id: str | None = None
    refund_id: str | None = None
    client_id: str
    note: str | None = None


class GiftCardHistoryResult(Result):
    card: GiftCardResult
    items: list[GiftCardHistoryItem] = Field(description="Oldest first")


class GiftCardRefundResult(Result):
    refund_id: str
    receipt_id: str | None
    amount: Decimal
    card: GiftCardResult


# ---------------------------------------------------------------------------------------------
# Promo-code campaigns
# ---------------------------------------------------------------------------------------------


class CampaignRequest(Operation):
    """A promo campaign: one discount, validity, limits; its codes are generated in batches
    (each usable ``uses_per_code`` times) and/or one shared ``code`` printed in advertising."""

    name: str = Field(min_length=1, max_length=128)
    description: str = Field(min_length=1, max_length=256, description="What the cashier and the customer see")
    discount_percent: DiscountPercent | None = None
    discount_amount: PositiveMoney | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    min_amount: Money | None = Field(default=None, description="Smallest receipt (before discounts) it applies to")
    uses_per_code: int | None = Field(default=1, ge=1, le=10**9, description="Receipts per code; null = unlimited")
    per_customer: int | None = Field(
        default=None, ge=1, le=10**6, description="Receipts per customer across the campaign; null = unlimited"
    )
    return_on_refund: bool = Field(default=False, description="A fully refunded receipt gives its code's use back")
    prefix: str = Field(default="", max_length=12, pattern=r"^[0-9A-Z]*$", description="Start of generated codes")
    code: PromoCodeText | None = Field(default=None, description="A shared code (e.g. from an advert)")

    @model_validator(mode="after")
    def _consistent(self) -> CampaignRequest:
        if (self.discount_percent is None) == (self.discount_amount is None):
            raise ValueError("give exactly one of discount_percent and discount_amount")
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_from must be before valid_to")
        return self


class CampaignActiveRequest(Operation):
    campaign_id: Identifier
    active: bool


class CampaignGenerateRequest(Operation):
    campaign_id: Identifier
    count: int = Field(ge=1, le=100_000)
    length: int = Field(default=10, ge=8, le=20, description="Random characters per code (5 bits each)")


class CampaignBatchInfo(Result):
    campaign_id: str
    batch_id: str
    count: int
    code_length: int
    created_at: datetime


class CampaignResult(Result):
    campaign_id: str
    name: str
    description: str
    discount_percent: Decimal | None
    discount_amount: Decimal | None
    valid_from: datetime | None
    valid_to: datetime | None
    min_amount: Decimal | None
    uses_per_code: int | None
    per_customer: int | None
    return_on_refund: bool
    prefix: str
    active: bool
    shared_code: str | None = Field(description="Masked: the shared code is stored only as a keyed hash")
    codes: int = Field(description="Codes of the campaign")
    codes_exhausted: int = Field(description="Codes with no use left")
    uses: int = Field(description="Receipts that used a code of the campaign, returned ones excluded")
    reserved: int = Field(description="Codes reserved by a till right now")
    batches: list[CampaignBatchInfo]
    created_at: datetime


class CampaignCodeOut(Result):
    code: str
    uses: int
    max_uses: int | None


class CampaignCodesResult(Result):
    campaign_id: str
    batch_id: str
    codes: list[CampaignCodeOut]


class PromoCheckRequest(Operation):
    code: PromoCodeText
    card_number: CardNumber | None = None
    amount: Money | None = Field(default=None, description="Receipt total, to check the minimum")


class PromoReserveRequest(Operation):
    """Reserve a code for a receipt being rung up: nobody else can use it until the receipt is
    committed (which consumes it), the reservation is released, or its deadline passes."""

    code: PromoCodeText
    card_number: CardNumber | None = None
    ttl_seconds: int | None = Field(default=None, ge=5, le=7 * 24 * 3600)
    tag: Identifier | None = None


class PromoReleaseRequest(Operation):
    reservation_id: Identifier | None = None
    code: PromoCodeText | None = Field(default=None, description="Release this client's open reservations of it")

    @model_validator(mode="after")
    def _one(self) -> PromoReleaseRequest:
        if (self.reservation_id is None) == (self.code is None):
            raise ValueError("give the reservation_id or the code")
        return self


PromoReason = Literal[
    "ok", "not_found", "inactive", "not_yet_valid", "expired", "used_up", "reserved", "customer_limit", "min_amount"
]


class PromoCodeInfo(Result):
    code: str = Field(description="The code as shown: a campaign code is masked")
    available: bool
    reason: PromoReason
    status: str = Field(description="For the cashier, in Russian")
    description: str
    discount_percent: Decimal | None
    discount_amount: Decimal | None
    campaign_id: str | None = None
    reservation_id: str | None = None
    reserved_until: datetime | None = None
    released: int = 0


# ---------------------------------------------------------------------------------------------
# Merging customers
# ---------------------------------------------------------------------------------------------


class MergeCustomersRequest(Operation):
    survivor_id: Identifier = Field(description="The customer who stays")
    merged_id: Identifier = Field(description="The duplicate: its points, cards and history move to the survivor")
    reason: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _two(self) -> MergeCustomersRequest:
        if self.survivor_id == self.merged_id:
            raise ValueError("a customer cannot be merged into itself")
        return self


class MergeResult(Result):
    merge_id: str
    survivor_customer_id: str
    merged_customer_id: str
    points_moved: int
    lots_moved: int
    cards_moved: list[str]
    receipts_moved: int
    orders_moved: int
    reason: str | None
    merged_at: datetime


class HistoryEntry(Result):
    entry_id: int
    account_id: str
    customer_id: str = Field(description="Whose account the entry is on (a merged customer's for old entries)")
    kind: str
    points: int
    lot_id: int | None
    hold_id: str | None
    transaction_id: str | None
    refund_id: str | None
    client_id: str
    created_at: datetime


class HistoryRefund(Result):
    refund_id: str
    amount: Decimal
    points_returned: int
    points_reversed: int
    created_at: datetime


class HistoryReceipt(Result):
    transaction_id: str
    receipt_id: str
    client_id: str
    card_number: str
    total_amount: Decimal
    points_spent: int
    points_accrued: int
    created_at: datetime
    refunds: list[HistoryRefund]


class CustomerHistoryResult(Result):
    customer_id: str
    merged_into: str | None
    merges: list[MergeResult] = Field(description="Customers merged into this one (and into those, recursively)")
    entries: list[HistoryEntry]
    receipts: list[HistoryReceipt]


# ---------------------------------------------------------------------------------------------
# Company (B2B) accounts
# ---------------------------------------------------------------------------------------------

MemberRole = Literal["buyer", "earner", "viewer"]


class CompanyRequest(Operation):
    name: str = Field(min_length=1, max_length=256)
    inn: str | None = Field(default=None, pattern=r"^([0-9]{10}|[0-9]{12})$", description="ИНН")
    kpp: str | None = Field(default=None, pattern=r"^[0-9]{9}$", description="КПП")
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    external_ref: Identifier | None = None
    segment: Identifier | None = Field(
        default=None,
        description="The program segment the company card prices by (default: the one its contacts share, "
        "else the program's default)",
    )


class MemberRequest(Operation):
    """Add a contact: the customer gets a card of their own that reaches the company's points."""

    company_id: Identifier
    customer_id: Identifier
    role: MemberRole = Field(description="buyer: earns and spends; earner: earns only; viewer: sees the balance")
    card_number: CardNumber | None = Field(default=None, description="Number of the contact's company card")


class MemberRoleRequest(Operation):
    company_id: Identifier
    customer_id: Identifier
    role: MemberRole


class MemberRemoveRequest(Operation):
    company_id: Identifier
    customer_id: Identifier


class CompanyMember(Result):
    customer_id: str
    name: str | None
    phone: str | None
    role: MemberRole
    active: bool
    may_earn: bool
    may_spend: bool
    cards: list[CardInfo]
    added_at: datetime
    removed_at: datetime | None


class CompanyResult(Result):
    company_id: str
    name: str
    inn: str | None
    kpp: str | None
    segment: str | None = Field(default=None, description="The segment stored for the company (None: its contacts')")
    balance: int = Field(description="Points owned by the company: available + held + pending")
    available: int
    members: list[CompanyMember]
    created_at: datetime

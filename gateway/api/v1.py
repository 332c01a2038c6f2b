"""The plain JSON API, ``/api/v1``: one endpoint per normalized operation.

Mutating endpoints need an ``Idempotency-Key`` header (unique per client and request; keys are
kept at least 72 hours). Errors are ``{"error": {"code", "message", "details"}}`` with a stable
``code`` from the catalogue (``GET /api/v1/errors``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts.errors import ERROR_CATALOGUE, ErrorCode, LoyaltyError
from contracts.money import Money
from contracts.operations import (
    BalanceRequest,
    BalanceResult,
    CalculateRequest,
    CalculateResult,
    CancelRequest,
    CancelResult,
    CaptureRequest,
    CardNumber,
    CardResult,
    CartLine,
    CommitRequest,
    CommitResult,
    CustomerResult,
    GiftCardHoldRequest,
    GiftCardInfoRequest,
    GiftCardIssueRequest,
    GiftCardRedeemRequest,
    GiftCardReleaseRequest,
    GiftCardResult,
    HoldRequest,
    HoldResult,
    Identifier,
    IssueCardRequest,
    LookupCustomerRequest,
    OfflineReceiptRequest,
    RefundLine,
    RefundRequest,
    RefundResult,
    RegisterCustomerRequest,
    ReplaceCardRequest,
)
from gateway.api.auth import loyalty_client, require, require_operator
from gateway.config import ClientConfig
from gateway.ledger.service import LoyaltyService

router = APIRouter(prefix="/api/v1", tags=["loyalty"])

Client = Annotated[ClientConfig, Depends(loyalty_client)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Unique per client and request; a retry with the same key returns the first result",
    ),
]


def _service(request: Request) -> LoyaltyService:
    service: LoyaltyService = request.app.state.service
    return service


Service = Annotated[LoyaltyService, Depends(_service)]


def _key(key: str | None) -> str:
    if not key or not key.strip():
        raise LoyaltyError(ErrorCode.IDEMPOTENCY_KEY_REQUIRED)
    return key.strip()


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in sorted({spec.http_status for spec in ERROR_CATALOGUE.values()})
}


@router.post("/calculate", response_model=CalculateResult, responses=ERRORS)
def calculate(body: CalculateRequest, client: Client, service: Service) -> CalculateResult:
    """Price a cart: points to accrue, maximum points payable, per-line split. Changes nothing."""
    return service.calculate(client.id, body)


@router.post("/holds", response_model=HoldResult, responses=ERRORS)
def create_hold(body: HoldRequest, client: Client, service: Service, key: IdempotencyKey = None) -> HoldResult:
    """Reserve points to spend; they are released if not committed before the hold's deadline."""
    return service.hold(client.id, _key(key), body)


@router.post("/holds/{hold_id}/cancel", response_model=CancelResult, responses=ERRORS)
def cancel_hold(hold_id: Identifier, client: Client, service: Service, key: IdempotencyKey = None) -> CancelResult:
    """Void an open hold and release its points."""
    return service.cancel(client.id, _key(key), CancelRequest(hold_id=hold_id))


class CaptureBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: int = Field(gt=0, le=10**12)
    window_seconds: int | None = Field(default=None, ge=60, le=30 * 24 * 3600)
    lines: list[CartLine] | None = Field(default=None, min_length=1, max_length=1000)


@router.post("/holds/{hold_id}/capture", response_model=HoldResult, responses=ERRORS)
def capture_hold(
    hold_id: Identifier, body: CaptureBody, client: Client, service: Service, key: IdempotencyKey = None
) -> HoldResult:
    """The till took ``points`` of the hold as payment: the rest is released now, the captured
    points wait for their receipt (``POST /receipts`` with this ``hold_id``). If none arrives within
    the capture window, the gateway books the receipt from ``lines`` (or a bare points payment)."""
    request = CaptureRequest(hold_id=hold_id, **body.model_dump(exclude_none=True))
    return service.capture(client.id, _key(key), request)


@router.post("/receipts", response_model=CommitResult, responses=ERRORS)
def commit_receipt(body: CommitRequest, client: Client, service: Service, key: IdempotencyKey = None) -> CommitResult:
    """Book a final receipt: spend held (or directly given) points and accrue new ones."""
    return service.commit(client.id, _key(key), body)


@router.post("/receipts/offline", response_model=CommitResult, responses=ERRORS)
def commit_offline_receipt(
    body: OfflineReceiptRequest, client: Client, service: Service, key: IdempotencyKey = None
) -> CommitResult:
    """A receipt a till closed while offline: accrued with its original time, no points spent.
    Posting it again (any key) changes nothing."""
    return service.offline_commit(client.id, _key(key), body)


class RefundBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund_id: Identifier = Field(description="Id of the return receipt")
    lines: list[RefundLine] | None = None
    amount: Money | None = None
    full: bool = False


@router.post("/receipts/{receipt_id}/refunds", response_model=RefundResult, responses=ERRORS)
def refund_receipt(
    receipt_id: Identifier, body: RefundBody, client: Client, service: Service, key: IdempotencyKey = None
) -> RefundResult:
    """Return a receipt fully or partly: earned points are taken back, spent points given back,
    both in proportion to what is returned."""
    request = RefundRequest(receipt_id=receipt_id, **body.model_dump(exclude_none=True))
    return service.refund(client.id, _key(key), request)


@router.get("/cards/{card_number}/balance", response_model=BalanceResult, responses=ERRORS)
def card_balance(card_number: CardNumber, client: Client, service: Service) -> BalanceResult:
    return service.balance(client.id, BalanceRequest(card_number=card_number))


class ReplaceCardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_card_number: CardNumber | None = None
    reason: str | None = Field(default=None, max_length=256)


@router.post("/cards/{card_number}/replace", response_model=CardResult, responses=ERRORS)
def replace_card(
    card_number: CardNumber,
    client: Client,
    service: Service,
    body: ReplaceCardBody | None = None,
    key: IdempotencyKey = None,
) -> CardResult:
    """Move a lost card's account and points to a new card number."""
    body = body or ReplaceCardBody()
    request = ReplaceCardRequest(card_number=card_number, **body.model_dump(exclude_none=True))
    return service.replace_card(client.id, _key(key), request)


@router.post("/customers", response_model=CustomerResult, responses=ERRORS)
def register_customer(
    body: RegisterCustomerRequest, client: Client, service: Service, key: IdempotencyKey = None
) -> CustomerResult:
    """Register a customer with a card (given or generated) and the welcome bonus."""
    return service.register_customer(client.id, _key(key), body)


@router.get("/customers", response_model=CustomerResult, responses=ERRORS)
def lookup_customer(
    client: Client,
    service: Service,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    card_number: Annotated[str | None, Query(max_length=64)] = None,
    customer_id: Annotated[str | None, Query(max_length=128)] = None,
) -> CustomerResult:
    request = LookupCustomerRequest(phone=phone, email=email, card_number=card_number, customer_id=customer_id)
    return service.lookup_customer(client.id, request)


class IssueCardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_number: CardNumber | None = None


@router.post("/customers/{customer_id}/cards", response_model=CardResult, responses=ERRORS)
def issue_card(
    customer_id: Identifier,
    client: Client,
    service: Service,
    body: IssueCardBody | None = None,
    key: IdempotencyKey = None,
) -> CardResult:
    request = IssueCardRequest(customer_id=customer_id, card_number=(body or IssueCardBody()).card_number)
    return service.issue_card(client.id, _key(key), request)


class ErrorCatalogueEntry(BaseModel):
    code: str
    http_status: int
    description: str


@router.get("/errors", response_model=list[ErrorCatalogueEntry])
def error_catalogue() -> list[ErrorCatalogueEntry]:
    """Every stable error code the gateway can answer with."""
    return [
        ErrorCatalogueEntry(code=code.value, http_status=spec.http_status, description=spec.description)
        for code, spec in ERROR_CATALOGUE.items()
    ]


class LedgerCheckResult(BaseModel):
    ok: bool
    accounts: int
    entries: int
    violations: list[str]


@router.get("/ledger/check", response_model=LedgerCheckResult, tags=["operator"])
def ledger_check(_operator: Annotated[ClientConfig, Depends(require_operator)], service: Service) -> LedgerCheckResult:
    """Run the invariant checker over the whole ledger (operator credentials)."""
    report = service.check()
    return LedgerCheckResult(
        ok=report.ok, accounts=report.accounts, entries=report.entries, violations=report.violations
    )


class UnmappedRefOut(BaseModel):
    source: str
    kind: str
    ref: str
    name: str | None
    seen: int
    first_seen: datetime
    last_seen: datetime


@router.get("/mappings/unmapped", response_model=list[UnmappedRefOut], tags=["operator"])
def unmapped_refs(
    _operator: Annotated[ClientConfig, Depends(require_operator)], service: Service
) -> list[UnmappedRefOut]:
    """References outside systems sent that the configured mappings do not know (operator)."""
    return [UnmappedRefOut.model_validate(row, from_attributes=True) for row in service.unmapped()]


# -- gift certificates ------------------------------------------------------------------------


@router.post("/gift-cards", response_model=GiftCardResult, responses=ERRORS, tags=["gift cards"])
def issue_gift_card(
    body: GiftCardIssueRequest, client: Client, service: Service, key: IdempotencyKey = None
) -> GiftCardResult:
    """Issue a gift certificate for ``amount`` roubles (number given or generated). Operators, and
    clients the configuration grants ``gift_cards.issue``: a certificate is money."""
    require(client, "gift_cards.issue")
    return service.gift_card_issue(client.id, _key(key), body)


@router.get("/gift-cards/{number}", response_model=GiftCardResult, responses=ERRORS, tags=["gift cards"])
def gift_card(number: CardNumber, client: Client, service: Service) -> GiftCardResult:
    return service.gift_card_info(client.id, GiftCardInfoRequest(number=number))


class GiftCardHoldBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money = Field(gt=0)
    ttl_seconds: int | None = Field(default=None, ge=5, le=7 * 24 * 3600)


@router.post("/gift-cards/{number}/holds", response_model=GiftCardResult, responses=ERRORS, tags=["gift cards"])
def hold_gift_card(
    number: CardNumber, body: GiftCardHoldBody, client: Client, service: Service, key: IdempotencyKey = None
) -> GiftCardResult:
    request = GiftCardHoldRequest(number=number, **body.model_dump(exclude_none=True))
    return service.gift_card_hold(client.id, _key(key), request)


class GiftCardRedeemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money = Field(gt=0)
    hold_id: Identifier | None = None
    receipt_id: Identifier | None = None


@router.post("/gift-cards/{number}/redeem", response_model=GiftCardResult, responses=ERRORS, tags=["gift cards"])
def redeem_gift_card(
    number: CardNumber, body: GiftCardRedeemBody, client: Client, service: Service, key: IdempotencyKey = None
) -> GiftCardResult:
    """Pay ``amount`` with the certificate (from a hold, whose rest is released, or directly)."""
    request = GiftCardRedeemRequest(number=number, **body.model_dump(exclude_none=True))
    return service.gift_card_redeem(client.id, _key(key), request)


@router.post("/gift-card-holds/{hold_id}/release", response_model=GiftCardResult, responses=ERRORS, tags=["gift cards"])
def release_gift_card_hold(
    hold_id: Identifier, client: Client, service: Service, key: IdempotencyKey = None
) -> GiftCardResult:
    return service.gift_card_release(client.id, _key(key), GiftCardReleaseRequest(hold_id=hold_id))

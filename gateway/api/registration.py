"""Registration by phone code (``/api/v1/registration``) and message statistics."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress

from contracts.operations import CardNumber, CustomerResult, RegisterCustomerRequest
from gateway.api.auth import loyalty_client, require_operator
from gateway.config import ClientConfig
from gateway.notify.cascade import provider_stats
from gateway.notify.verification import PhoneVerification

router = APIRouter(prefix="/api/v1", tags=["registration"])
Client = Annotated[ClientConfig, Depends(loyalty_client)]


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=5, max_length=32)
    customer_ip: IPvAnyAddress | None = Field(
        default=None,
        description="The end customer's address as the site saw it: codes are limited per address "
        "too. Not the calling system's own address, which all of a site's visitors share.",
    )
    referrer: CardNumber | None = Field(
        default=None,
        description="The referral code the customer came with: the referrer's card number or phone. Kept "
        "with the code; the confirmation registers the customer as referred (the friend's bonus).",
    )


class CodeSentOut(BaseModel):
    phone: str = Field(description="The phone, masked")
    expires_at: datetime
    resend_after: datetime


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=5, max_length=32)
    code: str = Field(min_length=4, max_length=8, pattern=r"^\d+$")
    name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    birth_date: date | None = None
    card_number: CardNumber | None = None
    referrer: CardNumber | None = Field(
        default=None, description="The referral code (card number or phone); overrides one given with the code request"
    )


def _verification(request: Request) -> PhoneVerification:
    verification: PhoneVerification = request.app.state.verification
    return verification


@router.post("/registration/code", response_model=CodeSentOut, status_code=202)
def send_code(body: CodeRequest, request: Request, client: Client) -> CodeSentOut:
    """Send a confirmation code to the phone (Telegram or SMS, by the configured cascade).
    Rate-limited per phone and per end customer's address (``customer_ip``): 429 ``rate_limited``
    with ``Retry-After``. An unknown ``referrer``: 404 ``referrer_not_found``, no code sent."""
    address = str(body.customer_ip) if body.customer_ip is not None else None
    sent = _verification(request).request_code(body.phone, address, referrer=body.referrer, client_id=client.id)
    return CodeSentOut(phone=sent.phone_masked, expires_at=sent.expires_at, resend_after=sent.resend_after)


@router.post("/registration/verify", response_model=CustomerResult)
def verify_code(body: VerifyRequest, request: Request, client: Client) -> CustomerResult:
    """Check the code; the customer (new, with a card and the welcome bonus, or the one who
    already has this phone) comes back with a usable card."""
    registration = RegisterCustomerRequest(
        phone=body.phone,
        name=body.name,
        email=body.email,
        birth_date=body.birth_date,
        card_number=body.card_number,
        referrer_card=body.referrer,
    )
    return _verification(request).verify(client.id, registration, body.code)


class ProviderStatsOut(BaseModel):
    provider: str
    sent: int
    failed_attempts: int
    cost: Decimal


@router.get("/notifications/stats", response_model=list[ProviderStatsOut], tags=["operator"])
def notification_stats(
    request: Request, _operator: Annotated[ClientConfig, Depends(require_operator)]
) -> list[ProviderStatsOut]:
    """Messages sent, failed attempts and cost per provider."""
    return [
        ProviderStatsOut(provider=s.provider, sent=s.sent, failed_attempts=s.failed_attempts, cost=s.cost)
        for s in provider_stats(request.app.state.service.db)
    ]

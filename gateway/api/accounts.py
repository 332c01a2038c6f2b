"""``/api/v1/customers/{id}/merge|history`` and ``/api/v1/companies…``: merging a duplicate
customer (operator), a customer's whole history, company (B2B) accounts and their contacts
(operator)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from contracts.accounts import (
    CompanyRequest,
    CompanyResult,
    CustomerHistoryResult,
    MemberRemoveRequest,
    MemberRequest,
    MemberRole,
    MemberRoleRequest,
    MergeCustomersRequest,
    MergeResult,
)
from contracts.operations import CardNumber, Identifier
from gateway.api.auth import require_operator
from gateway.api.v1 import ERRORS, Client, IdempotencyKey, Service, _key
from gateway.config import ClientConfig

router = APIRouter(prefix="/api/v1", tags=["customers"])
Operator = Annotated[ClientConfig, Depends(require_operator)]


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merged_id: Identifier = Field(description="The duplicate customer, merged into the one in the path")
    reason: str | None = Field(default=None, max_length=256)


@router.post("/customers/{customer_id}/merge", response_model=MergeResult, responses=ERRORS)
def merge(
    customer_id: Identifier, body: MergeBody, operator: Operator, service: Service, key: IdempotencyKey = None
) -> MergeResult:
    """Merge the duplicate ``merged_id`` into this customer (operator): its points move with
    their expiry dates, its cards reach this customer's account, its receipts can still be
    refunded, its history stays. Refused while the duplicate has open holds."""
    request = MergeCustomersRequest(survivor_id=customer_id, merged_id=body.merged_id, reason=body.reason)
    return service.merge_customers(operator.id, _key(key), request)


@router.get("/customers/{customer_id}/history", response_model=CustomerHistoryResult, responses=ERRORS)
def history(
    customer_id: Identifier,
    client: Client,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> CustomerHistoryResult:
    """Ledger entries and receipts (with refunds) of the customer and of every customer merged
    into it, newest first."""
    return service.customer_history(client.id, customer_id, limit)


@router.post("/companies", response_model=CompanyResult, responses=ERRORS, tags=["companies"])
def create_company(
    body: CompanyRequest, operator: Operator, service: Service, key: IdempotencyKey = None
) -> CompanyResult:
    """Open a company account (operator); add its contacts with ``POST …/members``."""
    return service.company_create(operator.id, _key(key), body)


@router.get("/companies/{company_id}", response_model=CompanyResult, responses=ERRORS, tags=["companies"])
def company(company_id: Identifier, operator: Operator, service: Service) -> CompanyResult:
    """The company's points and its contacts with their roles and company cards (operator)."""
    return service.company(operator.id, company_id)


class MemberBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Identifier
    role: MemberRole
    card_number: CardNumber | None = None


@router.post("/companies/{company_id}/members", response_model=CompanyResult, responses=ERRORS, tags=["companies"])
def add_member(
    company_id: Identifier, body: MemberBody, operator: Operator, service: Service, key: IdempotencyKey = None
) -> CompanyResult:
    """Add a contact with a role (``buyer`` earns and spends, ``earner`` earns, ``viewer`` only
    sees the balance); they get a company card (``card_number`` or a fresh one)."""
    request = MemberRequest(company_id=company_id, **body.model_dump(exclude_none=True))
    return service.company_add_member(operator.id, _key(key), request)


class RoleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: MemberRole


@router.patch(
    "/companies/{company_id}/members/{customer_id}", response_model=CompanyResult, responses=ERRORS, tags=["companies"]
)
def set_role(
    company_id: Identifier,
    customer_id: Identifier,
    body: RoleBody,
    operator: Operator,
    service: Service,
    key: IdempotencyKey = None,
) -> CompanyResult:
    request = MemberRoleRequest(company_id=company_id, customer_id=customer_id, role=body.role)
    return service.company_set_role(operator.id, _key(key), request)


@router.delete(
    "/companies/{company_id}/members/{customer_id}", response_model=CompanyResult, responses=ERRORS, tags=["companies"]
)
def remove_member(
    company_id: Identifier, customer_id: Identifier, operator: Operator, service: Service, key: IdempotencyKey = None
) -> CompanyResult:
    """The contact leaves the company: their company cards are blocked."""
    request = MemberRemoveRequest(company_id=company_id, customer_id=customer_id)
    return service.company_remove_member(operator.id, _key(key), request)

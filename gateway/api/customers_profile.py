"""Profile upkeep over the JSON API: ``PATCH /api/v1/customers/{customer_id}``, the profile and
its change history (``GET …/profile``, ``GET …/changes``).

Roles (``docs/security.md``): operators, the site and the ERP change any field; a till changes
contacts and consent but neither the segment nor the referrer — both change what the customer
earns, which is not the cashier's call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import Identifier
from contracts.profiles import (
    ProfileChangesRequest,
    ProfileChangesResult,
    ProfilePatch,
    ProfileResult,
    UpdateCustomerRequest,
)
from gateway.api.v1 import ERRORS, Client, IdempotencyKey, Service, _key

router = APIRouter(prefix="/api/v1", tags=["loyalty"])


@router.patch("/customers/{customer_id}", response_model=ProfileResult, responses=ERRORS)
def update_customer(
    customer_id: Identifier, body: ProfilePatch, client: Client, service: Service, key: IdempotencyKey = None
) -> ProfileResult:
    """Change a customer's name, e-mail, birth date, gender, segment, advertising consent (with
    its date and channel) or referrer. Fields left out stay; ``clear`` empties fields. A new
    segment prices the customer's next receipt. Every change is kept in ``…/changes``."""
    request = UpdateCustomerRequest(customer_id=customer_id, **body.model_dump(exclude_none=True))
    if client.kind == "till" and (request.changes_segment() or request.changes_referrer()):
        raise LoyaltyError(
            ErrorCode.FORBIDDEN, "a till may not change the segment or the referrer", client_kind=client.kind
        )
    return service.update_customer(client.id, _key(key), request)


@router.get("/customers/{customer_id}/profile", response_model=ProfileResult, responses=ERRORS)
def customer_profile(customer_id: Identifier, client: Client, service: Service) -> ProfileResult:
    return service.customer_profile(client.id, customer_id)


@router.get("/customers/{customer_id}/changes", response_model=ProfileChangesResult, responses=ERRORS)
def customer_changes(
    customer_id: Identifier,
    client: Client,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ProfileChangesResult:
    """Who (client id) changed what (old → new; personal values masked) and when, oldest first."""
    return service.customer_changes(client.id, ProfileChangesRequest(customer_id=customer_id, limit=limit))

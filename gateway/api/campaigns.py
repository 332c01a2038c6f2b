"""``/api/v1/campaigns`` (operator): promo campaigns and their batches of codes; and
``/api/v1/promo-codes`` (any client): check a code, reserve it for a receipt, release it.

A receipt uses a code by naming it in ``promo_codes`` of ``POST /receipts`` (or ``/calculate``
to preview): the code is consumed by that receipt, and a till's reservation of it with it.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.accounts import (
    CampaignActiveRequest,
    CampaignBatchInfo,
    CampaignGenerateRequest,
    CampaignRequest,
    CampaignResult,
    PromoCheckRequest,
    PromoCodeInfo,
    PromoReleaseRequest,
    PromoReserveRequest,
)
from contracts.operations import Identifier
from gateway.api.auth import require_operator
from gateway.api.v1 import ERRORS, Client, IdempotencyKey, Service, _key
from gateway.config import ClientConfig

router = APIRouter(prefix="/api/v1", tags=["promo codes"])
Operator = Annotated[ClientConfig, Depends(require_operator)]


@router.post("/campaigns", response_model=CampaignResult, responses=ERRORS)
def create_campaign(
    body: CampaignRequest, operator: Operator, service: Service, key: IdempotencyKey = None
) -> CampaignResult:
    """Create a campaign: its discount, validity, limits, whether a full refund gives a code back,
    and optionally one shared code (give ``uses_per_code: null`` for an unlimited one)."""
    return service.campaign_create(operator.id, _key(key), body)


@router.get("/campaigns/{campaign_id}", response_model=CampaignResult, responses=ERRORS)
def campaign(campaign_id: Identifier, operator: Operator, service: Service) -> CampaignResult:
    """A campaign with its counters: codes, exhausted codes, uses, codes reserved right now."""
    return service.campaign(operator.id, campaign_id)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignResult, responses=ERRORS)
def pause(campaign_id: Identifier, operator: Operator, service: Service, key: IdempotencyKey = None) -> CampaignResult:
    """Stop the campaign: its codes answer ``promocode_unavailable`` (reason ``inactive``)."""
    request = CampaignActiveRequest(campaign_id=campaign_id, active=False)
    return service.campaign_set_active(operator.id, _key(key), request)


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignResult, responses=ERRORS)
def resume(campaign_id: Identifier, operator: Operator, service: Service, key: IdempotencyKey = None) -> CampaignResult:
    request = CampaignActiveRequest(campaign_id=campaign_id, active=True)
    return service.campaign_set_active(operator.id, _key(key), request)


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=100_000)
    length: int = Field(default=10, ge=8, le=20)


@router.post("/campaigns/{campaign_id}/batches", response_model=CampaignBatchInfo, responses=ERRORS)
def generate(
    campaign_id: Identifier, body: GenerateBody, operator: Operator, service: Service, key: IdempotencyKey = None
) -> CampaignBatchInfo:
    """Generate a batch of unique codes; fetch them with ``GET …/batches/{batch_id}/codes``."""
    request = CampaignGenerateRequest(campaign_id=campaign_id, count=body.count, length=body.length)
    return service.campaign_generate(operator.id, _key(key), request)


@router.get(
    "/campaigns/{campaign_id}/batches/{batch_id}/codes",
    responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "code,uses,max_uses"}},
)
def codes(campaign_id: Identifier, batch_id: Identifier, operator: Operator, service: Service) -> Response:
    """The batch's codes as CSV (``code,uses,max_uses``), for printing or mailing (operator).
    They are derived again each time: the database holds no code in clear."""
    found = service.campaign_codes(operator.id, campaign_id, batch_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "uses", "max_uses"])
    for row in found.codes:
        writer.writerow([row.code, row.uses, "" if row.max_uses is None else row.max_uses])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="codes-{batch_id}.csv"', "Cache-Control": "no-store"},
    )


@router.post("/promo-codes/check", response_model=PromoCodeInfo, responses=ERRORS)
def check(body: PromoCheckRequest, client: Client, service: Service) -> PromoCodeInfo:
    """Whether a code can be used now (for this card and receipt total, if given), and why not.
    Changes nothing. The code travels in the body so that it stays out of access logs."""
    return service.promo_check(client.id, body)


@router.post("/promo-codes/reservations", response_model=PromoCodeInfo, responses=ERRORS)
def reserve(body: PromoReserveRequest, client: Client, service: Service, key: IdempotencyKey = None) -> PromoCodeInfo:
    """Reserve a campaign code for the receipt being rung up: no other client can use it until
    the receipt consumes it, the reservation is released, or ``ttl_seconds`` pass."""
    return service.promo_reserve(client.id, _key(key), body)


@router.post("/promo-codes/reservations/{reservation_id}/release", response_model=PromoCodeInfo, responses=ERRORS)
def release(reservation_id: Identifier, client: Client, service: Service, key: IdempotencyKey = None) -> PromoCodeInfo:
    return service.promo_release(client.id, _key(key), PromoReleaseRequest(reservation_id=reservation_id))

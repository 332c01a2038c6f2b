"""``/api/v1/gift-cards…`` beyond the till's check/hold/redeem (those are in ``v1``): printed
batches and blocking (operator), refunds onto a certificate and its history (any client)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from contracts.accounts import (
    GiftCardBatchRequest,
    GiftCardBatchResult,
    GiftCardBlockRequest,
    GiftCardHistoryResult,
    GiftCardRefundRequest,
    GiftCardRefundResult,
)
from contracts.money import Money
from contracts.operations import CardNumber, GiftCardResult, Identifier
from gateway.api.auth import require_operator
from gateway.api.v1 import ERRORS, Client, IdempotencyKey, Service, _key
from gateway.config import ClientConfig

router = APIRouter(prefix="/api/v1", tags=["gift cards"])
Operator = Annotated[ClientConfig, Depends(require_operator)]


@router.post("/gift-cards/batches", response_model=GiftCardBatchResult, responses=ERRORS)
def issue_batch(
    body: GiftCardBatchRequest, operator: Operator, service: Service, key: IdempotencyKey = None
) -> GiftCardBatchResult:
    """Issue a batch of printed certificates with fresh numbers (operator). Issue stock printed
    ahead of sale ``blocked`` and unblock each certificate when it is sold."""
    return service.gift_card_issue_batch(operator.id, _key(key), body)


@router.get("/gift-cards/batches/{batch_id}", response_model=GiftCardBatchResult, responses=ERRORS)
def batch(batch_id: Identifier, operator: Operator, service: Service) -> GiftCardBatchResult:
    """A batch and its numbers (operator)."""
    return service.gift_card_batch(operator.id, batch_id)


class BlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=256)


@router.post("/gift-cards/{number}/block", response_model=GiftCardResult, responses=ERRORS)
def block(
    number: CardNumber, operator: Operator, service: Service, body: BlockBody | None = None, key: IdempotencyKey = None
) -> GiftCardResult:
    """Block a certificate (lost, disputed, not sold yet): it can no longer be held or redeemed."""
    request = GiftCardBlockRequest(number=number, blocked=True, reason=(body or BlockBody()).reason)
    return service.gift_card_set_blocked(operator.id, _key(key), request)


@router.post("/gift-cards/{number}/unblock", response_model=GiftCardResult, responses=ERRORS)
def unblock(
    number: CardNumber, operator: Operator, service: Service, body: BlockBody | None = None, key: IdempotencyKey = None
) -> GiftCardResult:
    """Unblock a certificate (e.g. when a pre-printed one is sold)."""
    request = GiftCardBlockRequest(number=number, blocked=False, reason=(body or BlockBody()).reason)
    return service.gift_card_set_blocked(operator.id, _key(key), request)


class RefundBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund_id: Identifier = Field(description="Id of the return receipt; applied once")
    amount: Money = Field(gt=0)
    receipt_id: Identifier | None = None


@router.post("/gift-cards/{number}/refunds", response_model=GiftCardRefundResult, responses=ERRORS)
def refund(
    number: CardNumber, body: RefundBody, client: Client, service: Service, key: IdempotencyKey = None
) -> GiftCardRefundResult:
    """Goods paid with the certificate were returned: put their money back on it (at most what
    was paid with it; once per ``refund_id``)."""
    request = GiftCardRefundRequest(number=number, **body.model_dump(exclude_none=True))
    return service.gift_card_refund(client.id, _key(key), request)


@router.get("/gift-cards/{number}/history", response_model=GiftCardHistoryResult, responses=ERRORS)
def history(number: CardNumber, client: Client, service: Service) -> GiftCardHistoryResult:
    """Everything that happened to the certificate, oldest first, with the balance after each
    movement of money."""
    return service.gift_card_history(client.id, number)

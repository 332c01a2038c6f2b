"""Promo campaigns: create, pause, generate batches of codes, show, export a batch again.

Codes are stored only as keyed hashes (see ``campaign_codes``); a batch's codes are derived
again from the installation's secret when an operator exports it, so no table — not even the
stored results of idempotent requests — holds an unused code.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, insert
from sqlmodel import col, select

from contracts.accounts import (
    CampaignActiveRequest,
    CampaignBatchInfo,
    CampaignCodeOut,
    CampaignCodesResult,
    CampaignGenerateRequest,
    CampaignRequest,
    CampaignResult,
)
from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from gateway.ledger import campaign_codes
from gateway.ledger.campaign_uses import live_uses, live_uses_filter
from gateway.ledger.context import Ctx
from gateway.store.models_accounts import (
    CampaignCode,
    CampaignCodeUse,
    PromoCampaign,
    PromoCodeBatch,
    PromoReservation,
)

_CHUNK = 500


def _campaign(ctx: Ctx, campaign_id: str) -> PromoCampaign:
    row = ctx.session.get(PromoCampaign, campaign_id)
    if row is None:
        raise LoyaltyError(ErrorCode.CAMPAIGN_NOT_FOUND, campaign_id=campaign_id)
    return row


def result(ctx: Ctx, campaign: PromoCampaign) -> CampaignResult:
    codes = int(
        ctx.session.exec(
            select(func.count()).select_from(CampaignCode).where(CampaignCode.campaign_id == campaign.id)
        ).one()
    )
    per_code = (
        select(CampaignCodeUse.code_id, func.count().label("used"))
        .where(CampaignCodeUse.campaign_id == campaign.id, *live_uses_filter(campaign))
        .group_by(col(CampaignCodeUse.code_id))
        .subquery()
    )
    exhausted = int(
        ctx.session.exec(
            select(func.count())
            .select_from(CampaignCode)
            .join(per_code, per_code.c.code_id == CampaignCode.id)
            .where(col(CampaignCode.max_uses).is_not(None), per_code.c.used >= CampaignCode.max_uses)
        ).one()
    )
    reserved = int(
        ctx.session.exec(
            select(func.count())
            .select_from(PromoReservation)
            .where(
                PromoReservation.campaign_id == campaign.id,
                PromoReservation.status == "open",
                col(PromoReservation.expires_at) > ctx.now,
            )
        ).one()
    )
    batches = ctx.session.exec(
        select(PromoCodeBatch)
        .where(PromoCodeBatch.campaign_id == campaign.id)
        .order_by(col(PromoCodeBatch.created_at), col(PromoCodeBatch.id))
    ).all()
    return CampaignResult(
        campaign_id=campaign.id,
        name=campaign.name,
        description=campaign.description,
        discount_percent=Decimal(campaign.discount_percent) if campaign.discount_percent else None,
        discount_amount=kopecks_to_money(campaign.discount_kopecks) if campaign.discount_kopecks is not None else None,
        valid_from=campaign.valid_from,
        valid_to=campaign.valid_to,
        min_amount=kopecks_to_money(campaign.min_amount_kopecks) if campaign.min_amount_kopecks is not None else None,
        uses_per_code=campaign.uses_per_code,
        per_customer=campaign.per_customer,
        return_on_refund=campaign.return_on_refund,
        prefix=campaign.prefix,
        active=campaign.active,
        shared_code=campaign.shared_hint,
        codes=codes,
        codes_exhausted=exhausted,
        uses=live_uses(ctx, campaign, col(CampaignCodeUse.campaign_id) == campaign.id),
        reserved=reserved,
        batches=[_batch_info(b) for b in batches],
        created_at=campaign.created_at,
    )


def _batch_info(batch: PromoCodeBatch) -> CampaignBatchInfo:
    return CampaignBatchInfo(
        campaign_id=batch.campaign_id,
        batch_id=batch.id,
        count=batch.count,
        code_length=batch.code_length,
        created_at=batch.created_at,
    )


def create(ctx: Ctx, req: CampaignRequest) -> CampaignResult:
    campaign = PromoCampaign(
        id=str(uuid.uuid4()),
        name=req.name,
        description=req.description,
        discount_percent=str(req.discount_percent) if req.discount_percent is not None else None,
        discount_kopecks=money_to_kopecks(req.discount_amount) if req.discount_amount is not None else None,
        valid_from=req.valid_from,
        valid_to=req.valid_to,
        min_amount_kopecks=money_to_kopecks(req.min_amount) if req.min_amount is not None else None,
        uses_per_code=req.uses_per_code,
        per_customer=req.per_customer,
        return_on_refund=req.return_on_refund,
        prefix=req.prefix,
        shared_hint=campaign_codes.hint(req.code) if req.code else None,
        active=True,
        created_by=ctx.client_id,
        created_at=ctx.now,
    )
    ctx.session.add(campaign)
    ctx.session.flush()
    if req.code is not None:
        if ctx.program.promo(req.code) is not None:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the program file already declares this code", field="code")
        keys = campaign_codes.keys(ctx.session, ctx.now)
        assert keys is not None
        digest = keys.digest(req.code)
        if ctx.session.exec(select(CampaignCode.id).where(CampaignCode.code_hash == digest)).first() is not None:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "another campaign already has this code", field="code")
        ctx.session.add(
            CampaignCode(
                campaign_id=campaign.id,
                code_hash=digest,
                hint=campaign.shared_hint or "",
                max_uses=req.uses_per_code,
                created_at=ctx.now,
            )
        )
        ctx.session.flush()
    return result(ctx, campaign)


def set_active(ctx: Ctx, req: CampaignActiveRequest) -> CampaignResult:
    """Pause (codes answer ``inactive``) or resume a campaign."""
    campaign = _campaign(ctx, req.campaign_id)
    campaign.active = req.active
    ctx.session.add(campaign)
    ctx.session.flush()
    return result(ctx, campaign)


def generate(ctx: Ctx, req: CampaignGenerateRequest) -> CampaignBatchInfo:
    """Make ``req.count`` new codes for a campaign. The result names the batch, never a code:
    ``codes`` derives them for printing."""
    campaign = _campaign(ctx, req.campaign_id)
    keys = campaign_codes.keys(ctx.session, ctx.now)
    assert keys is not None
    batch = PromoCodeBatch(
        id=str(uuid.uuid4()),
        campaign_id=campaign.id,
        count=req.count,
        code_length=req.length,
        created_by=ctx.client_id,
        created_at=ctx.now,
    )
    ctx.session.add(batch)
    ctx.session.flush()
    made: dict[str, dict[str, object]] = {}
    index = 0
    while len(made) < req.count:
        candidates: dict[str, tuple[int, str]] = {}
        while len(candidates) + len(made) < req.count:
            code = keys.derive(campaign.id, batch.id, index, req.length, campaign.prefix)
            digest = keys.digest(code)
            if digest not in made and ctx.program.promo(code) is None:
                candidates[digest] = (index, code)
            index += 1
        digests = list(candidates)
        taken: set[str] = set()
        for start in range(0, len(digests), _CHUNK):
            chunk = digests[start : start + _CHUNK]
            taken.update(ctx.session.exec(select(CampaignCode.code_hash).where(col(CampaignCode.code_hash).in_(chunk))))
        for digest, (code_index, code) in candidates.items():
            if digest not in taken:
                made[digest] = {
                    "campaign_id": campaign.id,
                    "batch_id": batch.id,
                    "code_index": code_index,
                    "code_hash": digest,
                    "hint": campaign_codes.hint(code, campaign.prefix),
                    "max_uses": campaign.uses_per_code,
                    "created_at": ctx.now,
                }
    ctx.session.execute(insert(CampaignCode), list(made.values()))  # bulk: no ORM object per code
    return _batch_info(batch)


def show(ctx: Ctx, campaign_id: str) -> CampaignResult:
    return result(ctx, _campaign(ctx, campaign_id))


def codes(ctx: Ctx, campaign_id: str, batch_id: str) -> CampaignCodesResult:
    """The codes of a batch, derived again, with how many uses each has had (for printing,
    mailing, or checking a batch)."""
    campaign = _campaign(ctx, campaign_id)
    batch = ctx.session.get(PromoCodeBatch, batch_id)
    if batch is None or batch.campaign_id != campaign.id:
        raise LoyaltyError(ErrorCode.NOT_FOUND, "no such batch in this campaign", batch_id=batch_id)
    keys = campaign_codes.keys(ctx.session)
    if keys is None:  # pragma: no cover - generating the batch made the secret
        raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "the promo-code secret is missing")
    used = dict(
        ctx.session.exec(
            select(CampaignCodeUse.code_id, func.count())
            .join(CampaignCode, col(CampaignCode.id) == col(CampaignCodeUse.code_id))
            .where(CampaignCode.batch_id == batch.id, *live_uses_filter(campaign))
            .group_by(col(CampaignCodeUse.code_id))
        ).all()
    )
    out: list[CampaignCodeOut] = []
    for code_id, code_index, code_hash, max_uses in ctx.session.exec(
        select(CampaignCode.id, CampaignCode.code_index, CampaignCode.code_hash, CampaignCode.max_uses)
        .where(CampaignCode.batch_id == batch.id)
        .order_by(col(CampaignCode.code_index))
    ).all():
        code = keys.derive(campaign.id, batch.id, code_index or 0, batch.code_length, campaign.prefix)
        if keys.digest(code) != code_hash:  # pragma: no cover - the secret was replaced
            raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "the promo-code secret no longer matches this batch")
        out.append(CampaignCodeOut(code=code, uses=int(used.get(code_id or 0, 0)), max_uses=max_uses))
    return CampaignCodesResult(campaign_id=campaign.id, batch_id=batch.id, codes=out)

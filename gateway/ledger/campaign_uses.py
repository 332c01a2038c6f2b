"""Using a campaign code: is it usable now, reserving it at a till, consuming it by a receipt.

A code may be used ``max_uses`` times (once, for generated codes by default). What counts
against that: the receipts that used it (a receipt refunded in full gives its use back when the
campaign says so) and the open reservations of other tills. Reserving and consuming lock the
code's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite writers are serialized), and both
re-check under that lock, so two tills racing for the last use of a code cannot both get it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import NoReturn

from sqlalchemy import and_, exists, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from contracts.accounts import PromoCheckRequest, PromoCodeInfo, PromoReason, PromoReleaseRequest, PromoReserveRequest
from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from gateway.core.program import PromoCode
from gateway.ledger import campaign_codes
from gateway.ledger.accounts import find_card
from gateway.ledger.context import Ctx
from gateway.store.models import Receipt, ReceiptLine
from gateway.store.models_accounts import CampaignCode, CampaignCodeUse, PromoCampaign, PromoReservation


class CampaignPromo(PromoCode):
    """A campaign code in the form pricing understands. It carries no code text: receipts and
    their explanations name it by its masked ``label`` only."""

    campaign_id: str
    code_id: int
    label: str

    @property
    def key(self) -> str:
        return self.label


@dataclass(frozen=True)
class CodeState:
    code: CampaignCode
    campaign: PromoCampaign
    reason: PromoReason
    text: str  # for the cashier
    own: PromoReservation | None  # this client's open reservation of the code, if any

    @property
    def available(self) -> bool:
        return self.reason == "ok"

    def promo(self) -> CampaignPromo:
        return CampaignPromo(
            code=f"C{self.code.id}",
            description=self.campaign.description,
            discount_percent=Decimal(self.campaign.discount_percent) if self.campaign.discount_percent else None,
            discount_amount=kopecks_to_money(self.campaign.discount_kopecks)
            if self.campaign.discount_kopecks is not None
            else None,
            campaign_id=self.campaign.id,
            code_id=self.code.id or 0,
            label=self.code.hint,
        )

    def info(self, reservation: PromoReservation | None = None) -> PromoCodeInfo:
        campaign = self.campaign
        return PromoCodeInfo(
            code=self.code.hint,
            available=self.available,
            reason=self.reason,
            status=self.text,
            description=campaign.description,
            discount_percent=Decimal(campaign.discount_percent) if campaign.discount_percent else None,
            discount_amount=kopecks_to_money(campaign.discount_kopecks)
            if campaign.discount_kopecks is not None
            else None,
            campaign_id=campaign.id,
            reservation_id=reservation.id if reservation else None,
            reserved_until=reservation.expires_at if reservation else None,
        )


# -- counting uses -----------------------------------------------------------------------------


def live_uses_filter(campaign: PromoCampaign) -> list[ColumnElement[bool]]:
    """Conditions of a use that still counts: unless the campaign gives codes back on refund,
    every use; otherwise every use but those whose receipt was refunded in full."""
    if not campaign.return_on_refund:
        return []
    refunded_in_full = and_(
        exists().where(col(Receipt.id) == col(CampaignCodeUse.transaction_id)),
        ~exists().where(
            col(ReceiptLine.receipt_txn_id) == col(CampaignCodeUse.transaction_id),
            col(ReceiptLine.refunded_kopecks) < col(ReceiptLine.amount_kopecks),
        ),
    )
    return [~refunded_in_full]


def live_uses(ctx: Ctx, campaign: PromoCampaign, *where: ColumnElement[bool]) -> int:
    stmt = select(func.count()).select_from(CampaignCodeUse).where(*where, *live_uses_filter(campaign))
    return int(ctx.session.exec(stmt).one())


def open_reservations(ctx: Ctx, code_id: int) -> Sequence[PromoReservation]:
    return ctx.session.exec(
        select(PromoReservation)
        .where(
            PromoReservation.code_id == code_id,
            PromoReservation.status == "open",
            col(PromoReservation.expires_at) > ctx.now,
        )
        .order_by(col(PromoReservation.created_at))
    ).all()


# -- finding and judging a code ----------------------------------------------------------------


def find(ctx: Ctx, code: str, *, lock: bool = False) -> tuple[CampaignCode, PromoCampaign] | None:
    """The campaign code typed as ``code``, if there is one (locked for this transaction)."""
    keys = campaign_codes.keys(ctx.session)
    if keys is None or len(campaign_codes.normalize(code)) < 2:
        return None
    stmt = select(CampaignCode).where(CampaignCode.code_hash == keys.digest(code))
    row = ctx.session.exec(stmt).first()
    if row is None:
        return None
    if lock:
        row = _lock(ctx, row)
    campaign = ctx.session.get(PromoCampaign, row.campaign_id)
    assert campaign is not None
    return row, campaign


def _lock(ctx: Ctx, row: CampaignCode) -> CampaignCode:
    stmt = select(CampaignCode).where(CampaignCode.id == row.id).execution_options(populate_existing=True)
    if not ctx.db.is_sqlite:  # SQLite: BEGIN IMMEDIATE already serializes writers
        stmt = stmt.with_for_update()
    return ctx.session.exec(stmt).one()


def evaluate(
    ctx: Ctx, code: CampaignCode, campaign: PromoCampaign, account_id: str | None, total_kopecks: int | None
) -> CodeState:
    """Whether this client may use ``code`` now, for this account and receipt total."""
    reservations = open_reservations(ctx, code.id or 0)
    own = next(
        (
            r
            for r in reservations
            if r.client_id == ctx.client_id
            and (r.account_id is None or account_id is None or r.account_id == account_id)
        ),
        None,
    )

    def state(reason: PromoReason, text: str) -> CodeState:
        return CodeState(code, campaign, reason, text, own)

    if not campaign.active:
        return state("inactive", "Акция остановлена")
    if campaign.valid_from is not None and ctx.now < campaign.valid_from:
        return state("not_yet_valid", f"Действует с {campaign.valid_from:%d.%m.%Y}")
    if campaign.valid_to is not None and ctx.now >= campaign.valid_to:
        return state("expired", "Срок действия истёк")
    if code.max_uses is not None:
        used = live_uses(ctx, campaign, col(CampaignCodeUse.code_id) == code.id)
        if used >= code.max_uses:
            return state("used_up", "Уже использован" if code.max_uses == 1 else "Исчерпан")
        others = len(reservations) - (1 if own is not None else 0)
        if used + others >= code.max_uses:
            return state("reserved", "Зарезервирован на другой кассе")
    if campaign.per_customer is not None and account_id is not None:
        mine = live_uses(
            ctx,
            campaign,
            col(CampaignCodeUse.campaign_id) == campaign.id,
            col(CampaignCodeUse.account_id) == account_id,
        )
        if mine >= campaign.per_customer:
            return state("customer_limit", "Уже использован этим покупателем")
    minimum = campaign.min_amount_kopecks
    if minimum is not None and total_kopecks is not None and total_kopecks < minimum:
        return state("min_amount", f"Сумма чека меньше {kopecks_to_money(minimum)}")
    return state("ok", "Действует")


def state_of(ctx: Ctx, code: str, account_id: str | None, total_kopecks: int | None) -> CodeState | None:
    found = find(ctx, code)
    return evaluate(ctx, *found, account_id, total_kopecks) if found is not None else None


def unavailable(state: CodeState) -> LoyaltyError:
    return LoyaltyError(ErrorCode.PROMOCODE_UNAVAILABLE, state.text, reason=state.reason, promo_code=state.code.hint)


# -- reserve, release, consume -----------------------------------------------------------------


def _account_of_card(ctx: Ctx, card_number: str | None) -> str | None:
    if card_number is None:
        return None
    card = find_card(ctx, card_number)
    if card.status != "active":
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, card_number=card.number, status=card.status)
    return card.account_id


def check(ctx: Ctx, req: PromoCheckRequest) -> PromoCodeInfo | None:
    """How a campaign code stands for this client, card and total; ``None``: no such code."""
    account_id = _account_of_card(ctx, req.card_number)
    total = money_to_kopecks(req.amount) if req.amount is not None else None
    found = state_of(ctx, req.code, account_id, total)
    return found.info(found.own) if found is not None else None


def reserve(ctx: Ctx, req: PromoReserveRequest) -> PromoCodeInfo | None:
    """Reserve a campaign code for this client (``None``: no such campaign code). Reserving a
    code this client already holds returns that reservation."""
    account_id = _account_of_card(ctx, req.card_number)
    found = find(ctx, req.code, lock=True)
    if found is None:
        return None
    state = evaluate(ctx, *found, account_id, None)
    if state.own is not None and state.available:
        if state.own.account_id is None and account_id is not None:
            state.own.account_id = account_id
            ctx.session.add(state.own)
        return state.info(state.own)
    if not state.available:
        raise unavailable(state)
    code, campaign = found
    row = PromoReservation(
        id=str(uuid.uuid4()),
        code_id=code.id or 0,
        campaign_id=campaign.id,
        client_id=ctx.client_id,
        account_id=account_id,
        tag=req.tag,
        status="open",
        expires_at=ctx.now + timedelta(seconds=req.ttl_seconds or ctx.program.holds.ttl_seconds),
        created_at=ctx.now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    return state.info(row)


def _resolve(ctx: Ctx, row: PromoReservation, status: str, transaction_id: str | None = None) -> None:
    row.status = status
    row.transaction_id = transaction_id
    row.resolved_at = ctx.now
    ctx.session.add(row)


def release(ctx: Ctx, req: PromoReleaseRequest) -> PromoCodeInfo | None:
    """Release a reservation (by id), or every open reservation this client holds on a code.
    Releasing what is already released changes nothing; ``None``: no such campaign code."""
    if req.reservation_id is not None:
        row = ctx.session.get(PromoReservation, req.reservation_id)
        if row is None or row.client_id != ctx.client_id:
            raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, reservation_id=req.reservation_id)
        code = _lock(ctx, ctx.session.get(CampaignCode, row.code_id) or _gone())
        ctx.session.refresh(row)
        if row.status == "consumed":
            raise LoyaltyError(ErrorCode.HOLD_ALREADY_RESOLVED, reservation_id=row.id, status=row.status)
        released = 0
        if row.status == "open":
            _resolve(ctx, row, "released" if row.expires_at > ctx.now else "expired")
            released = 1
        campaign = ctx.session.get(PromoCampaign, code.campaign_id) or _gone()
        info = evaluate(ctx, code, campaign, None, None).info(row)
        return info.model_copy(update={"released": released})
    found = find(ctx, req.code or "", lock=True)
    if found is None:
        return None
    released = 0
    for row in open_reservations(ctx, found[0].id or 0):
        if row.client_id == ctx.client_id:
            _resolve(ctx, row, "released")
            released += 1
    return evaluate(ctx, *found, None, None).info().model_copy(update={"released": released})


def _gone() -> NoReturn:  # pragma: no cover - foreign keys keep codes and campaigns of reservations
    raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "reservation without its code")


def consume(ctx: Ctx, promo: CampaignPromo, transaction_id: str, account_id: str) -> None:
    """The receipt ``transaction_id`` uses the code: re-checked under the code's lock, this
    client's reservation (if any) is consumed and the use recorded. Recording the same
    transaction again (an order priced anew) changes nothing."""
    if ctx.session.get(CampaignCodeUse, transaction_id) is not None:
        return
    code = _lock(ctx, ctx.session.get(CampaignCode, promo.code_id) or _gone())
    campaign = ctx.session.get(PromoCampaign, code.campaign_id) or _gone()
    state = evaluate(ctx, code, campaign, account_id, None)
    if not state.available:
        raise unavailable(state)
    if state.own is not None:
        _resolve(ctx, state.own, "consumed", transaction_id)
    ctx.session.add(
        CampaignCodeUse(
            transaction_id=transaction_id,
            code_id=promo.code_id,
            campaign_id=promo.campaign_id,
            account_id=account_id,
            client_id=ctx.client_id,
            reservation_id=state.own.id if state.own is not None else None,
            used_at=ctx.now,
        )
    )
    ctx.session.flush()


def recorded(ctx: Ctx, transaction_id: str) -> CampaignPromo | None:
    """The campaign code a transaction already used (to price an order again with it)."""
    use = ctx.session.get(CampaignCodeUse, transaction_id)
    if use is None:
        return None
    code = ctx.session.get(CampaignCode, use.code_id) or _gone()
    campaign = ctx.session.get(PromoCampaign, code.campaign_id) or _gone()
    return CodeState(code, campaign, "ok", "Действует", None).promo()


def sweep(ctx: Ctx, limit: int) -> int:
    """Mark reservations past their deadline expired (they already stopped counting)."""
    rows = ctx.session.exec(
        select(PromoReservation)
        .where(PromoReservation.status == "open", col(PromoReservation.expires_at) <= ctx.now)
        .order_by(col(PromoReservation.expires_at))
        .limit(limit)
    ).all()
    for row in rows:
        _resolve(ctx, row, "expired")
    return len(rows)

"""Till sessions: points and gift-certificate money reserved and written off at a till.

Tills that speak a "lock, then write off" protocol (1C «Сервер лояльности», Manzana-style SOAP)
call these operations; each runs in one transaction under the account's (or certificate's) lock,
so concurrent calls of two tills on one card are serialized and the adapter needs no race patches.

The rules, taken from 1C's own server of the contract (``HTTPServices/СерверЛояльности``):

* a till *reserves* a card's points when it asks for them (``reserve``): one open reservation per
  client, card and tag; asking again extends it and adds points that became available;
* a *write-off* captures exactly what the till took: from the open reservation when it covers
  the amount, else from the available points. Every write-off is a capture of its own: two tills
  writing off the same amount on one card are two captures, never one answered twice;
* the cart a till calculates is remembered on its open reservation only: a later receipt's cart
  never attaches to an earlier receipt's capture;
* a capture is settled by one receipt: the first receipt from the till's client (or a client
  allowed to settle it, ``Ctx.settles``) paying exactly its points, or — after the capture
  window — the gateway's own booking; a back-office receipt arriving after that booking is the
  same purchase and is not debited again.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from pydantic import BaseModel, Field
from sqlmodel import col, or_, select

from contracts.accounts import GiftCardRefundRequest
from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import money_to_kopecks
from contracts.operations import (
    CardNumber,
    CartLine,
    CommitResult,
    CustomerResult,
    GiftCardRedeemRequest,
    GiftCardResult,
    HoldResult,
    LookupCustomerRequest,
)
from gateway.ledger import members
from gateway.ledger.accounts import available_points, find_card, lock_card_account
from gateway.ledger.context import Ctx
from gateway.ledger.customers import lookup_customer
from gateway.ledger.giftcards import _amounts, _get, _result, _usable, redeem, refund
from gateway.ledger.hold_states import HoldStatus, move
from gateway.ledger.holds import CART_LINES as _CART
from gateway.ledger.holds import hold_result, keep_held, void_hold
from gateway.ledger.movements import allocate
from gateway.ledger.receipts import commit_result
from gateway.store.models import Customer, GiftCardHold, Hold, Receipt

MAX_TILL_AMOUNT = Decimal("100000000")  # a till's single payment never reaches 100 million roubles


class TillReserveRequest(BaseModel):
    card_number: CardNumber
    tag: str = Field(min_length=1, max_length=64)
    ttl_seconds: int = Field(ge=5, le=7 * 24 * 3600)


class TillWriteOffRequest(BaseModel):
    """``amount`` is money the till took off the receipt (1C's ``BonusesCount``)."""

    card_number: CardNumber
    tag: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(gt=0, le=MAX_TILL_AMOUNT, max_digits=14, decimal_places=2)
    ttl_seconds: int = Field(ge=5, le=7 * 24 * 3600)
    window_seconds: int | None = Field(default=None, ge=60, le=30 * 24 * 3600)


class TillUnlockRequest(BaseModel):
    card_number: CardNumber
    tag: str = Field(min_length=1, max_length=64)


class TillCartRequest(BaseModel):
    card_number: CardNumber
    tag: str = Field(min_length=1, max_length=64)
    lines: list[CartLine] = Field(min_length=1, max_length=1000)


class TillReservation(BaseModel):
    card_number: str
    hold_id: str | None
    reserved: int = Field(description="Points reserved for this client's till session")
    available: int = Field(description="Points the card could still reserve (besides ``reserved``)")


class GiftReserveRequest(BaseModel):
    number: CardNumber
    tag: str = Field(min_length=1, max_length=64)
    ttl_seconds: int = Field(ge=5, le=7 * 24 * 3600)


class GiftWriteOffRequest(BaseModel):
    """A positive ``amount`` pays with the certificate; a negative one (a till's return) puts
    that money back onto it."""

    number: CardNumber
    tag: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(ge=-MAX_TILL_AMOUNT, le=MAX_TILL_AMOUNT, max_digits=14, decimal_places=2)
    ttl_seconds: int = Field(ge=5, le=7 * 24 * 3600)


class GiftUnlockRequest(BaseModel):
    number: CardNumber
    tag: str = Field(min_length=1, max_length=64)


class GiftReservation(BaseModel):
    card: GiftCardResult
    reserved: Decimal = Field(description="Money reserved for this client's till session")


def points_for_amount(amount: Decimal, point_value_kopecks: int) -> int:
    """Points that pay ``amount`` of money: rounded *up* to a whole point, so the ledger always
    books at least the money the till took (67,04 at 1 rouble a point books 68 points). The till
    caps a payment at ``BonusCount x BonusRate``, so the rounded figure never exceeds what it saw."""
    kopecks = money_to_kopecks(amount)
    return int((Decimal(kopecks) / Decimal(point_value_kopecks)).to_integral_value(rounding=ROUND_CEILING))


# ---------------------------------------------------------------------------------------------
# points
# ---------------------------------------------------------------------------------------------


def _open_reservation(ctx: Ctx, card_number: str, tag: str) -> Hold | None:
    return ctx.session.exec(
        select(Hold)
        .where(
            Hold.client_id == ctx.client_id,
            Hold.card_number == card_number,
            Hold.tag == tag,
            Hold.status == HoldStatus.OPEN,
            col(Hold.expires_at) > ctx.now,
        )
        .order_by(col(Hold.created_at).desc())
        .limit(1)
    ).first()


def _new_hold(ctx: Ctx, account_id: str, card_number: str, points: int, tag: str, ttl_seconds: int) -> Hold:
    row = Hold(
        id=str(uuid.uuid4()),
        account_id=account_id,
        card_number=card_number,
        client_id=ctx.client_id,
        points=points,
        status=HoldStatus.OPEN,
        tag=tag,
        expires_at=ctx.now + timedelta(seconds=ttl_seconds),
        created_at=ctx.now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    allocate(ctx, account_id, points, "held", row.id)
    ctx.session.flush()
    return row


def reserve(ctx: Ctx, req: TillReserveRequest) -> TillReservation:
    """Reserve every available point of the card for this client's till session (idempotent:
    asking again extends the reservation and adds points that became available since)."""
    card, account = lock_card_account(ctx, req.card_number)
    members.authorize(ctx, card, spend=True)
    available = available_points(ctx, account.id)
    row = _open_reservation(ctx, card.number, req.tag)
    if row is not None:
        if available > 0:
            allocate(ctx, account.id, available, "held", row.id)
            row.points += available
        row.expires_at = max(row.expires_at, ctx.now + timedelta(seconds=req.ttl_seconds))
        ctx.session.add(row)
        ctx.session.flush()
    elif available >= max(ctx.program.redemption.min_points, 1):
        row = _new_hold(ctx, account.id, card.number, available, req.tag, req.ttl_seconds)
    return TillReservation(
        card_number=card.number,
        hold_id=row.id if row is not None else None,
        reserved=row.points if row is not None else 0,
        available=available_points(ctx, account.id),
    )


def write_off(ctx: Ctx, req: TillWriteOffRequest) -> HoldResult:
    """Capture the points that pay ``amount``: a new capture on every call (see the module)."""
    card, account = lock_card_account(ctx, req.card_number)
    members.authorize(ctx, card, spend=True)
    points = points_for_amount(req.amount, ctx.program.point_value_kopecks)
    row = _open_reservation(ctx, card.number, req.tag)
    if row is not None and row.points < points:
        void_hold(ctx, row, "released")  # too small: its points come back and are taken anew below
        row = None
    if row is None:
        available = available_points(ctx, account.id)
        if points > available:
            raise LoyaltyError(ErrorCode.INSUFFICIENT_POINTS, requested=points, available=available)
        row = _new_hold(ctx, account.id, card.number, points, req.tag, req.ttl_seconds)
    keep_held(ctx, row, points)
    move(row, HoldStatus.CAPTURED, ctx.now)
    row.captured_points = points
    row.expires_at = ctx.now + timedelta(seconds=req.window_seconds or ctx.program.holds.capture_window_seconds)
    ctx.session.add(row)
    ctx.session.flush()
    return hold_result(ctx, row, card)


def unlock(ctx: Ctx, req: TillUnlockRequest) -> int:
    """Void this client's open reservations of the card; returns the points released. Captured
    write-offs stay: they were paid at the till and wait for their receipt."""
    card, _ = lock_card_account(ctx, req.card_number, require_active=False)
    released = 0
    rows = ctx.session.exec(
        select(Hold).where(
            Hold.client_id == ctx.client_id,
            Hold.card_number == card.number,
            Hold.tag == req.tag,
            Hold.status == HoldStatus.OPEN,
        )
    ).all()
    for row in rows:
        released += void_hold(ctx, row, "cancelled")
    return released


def remember_cart(ctx: Ctx, req: TillCartRequest) -> bool:
    """Keep the calculated cart on the open reservation (none: nothing to remember)."""
    lock_card_account(ctx, req.card_number, require_active=False)
    row = _open_reservation(ctx, req.card_number, req.tag)
    if row is None:
        return False
    row.cart_json = _CART.dump_json(req.lines).decode()
    ctx.session.add(row)
    return True


def reservation(ctx: Ctx, card_number: str, tag: str) -> tuple[str | None, int]:
    """(hold id, points) of this client's open reservation of the card, or (None, 0)."""
    row = _open_reservation(ctx, card_number, tag)
    return (row.id, row.points) if row is not None else (None, 0)


# ---------------------------------------------------------------------------------------------
# settling captures with receipts
# ---------------------------------------------------------------------------------------------


def _settlers(ctx: Ctx) -> list[str]:
    return [ctx.client_id, *sorted(ctx.settles)]


def matching_capture(ctx: Ctx, account_id: str, points: int | None) -> str | None:
    """The oldest captured write-off of exactly ``points`` that this client's receipt settles:
    one the client made itself, or one of a client it is allowed to settle (``Ctx.settles``)."""
    if not points:
        return None
    row = ctx.session.exec(
        select(Hold)
        .where(
            Hold.account_id == account_id,
            Hold.status == HoldStatus.CAPTURED,
            Hold.captured_points == points,
            col(Hold.client_id).in_(_settlers(ctx)),
        )
        .order_by(col(Hold.created_at))
        .limit(1)
    ).first()
    return row.id if row is not None else None


def booked_by_gateway(ctx: Ctx, account_id: str, receipt_id: str, points: int | None) -> CommitResult | None:
    """A receipt arriving after the gateway booked its write-off itself (the capture window
    passed): the purchase is already booked; the receipt gets that booking and debits nothing.
    Each such booking is claimed by one receipt only (recorded on the hold)."""
    if not points:
        return None
    claim = f"{ctx.client_id}:{receipt_id}"[:128]
    claimed = col(Hold.receipt_id) == claim
    unclaimed = col(Hold.receipt_id).is_(None)
    row = ctx.session.exec(
        select(Hold)
        .where(
            Hold.account_id == account_id,
            Hold.status == HoldStatus.COMMITTED,
            Hold.captured_points == points,
            col(Hold.client_id).in_(_settlers(ctx)),
            or_(claimed, unclaimed),
        )
        .order_by(claimed.desc(), col(Hold.created_at))
        .limit(1)
    ).first()
    if row is None or row.transaction_id is None:
        return None
    receipt = ctx.session.get(Receipt, row.transaction_id)
    if receipt is None or receipt.receipt_id != f"hold:{row.id}":
        return None  # settled by a receipt of its own, not by the gateway
    row.receipt_id = claim
    ctx.session.add(row)
    ctx.session.flush()
    return commit_result(ctx, receipt, find_card(ctx, receipt.card_number))


# ---------------------------------------------------------------------------------------------
# gift certificates
# ---------------------------------------------------------------------------------------------


def _open_gift_hold(ctx: Ctx, number: str, tag: str) -> GiftCardHold | None:
    return ctx.session.exec(
        select(GiftCardHold)
        .where(
            GiftCardHold.client_id == ctx.client_id,
            GiftCardHold.number == number,
            GiftCardHold.tag == tag,
            GiftCardHold.status == HoldStatus.OPEN,
            col(GiftCardHold.expires_at) > ctx.now,
        )
        .order_by(col(GiftCardHold.created_at).desc())
        .limit(1)
    ).first()


def _gift_hold(ctx: Ctx, number: str, tag: str, kopecks: int, ttl_seconds: int) -> GiftCardHold:
    row = GiftCardHold(
        id=str(uuid.uuid4()),
        number=number,
        client_id=ctx.client_id,
        tag=tag,
        amount_kopecks=kopecks,
        expires_at=ctx.now + timedelta(seconds=ttl_seconds),
        created_at=ctx.now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    return row


def gift_reserve(ctx: Ctx, req: GiftReserveRequest) -> GiftReservation:
    """Reserve what is left on the certificate for this client's till session (asking again
    extends the reservation and adds money that became free)."""
    card = _get(ctx, req.number, lock=True)
    row = _open_gift_hold(ctx, card.number, req.tag)
    balance, held = _amounts(ctx, card.number)
    free = max(balance - held, 0)
    usable = not card.blocked and (card.expires_at is None or card.expires_at > ctx.now)
    if row is not None:
        row.amount_kopecks += free if usable else 0
        row.expires_at = max(row.expires_at, ctx.now + timedelta(seconds=req.ttl_seconds))
        ctx.session.add(row)
        ctx.session.flush()
    elif usable and free > 0:
        row = _gift_hold(ctx, card.number, req.tag, free, req.ttl_seconds)
    reserved = Decimal(row.amount_kopecks if row is not None else 0) / 100
    return GiftReservation(card=_result(ctx, card, row), reserved=reserved)


def gift_write_off(ctx: Ctx, req: GiftWriteOffRequest) -> GiftCardResult:
    """Pay ``amount`` with the certificate from this session's reservation (or from what is
    free); a negative amount is a return: the money goes back onto the certificate, never more
    than was paid with it. Every call is a payment of its own (see the module)."""
    card = _get(ctx, req.number, lock=True)
    kopecks = money_to_kopecks(req.amount)
    if kopecks < 0:
        # The till names no return receipt: each return is a refund of its own.
        back = GiftCardRefundRequest(number=card.number, refund_id=f"till-return:{uuid.uuid4()}", amount=-req.amount)
        refund(ctx, back)
        return _result(ctx, card)
    if kopecks == 0:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the amount to write off is zero")
    _usable(ctx, card)
    row = _open_gift_hold(ctx, card.number, req.tag)
    if row is not None and row.amount_kopecks < kopecks:
        row.status = HoldStatus.VOIDED
        row.resolved_at = ctx.now
        ctx.session.add(row)
        ctx.session.flush()
        row = None
    if row is None:
        balance, held = _amounts(ctx, card.number)
        if kopecks > balance - held:
            raise LoyaltyError(ErrorCode.GIFT_CARD_INSUFFICIENT, available=str(Decimal(max(balance - held, 0)) / 100))
        row = _gift_hold(ctx, card.number, req.tag, kopecks, req.ttl_seconds)
    return redeem(ctx, GiftCardRedeemRequest(number=card.number, amount=req.amount, hold_id=row.id))


def gift_unlock(ctx: Ctx, req: GiftUnlockRequest) -> int:
    """Void this client's open reservations of the certificate; returns their number."""
    card = _get(ctx, req.number, lock=True)
    rows = ctx.session.exec(
        select(GiftCardHold).where(
            GiftCardHold.client_id == ctx.client_id,
            GiftCardHold.number == card.number,
            GiftCardHold.tag == req.tag,
            GiftCardHold.status == HoldStatus.OPEN,
        )
    ).all()
    for row in rows:
        row.status = HoldStatus.VOIDED
        row.resolved_at = ctx.now
        ctx.session.add(row)
    ctx.session.flush()
    return len(rows)


# ---------------------------------------------------------------------------------------------
# finding a customer at the till
# ---------------------------------------------------------------------------------------------


def customers_by_phone_ending(ctx: Ctx, digits: str, limit: int = 10) -> list[CustomerResult]:
    """Customers whose phone ends with ``digits`` (a till's search by the last digits, 1C's
    ``*1234``), at most ``limit``; fewer than four digits find nobody."""
    if not digits.isdigit() or len(digits) < 4 or len(digits) > 15:
        return []
    ids = ctx.session.exec(
        select(Customer.id).where(col(Customer.phone).endswith(digits)).order_by(col(Customer.id)).limit(limit)
    ).all()
    return [lookup_customer(ctx, LookupCustomerRequest(customer_id=i)) for i in ids]

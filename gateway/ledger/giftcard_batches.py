"""Batches of printed gift certificates: fresh numbers, issued together.

A number is 16 digits: the batch's prefix, random digits from the operating system's CSPRNG and
a Luhn check digit, so a cashier's typo is caught before the lookup and numbers cannot be
guessed from one another.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import insert
from sqlmodel import col, select

from contracts.accounts import GiftCardBatchRequest, GiftCardBatchResult, GiftCardNumberOut
from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from gateway.ledger.context import Ctx
from gateway.ledger.giftcards import gift_ref
from gateway.store.models import GiftCard, GiftCardEntry
from gateway.store.models_accounts import GiftCardBatch

NUMBER_LENGTH = 16
_CHUNK = 500


def luhn_digit(body: str) -> str:
    """The check digit that makes ``body + digit`` pass the Luhn test."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_digit(number[:-1]) == number[-1]


def _candidate(prefix: str) -> str:
    random_digits = NUMBER_LENGTH - len(prefix) - 1
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(random_digits))
    return body + luhn_digit(body)


def _fresh_numbers(ctx: Ctx, prefix: str, count: int) -> list[str]:
    numbers: list[str] = []
    seen: set[str] = set()
    for _ in range(50):
        wanted = count - len(numbers)
        if wanted == 0:
            return numbers
        candidates: list[str] = []
        while len(candidates) < wanted:
            number = _candidate(prefix)
            if number not in seen:
                seen.add(number)
                candidates.append(number)
        taken: set[str] = set()
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start : start + _CHUNK]
            taken.update(ctx.session.exec(select(GiftCard.number).where(col(GiftCard.number).in_(chunk))).all())
        numbers.extend(n for n in candidates if n not in taken)
    raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "could not find free certificate numbers; use a longer prefix range")


def _batch_result(batch: GiftCardBatch, numbers: list[str]) -> GiftCardBatchResult:
    return GiftCardBatchResult(
        batch_id=batch.id,
        count=batch.count,
        amount=kopecks_to_money(batch.nominal_kopecks),
        name=batch.name,
        expires_at=batch.expires_at,
        blocked=batch.blocked,
        created_at=batch.created_at,
        cards=[GiftCardNumberOut(number=n, ref=gift_ref(n)) for n in numbers],
    )


def issue_batch(ctx: Ctx, req: GiftCardBatchRequest) -> GiftCardBatchResult:
    """Issue ``req.count`` certificates of ``req.amount`` each, in one transaction."""
    nominal = money_to_kopecks(req.amount)
    batch = GiftCardBatch(
        id=str(uuid.uuid4()),
        count=req.count,
        nominal_kopecks=nominal,
        name=req.name,
        prefix=req.prefix,
        blocked=req.blocked,
        expires_at=req.expires_at,
        issued_by=ctx.client_id,
        created_at=ctx.now,
    )
    ctx.session.add(batch)
    numbers = sorted(_fresh_numbers(ctx, req.prefix, req.count))
    ctx.session.flush()
    common = {"name": req.name, "nominal_kopecks": nominal, "blocked": req.blocked, "expires_at": req.expires_at}
    ctx.session.execute(  # bulk: no ORM object per certificate
        insert(GiftCard),
        [
            {
                **common,
                "number": number,
                "ref": gift_ref(number),
                "issued_by": ctx.client_id,
                "created_at": ctx.now,
                "batch_id": batch.id,
            }
            for number in numbers
        ],
    )
    ctx.session.execute(
        insert(GiftCardEntry),
        [
            {"number": n, "kind": "issue", "amount_kopecks": nominal, "client_id": ctx.client_id, "created_at": ctx.now}
            for n in numbers
        ],
    )
    return _batch_result(batch, numbers)


def batch(ctx: Ctx, batch_id: str) -> GiftCardBatchResult:
    row = ctx.session.get(GiftCardBatch, batch_id)
    if row is None:
        raise LoyaltyError(ErrorCode.NOT_FOUND, "no such gift certificate batch", batch_id=batch_id)
    numbers = ctx.session.exec(
        select(GiftCard.number).where(GiftCard.batch_id == batch_id).order_by(col(GiftCard.number))
    ).all()
    return _batch_result(row, list(numbers))

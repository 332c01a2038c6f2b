"""One-off grants of points ("points during the seasonal slump", issue 19): points to a customer
with their own expiry, once per grant key.

Every grant is a ``program_bonus_grants`` row keyed ``grant:<grant id>:<customer>`` beside the lot
and the ledger entry (kind ``grant``) it booked, written under the account's lock: a re-run, or a
replica granting the same key at the same moment, finds the row and books nothing more. A
mailing's gift points are grants keyed by the mailing's id. The customer's history shows the
entry (kind ``grant``, booked for the client that made the grant); the program summary counts it
among adjustments (not accrued: no purchase earned it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import col

from gateway.ledger.accounts import add_lot, lock_account
from gateway.ledger.context import Ctx
from gateway.store.models import Account
from gateway.store.models_program import BonusGrant

KIND = "grant"


def grant_key(grant_id: str, customer_id: str) -> str:
    return f"grant:{grant_id}:{customer_id}"


@dataclass(frozen=True)
class PointsToGrant:
    grant_id: str  # a points grant's id, or a mailing's id for its gift points
    points: int
    expires_at: datetime | None
    description: str


def grant_to(ctx: Ctx, grant: PointsToGrant, customer_ids: Sequence[str]) -> int:
    """Book ``grant`` for each customer not granted it yet (in account order, the lock order of
    every multi-account writer); returns how many were booked now."""
    if grant.points <= 0 or not customer_ids:
        return 0
    accounts = dict(
        ctx.session.execute(
            sa_select(col(Account.customer_id), col(Account.id)).where(col(Account.customer_id).in_(customer_ids))
        ).all()
    )
    booked = 0
    for customer_id, account_id in sorted(accounts.items(), key=lambda pair: pair[1]):
        key = grant_key(grant.grant_id, customer_id)
        lock_account(ctx, account_id)
        if ctx.session.get(BonusGrant, key) is not None:
            continue
        lot = add_lot(
            ctx,
            account_id,
            KIND,
            grant.points,
            entry_kind=KIND,
            available_at=ctx.now,
            expires_at=grant.expires_at,
        )
        ctx.session.add(
            BonusGrant(
                key=key,
                kind=KIND,
                customer_id=customer_id,
                account_id=account_id,
                points=grant.points,
                lot_id=lot.id,
                description=grant.description[:256],
                created_at=ctx.now,
            )
        )
        booked += 1
    ctx.session.flush()
    return booked

"""Merging a duplicate customer (the same person registered twice, with two cards) into the
customer who stays.

The ledger stays append-only. Every live lot of the duplicate's account is drawn empty by a
``merge_out`` entry (its allocation, state ``transferred``, records what moved) and recreated on
the survivor's account by a ``merge_in`` entry as a lot with the *same* source, availability,
expiry and originating transaction (``origin_lot_id`` points back): the points expire when they
would have, pending points stay pending, and a later refund of a pre-merge receipt finds the
points that receipt earned. The duplicate's cards, receipts, holds and orders now belong to the
survivor's account, with their turnover and the customers the duplicate referred; the duplicate
customer is kept, marked ``merged_into`` the survivor, and its own entries stay where they were
(``gateway.ledger.history`` shows both).

An open (or captured) hold of the duplicate blocks the merge: the points it reserved would be in
two places. A merge is done once: merging the same pair again returns the first merge.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import and_, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from contracts.accounts import MergeCustomersRequest, MergeResult
from contracts.errors import ErrorCode, LoyaltyError
from gateway.ledger.accounts import add_entry, lock_account, take_from_lot
from gateway.ledger.context import Ctx
from gateway.store.models import Account, Card, Customer, Hold, LedgerEntry, Lot, PromoCodeUse, Receipt
from gateway.store.models_accounts import CampaignCodeUse, Company, CustomerMerge
from gateway.store.models_import import ImportedOperation
from gateway.store.models_orders import Order, OrderTurnover

TRANSFERRED = "transferred"


def merge_result(row: CustomerMerge) -> MergeResult:
    return MergeResult(
        merge_id=row.id,
        survivor_customer_id=row.survivor_customer_id,
        merged_customer_id=row.merged_customer_id,
        points_moved=row.points_moved,
        lots_moved=row.lots_moved,
        cards_moved=json.loads(row.cards_json),
        receipts_moved=row.receipts_moved,
        orders_moved=row.orders_moved,
        reason=row.reason,
        merged_at=row.created_at,
    )


def _customer(ctx: Ctx, customer_id: str) -> Customer:
    customer = ctx.session.get(Customer, customer_id)
    if customer is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, customer_id=customer_id)
    return customer


def account_of(ctx: Ctx, customer_id: str) -> Account:
    account = ctx.session.exec(select(Account).where(Account.customer_id == customer_id)).first()
    if account is None:  # pragma: no cover - every customer is registered with an account
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, customer_id=customer_id)
    return account


def _move_lot(ctx: Ctx, lot: Lot, to_account: str, merge_id: str, survivor_id: str, merged_id: str) -> int:
    points = lot.remaining
    out = add_entry(
        ctx, lot.account_id, "merge_out", -points, lot_id=lot.id, transaction_id=merge_id, note=f"to {survivor_id}"
    )
    take_from_lot(ctx, lot, points, TRANSFERRED, entry_id=out.id)
    moved = Lot(
        account_id=to_account,
        source=lot.source,
        points=points,
        remaining=points,
        available_at=lot.available_at,
        expires_at=lot.expires_at,
        transaction_id=lot.transaction_id,
        origin_lot_id=lot.id,
        created_at=ctx.now,
    )
    ctx.session.add(moved)
    ctx.session.flush()
    add_entry(ctx, to_account, "merge_in", points, lot_id=moved.id, transaction_id=merge_id, note=f"from {merged_id}")
    return points


def _count(ctx: Ctx, stmt: SelectOfScalar[int]) -> int:
    return int(ctx.session.exec(stmt).one())


def merge(ctx: Ctx, req: MergeCustomersRequest) -> MergeResult:
    survivor = _customer(ctx, req.survivor_id)
    merged = _customer(ctx, req.merged_id)
    if ctx.session.get(Company, survivor.id) is not None or ctx.session.get(Company, merged.id) is not None:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "company accounts are not merged; move their contacts instead")
    to_account = account_of(ctx, survivor.id)
    from_account = account_of(ctx, merged.id)
    for account_id in sorted({to_account.id, from_account.id}):  # one lock order: no deadlock
        lock_account(ctx, account_id)
    ctx.session.refresh(survivor)
    ctx.session.refresh(merged)

    done = ctx.session.exec(select(CustomerMerge).where(CustomerMerge.merged_customer_id == merged.id)).first()
    if done is not None:
        if done.survivor_customer_id == survivor.id:
            return merge_result(done)  # merged already: nothing more happens
        raise LoyaltyError(ErrorCode.CUSTOMER_MERGED, customer_id=merged.id, merged_into=merged.merged_into)
    if survivor.merged_into is not None:
        raise LoyaltyError(ErrorCode.CUSTOMER_MERGED, customer_id=survivor.id, merged_into=survivor.merged_into)
    open_holds = ctx.session.exec(
        select(Hold.id).where(Hold.account_id == from_account.id, col(Hold.status).in_(("open", "captured")))
    ).all()
    if open_holds:
        raise LoyaltyError(ErrorCode.MERGE_OPEN_HOLDS, customer_id=merged.id, hold_ids=sorted(open_holds))

    merge_id = str(uuid.uuid4())
    lots = ctx.session.exec(
        select(Lot).where(Lot.account_id == from_account.id, col(Lot.remaining) > 0).order_by(col(Lot.id))
    ).all()
    points = sum(_move_lot(ctx, lot, to_account.id, merge_id, survivor.id, merged.id) for lot in lots)
    cards = sorted(ctx.session.exec(select(Card.number).where(Card.account_id == from_account.id)).all())
    ctx.session.execute(
        update(Card)
        .where(col(Card.account_id) == from_account.id)
        .values(account_id=to_account.id, customer_id=survivor.id)
    )
    receipts = _count(ctx, select(func.count()).select_from(Receipt).where(Receipt.account_id == from_account.id))
    ctx.session.execute(
        update(Receipt).where(col(Receipt.account_id) == from_account.id).values(account_id=to_account.id)
    )
    ctx.session.execute(update(Hold).where(col(Hold.account_id) == from_account.id).values(account_id=to_account.id))
    for uses in (PromoCodeUse, CampaignCodeUse):  # per-customer promo limits count the duplicate's uses too
        ctx.session.execute(
            update(uses).where(col(uses.account_id) == from_account.id).values(account_id=to_account.id)
        )
    orders = _count(ctx, select(func.count()).select_from(Order).where(Order.account_id == from_account.id))
    ctx.session.execute(update(Order).where(col(Order.account_id) == from_account.id).values(account_id=to_account.id))
    for turnover in (OrderTurnover, ImportedOperation):  # the duplicate's purchases count for the survivor's tier
        ctx.session.execute(
            update(turnover).where(col(turnover.account_id) == from_account.id).values(account_id=to_account.id)
        )
    # whom the duplicate brought in, the survivor now refers (referral points go to the survivor)
    # (the survivor itself, if the duplicate had referred it, is referred by nobody: one person)
    referred = col(Customer.referrer_id) == merged.id
    ctx.session.execute(
        update(Customer).where(referred, col(Customer.id) != survivor.id).values(referrer_id=survivor.id)
    )
    ctx.session.execute(update(Customer).where(referred, col(Customer.id) == survivor.id).values(referrer_id=None))
    merged.merged_into = survivor.id
    ctx.session.add(merged)
    row = CustomerMerge(
        id=merge_id,
        survivor_customer_id=survivor.id,
        merged_customer_id=merged.id,
        survivor_account_id=to_account.id,
        merged_account_id=from_account.id,
        points_moved=points,
        lots_moved=len(lots),
        cards_json=json.dumps(cards),
        receipts_moved=receipts,
        orders_moved=orders,
        reason=req.reason,
        client_id=ctx.client_id,
        created_at=ctx.now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.session.expire_all()  # bulk updates bypassed the identity map
    return merge_result(row)


def survivor_of(ctx: Ctx, customer: Customer) -> Customer:
    """The customer who stands for ``customer`` today: itself, or whom it was merged into."""
    seen = {customer.id}
    while customer.merged_into is not None:
        customer = _customer(ctx, customer.merged_into)
        if customer.id in seen:  # pragma: no cover - merges refuse a merged survivor
            raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "merge cycle", customer_id=customer.id)
        seen.add(customer.id)
    return customer


def refuse_merged(ctx: Ctx, customer_id: str) -> None:
    """A merged duplicate takes no new cards or contacts: its survivor does."""
    customer = _customer(ctx, customer_id)
    if customer.merged_into is not None:
        raise LoyaltyError(ErrorCode.CUSTOMER_MERGED, customer_id=customer.id, merged_into=customer.merged_into)


def check_merges(session: Session) -> list[str]:
    """Invariants of merges (part of the ledger check): each merge moved out exactly what it
    moved in and what it recorded; every lot a merge recreated kept its origin's availability and
    expiry; a merged customer points at its survivor and its account holds nothing."""
    bad: list[str] = []
    moved = _merge_sums(session)
    for row in session.exec(select(CustomerMerge)).all():
        out, into = moved.get(row.id, (0, 0))
        if not (-out == into == row.points_moved):
            bad.append(f"merge {row.id}: recorded {row.points_moved} points, moved out {-out}, moved in {into}")
        customer = session.get(Customer, row.merged_customer_id)
        if customer is None or customer.merged_into != row.survivor_customer_id:
            bad.append(f"merge {row.id}: customer {row.merged_customer_id} is not marked merged into the survivor")
        left = session.exec(
            select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                LedgerEntry.account_id == row.merged_account_id
            )
        ).one()
        if int(left):
            bad.append(f"merge {row.id}: the merged account still holds {left} points")
    origin = aliased(Lot)
    for lot_id, origin_id in session.execute(
        sa_select(col(Lot.id), col(origin.id))
        .join(LedgerEntry, and_(col(LedgerEntry.lot_id) == col(Lot.id), col(LedgerEntry.kind) == "merge_in"))
        .join(origin, col(origin.id) == col(Lot.origin_lot_id))
        .where(
            or_(
                col(origin.expires_at).is_distinct_from(col(Lot.expires_at)),
                col(origin.available_at) != col(Lot.available_at),
                col(origin.transaction_id).is_distinct_from(col(Lot.transaction_id)),
                col(origin.source) != col(Lot.source),
            )
        )
    ).all():
        bad.append(f"lot {lot_id}: moved by a merge from lot {origin_id} but does not keep its dates and origin")
    return bad


def _merge_sums(session: Session) -> dict[str, tuple[int, int]]:
    sums: dict[str, tuple[int, int]] = {}
    for merge_id, kind, total in session.execute(
        sa_select(col(LedgerEntry.transaction_id), col(LedgerEntry.kind), func.sum(LedgerEntry.points))
        .where(col(LedgerEntry.kind).in_(("merge_out", "merge_in")))
        .group_by(col(LedgerEntry.transaction_id), col(LedgerEntry.kind))
    ).all():
        out, into = sums.get(str(merge_id), (0, 0))
        sums[str(merge_id)] = (int(total), into) if kind == "merge_out" else (out, int(total))
    return sums

"""Orders: apply a versioned snapshot and post only the difference to the ledger.

See ``contracts/orders.py`` for the semantics. The order's ledger rows carry the order's own
id as their transaction id, so everything an order ever did to an account can be found, and
each change marks its rows with a change id (``refund_id`` column) recorded in
``order_history``.

Posting moves the ledger from what the order was worth (``orders.points_*``) to what its new
state is worth:

* spent points: spend the difference (from the checkout hold first, then from available
  points), or give the difference back to the lots it came from (expiry preserved);
* earned points waiting for shipment live in lots of their own that nothing else can spend or
  take (``PENDING_UNTIL_SHIPPED``); a shipment *unlocks* its share by moving it into a normal
  accrual lot with an expiry; a return or an edit takes points back — pending ones first from
  the pending lots, unlocked ones from the order's own lots, then from the customer's other
  points; what the customer has already spent is the *shortfall*, netted against anything
  the order earns later.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import cast

from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.money import kopecks_to_money, money_to_kopecks
from contracts.operations import BalanceResult, RuleApplication
from contracts.orders import OrderLineResult, OrderRecord, OrderRequest, OrderResult, OrderStatus
from gateway.core.orders import NOTHING, OrderWorth, PricedOrderLine, order_worth
from gateway.core.pricing import PricedCart, price_cart
from gateway.core.simulation import rule_applications
from gateway.ledger import members, order_turnover, program_status, promos, referrals
from gateway.ledger.accounts import (
    PENDING_UNTIL_SHIPPED,
    add_entry,
    add_lot,
    available_points,
    balance_of,
    find_card,
    lock_account,
    take_from_lot,
)
from gateway.ledger.canonical import canonical_hash
from gateway.ledger.context import Ctx
from gateway.ledger.hold_states import HoldStatus, move
from gateway.ledger.holds import keep_held as _keep_held
from gateway.ledger.movements import allocate, return_spent, reverse_earned
from gateway.ledger.pricing_context import pricing_context
from gateway.store.models import Card, Hold, Lot
from gateway.store.models_orders import Order, OrderFeed, OrderHistory

_EXPLANATION = TypeAdapter(list[RuleApplication])


_PRICED = TypeAdapter(list[PricedOrderLine])


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def _status(request: OrderRequest, worth: OrderWorth) -> OrderStatus:
    if request.cancelled:
        return "cancelled"
    shipped = [line for line in worth.lines if line.shipped > 0]
    if worth.lines and len(shipped) == len(worth.lines) and all(w.shipped == w.quantity for w in worth.lines):
        return "shipped"
    if shipped:
        return "partially_shipped"
    return "paid" if request.paid else "placed"


def _worth_of(ctx: Ctx, request: OrderRequest, priced: list[PricedOrderLine]) -> OrderWorth:
    return order_worth(
        priced,
        request.shipped(),
        request.returned(),
        paid=request.paid,
        cancelled=request.cancelled,
        accrue_on=ctx.program.orders.accrue_on,
    )


def order_result(
    ctx: Ctx, order: Order, *, applied: bool, balances: dict[str, BalanceResult] | None = None
) -> OrderResult:
    """The order as applied; ``balances`` caches card balances over a page of orders (a feed
    page often holds many orders of one card, and its balance is the same for all of them)."""
    request = OrderRequest.model_validate_json(order.snapshot_json)
    priced = _PRICED.validate_json(order.priced_json)
    worth = _worth_of(ctx, request, priced)
    by_id = {line.line_id: line for line in priced}
    balance = balances.get(order.card_number) if balances is not None else None
    if balance is None:
        balance = balance_of(ctx, find_card(ctx, order.card_number))
        if balances is not None:
            balances[order.card_number] = balance
    return OrderResult(
        order_id=order.order_id,
        version=order.version,
        applied=applied,
        status=cast(OrderStatus, order.status),
        card_number=order.card_number,
        total_amount=kopecks_to_money(order.total_kopecks),
        total_discount=kopecks_to_money(order.discount_kopecks),
        points_spent=order.points_spent,
        points_pending=order.points_pending,
        points_available=order.points_available,
        points_shortfall=order.points_shortfall,
        lines=[
            OrderLineResult(
                line_id=line.line_id,
                quantity=line.quantity,
                shipped=line.shipped,
                returned=line.returned,
                amount=kopecks_to_money(by_id[line.line_id].amount_kopecks),
                discount=kopecks_to_money(by_id[line.line_id].discount_kopecks),
                points_spent=line.spent,
                points_accrued=line.earned,
                points_pending=line.pending,
                points_available=line.available,
            )
            for line in worth.lines
        ],
        explanation=_EXPLANATION.validate_json(order.explanation_json),
        updated_at=order.updated_at,
        balance=balance,
    )


def record_of(ctx: Ctx, order: Order, balances: dict[str, BalanceResult] | None = None) -> OrderRecord:
    return OrderRecord(
        sequence=order.sequence,
        snapshot=OrderRequest.model_validate_json(order.snapshot_json),
        result=order_result(ctx, order, applied=True, balances=balances),
    )


def find_order(ctx: Ctx, order_id: str) -> Order | None:
    return ctx.session.exec(select(Order).where(Order.client_id == ctx.client_id, Order.order_id == order_id)).first()


def get_order(ctx: Ctx, order_id: str) -> OrderRecord | None:
    order = find_order(ctx, order_id)
    return record_of(ctx, order) if order is not None else None


def order_changes(ctx: Ctx, after: int, limit: int) -> list[OrderRecord]:
    """Orders of this client changed after feed number ``after``, in feed order, each once
    (with its latest state)."""
    rows = ctx.session.exec(
        select(Order)
        .where(Order.client_id == ctx.client_id, col(Order.sequence) > after)
        .order_by(col(Order.sequence))
        .limit(limit)
    ).all()
    balances: dict[str, BalanceResult] = {}
    return [record_of(ctx, row, balances) for row in rows]


# ---------------------------------------------------------------------------------------------
# pricing
# ---------------------------------------------------------------------------------------------


def _pricing_hash(request: OrderRequest, account_id: str) -> str:
    """What the order's prices and points depend on: an edit of any of it re-prices the order;
    a change of status, payment or shipments does not."""
    basis = OrderRequest(
        order_id=request.order_id,
        version=0,
        card_number=request.card_number,
        lines=request.lines,
        store=request.store,
        promo_codes=request.promo_codes,
        points_to_spend=request.points_to_spend,
    )
    return canonical_hash(f"order-pricing:{account_id}", basis)


def _price(
    ctx: Ctx, order: Order, request: OrderRequest, account_id: str
) -> tuple[list[PricedOrderLine], str, PricedCart]:
    """Price the order's lines under the program, for this customer, store and date: points
    paying for each line, points each line earns, whether they wait for the shipment."""
    lines = list(request.lines)
    amounts = [money_to_kopecks(line.total()) for line in lines]
    promo = None
    already = promos.recorded_use(ctx, order.id)  # the order's own use does not count against limits
    if request.promo_codes:
        if already is not None and already.key == request.promo_codes[0].strip().upper():
            promo = already
        else:
            promo = promos.applicable(ctx, list(request.promo_codes), account_id, sum(amounts))
    points = request.points_to_spend
    context = pricing_context(ctx, account_id, request.store, request.placed_at, order=order.id)
    priced = price_cart(ctx.program, lines, points, points, promo, context=context)
    if points and points < ctx.program.redemption.min_points:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            f"at least {ctx.program.redemption.min_points} points must be spent at once",
            requested=points,
        )
    if points > priced.points_cap:
        raise LoyaltyError(
            ErrorCode.POINTS_LIMIT_EXCEEDED,
            "more points than the program allows for this order",
            requested=points,
            max_points_payable=priced.points_cap,
        )
    if promo is not None and already is None:
        promos.record_use(ctx, promo, order.id, account_id)
    program_status.settle_priced_tier(ctx, account_id, priced.tier, order.id)
    priced_lines = [
        PricedOrderLine(
            line_id=line.line_id,
            quantity=Decimal(line.quantity),
            amount_kopecks=line.amount_kopecks - line.discount_kopecks,
            discount_kopecks=line.discount_kopecks,
            points_spent=line.points_spent,
            points_accrued=line.points_accrued,
            waits_for_shipment=line.pending,
        )
        for line in priced.lines
    ]
    return priced_lines, _EXPLANATION.dump_json(rule_applications(priced.applications)).decode(), priced


# ---------------------------------------------------------------------------------------------
# posting
# ---------------------------------------------------------------------------------------------


def _pending_lots(ctx: Ctx, order: Order, account_id: str) -> list[Lot]:
    return list(
        ctx.session.exec(
            select(Lot)
            .where(
                Lot.account_id == account_id,
                Lot.transaction_id == order.id,
                col(Lot.remaining) > 0,
                col(Lot.available_at) >= PENDING_UNTIL_SHIPPED,
            )
            .order_by(col(Lot.id))
        ).all()
    )


def _take_pending(ctx: Ctx, order: Order, account_id: str, points: int, kind: str, change_id: str) -> None:
    """Take ``points`` out of the order's pending lots: ``unlock`` (they move on) or
    ``reverse`` (they are gone)."""
    left = points
    for lot in _pending_lots(ctx, order, account_id):
        if left == 0:
            break
        take = min(lot.remaining, left)
        entry = add_entry(ctx, account_id, kind, -take, lot_id=lot.id, transaction_id=order.id, refund_id=change_id)
        take_from_lot(ctx, lot, take, "unlocked" if kind == "unlock" else "reversed", entry_id=entry.id)
        left -= take
    if left:  # pragma: no cover - orders.points_pending always equals what its pending lots hold
        raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "the order's pending points are not where they should be")


def _credit(ctx: Ctx, order: Order, account_id: str, points: int, change_id: str, *, pending: bool) -> None:
    """Credit points the order earned: pending until shipment, or unlocked now (spendable after
    the program's ``pending_days``, expiring after its lifetime)."""
    if pending:
        available_at, expires_at = PENDING_UNTIL_SHIPPED, None
    else:
        available_at = ctx.now + timedelta(days=ctx.program.accrual.pending_days)
        days = ctx.program.expiry.days
        expires_at = available_at + timedelta(days=days) if days else None
    add_lot(
        ctx,
        account_id,
        "accrual",
        points,
        entry_kind="accrual",
        available_at=available_at,
        expires_at=expires_at,
        transaction_id=order.id,
        refund_id=change_id,
    )


def _spend(ctx: Ctx, order: Order, account_id: str, points: int, hold_id: str | None) -> None:
    """Spend ``points`` more for the order: from the checkout hold if it is still open (the rest
    of the hold is released), then from the account's available points."""
    spent_allocations = []
    if hold_id is not None and order.hold_id is None:
        hold = ctx.session.get(Hold, hold_id)
        if hold is None:
            raise LoyaltyError(ErrorCode.HOLD_NOT_FOUND, hold_id=hold_id)
        if hold.account_id != account_id:
            raise LoyaltyError(ErrorCode.HOLD_CARD_MISMATCH, hold_id=hold_id)
        if hold.status == HoldStatus.OPEN and hold.expires_at > ctx.now:
            taken = min(points, hold.points)
            kept, _released = _keep_held(ctx, hold, taken)
            spent_allocations.extend(kept)
            move(hold, HoldStatus.COMMITTED, ctx.now)
            hold.transaction_id = order.id
            ctx.session.add(hold)
            order.hold_id = hold.id
            points -= taken
    if points:
        available = available_points(ctx, account_id)
        if points > available:
            raise LoyaltyError(ErrorCode.INSUFFICIENT_POINTS, requested=points, available=available)
        spent_allocations.extend(allocate(ctx, account_id, points, "spent", None))
    total = sum(a.points for a in spent_allocations)
    entry = add_entry(ctx, account_id, "spend", -total, hold_id=order.hold_id, transaction_id=order.id)
    for allocation in spent_allocations:
        allocation.state = "spent"
        allocation.entry_id = entry.id
        ctx.session.add(allocation)


def _post(
    ctx: Ctx, order: Order, account_id: str, target: OrderWorth, change_id: str, hold_id: str | None
) -> tuple[int, int, int, int]:
    """Move ``account_id`` from what ``order`` posted to ``target``; returns the deltas
    (spent, pending, available, shortfall)."""
    before = (order.points_spent, order.points_pending, order.points_available, order.points_shortfall)
    d_spent = target.spent - order.points_spent
    if d_spent > 0:
        _spend(ctx, order, account_id, d_spent, hold_id)
    elif d_spent < 0:
        return_spent(ctx, account_id, order.id, change_id, -d_spent)

    d_available = target.available - order.points_available
    d_pending = target.pending - order.points_pending
    moved = min(d_available, -d_pending) if d_available > 0 and d_pending < 0 else 0  # shipped: pending unlock
    d_available -= moved
    d_pending += moved
    if d_pending < 0:
        _take_pending(ctx, order, account_id, -d_pending, "reverse", change_id)
    elif d_pending > 0:
        _credit(ctx, order, account_id, d_pending, change_id, pending=True)

    # Points becoming available first settle what the customer still owes from an earlier return.
    fresh = max(d_available, 0)
    settled = min(order.points_shortfall, moved + fresh)
    order.points_shortfall -= settled
    settled_from_moved = min(settled, moved)
    if settled_from_moved:
        _take_pending(ctx, order, account_id, settled_from_moved, "reverse", change_id)
    if moved > settled_from_moved:
        _take_pending(ctx, order, account_id, moved - settled_from_moved, "unlock", change_id)
        _credit(ctx, order, account_id, moved - settled_from_moved, change_id, pending=False)
    fresh -= settled - settled_from_moved
    if fresh > 0:
        _credit(ctx, order, account_id, fresh, change_id, pending=False)
    if d_available < 0:
        taken = reverse_earned(ctx, account_id, order.id, change_id, -d_available)
        order.points_shortfall += -d_available - taken

    order.points_spent, order.points_pending, order.points_available = target.spent, target.pending, target.available
    return (
        order.points_spent - before[0],
        order.points_pending - before[1],
        order.points_available - before[2],
        order.points_shortfall - before[3],
    )


def _next_sequence(ctx: Ctx) -> int:
    """The next number of this client's order feed. The feed row stays locked until commit, so
    numbers become visible in the order they were taken."""
    for _ in range(3):
        stmt = select(OrderFeed).where(OrderFeed.client_id == ctx.client_id)
        if not ctx.db.is_sqlite:
            stmt = stmt.with_for_update()
        feed = ctx.session.exec(stmt).first()
        if feed is None:
            try:
                with ctx.session.begin_nested():
                    ctx.session.add(OrderFeed(client_id=ctx.client_id, last_sequence=0))
            except IntegrityError:
                pass  # another writer created it first: lock theirs
            continue
        feed.last_sequence += 1
        ctx.session.add(feed)
        return feed.last_sequence
    raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "could not take an order feed number")


def _lock(ctx: Ctx, request: OrderRequest) -> tuple[Card, Order | None]:
    """Lock every account the order touches (its card's, and the one it was on if the card
    changed), in a fixed order so two writers never deadlock; then read the order under them."""
    card = find_card(ctx, request.card_number)
    locked: set[str] = set()
    for _ in range(3):
        order = find_order(ctx, request.order_id)
        wanted = {card.account_id} | ({order.account_id} if order is not None else set())
        for account_id in sorted(wanted - locked):
            lock_account(ctx, account_id)
            locked.add(account_id)
        order = find_order(ctx, request.order_id)
        if order is not None:
            ctx.session.refresh(order)
        if order is None or order.account_id in locked:
            return card, order
    raise LoyaltyError(ErrorCode.IDEMPOTENCY_IN_FLIGHT, "the order is being changed; retry", order_id=request.order_id)


def apply_order(ctx: Ctx, request: OrderRequest) -> OrderResult:
    content_hash = canonical_hash("order", request)
    card, order = _lock(ctx, request)
    if order is not None:
        if request.version < order.version or (request.version == order.version and order.content_hash == content_hash):
            return order_result(ctx, order, applied=False)
        if request.version == order.version:
            raise LoyaltyError(ErrorCode.ORDER_VERSION_CONFLICT, order_id=request.order_id, version=request.version)
    elif card.status != "active":
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, card_number=card.number, status=card.status)

    if order is None:
        order = Order(
            id=str(uuid.uuid4()),
            client_id=ctx.client_id,
            order_id=request.order_id,
            account_id=card.account_id,
            card_number=card.number,
            version=request.version,
            sequence=0,
            status="placed",
            content_hash=content_hash,
            pricing_hash="",
            snapshot_json=request.model_dump_json(),
            priced_json="[]",
            total_kopecks=0,
            discount_kopecks=0,
            points_spent=0,
            points_pending=0,
            points_available=0,
            points_shortfall=0,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        ctx.session.add(order)
        ctx.session.flush()

    change_id = str(uuid.uuid4())
    if order.account_id != card.account_id:
        # The order moved to another customer's card: it is worth nothing to the first one.
        _record(ctx, order, change_id, _post(ctx, order, order.account_id, NOTHING, change_id, None))
        order.account_id = card.account_id
        order.points_shortfall = 0

    pricing_hash = _pricing_hash(request, card.account_id)
    if pricing_hash != order.pricing_hash:
        members.authorize(ctx, card, spend=request.points_to_spend > order.points_spent, earn=True)
        priced, explanation, cart = _price(ctx, order, request, card.account_id)
        # The intermediary's share of each line, as priced: posted below with the order's points.
        referral_lines = {line.line_id: line.referral_points for line in cart.lines if line.referral_points}
        referrals.reprice_order(ctx, order.id, cart.referral, referral_lines, card.customer_id)
        order.priced_json = _PRICED.dump_json(priced).decode()
        order.explanation_json = explanation
        order.pricing_hash = pricing_hash
        order.total_kopecks = sum(line.amount_kopecks + line.discount_kopecks for line in priced)
        order.discount_kopecks = sum(line.discount_kopecks for line in priced)
    else:
        priced = _PRICED.validate_json(order.priced_json)
    worth = _worth_of(ctx, request, priced)
    deltas = _post(ctx, order, card.account_id, worth, change_id, request.hold_id)
    _post_referral(ctx, order, request, priced, change_id)

    order.card_number = card.number
    order.version = request.version
    order.status = _status(request, worth)
    order.content_hash = content_hash
    order.snapshot_json = request.model_dump_json()
    order.updated_at = ctx.now
    _record(ctx, order, change_id, deltas)
    if order_turnover.book(ctx.session, order, request, priced):
        program_status.after_order(ctx, card.account_id, order.id)
    ctx.session.add(order)
    ctx.session.flush()
    return order_result(ctx, order, applied=True)


def _post_referral(
    ctx: Ctx, order: Order, request: OrderRequest, priced: list[PricedOrderLine], change_id: str
) -> None:
    """The intermediary's referral points follow the order as its own points do: the same
    shares of the same lines, pending, unlocked and taken back together."""
    found = referrals.order_referral_lines(ctx, order.id)
    if found is None:
        return
    grant, lines = found
    shares = [replace(line, points_spent=0, points_accrued=lines.get(line.line_id, 0)) for line in priced]
    worth = _worth_of(ctx, request, shares)
    referrals.post_order(ctx, grant, worth.pending, worth.available, change_id)


def _record(ctx: Ctx, order: Order, change_id: str, deltas: tuple[int, int, int, int]) -> None:
    order.sequence = _next_sequence(ctx)
    ctx.session.add(
        OrderHistory(
            order_pk=order.id,
            change_id=change_id,
            version=order.version,
            sequence=order.sequence,
            status=order.status,
            account_id=order.account_id,
            spent_delta=deltas[0],
            pending_delta=deltas[1],
            available_delta=deltas[2],
            shortfall_delta=deltas[3],
            created_at=ctx.now,
        )
    )

"""Orders as versioned snapshots: placed with points, edited, paid, shipped in parts, returned,
cancelled — the ledger ends exactly where the last version says, whatever the arrival order.

Demo program: 5 % accrual on the part paid with money, at most 30 % of an order payable by
points, points live 365 days, accrual of orders pending until shipment.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import BalanceRequest, CartLine, CommitRequest, HoldRequest, RegisterCustomerRequest
from contracts.orders import OrderQuantity, OrderRequest, OrderReturn, OrderShipment
from gateway.config import DEMO_CONFIG, load_config
from gateway.core.program import OrderPolicy
from gateway.ledger.service import LoyaltyService
from gateway.store.db import Database
from tests.conftest import Gateway, json_of
from tests.support import SITE, FakeClock, card_with_points

SITE_CLIENT = "site"


@pytest.fixture
def service(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    db = Database(database_url)
    yield LoyaltyService(db, load_config(DEMO_CONFIG).program, clock)
    db.dispose()


def new_card(service: LoyaltyService, points: int) -> str:
    return card_with_points(service, points)


def _card_number() -> str:
    return "29" + "".join(random.choice("0123456789") for _ in range(11))


def line(line_id: str, quantity: int | str, price: str) -> CartLine:
    return CartLine(line_id=line_id, item=f"ITEM-{line_id}", quantity=Decimal(quantity), price=Decimal(price))


def ship(shipment_id: str, **quantities: int) -> OrderShipment:
    return OrderShipment(
        shipment_id=shipment_id,
        lines=[OrderQuantity(line_id=k, quantity=Decimal(v)) for k, v in quantities.items()],
    )


def order(card: str, version: int, lines: list[CartLine], points: int, **extra: Any) -> OrderRequest:
    extra.setdefault("order_id", "W-1")
    return OrderRequest(version=version, card_number=card, lines=lines, points_to_spend=points, **extra)


def balance(service: LoyaltyService, card: str) -> tuple[int, int, int]:
    b = service.balance("test", BalanceRequest(card_number=card))
    return b.available, b.pending, b.held


def apply(service: LoyaltyService, request: OrderRequest, client: str = SITE_CLIENT) -> Any:
    return service.apply_order(client, f"order:{request.order_id}:v{request.version}", request)


def history(card: str, order_id: str = "W-1") -> list[OrderRequest]:
    """An order placed with 300 points, edited twice, then shipped in three parts."""
    v1 = [line("A", 2, "1000.00"), line("B", 1, "500.00")]
    v2 = [line("A", 2, "1000.00"), line("B", 2, "500.00")]
    s1, s2, s3 = ship("S1", A=1), ship("S2", B=2), ship("S3", A=1)
    return [
        order(card, 1, v1, 300, order_id=order_id),
        order(card, 2, v2, 300, order_id=order_id),
        order(card, 3, v2, 200, order_id=order_id),
        order(card, 4, v2, 200, order_id=order_id, paid=True, shipments=[s1]),
        order(card, 5, v2, 200, order_id=order_id, paid=True, shipments=[s1, s2]),
        order(card, 6, v2, 200, order_id=order_id, paid=True, shipments=[s1, s2, s3]),
    ]


def test_an_order_edited_twice_and_shipped_in_three_parts(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    steps = history(card)
    expected = [
        # (spent, pending, unlocked), customer's (available, pending)
        ((300, 110, 0), (200, 110)),  # 2000 + 500, 300 points: 5 % of 2200 = 110 pending
        ((300, 135, 0), (200, 135)),  # B doubled: 5 % of 2700 = 135
        ((200, 140, 0), (300, 140)),  # 200 points: 100 come back, 5 % of 2800 = 140
        ((200, 94, 46), (346, 94)),  # A 1 of 2 shipped: half of A's 93 points (floor) unlock
        ((200, 47, 93), (393, 47)),  # B shipped: its 47 points unlock
        ((200, 0, 140), (440, 0)),  # the rest of A: every point unlocked, none lost to rounding
    ]
    for step, ((spent, pending, unlocked), (available, customer_pending)) in zip(steps, expected, strict=True):
        result = apply(service, step)
        assert result.applied
        assert (result.points_spent, result.points_pending, result.points_available) == (spent, pending, unlocked)
        assert balance(service, card)[:2] == (available, customer_pending)
    assert result.status == "shipped"
    assert [(ln.line_id, ln.points_spent, ln.points_accrued) for ln in result.lines] == [("A", 133, 93), ("B", 67, 47)]
    report = service.check()
    assert report.ok, report.violations


def test_the_end_state_does_not_depend_on_the_arrival_order(service: LoyaltyService) -> None:
    orderings = list(itertools.permutations(range(6)))
    rng = random.Random(20261123)
    chosen = [orderings[0], orderings[-1], *rng.sample(orderings[1:-1], 10)]
    for number, arrival in enumerate(chosen):
        card = new_card(service, 500)
        steps = history(card, order_id=f"P-{number}")
        for index in arrival:
            apply(service, steps[index])
        record = service.get_order(SITE_CLIENT, f"P-{number}")
        assert record is not None and record.result.version == 6
        assert balance(service, card) == (440, 0, 0), arrival
    report = service.check()
    assert report.ok, report.violations


def test_an_older_or_repeated_version_changes_nothing(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    steps = history(card)
    apply(service, steps[3])
    before = balance(service, card)
    stale = apply(service, steps[1])
    assert (stale.applied, stale.version) == (False, 4)
    again = service.apply_order(SITE_CLIENT, "another-key", steps[3])
    assert (again.applied, again.version, again.points_available) == (False, 4, 46)
    assert balance(service, card) == before
    with pytest.raises(LoyaltyError) as conflict:
        service.apply_order(SITE_CLIENT, "third-key", steps[3].model_copy(update={"points_to_spend": 100}))
    assert conflict.value.code is ErrorCode.ORDER_VERSION_CONFLICT
    assert balance(service, card) == before


def test_a_return_gives_back_points_paid_and_takes_back_points_earned(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    steps = history(card)
    apply(service, steps[-1])  # fully shipped: spent 200, earned 140
    returned = steps[-1].model_copy(
        update={
            "version": 7,
            "returns": [OrderReturn(return_id="R1", lines=[OrderQuantity(line_id="A", quantity=Decimal(1))])],
        }
    )
    result = apply(service, returned)
    # one of two A: 66 of A's 133 points paid come back; 46 of A's 93 points earned go
    assert (result.points_spent, result.points_available, result.points_shortfall) == (134, 94, 0)
    assert balance(service, card) == (500 - 134 + 94, 0, 0)
    report = service.check()
    assert report.ok, report.violations


def test_a_cancelled_order_is_worth_nothing(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    steps = history(card)
    apply(service, steps[4])  # A half shipped, B shipped: 93 unlocked, 47 pending, 200 spent
    assert balance(service, card) == (393, 47, 0)
    # the customer spends every available point at a till (393 = 30 % of 1310), earning 45
    spend = service.commit(
        "tills",
        "r-1",
        CommitRequest(receipt_id="T-1", card_number=card, lines=[line("1", 1, "1310.00")], points_to_spend=393),
    )
    assert (spend.points_accrued, spend.balance.available) == (45, 45)
    cancelled = apply(service, steps[4].model_copy(update={"version": 9, "cancelled": True}))
    assert cancelled.status == "cancelled"
    assert (cancelled.points_spent, cancelled.points_pending, cancelled.points_available) == (0, 0, 0)
    # the 200 points paid come back (first, so they can cover what goes), the 93 earned go
    assert cancelled.points_shortfall == 0
    assert balance(service, card) == (45 + 200 - 93, 0, 0)
    report = service.check()
    assert report.ok, report.violations


def test_points_the_customer_already_spent_become_a_shortfall_settled_by_later_unlocks(
    service: LoyaltyService,
) -> None:
    card = new_card(service, 100)  # just the welcome bonus
    lines = [line("A", 1, "1000.00"), line("B", 1, "1000.00")]
    apply(service, order(card, 1, lines, 0, shipments=[ship("S1", A=1)]))  # A: 50 unlocked, B: 50 pending
    assert balance(service, card) == (150, 50, 0)
    till = service.commit(
        "tills",
        "r-2",
        CommitRequest(receipt_id="T-2", card_number=card, lines=[line("1", 1, "500.00")], points_to_spend=150),
    )
    assert till.balance.available == 17  # 5 % of 350
    a_returned = OrderReturn(return_id="R1", lines=[OrderQuantity(line_id="A", quantity=Decimal(1))])
    returned = apply(service, order(card, 2, lines, 0, shipments=[ship("S1", A=1)], returns=[a_returned]))
    # A's 50 points must go: 17 can be taken, 33 were already spent
    assert (returned.points_available, returned.points_pending, returned.points_shortfall) == (0, 50, 33)
    assert balance(service, card) == (0, 50, 0)
    shipped = apply(
        service, order(card, 3, lines, 0, shipments=[ship("S1", A=1), ship("S2", B=1)], returns=[a_returned])
    )
    # B's 50 points unlock, and first pay the 33 owed
    assert (shipped.points_available, shipped.points_pending, shipped.points_shortfall) == (50, 0, 0)
    assert balance(service, card) == (17, 0, 0)
    report = service.check()
    assert report.ok, report.violations


def test_the_checkout_hold_becomes_the_orders_payment(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    hold = service.hold(SITE_CLIENT, "h-1", HoldRequest(card_number=card, points=300, tag="bitrix-order:W-1"))
    assert balance(service, card) == (200, 0, 300)
    result = apply(service, history(card)[0].model_copy(update={"hold_id": hold.hold_id, "points_to_spend": 250}))
    assert result.points_spent == 250
    assert balance(service, card) == (250, 112, 0)  # 50 released; 5 % of 2250 = 112.5, rounded down
    report = service.check()
    assert report.ok, report.violations


def test_moving_an_order_to_another_card(service: LoyaltyService) -> None:
    first, second = new_card(service, 500), new_card(service, 500)
    steps = history(first)
    apply(service, steps[3])
    moved = apply(service, steps[4].model_copy(update={"card_number": second}))
    assert moved.card_number == second
    assert balance(service, first) == (500, 0, 0)
    assert balance(service, second) == (393, 47, 0)
    report = service.check()
    assert report.ok, report.violations


def test_accrual_on_payment(database_url: str, clock: FakeClock) -> None:
    program = load_config(DEMO_CONFIG).program
    program = program.model_copy(update={"orders": OrderPolicy(accrue_on="payment")})
    db = Database(database_url)
    service = LoyaltyService(db, program, clock)
    try:
        card = new_card(service, 500)
        lines = [line("A", 2, "1000.00")]
        assert apply(service, order(card, 1, lines, 0)).points_pending == 100
        paid = apply(service, order(card, 2, lines, 0, paid=True))
        assert (paid.points_pending, paid.points_available) == (0, 100)
        assert balance(service, card) == (600, 0, 0)
    finally:
        db.dispose()


def test_the_change_feed_lists_each_changed_order_once_in_order(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    for order_id in ("A-1", "A-2", "A-3"):
        apply(service, OrderRequest(order_id=order_id, version=1, card_number=card, lines=[line("1", 1, "100.00")]))
    apply(service, OrderRequest(order_id="A-1", version=2, card_number=card, lines=[line("1", 2, "100.00")]))
    feed = service.order_changes(SITE_CLIENT, 0)
    assert [(r.snapshot.order_id, r.result.version) for r in feed] == [("A-2", 1), ("A-3", 1), ("A-1", 2)]
    assert service.order_changes(SITE_CLIENT, feed[1].sequence) == feed[2:]
    assert service.order_changes("erp", 0) == []


def test_bad_orders_change_nothing(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    before = balance(service, card)
    too_many = order(card, 1, [line("A", 1, "1000.00")], 301)  # 30 % of 1000
    with pytest.raises(LoyaltyError) as capped:
        apply(service, too_many)
    assert capped.value.code is ErrorCode.POINTS_LIMIT_EXCEEDED
    poor = new_card(service, 100)
    with pytest.raises(LoyaltyError) as insufficient:
        apply(service, order(poor, 1, [line("A", 1, "1000.00")], 200))
    assert insufficient.value.code is ErrorCode.INSUFFICIENT_POINTS
    with pytest.raises(ValueError):
        order(card, 1, [line("A", 1, "1000.00")], 0, shipments=[ship("S1", A=2)])  # more shipped than ordered
    assert balance(service, card) == before
    assert service.get_order(SITE_CLIENT, "W-1") is None


def test_concurrent_versions_of_one_order_end_at_the_newest(service: LoyaltyService) -> None:
    card = new_card(service, 500)
    steps = history(card)
    errors: list[BaseException] = []

    def send(request: OrderRequest) -> None:
        try:
            apply(service, request)
        except LoyaltyError as exc:  # a version racing the one that creates the order may be told to retry
            if exc.code is not ErrorCode.IDEMPOTENCY_IN_FLIGHT:
                errors.append(exc)
            else:
                apply(service, request)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    apply(service, steps[0])
    threads = [threading.Thread(target=send, args=(step,)) for step in reversed(steps[1:])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert balance(service, card) == (440, 0, 0)
    report = service.check()
    assert report.ok, report.violations


def test_orders_over_http(gateway: Gateway) -> None:
    card = "2700000000014"  # 600 points
    body = {
        "order_id": "B-7",
        "version": 3,
        "card_number": card,
        "lines": [{"line_id": "1", "item": "SOFA", "quantity": "1", "price": "30000.00"}],
        "points_to_spend": 600,
    }
    placed = gateway.http.put("/api/v1/orders/B-7", json=body, headers=SITE)
    assert placed.status_code == 200, placed.text
    data = json_of(placed)
    assert (data["applied"], data["status"], data["points_spent"], data["points_pending"]) == (
        True,
        "placed",
        600,
        1470,
    )
    shipped = gateway.http.put(
        "/api/v1/orders/B-7",
        json={**body, "version": 4, "shipments": [{"shipment_id": "S", "lines": [{"line_id": "1", "quantity": 1}]}]},
        headers=SITE,
    )
    assert json_of(shipped)["points_available"] == 1470
    retried = json_of(gateway.http.put("/api/v1/orders/B-7", json=body, headers=SITE))
    assert (retried["applied"], retried["version"]) == (True, 3)  # the same request: its first answer
    stale = json_of(gateway.http.put("/api/v1/orders/B-7", json=body, headers={**SITE, "Idempotency-Key": "late"}))
    assert (stale["applied"], stale["version"]) == (False, 4)  # an old version arriving late
    record = json_of(gateway.http.get("/api/v1/orders/B-7", headers=SITE))
    assert record["result"]["status"] == "shipped" and record["snapshot"]["version"] == 4
    assert gateway.http.get("/api/v1/orders/B-7", headers={"Authorization": "Bearer " + "x" * 20}).status_code == 401
    missing = gateway.http.get("/api/v1/orders/nope", headers=SITE)
    assert (missing.status_code, json_of(missing)["error"]["code"]) == (404, "order_not_found")
    mismatch = gateway.http.put("/api/v1/orders/OTHER", json=body, headers=SITE)
    assert (mismatch.status_code, json_of(mismatch)["error"]["code"]) == (422, "validation_error")
    balance = json_of(gateway.http.get(f"/api/v1/cards/{card}/balance", headers=SITE))
    assert (balance["available"], balance["pending"]) == (1470, 0)
    gateway.assert_invariants()


BUILDING = Path(DEMO_CONFIG).parent / "programs" / "building-materials.yaml"


def test_orders_are_priced_by_the_program_for_this_customer(database_url: str, clock: FakeClock) -> None:
    """The example building-materials program: a new-home owner's finishing discount, no points on
    a first purchase, and made-to-order goods whose points wait for the shipment even when the
    program accrues orders on payment."""
    program = load_config(BUILDING).program
    program = program.model_copy(update={"orders": OrderPolicy(accrue_on="payment")})
    db = Database(database_url)
    service = LoyaltyService(db, program, clock)
    try:
        customer = service.register_customer(
            "test", "reg-new-home", RegisterCustomerRequest(card_number=_card_number(), segment="new_home")
        )
        card = customer.cards[0].card_number
        lines = [line("T", 1, "10000.00"), line("M", 1, "20000.00")]
        lines = [
            lines[0].model_copy(update={"item": "TL-GRES-60"}),
            lines[1].model_copy(update={"item": "MTO-KITCHEN"}),
        ]
        with pytest.raises(LoyaltyError) as first:
            apply(service, order(card, 1, lines, 100, order_id="N-1"))
        assert first.value.code is ErrorCode.POINTS_LIMIT_EXCEEDED  # no redemption on the first purchase
        placed = apply(service, order(card, 1, lines, 0, order_id="N-1"))
        by_line = {ln.line_id: ln for ln in placed.lines}
        assert by_line["T"].discount == Decimal("700.00")  # 7 % off finishing for new-home owners
        assert by_line["M"].discount == Decimal("0.00")
        assert any("new-home-finishing" in step.rule for step in placed.explanation)
        paid = apply(service, order(card, 2, lines, 0, order_id="N-1", paid=True))
        paid_lines = {ln.line_id: ln for ln in paid.lines}
        assert paid_lines["T"].points_pending == 0 and paid_lines["T"].points_available > 0  # paid: unlocked
        assert paid_lines["M"].points_available == 0 and paid_lines["M"].points_pending > 0  # waits for shipment
        shipped = apply(service, order(card, 3, lines, 0, order_id="N-1", paid=True, shipments=[ship("S", M=1)]))
        assert shipped.points_pending == 0
        assert shipped.points_available == by_line["T"].points_accrued + by_line["M"].points_accrued
        report = service.check()
        assert report.ok, report.violations
    finally:
        db.dispose()

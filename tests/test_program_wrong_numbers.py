"""The "wrong numbers" of issue 19, each pinned by a test that failed before its fix.

Uses the building-materials example program (tiers Базовый/Серебряный/Золотой/Платиновый by
quarterly turnover, 5 % accrual, at most 30 % of a receipt payable by points, referral points),
on a real database (SQLite or PostgreSQL, as the suite is run).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.operations import CalculateRequest, CartLine, CommitRequest, RegisterCustomerRequest
from contracts.orders import OrderQuantity, OrderRequest, OrderShipment
from gateway.config import GatewayConfig, Settings, load_config
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Customer
from gateway.wiring import build_service
from tests.support import FakeClock

BUILDING = Path(__file__).resolve().parent.parent / "gateway" / "demo" / "programs" / "building-materials.yaml"


def noon(day: date) -> datetime:
    """Noon in Moscow (09:00 UTC): far from any day boundary."""
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


@pytest.fixture
def config() -> GatewayConfig:
    return load_config(BUILDING)


@pytest.fixture
def service(database_url: str, config: GatewayConfig, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.freeze()
    assert clock.frozen_at is not None
    clock.offset = noon(date(2026, 1, 15)) - clock.frozen_at
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def register(service: LoyaltyService, card: str, **fields: Any) -> str:
    request = RegisterCustomerRequest(card_number=card, phone=f"+7999{card[-7:]}", **fields)
    return service.register_customer("site", uuid.uuid4().hex, request).customer_id


def tiles(roubles: int, quantity: int = 1) -> list[CartLine]:
    return [CartLine(line_id="1", item="TL-1001", quantity=Decimal(quantity), price=Decimal(roubles) / quantity)]


def buy(service: LoyaltyService, card: str, roubles: int) -> list[tuple[str, str]]:
    request = CommitRequest(receipt_id=uuid.uuid4().hex, card_number=card, store="S01", lines=tiles(roubles))
    result = service.commit("tills", uuid.uuid4().hex, request)
    return [(step.rule, step.description) for step in result.explanation]


def stored(service: LoyaltyService, customer_id: str) -> Customer:
    with service.db.read() as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found


def order(card: str, roubles: int, *, shipped: bool) -> OrderRequest:
    return OrderRequest(
        order_id=f"W-{card[-4:]}",
        version=2 if shipped else 1,
        card_number=card,
        store="S01",
        lines=tiles(roubles, 10),
        paid=True,
        shipments=[
            OrderShipment(
                shipment_id="S1", shipped_at=noon(date(2026, 1, 15)), lines=[OrderQuantity(line_id="1", quantity=10)]
            )
        ]
        if shipped
        else [],
    )


# -- 1. the tier the explanation names is the customer's tier ------------------------------------


def test_first_till_purchase_sets_the_tier_its_explanation_names(service: LoyaltyService) -> None:
    buyer = register(service, "2700000000501")
    assert stored(service, buyer).tier is None  # no purchase yet: no standing
    steps = buy(service, "2700000000501", 1_000)
    assert any(rule == "tier" and "Базовый" in text for rule, text in steps), steps
    assert stored(service, buyer).tier == "base"
    buy(service, "2700000000501", 1_000)  # a second purchase changes nothing
    assert stored(service, buyer).tier == "base"


def test_first_order_sets_the_tier_its_pricing_used(service: LoyaltyService) -> None:
    buyer = register(service, "2700000000502")
    result = service.apply_order("site", uuid.uuid4().hex, order("2700000000502", 1_000, shipped=False))
    assert result.applied
    assert stored(service, buyer).tier == "base"


def test_calculation_alone_sets_no_tier(service: LoyaltyService) -> None:
    buyer = register(service, "2700000000503")
    service.calculate("tills", CalculateRequest(card_number="2700000000503", store="S01", lines=tiles(1_000)))
    assert stored(service, buyer).tier is None  # a calculation books nothing


# -- 2. an anonymous calculation explains no cashback ----------------------------------------------


def test_anonymous_calculation_explains_no_cashback_it_does_not_give(service: LoyaltyService) -> None:
    register(service, "2700000000504")
    cart = tiles(1_000)
    with_card = service.calculate("tills", CalculateRequest(card_number="2700000000504", store="S01", lines=cart))
    earning = [step for step in with_card.explanation if step.points > 0 and step.rule.startswith("tier:")]
    assert with_card.points_to_accrue == 50 and earning, with_card.explanation  # 5 % of 1 000 ₽ (Базовый)

    anonymous = service.calculate("tills", CalculateRequest(store="S01", lines=cart))
    assert anonymous.points_to_accrue == 0
    assert [
        step for step in anonymous.explanation if step.points > 0 and step.rule != "redemption.max_share_percent"
    ] == []
    assert not any(step.rule.startswith(("tier", "accrual")) for step in anonymous.explanation), anonymous.explanation
    assert all(line.points_accrued == 0 for line in anonymous.lines)
    assert anonymous.amount_payable == with_card.amount_payable  # the price itself is the same

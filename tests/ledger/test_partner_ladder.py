"""A second tier ladder: installers and wholesale buyers climb «Партнёр» → «Партнёр Серебро» →
«Партнёр Золото» by the turnover of the calendar quarter, retail customers climb their own tiers
by the turnover of the last 365 days (issue 19).

Uses the plumbing example program (``gateway/demo/programs/plumbing.yaml``): partner levels from
0 / 300 000 / 1 000 000 roubles a quarter with 1 / 2 / 3 % cashback, at most 10 / 20 / 30 % of a
receipt payable with points and 5 / 8 / 12 % discount (rules ``when: {tiers: [...]}``); retail
levels Клиент / Постоянный / VIP from 0 / 50 000 / 200 000 roubles a year at 3 / 5 / 7 %.
Ledger tests run on a real database (SQLite or PostgreSQL, as the suite is run).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.operations import CartLine, CommitRequest, RegisterCustomerRequest
from contracts.orders import OrderQuantity, OrderRequest, OrderShipment
from contracts.profiles import UpdateCustomerRequest
from gateway.config import ConfigError, GatewayConfig, Settings, load_config, parse_config
from gateway.core.rules.context import PricingContext
from gateway.core.rules.evaluate import standing
from gateway.ledger import program_jobs
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Customer
from gateway.wiring import build_service
from tests.conftest import json_of
from tests.support import TILL, FakeClock, noon

PLUMBING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "plumbing.yaml"


@pytest.fixture
def config() -> GatewayConfig:
    return load_config(PLUMBING)


@pytest.fixture
def service(database_url: str, config: GatewayConfig, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(date(2026, 2, 10)))
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def register(service: LoyaltyService, card: str, segment: str) -> str:
    request = RegisterCustomerRequest(card_number=card, phone=f"+7998{card[-7:]}", segment=segment)
    return service.register_customer("site", uuid.uuid4().hex, request).customer_id


def buy(service: LoyaltyService, card: str, roubles: int, item: str = "FT-400", store: str = "M01") -> Any:
    line = CartLine(line_id="1", item=item, price_type="installer", quantity=Decimal(1), price=Decimal(roubles))
    request = CommitRequest(receipt_id=uuid.uuid4().hex, card_number=card, store=store, lines=[line])
    return service.commit("tills", uuid.uuid4().hex, request)


def tier_of(service: LoyaltyService, customer_id: str) -> str | None:
    with service.db.read() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.tier


# -- the program file --------------------------------------------------------------------------


def test_installers_and_wholesale_are_on_the_partner_ladder_and_retail_on_the_retail_tiers(
    config: GatewayConfig,
) -> None:
    program = config.program
    on = date(2026, 2, 10)
    placed = {
        segment: standing(program, PricingContext(on=on, segment=segment, turnover_kopecks=350_000_00))
        for segment in ("retail", "installers", "wholesale")
    }
    # 350 000 roubles: VIP on the retail tiers (from 200 000), Серебро on the partner ladder
    assert {segment: s.tier.code for segment, s in placed.items() if s.tier} == {
        "retail": "vip",
        "installers": "partner_silver",
        "wholesale": "partner_silver",
    }
    assert placed["installers"].tier is not None and placed["installers"].tier.label == "Партнёр Серебро"
    ladders = [program.ladder(s) for s in ("retail", "installers")]
    assert [ladder.ladder_code if ladder else None for ladder in ladders] == ["tiers", "partner"]
    assert program.window_for("installers").kind == "quarter"
    assert program.window_for("retail").kind == "rolling" and program.window_for("retail").days == 365


def test_a_stored_level_of_the_other_ladder_is_not_kept(config: GatewayConfig) -> None:
    """A retail VIP who became an installer is priced on the partner ladder by the quarter's
    turnover, not at the retail level still stored."""
    current = standing(
        config.program, PricingContext(on=date(2026, 2, 10), segment="installers", tier="vip", turnover_kopecks=0)
    )
    assert current.tier is not None and current.tier.code == "partner"


def _plumbing_with(old: str, new: str) -> str:
    text = PLUMBING.read_text("utf-8")
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_check_config_rejects_a_level_code_of_two_ladders_at_its_line() -> None:
    text = _plumbing_with("{code: partner_gold, name: Партнёр Золото", "{code: vip, name: Партнёр Золото")
    with pytest.raises(ConfigError) as error:
        parse_config(text, "plumbing.yaml")
    message = str(error.value)
    assert f"plumbing.yaml:{_line_of(text, '{code: vip, name: Партнёр Золото')}" in message, message
    assert "ladders.0.levels.2.code" in message and "tier 'vip' is already a level of 'tiers'" in message


def test_check_config_rejects_a_segment_on_two_ladders_and_an_unknown_level_in_a_rule() -> None:
    text = _plumbing_with("segments: [installers, wholesale]", "segments: [installers, wholesale, retail]")
    text = text.replace("when: {tiers: [partner_gold], kinds", "when: {tiers: [partner_platinum], kinds")
    with pytest.raises(ConfigError) as error:
        parse_config(text, "plumbing.yaml")
    message = str(error.value)
    assert "ladders.0.segments.2" in message and "segment 'retail' is already on 'tiers'" in message, message
    assert "discounts.rules.2.when.tiers.0" in message and "unknown tier 'partner_platinum'" in message
    assert "partner_gold" in message  # the known levels are listed, the partner ladder's among them


def test_check_config_rejects_a_gap_in_the_partner_ladder() -> None:
    text = _plumbing_with("to_turnover: 1000000,", "to_turnover: 900000,")
    with pytest.raises(ConfigError) as error:
        parse_config(text, "plumbing.yaml")
    message = str(error.value)
    assert "ladders.0.levels.1.to_turnover" in message, message
    assert "gap between tiers 'partner_silver' and 'partner_gold'" in message


# -- placement on purchase and by the daily job ----------------------------------------------------


def test_a_purchase_crossing_a_partner_threshold_raises_the_level_and_earns_at_it(service: LoyaltyService) -> None:
    installer = register(service, "2800000000011", "installers")
    retail = register(service, "2800000000012", "retail")
    partner = buy(service, "2800000000011", 340_000)
    # 5 % (Партнёр) leaves 323 000 ≥ 300 000: the receipt is priced at Серебро, 8 % off and 2 %
    # cashback on the 312 800 paid
    assert (partner.total_discount, partner.points_accrued) == (Decimal("27200.00"), 6256)
    assert tier_of(service, installer) == "partner_silver"
    # the same receipt of a retail customer: no partner discount, VIP (from 200 000) earns 7 %
    customer = buy(service, "2800000000012", 340_000)
    assert (customer.total_discount, customer.points_accrued) == (Decimal("0.00"), 23800)
    assert tier_of(service, retail) == "vip"


def test_a_shipped_web_order_raises_the_partner_level(service: LoyaltyService) -> None:
    """An installer's order from the web shop: the goods it shipped count in the quarter at once."""
    installer = register(service, "2800000000071", "installers")
    line = CartLine(line_id="1", item="FT-400", price_type="installer", quantity=Decimal(10), price=Decimal(34_000))
    shipment = OrderShipment(
        shipment_id="S1", shipped_at=noon(date(2026, 2, 10)), lines=[OrderQuantity(line_id="1", quantity=10)]
    )
    request = OrderRequest(
        order_id="W-0071",
        version=1,
        card_number="2800000000071",
        store="M01",
        lines=[line],
        paid=True,
        shipments=[shipment],
    )
    service.apply_order("site", uuid.uuid4().hex, request)
    assert tier_of(service, installer) == "partner_silver"  # 340 000 less 5 % or 8 %: over 300 000


def test_a_partner_level_lasts_the_next_quarter_then_the_daily_job_lowers_it(
    service: LoyaltyService, clock: FakeClock
) -> None:
    installer = register(service, "2800000000021", "installers")
    buy(service, "2800000000021", 1_200_000)  # 12 % off at the crossing: 1 056 000 this quarter
    assert tier_of(service, installer) == "partner_gold"

    clock.set(noon(date(2026, 5, 20)))  # Q2: Q1's turnover still qualifies
    assert program_jobs.run_daily(service).get("tiers_changed", 0) == 0
    assert tier_of(service, installer) == "partner_gold"

    clock.set(noon(date(2026, 7, 1)))  # Q3: Q2 bought nothing
    assert program_jobs.run_daily(service)["tiers_changed"] == 1
    assert tier_of(service, installer) == "partner"


def test_the_retail_ladder_counts_twelve_months_where_the_partner_ladder_counts_the_quarter(
    service: LoyaltyService, clock: FakeClock
) -> None:
    clock.set(noon(date(2025, 11, 20)))
    retail = register(service, "2800000000031", "retail")
    installer = register(service, "2800000000032", "installers")
    buy(service, "2800000000031", 400_000)
    buy(service, "2800000000032", 400_000)
    assert (tier_of(service, retail), tier_of(service, installer)) == ("vip", "partner_silver")

    clock.set(noon(date(2026, 4, 10)))  # Q2 2026: the Q4 2025 purchase is two quarters back
    program_jobs.run_daily(service)
    assert tier_of(service, retail) == "vip"  # 400 000 within the last 365 days
    assert tier_of(service, installer) == "partner"


def test_the_daily_job_moves_a_customer_who_became_an_installer_to_the_partner_ladder(
    service: LoyaltyService,
) -> None:
    customer = register(service, "2800000000041", "retail")
    buy(service, "2800000000041", 60_000)
    assert tier_of(service, customer) == "regular"
    service.update_customer(
        "operator", uuid.uuid4().hex, UpdateCustomerRequest(customer_id=customer, segment="installers")
    )

    assert program_jobs.run_daily(service)["tiers_changed"] == 1
    assert tier_of(service, customer) == "partner"  # 60 000 this quarter: below 300 000
    # the next receipt is priced as a partner's: 5 % off pipes, 1 % cashback of what is paid
    receipt = buy(service, "2800000000041", 10_000)
    assert (receipt.total_discount, receipt.points_accrued) == (Decimal("500.00"), 95)


def test_a_first_purchase_on_the_other_ladder_replaces_the_stored_level(service: LoyaltyService) -> None:
    """The segment changed since the last placement: the receipt is priced on the partner ladder,
    and the customer's tier says so at once (not a retail level until the daily job)."""
    customer = register(service, "2800000000051", "retail")
    buy(service, "2800000000051", 1_000)
    assert tier_of(service, customer) == "client"
    service.update_customer(
        "operator", uuid.uuid4().hex, UpdateCustomerRequest(customer_id=customer, segment="installers")
    )
    buy(service, "2800000000051", 1_000)
    assert tier_of(service, customer) == "partner"


# -- tier progress shows the customer's own ladder ---------------------------------------------------


def test_tier_progress_shows_the_partner_ladder_and_its_quarter(start_gateway: Any, clock: FakeClock) -> None:
    clock.set(noon(date(2026, 2, 10)))
    gw = start_gateway(load_config(PLUMBING))
    register(gw.service, "2800000000061", "installers")
    register(gw.service, "2800000000062", "retail")
    buy(gw.service, "2800000000061", 450_000)  # 8 % off at Серебро: 414 000 this quarter
    buy(gw.service, "2800000000062", 60_000)

    partner = json_of(gw.http.get("/api/v1/cards/2800000000061/tier", headers=TILL))
    assert (partner["ladder"], partner["ladder_name"]) == ("partner", "Партнёрская программа")
    assert partner["tier"]["code"] == "partner_silver" and partner["tier"]["name"] == "Партнёр Серебро"
    assert (partner["window"], partner["window_start"], partner["window_end"]) == (
        "quarter",
        "2026-01-01",
        "2026-03-31",
    )
    assert partner["window_turnover"] == "414000.00"
    assert partner["next_tier"]["name"] == "Партнёр Золото" and partner["remaining"] == "586000.00"

    retail = json_of(gw.http.get("/api/v1/cards/2800000000062/tier", headers=TILL))
    assert (retail["ladder"], retail["tier"]["code"], retail["window"]) == ("tiers", "regular", "rolling")
    assert (retail["window_start"], retail["window_end"]) == ("2025-02-11", "2026-02-10")
    assert retail["next_tier"]["code"] == "vip" and retail["remaining"] == "140000.00"

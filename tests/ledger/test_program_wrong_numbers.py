"""The "wrong numbers" of issue 19, each pinned by a test that failed before its fix.

Uses the building-materials example program (tiers Базовый/Серебряный/Золотой/Платиновый by
quarterly turnover, 5 % accrual, at most 30 % of a receipt payable by points, referral points),
on a real database (SQLite or PostgreSQL, as the suite is run).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts.accounts import CompanyRequest, MemberRequest
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import BalanceRequest, CalculateRequest, CartLine, CommitRequest, RegisterCustomerRequest
from contracts.orders import OrderQuantity, OrderRequest, OrderReturn, OrderShipment
from gateway.cli import app as cli
from gateway.config import GatewayConfig, Settings, load_config, parse_config
from gateway.core.rules.validation import program_warnings
from gateway.ledger.phones import card_for_phone
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Customer
from gateway.wiring import build_service
from tests.conftest import json_of
from tests.support import TILL, FakeClock, key, noon

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"


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


# -- 3. check-config warns about a limit that can never apply --------------------------------------


def test_check_config_warns_about_a_tier_limit_the_program_limit_always_beats(tmp_path: Path) -> None:
    """Платиновый allows 50 % payable by points, the program 30 %: the strictest limit wins, so
    the tier's limit never applies — a warning at its line, and the file is still valid. (The
    example file itself has no such limit: every demo program checks without a warning.)"""
    text = BUILDING.read_text("utf-8").replace("cashback_percent: 20}", "cashback_percent: 20, max_share_percent: 50}")
    building = tmp_path / "building.yaml"
    building.write_text(text, "utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["check-config", str(building)])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "code: platinum" in row)
    assert f"warning: {building}:{line}: program.tiers.levels.3.max_share_percent: tier 'platinum'" in printed
    assert "redemption.max_share_percent (30%) is stricter" in printed
    assert printed.count("warning:") == 1

    # the tier's limit below the program's applies: no warning; with the program at 15 % it never does
    changed = text.replace("cashback_percent: 20, max_share_percent: 50", "cashback_percent: 20, max_share_percent: 20")
    assert changed != text
    lowered = tmp_path / "lowered.yaml"
    lowered.write_text(changed, "utf-8")
    result = runner.invoke(cli, ["check-config", str(lowered)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output

    segment = tmp_path / "segment.yaml"
    segment.write_text(
        changed.replace("max_share_percent: 30 ", "max_share_percent: 15 ", 1).replace(
            "at most 30 %", "at most 15 %", 1
        ),
        "utf-8",
    )
    result = runner.invoke(cli, ["check-config", str(segment)])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert "program.tiers.levels.3.max_share_percent: tier 'platinum' allows 20%" in printed, printed


def test_a_tier_limit_every_tiered_segment_beats_is_a_warning_too() -> None:
    text = BUILDING.read_text("utf-8")
    changed = (
        text.replace("cashback_percent: 20}", "cashback_percent: 20, max_share_percent: 25}")
        .replace("name: Розница, default: true}", "name: Розница, default: true, max_share_percent: 20}")
        .replace("becomes: retail, after_months: 12}", "becomes: retail, after_months: 12, max_share_percent: 10}")
    )
    program = parse_config(changed, "changed.yaml").program
    assert program_warnings(program) == [
        (
            ("tiers", "levels", 3, "max_share_percent"),
            "tier 'platinum' allows 25% payable by points, but every segment with tiers (retail, new_home) "
            "is stricter and always wins: this limit never applies",
        )
    ]
    # one tiered segment without a stricter limit: the tier's limit applies there
    program = parse_config(changed.replace(", max_share_percent: 10}", "}"), "changed.yaml").program
    assert program_warnings(program) == []


# -- 4. the phone is the card, in any common notation ----------------------------------------------


def test_a_phone_typed_as_the_card_number_finds_the_customers_card(service: LoyaltyService) -> None:
    """The apparel chain's tills and site send the customer's phone where the card number goes,
    as the customer says it: ``8 999…``, ``7999…``, ``999…`` (and ``+7 (999) …`` where a field
    takes it)."""
    register(service, "2700000000511")  # phone +79990000511
    for typed in ("89990000511", "79990000511", "9990000511"):
        found = service.balance("tills", BalanceRequest(card_number=typed))
        assert found.card_number == "2700000000511", typed
    with service.db.read() as session:
        for typed in ("+7 (999) 000-05-11", "+79990000511", "8-999-000-05-11"):
            card = card_for_phone(session, typed)
            assert card is not None and card.number == "2700000000511", typed
        assert card_for_phone(session, "2700000000599") is None  # an unknown card is not a phone
        assert card_for_phone(session, "+7 999 000-05-12") is None  # nobody has this phone

    # a purchase by phone is booked on the card, once
    before = service.balance("tills", BalanceRequest(card_number="2700000000511")).balance
    request = CommitRequest(receipt_id="R-PHONE-1", card_number="89990000511", store="S01", lines=tiles(2_000))
    first = service.commit("tills", "k-phone-1", request)
    again = service.commit("tills", "k-phone-2", request)
    assert first.card_number == again.card_number == "2700000000511"
    assert first.transaction_id == again.transaction_id and first.points_accrued > 0
    assert (
        service.balance("tills", BalanceRequest(card_number="2700000000511")).balance == before + first.points_accrued
    )

    with pytest.raises(LoyaltyError) as missing:
        service.balance("tills", BalanceRequest(card_number="89990000519"))
    assert missing.value.code == ErrorCode.CARD_NOT_FOUND


def test_a_phone_card_number_over_the_json_api(start_gateway: Any, clock: FakeClock) -> None:
    gw = start_gateway(config=load_config(BUILDING))
    response = gw.http.post(
        "/api/v1/customers",
        json={"card_number": "2700000000512", "phone": "+79990000512"},
        headers={**TILL, **key()},
    )
    assert response.status_code == 200, response.text
    for typed in ("89990000512", "+79990000512"):
        response = gw.http.get(f"/api/v1/cards/{typed}/balance", headers=TILL)
        assert response.status_code == 200, response.text
        assert json_of(response)["card_number"] == "2700000000512"
    calculated = gw.http.post(
        "/api/v1/calculate",
        headers=TILL,
        json={"card_number": "+79990000512", "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "100"}]},
    )
    assert calculated.status_code == 200, calculated.text


# -- 5. referral points follow orders too ----------------------------------------------------------


def ship(card: str, version: int, shipped: int, returned: int = 0, *, cancelled: bool = False) -> OrderRequest:
    """The web order W-REF of ten tiles (10 000 ₽), ``shipped`` of them shipped and ``returned``
    of those returned."""
    return OrderRequest(
        order_id="W-REF",
        version=version,
        card_number=card,
        store="S01",
        lines=tiles(10_000, 10),
        paid=True,
        cancelled=cancelled,
        shipments=[
            OrderShipment(
                shipment_id="S1",
                shipped_at=noon(date(2026, 1, 15)),
                lines=[OrderQuantity(line_id="1", quantity=shipped)],
            )
        ]
        if shipped
        else [],
        returns=[
            OrderReturn(
                return_id="R1",
                returned_at=noon(date(2026, 1, 15)),
                lines=[OrderQuantity(line_id="1", quantity=returned)],
            )
        ]
        if returned
        else [],
    )


def test_referral_points_follow_a_web_order_pending_unlocked_and_returned(service: LoyaltyService) -> None:
    """3 % of the money the foreman's client pays for tiles: pending while the order waits,
    unlocked with the shipment, taken back with the return, all gone with a cancellation."""
    foreman, client = "2700000000531", "2700000000532"
    register(service, foreman, segment="partner")
    register(service, client, referrer_card=foreman)

    def points() -> tuple[int, int]:
        found = service.balance("site", BalanceRequest(card_number=foreman))
        return found.available, found.pending

    start = points()
    service.apply_order("site", "o-1", ship(client, 1, 0))  # placed and paid, nothing shipped
    assert points() == (start[0], start[1] + 300)  # 3 % of 10 000 ₽, pending
    service.apply_order("site", "o-1", ship(client, 1, 0))  # the same version again: nothing more
    assert points() == (start[0], start[1] + 300)

    service.apply_order("site", "o-2", ship(client, 2, 4))  # four tiles of ten shipped
    assert points() == (start[0] + 120, start[1] + 180)
    service.apply_order("site", "o-3", ship(client, 3, 10))
    assert points() == (start[0] + 300, start[1])

    service.apply_order("site", "o-4", ship(client, 4, 10, 5))  # half of it returned
    assert points() == (start[0] + 150, start[1])
    service.apply_order("site", "o-5", ship(client, 5, 10, 10, cancelled=True))
    assert points() == start
    assert service.check().ok


def test_an_order_without_a_referrer_or_outside_the_rule_credits_nobody(service: LoyaltyService) -> None:
    foreman, client = "2700000000533", "2700000000534"
    register(service, foreman, segment="partner")
    register(service, client)  # came by themselves
    before = service.balance("site", BalanceRequest(card_number=foreman)).balance
    service.apply_order("site", "o-6", ship(client, 1, 10))
    assert service.balance("site", BalanceRequest(card_number=foreman)).balance == before
    assert service.check().ok


# -- 6. a company card prices by the company's segment ---------------------------------------------


def company_card(service: LoyaltyService, contact_card: str, company_card_number: str, **company: Any) -> str:
    """A company with one buyer (registered with ``contact_card``) holding ``company_card_number``."""
    contact = register(service, contact_card, segment="wholesale")
    created = service.company_create("operator", uuid.uuid4().hex, CompanyRequest(name="ООО Ремстрой", **company))
    service.company_add_member(
        "operator",
        uuid.uuid4().hex,
        MemberRequest(
            company_id=created.company_id, customer_id=contact, role="buyer", card_number=company_card_number
        ),
    )
    return created.company_id


def priced_rules(service: LoyaltyService, card: str) -> tuple[set[str], int]:
    result = service.calculate("tills", CalculateRequest(card_number=card, store="S01", lines=tiles(10_000)))
    return {step.rule for step in result.explanation}, result.points_to_accrue


def test_a_company_card_prices_by_the_companys_own_segment(service: LoyaltyService) -> None:
    """The company is wholesale: its card earns no cashback and pays nothing with points, as a
    wholesale customer's own card (``accrual:wholesale-no-points``, ``segment:wholesale``: 0 %)."""
    company_id = company_card(service, "2700000000541", "2700000000542", segment="wholesale")
    assert service.company("operator", company_id).segment == "wholesale"
    rules, accrued = priced_rules(service, "2700000000542")
    assert "segment:wholesale" in rules and accrued == 0, rules
    personal, _ = priced_rules(service, "2700000000541")  # the contact's own card: wholesale too
    assert "segment:wholesale" in personal

    with pytest.raises(LoyaltyError) as unknown:
        service.company_create("operator", uuid.uuid4().hex, CompanyRequest(name="ООО Ошибка", segment="vip"))
    assert unknown.value.code == ErrorCode.VALIDATION_ERROR


def test_a_company_without_a_segment_prices_by_the_one_its_contacts_share(service: LoyaltyService) -> None:
    company_card(service, "2700000000543", "2700000000544")
    rules, accrued = priced_rules(service, "2700000000544")
    assert "segment:wholesale" in rules and accrued == 0, rules

    retail = register(service, "2700000000545")  # a retail contact joins: no shared segment any more
    company = service.company_create("operator", uuid.uuid4().hex, CompanyRequest(name="ООО Смешанная"))
    service.company_add_member(
        "operator",
        uuid.uuid4().hex,
        MemberRequest(company_id=company.company_id, customer_id=retail, role="buyer", card_number="2700000000546"),
    )
    rules, accrued = priced_rules(service, "2700000000546")
    assert "segment:wholesale" not in rules and accrued > 0  # the program's default segment

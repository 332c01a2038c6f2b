"""The retailers' programs of issue 19 as files (``gateway/demo/programs/``): each passes
``check-config`` without a warning, and each sample cart's ``gateway simulate`` output is what
the program promises — the numbers here are worked out by hand from the program file (the
arithmetic is in the comments), not copied from the output.

The apparel chain's carts (the phone is the card) and the tea shop's bonuses (welcome, referred
friend, referral share, birthday) are also booked through the ledger on a real database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts.operations import BalanceRequest, CalculateRequest, CommitRequest, RegisterCustomerRequest
from gateway.cli import app as cli
from gateway.cli.program import load_carts
from gateway.config import Settings, load_config
from gateway.ledger import program_jobs
from gateway.ledger.service import LoyaltyService
from gateway.wiring import build_service
from tests.support import FakeClock, noon

PROGRAMS = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs"
NAMES = ["plumbing", "tea-shop", "chain-500k", "apparel", "building-materials"]


def simulate(name: str) -> list[dict[str, Any]]:
    program, carts = PROGRAMS / f"{name}.yaml", PROGRAMS / f"{name}-carts.yaml"
    result = CliRunner().invoke(cli, ["simulate", str(program), str(carts), "--json"])
    assert result.exit_code == 0, result.output
    results: list[dict[str, Any]] = json.loads(result.output)["results"]
    return results


def summary(result: dict[str, Any]) -> tuple[Any, ...]:
    """(tier, tier reached, discount, max payable, points spent, points accrued, referral points)."""
    return (
        result["tier"],
        result["tier_upgrade"],
        result["total_discount"],
        result["max_points_payable"],
        result["points_to_spend"],
        result["points_to_accrue"],
        result["referral_points"],
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_program_passes_check_config_without_a_warning(name: str) -> None:
    result = CliRunner().invoke(cli, ["check-config", str(PROGRAMS / f"{name}.yaml")])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output and "warning" not in result.output, result.output
    assert (PROGRAMS / f"{name}-carts.yaml").exists()


def test_plumbing_segments_zones_and_the_partner_ladder() -> None:
    program = load_config(PROGRAMS / "plumbing.yaml").program
    assert [s.code for s in program.segments] == ["retail", "installers", "wholesale"]
    assert [z.code for z in program.catalogue.zones] == ["msk", "spb", "ural", "south"]
    assert [level.label for level in program.ladders[0].ordered()] == ["Партнёр", "Партнёр Серебро", "Партнёр Золото"]

    results = simulate("plumbing")
    assert [(r["segment"], r["zone"]) for r in results] == [
        ("retail", "msk"),
        ("retail", "msk"),
        ("installers", "ural"),
        ("installers", "msk"),
        ("wholesale", "spb"),
        ("installers", "msk"),
        ("retail", "south"),
    ]
    assert [summary(r) for r in results] == [
        # Постоянный 5 % of 3 500 + 12 000 + 2 500 = 900; 30 % of the goods, none of the installation
        ("regular", None, "0.00", 4650, 0, 900, 0),
        # 190 000 + 15 000 crosses 200 000: VIP's 7 % of 15 000 = 1 050
        ("regular", "vip", "0.00", 4500, 0, 1050, 0),
        # Серебро 8 % on both lines + 7 % Ural heating on the radiators: 3 600 + 480 off; 20 % of
        # the 25 920 left is 5 184, the balance of 5 000 caps it; 2 % of 24 920 paid in money = 498
        ("partner_silver", None, "4080.00", 5000, 1000, 498, 0),
        # 950 000 + 73 600 (after Серебро's 8 %) crosses 1 000 000: Золото's 12 % off 80 000 = 9 600,
        # 3 % of 70 400 = 2 112, 30 % of it payable = 21 120
        ("partner_silver", "partner_gold", "9600.00", 21120, 0, 2112, 0),
        # wholesale prices: no partner discount, no points either way
        ("partner", None, "0.00", 0, 0, 0, 0),
        # last quarter's 1 200 000 keeps Золото: 12 % off 10 000, 3 % of 8 800 = 264, 30 % = 2 640
        ("partner_gold", None, "1200.00", 2640, 0, 264, 0),
        # South sanitary 5 % off 20 000; Клиент 3 % of 19 000 = 570; the installer gets 2 % = 380
        ("client", None, "1000.00", 5700, 0, 570, 380),
    ]
    silver = {(step["rule"], step["line_id"]) for step in results[2]["explanation"]}
    assert {("tier_share:partner_silver", "1"), ("discount:ural-heating", "1")} <= silver
    assert [line["points_spent"] for line in results[2]["lines"]] == [787, 213]  # 1 000 by 4 080 : 1 104
    # A partner's turnover is counted in the partner ladder's quarter, and the explanation says so.
    tier_texts = {step["description"] for step in results[2]["explanation"] if step["rule"] == "tier"}
    assert tier_texts == {"tier Партнёр Серебро: turnover 420 000.00 in the quarter"}


def test_tea_shop_six_cashback_levels() -> None:
    program = load_config(PROGRAMS / "tea-shop.yaml").program
    assert program.tiers is not None
    assert [level.cashback_percent for level in program.tiers.ordered()] == [5, 7, 10, 12, 15, 20]
    assert (program.welcome_bonus.points, program.bonuses.birthday and program.bonuses.birthday.points) == (300, 500)

    assert [summary(r) for r in simulate("tea-shop")] == [
        ("l5", None, "0.00", 750, 0, 75, 0),  # 5 % of 1 500; half of it payable
        ("l7", None, "0.00", 500, 0, 70, 0),  # 7 % of 1 000
        ("l7", "l10", "0.00", 1000, 0, 200, 0),  # 14 000 + 2 000 crosses 15 000: 10 % of 2 000
        ("l12", None, "0.00", 1250, 0, 300, 0),  # 12 % of 2 500
        ("l15", None, "0.00", 1500, 1000, 300, 0),  # 15 % of the 2 000 paid in money
        ("l20", None, "0.00", 500, 0, 400, 0),  # 20 % × 2 two days before the birthday
        ("l5", None, "0.00", 1000, 0, 100, 100),  # 5 % of 2 000, and 5 % to the friend who brought them
    ]


def test_chain_500k_share_payable_with_points_follows_the_tier() -> None:
    results = simulate("chain-500k")
    # the same 10 000 basket: 10 / 20 / 35 / 50 % payable, cashback 3 / 5 / 7 / 10 % of the rest
    assert [summary(r) for r in results[:4]] == [
        ("bronze", None, "0.00", 1000, 1000, 270, 0),
        ("silver", None, "0.00", 2000, 2000, 400, 0),
        ("gold", None, "0.00", 3500, 3500, 455, 0),
        ("platinum", None, "0.00", 5000, 5000, 500, 0),
    ]
    assert [line["points_spent"] for line in results[2]["lines"]] == [350, 2100, 1050]  # by 1 000 : 6 000 : 3 000
    # tobacco: 35 % of the 4 000 of bread only, 7 % of the bread only
    assert summary(results[4]) == ("gold", None, "0.00", 1400, 0, 280, 0)
    assert [(line["max_points"], line["points_accrued"]) for line in results[4]["lines"]] == [(1400, 280), (0, 0)]
    # 58 000 + 5 000 reaches Золото, but this program prices the crossing receipt at Серебро
    assert summary(results[5]) == ("silver", "gold", "0.00", 1000, 0, 250, 0)
    platinum = {step["rule"] for step in results[3]["explanation"]}
    bronze = {step["rule"] for step in results[0]["explanation"]}
    assert "tier_share:bronze" in bronze and "tier_share:platinum" not in platinum  # 50 % is the program's own


def test_apparel_carts_keyed_by_phone() -> None:
    assert [summary(r) for r in simulate("apparel")] == [
        (None, None, "0.00", 1000, 0, 250, 0),  # 5 % of 5 000; 20 % payable
        # 15 000 in the receipt: 5 % off the 12 000 coat (not the clearance scarf); 5 % of 11 400
        # earned and 20 % payable, nothing on clearance
        (None, None, "600.00", 2280, 0, 570, 0),
        (None, None, "0.00", 1400, 0, 350, 0),
    ]


def test_building_materials_has_six_price_types_eight_zones_and_intermediaries() -> None:
    program = load_config(PROGRAMS / "building-materials.yaml").program
    assert len(program.catalogue.price_types) == 6
    assert len(program.catalogue.zones) == 8
    foreman = program.bonuses.referral[0]
    assert (foreman.referrer_segments, foreman.percent, foreman.months) == (["partner"], Decimal(3), 12)
    results = simulate("building-materials")
    assert summary(results[4])[-1] == 401  # the foreman's 3 % (see tests/unit/test_simulate.py for every cart)


# -- the same programs booked through the ledger -------------------------------------------------


@pytest.fixture
def apparel(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(date(2026, 3, 5)))
    svc = build_service(Settings(database_url=database_url), load_config(PROGRAMS / "apparel.yaml"), clock)
    yield svc
    svc.db.dispose()


def test_apparel_carts_booked_by_the_phone_typed_in_the_card_field(apparel: LoyaltyService) -> None:
    """Each cart's name is the phone as the cashier typed it; the ledger finds the customer's
    card by it and prices the cart exactly as the dry run did."""
    carts = load_carts(PROGRAMS / "apparel-carts.yaml").carts
    simulated = simulate("apparel")
    for n in range(1, len(carts) + 1):
        request = RegisterCustomerRequest(phone=f"+7912345670{n}", card_number=f"290000000000{n}")
        apparel.register_customer("site", uuid.uuid4().hex, request)
    for n, (cart, dry) in enumerate(zip(carts, simulated, strict=True), 1):
        assert cart.name is not None
        priced = apparel.calculate("tills", CalculateRequest(card_number=cart.name, store=cart.store, lines=cart.lines))
        assert priced.balance is not None and priced.balance.card_number == f"290000000000{n}", cart.name
        assert (str(priced.total_discount), priced.points_to_accrue) == (dry["total_discount"], dry["points_to_accrue"])

    booked = apparel.commit(
        "tills",
        uuid.uuid4().hex,
        CommitRequest(receipt_id="L02-0001", card_number="89123456702", store="L02", lines=carts[1].lines),
    )
    assert (booked.card_number, booked.points_accrued) == ("2900000000002", 570)
    assert apparel.balance("tills", BalanceRequest(card_number="9123456702")).balance == 570


@pytest.fixture
def tea_shop(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(date(2026, 3, 1)))
    svc = build_service(Settings(database_url=database_url), load_config(PROGRAMS / "tea-shop.yaml"), clock)
    yield svc
    svc.db.dispose()


def balance(service: LoyaltyService, card: str) -> int:
    return service.balance("tills", BalanceRequest(card_number=card)).balance


def test_tea_shop_welcome_friend_referral_and_birthday_bonuses(tea_shop: LoyaltyService, clock: FakeClock) -> None:
    register = tea_shop.register_customer
    register("site", uuid.uuid4().hex, RegisterCustomerRequest(phone="+79161110042", card_number="2910000000042"))
    friend = RegisterCustomerRequest(
        phone="+79161110043", card_number="2910000000043", referrer_card="2910000000042", birth_date=date(1990, 3, 14)
    )
    register("site", uuid.uuid4().hex, friend)
    assert balance(tea_shop, "2910000000042") == 300  # welcome
    assert balance(tea_shop, "2910000000043") == 300 + 200  # welcome and the referred friend's bonus

    clock.set(noon(date(2026, 3, 5)))
    cart = load_carts(PROGRAMS / "tea-shop-carts.yaml").carts[6]  # 2 000 of milk oolong
    request = CommitRequest(receipt_id="CH3-0001", card_number="2910000000043", store="CH3", lines=cart.lines)
    booked = tea_shop.commit("tills", uuid.uuid4().hex, request)
    assert booked.points_accrued == 100  # 5 % of 2 000
    assert balance(tea_shop, "2910000000042") == 300 + 100  # 5 % of the friend's 2 000

    clock.set(noon(date(2026, 3, 14)))
    assert program_jobs.run_daily(tea_shop)["birthday_bonuses"] == 1
    assert balance(tea_shop, "2910000000043") == 500 + 100 + 500

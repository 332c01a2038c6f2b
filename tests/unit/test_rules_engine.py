"""The rules engine (``gateway/core/rules``, ``gateway/core/pricing.py``): each mechanic of the
seeds' programs reproduced with concrete numbers, and properties that hold for any program.

Pure: no database, no server. Point value 1 rouble unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.operations import CartLine
from gateway.config import load_config
from gateway.core.pricing import PricedCart, price_cart
from gateway.core.program import Program
from gateway.core.rules.context import PricingContext, Referrer

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"
BASE: dict[str, Any] = {"name": "test", "accrual": {"percent": 5}, "redemption": {"max_share_percent": 30}}


def program(**sections: Any) -> Program:
    return Program.model_validate({**BASE, **sections})


def line(line_id: str, item: str, price: str, quantity: str = "1", price_type: str | None = None) -> CartLine:
    return CartLine(line_id=line_id, item=item, price=Decimal(price), quantity=Decimal(quantity), price_type=price_type)


def by_line(priced: PricedCart) -> dict[str, tuple[int, int, int]]:
    """line id -> (discount kopecks, points spent, points accrued)"""
    return {ln.line_id: (ln.discount_kopecks, ln.points_spent, ln.points_accrued) for ln in priced.lines}


def rules_of(priced: PricedCart) -> dict[tuple[str, str | None], tuple[int, int]]:
    """(rule, line) -> (points, discount kopecks) of the explanation"""
    return {(a.rule, a.line_id): (a.points, a.discount_kopecks) for a in priced.applications}


@pytest.fixture(scope="module")
def building() -> Program:
    return load_config(BUILDING).program


# ---------------------------------------------------------------------------------------------
# price types
# ---------------------------------------------------------------------------------------------

SIX_PRICE_TYPES = {
    "catalogue": {
        "price_types": [
            {"code": "retail", "refs": ["8F1B6A10-0000-0000-0000-000000000001"]},
            {"code": "internet", "accrual_percent": 4},
            {"code": "small_wholesale", "accrual_percent": 3},
            {"code": "wholesale", "accrual_percent": 2, "max_share_percent": 0},
            {"code": "partner", "accrual_percent": 1},
            {"code": "promo", "accrual_factor": "0.5", "max_share_percent": 10},
        ],
        "default_price_type": "retail",
    }
}


@pytest.mark.parametrize(
    ("price_type", "accrued", "max_points"),
    [
        ("retail", 50, 300),  # the program's 5 %, 30 % payable by points
        ("8f1b6a10-0000-0000-0000-000000000001", 50, 300),  # the 1C GUID of the retail price type
        ("internet", 40, 300),
        ("small_wholesale", 30, 300),
        ("wholesale", 20, 0),  # wholesale prices cannot be paid with points
        ("partner", 10, 300),
        ("promo", 25, 100),  # half the customer's rate, 10 % payable
        (None, 50, 300),  # no price type: the default one
        ("unknown-price", 50, 300),
    ],
)
def test_each_price_type_has_its_own_accrual_and_share(price_type: str | None, accrued: int, max_points: int) -> None:
    priced = price_cart(program(**SIX_PRICE_TYPES), [line("1", "X", "1000.00", price_type=price_type)], 0, 10_000)
    assert (priced.points_accrued, priced.max_points_payable) == (accrued, max_points)


def test_one_receipt_mixing_six_price_types() -> None:
    lines = [
        line(str(i), f"ITEM-{i}", "1000.00", price_type=pt)
        for i, pt in enumerate(["retail", "internet", "small_wholesale", "wholesale", "partner", "promo"], 1)
    ]
    priced = price_cart(program(**SIX_PRICE_TYPES), lines, 0, 10_000)
    assert [ln.points_accrued for ln in priced.lines] == [50, 40, 30, 20, 10, 25]
    assert priced.points_accrued == 175
    assert [ln.price_type for ln in priced.lines] == [
        "retail",
        "internet",
        "small_wholesale",
        "wholesale",
        "partner",
        "promo",
    ]
    # 30 % of four lines, 0 % of wholesale, 10 % of promo
    assert priced.points_cap == 4 * 300 + 0 + 100
    assert rules_of(priced)[("price_type:wholesale", "4")] == (20, 0)


def test_wholesale_and_retail_lines_share_points_paid_within_their_limits() -> None:
    lines = [line("R", "A", "1000.00", price_type="retail"), line("W", "B", "5000.00", price_type="wholesale")]
    priced = price_cart(program(**SIX_PRICE_TYPES), lines, 300, 10_000)
    assert by_line(priced) == {"R": (0, 300, 35), "W": (0, 0, 100)}  # 5 % of 700, 2 % of 5000
    assert priced.points_cap == 300


# ---------------------------------------------------------------------------------------------
# catalogue: kinds and zones
# ---------------------------------------------------------------------------------------------

CATALOGUE = {
    "kinds": [
        {"code": "finishing"},
        {"code": "paint", "parent": "finishing", "prefixes": ["PN-"]},
        {"code": "premium_paint", "parent": "paint", "prefixes": ["PN-PRO-"], "items": ["SPECIAL-1"]},
        {"code": "services", "items": ["DELIVERY"], "max_share_percent": 0},
    ],
    "zones": [{"code": f"z{i}", "stores": [f"S{i}"]} for i in range(1, 9)],
    "default_zone": "z1",
}


def test_kinds_by_exact_code_and_longest_prefix_and_their_parents() -> None:
    prog = program(catalogue=CATALOGUE)
    catalogue = prog.catalogue
    assert catalogue.kind_of("PN-100") == "paint"
    assert catalogue.kind_of("PN-PRO-7") == "premium_paint"
    assert catalogue.kind_of("SPECIAL-1") == "premium_paint"
    assert catalogue.kind_of("TILE") is None
    assert catalogue.kind_chain("premium_paint") == ("premium_paint", "paint", "finishing")
    assert [catalogue.zone_of(f"S{i}") for i in (1, 5, 8)] == ["z1", "z5", "z8"]
    assert catalogue.zone_of("nowhere") == "z1"


@pytest.mark.parametrize(("store", "discount"), [("S6", 10000), ("S7", 10000), ("S1", 0), (None, 0)])
def test_zone_dependent_discount(store: str | None, discount: int) -> None:
    prog = program(
        catalogue=CATALOGUE,
        discounts={
            "rules": [
                {"id": "east-paint", "description": "Paint in the east", "when": {"zones": ["z6", "z7"]}, "percent": 10}
            ]
        },
    )
    priced = price_cart(prog, [line("1", "PN-1", "1000.00")], 0, 0, context=PricingContext(store=store))
    assert priced.discount_kopecks == discount
    assert priced.points_accrued == (45 if discount else 50)  # 5 % of what is left to pay
    if discount:
        assert rules_of(priced)[("discount:east-paint", "1")] == (0, 10000)


def test_a_rule_on_a_parent_kind_applies_to_sub_kinds() -> None:
    prog = program(
        catalogue=CATALOGUE,
        discounts={
            "rules": [{"id": "fin", "description": "Finishing", "when": {"kinds": ["finishing"]}, "percent": 5}]
        },
    )
    lines = [line("1", "PN-PRO-1", "100.00"), line("2", "DELIVERY", "100.00")]
    assert by_line(price_cart(prog, lines, 0, 0)) == {"1": (500, 0, 4), "2": (0, 0, 5)}


# ---------------------------------------------------------------------------------------------
# discounts: combination, priorities, partner discounts as points or split
# ---------------------------------------------------------------------------------------------


def _rule(rule_id: str, percent: int, **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "description": rule_id, "percent": percent, **extra}


@pytest.mark.parametrize(
    ("combine", "expected"),
    [
        ("best_of", {"discount:b": (0, 8000)}),
        ("sum", {"discount:a": (0, 5000), "discount:b": (0, 8000), "discount:c": (0, 3000)}),
        ("exclusive", {"discount:c": (0, 3000)}),  # the highest priority, whatever it gives
    ],
)
def test_how_discounts_combine(combine: str, expected: dict[str, tuple[int, int]]) -> None:
    prog = program(
        discounts={
            "combine": combine,
            "rules": [_rule("a", 5, priority=1), _rule("b", 8, priority=2), _rule("c", 3, priority=3)],
        }
    )
    priced = price_cart(prog, [line("1", "X", "1000.00")], 0, 0)
    found = {rule: value for (rule, line_id), value in rules_of(priced).items() if rule.startswith("discount:")}
    assert found == expected
    assert priced.discount_kopecks == sum(d for _, d in expected.values())


def test_a_sum_never_discounts_more_than_the_line() -> None:
    prog = program(discounts={"combine": "sum", "rules": [_rule("a", 70), _rule("b", 60)]})
    priced = price_cart(prog, [line("1", "X", "99.99")], 0, 0)
    assert priced.discount_kopecks == 9999
    assert priced.points_accrued == 0 and priced.points_cap == 0
    assert rules_of(priced)[("discount:a", "1")][1] + rules_of(priced)[("discount:b", "1")][1] == 9999


def test_nested_groups() -> None:
    """A segment discount (exclusive: partner beats new-home owner) plus the best zone offer."""
    prog = program(
        segments=[{"code": "retail", "default": True}, {"code": "partner"}, {"code": "new_home"}],
        catalogue={"zones": [{"code": "spb", "stores": ["S6"]}]},
        discounts={
            "combine": "sum",
            "groups": [
                {"id": "segment", "combine": "exclusive", "members": ["partner", "new-home"]},
                {"id": "zone", "combine": "best_of", "members": ["spb-5", "spb-7"]},
            ],
            "rules": [
                _rule("partner", 10, when={"segments": ["partner", "new_home"]}, priority=20),
                _rule("new-home", 15, when={"segments": ["new_home"]}, priority=10),
                _rule("spb-5", 5, when={"zones": ["spb"]}),
                _rule("spb-7", 7, when={"zones": ["spb"]}),
            ],
        },
    )
    cart = [line("1", "X", "1000.00")]
    partner_spb = price_cart(prog, cart, 0, 0, context=PricingContext(segment="new_home", store="S6"))
    assert partner_spb.discount_kopecks == 10000 + 7000  # partner (priority 20) + the better zone offer
    retail_msk = price_cart(prog, cart, 0, 0, context=PricingContext(segment="retail", store="S1"))
    assert retail_msk.discount_kopecks == 0


@pytest.mark.parametrize(
    ("take_as", "share", "discount", "points"),
    [
        ("discount", None, 80000, 460),  # 8 % off; 5 % of the 9 200 left
        ("points", None, 0, 800 + 500),  # the 800 as points, plus 5 % of 10 000
        ("split", 50, 40000, 400 + 480),  # 400 off, 400 as points, plus 5 % of 9 600
        ("split", 25, 60000, 200 + 470),
    ],
)
def test_partner_discount_taken_as_discount_points_or_split(
    take_as: str, share: int | None, discount: int, points: int
) -> None:
    rule = _rule("partner", 8, when={"segments": ["partner"]}, take_as=take_as)
    if share is not None:
        rule["points_share_percent"] = share
    prog = program(segments=[{"code": "retail", "default": True}, {"code": "partner"}], discounts={"rules": [rule]})
    priced = price_cart(prog, [line("1", "X", "10000.00")], 0, 0, context=PricingContext(segment="partner"))
    assert (priced.discount_kopecks, priced.points_accrued) == (discount, points)


def test_partner_discount_depends_on_quarterly_turnover(building: Program) -> None:
    cart = [line("1", "PN-2001", "10000.00")]

    def partner(turnover: int, previous: int = 0) -> PricedCart:
        context = PricingContext(
            on=date(2026, 3, 12),
            store="S01",
            segment="partner",
            turnover_kopecks=turnover * 100,
            previous_turnover_kopecks=previous * 100,
        )
        return price_cart(building, cart, 0, 0, context=context)

    assert (partner(100_000).discount_kopecks, partner(100_000).points_accrued) == (25000, 250)  # 5 %, half as points
    assert (partner(350_000).discount_kopecks, partner(350_000).points_accrued) == (40000, 400)  # 8 %, split
    assert (partner(0, 1_200_000).discount_kopecks, partner(0, 1_200_000).points_accrued) == (0, 1200)  # 12 % points


# ---------------------------------------------------------------------------------------------
# tiers
# ---------------------------------------------------------------------------------------------

TIERS = {
    "window": {"kind": "quarter"},
    "levels": [
        {"code": "base", "from_turnover": 0, "to_turnover": 100000, "cashback_percent": 5},
        {"code": "silver", "from_turnover": 100000, "to_turnover": 300000, "cashback_percent": 10},
        {"code": "gold", "from_turnover": 300000, "cashback_percent": 15},
    ],
}


@pytest.mark.parametrize(
    ("turnover", "previous", "tier", "points"),
    [
        (0, 0, "base", 850),
        (150_000, 0, "silver", 1700),
        (0, 150_000, "silver", 1700),  # the tier earned last quarter is kept this quarter
        (310_000, 0, "gold", 2550),
    ],
)
def test_cashback_by_tier(turnover: int, previous: int, tier: str, points: int) -> None:
    context = PricingContext(turnover_kopecks=turnover * 100, previous_turnover_kopecks=previous * 100)
    priced = price_cart(program(tiers=TIERS), [line("1", "X", "17000.00")], 0, 0, context=context)
    assert (priced.tier, priced.points_accrued, priced.tier_upgrade) == (tier, points, None)


def test_the_purchase_that_crosses_the_threshold_upgrades_and_earns_at_the_new_tier() -> None:
    context = PricingContext(tier="silver", turnover_kopecks=290_000_00)
    cart = [line("1", "X", "17000.00")]
    priced = price_cart(program(tiers=TIERS), cart, 0, 0, context=context)
    assert (priced.tier, priced.tier_upgrade, priced.points_accrued) == ("silver", "gold", 2550)
    assert ("tier.upgrade", None) in rules_of(priced)
    assert rules_of(priced)[("tier:gold", "1")] == (2550, 0)

    later = {**TIERS, "crossing_purchase_at_new_tier": False}
    priced = price_cart(program(tiers=later), cart, 0, 0, context=context)
    assert (priced.tier_upgrade, priced.points_accrued) == ("gold", 1700)  # upgraded, but earns at silver

    no_upgrade = {**TIERS, "upgrade_on_purchase": False}
    priced = price_cart(program(tiers=no_upgrade), cart, 0, 0, context=context)
    assert (priced.tier_upgrade, priced.points_accrued) == (None, 1700)

    short = price_cart(program(tiers=TIERS), [line("1", "X", "9999.99")], 0, 0, context=context)
    assert short.tier_upgrade is None  # 299 999.99: one kopeck short


def test_tiers_apply_only_to_their_segments_and_price_types_override_them() -> None:
    prog = program(
        tiers={**TIERS, "segments": ["retail"]},
        segments=[{"code": "retail", "default": True}, {"code": "wholesale"}],
        catalogue={"price_types": [{"code": "opt", "accrual_percent": 1}, {"code": "retail"}]},
    )
    context = PricingContext(segment="retail", tier="gold")
    assert price_cart(prog, [line("1", "X", "1000.00")], 0, 0, context=context).points_accrued == 150
    assert price_cart(prog, [line("1", "X", "1000.00", price_type="opt")], 0, 0, context=context).points_accrued == 10
    wholesale = price_cart(prog, [line("1", "X", "1000.00")], 0, 0, context=PricingContext(segment="wholesale"))
    assert (wholesale.tier, wholesale.points_accrued) == (None, 50)


# ---------------------------------------------------------------------------------------------
# accrual rules, pending, birthday
# ---------------------------------------------------------------------------------------------


def test_accrual_rules_replace_add_multiply_with_explicit_priority() -> None:
    prog = program(
        catalogue={"kinds": [{"code": "tools", "prefixes": ["TO-"]}, {"code": "services", "items": ["SRV"]}]},
        accrual={
            "percent": 5,
            "rules": [
                {
                    "id": "no-srv",
                    "description": "no points on services",
                    "when": {"kinds": ["services"]},
                    "combine": "replace",
                    "percent": 0,
                    "priority": 10,
                },
                {
                    "id": "tools-7",
                    "description": "tools 7 %",
                    "when": {"kinds": ["tools"]},
                    "combine": "replace",
                    "percent": 7,
                    "priority": 5,
                },
                {
                    "id": "weekend",
                    "description": "weekend +2 %",
                    "when": {"weekdays": [6, 7]},
                    "combine": "add",
                    "percent": 2,
                },
                {
                    "id": "birthday",
                    "description": "birthday x2",
                    "when": {"birthday_within_days": 3},
                    "combine": "multiply",
                    "factor": 2,
                },
            ],
        },
    )
    cart = [line("T", "TO-1", "1000.00"), line("S", "SRV", "1000.00"), line("O", "OTHER", "1000.00")]
    weekday = PricingContext(on=date(2026, 3, 11), birth_date=date(1990, 7, 1))  # a Wednesday
    assert [ln.points_accrued for ln in price_cart(prog, cart, 0, 0, context=weekday).lines] == [70, 0, 50]
    weekend_birthday = PricingContext(on=date(2026, 3, 14), birth_date=date(1990, 3, 12))  # Saturday, 2 days after
    priced = price_cart(prog, cart, 0, 0, context=weekend_birthday)
    assert [ln.points_accrued for ln in priced.lines] == [160, 20, 120]  # 7x2+2, 0x2+2, 5x2+2
    assert rules_of(priced)[("accrual:weekend", "T")] == (20, 0)
    assert rules_of(priced)[("accrual:tools-7", "T")] == (140, 0)
    undated = price_cart(prog, cart, 0, 0)  # no date: dated rules do not apply
    assert [ln.points_accrued for ln in undated.lines] == [70, 0, 50]


def test_birthday_window_wraps_the_new_year_and_29_february() -> None:
    prog = program(
        accrual={
            "percent": 5,
            "rules": [
                {
                    "id": "bd",
                    "description": "x2",
                    "when": {"birthday_within_days": 3},
                    "combine": "multiply",
                    "factor": 2,
                }
            ],
        }
    )
    cart = [line("1", "X", "1000.00")]

    def points(on: date, born: date) -> int:
        return price_cart(prog, cart, 0, 0, context=PricingContext(on=on, birth_date=born)).points_accrued

    assert points(date(2027, 1, 1), date(1990, 12, 30)) == 100
    assert points(date(2026, 12, 30), date(1990, 1, 2)) == 100
    assert points(date(2027, 3, 1), date(1992, 2, 29)) == 100  # celebrated on 28 February
    assert points(date(2027, 3, 5), date(1992, 2, 29)) == 50


def test_points_of_made_to_order_goods_wait_for_the_shipment(building: Program) -> None:
    cart = [line("1", "MTO-9001", "45000.00"), line("2", "TL-1", "1000.00")]
    priced = price_cart(building, cart, 0, 0, context=PricingContext(segment="retail", on=date(2026, 3, 12)))
    assert [(ln.kind, ln.pending, ln.points_accrued) for ln in priced.lines] == [
        ("made_to_order", True, 2250),
        ("tiles", False, 50),
    ]
    assert priced.points_pending == 2250


# ---------------------------------------------------------------------------------------------
# points payable
# ---------------------------------------------------------------------------------------------


def test_max_share_cap_and_the_strictest_line_limit() -> None:
    prog = program(
        catalogue={
            "kinds": [
                {"code": "cement", "prefixes": ["CM-"], "max_share_percent": 10},
                {"code": "services", "items": ["SRV"], "max_share_percent": 0},
            ]
        },
        segments=[{"code": "retail", "default": True}, {"code": "wholesale", "max_share_percent": 5}],
    )
    cart = [line("A", "X", "1000.00"), line("C", "CM-1", "1000.00"), line("S", "SRV", "1000.00")]
    retail = price_cart(prog, cart, 400, 1000)
    assert retail.points_cap == 300 + 100 + 0
    assert retail.max_points_payable == 400
    assert by_line(retail) == {"A": (0, 300, 35), "C": (0, 100, 45), "S": (0, 0, 50)}
    wholesale = price_cart(prog, cart, 0, 1000, context=PricingContext(segment="wholesale"))
    assert wholesale.points_cap == 50 + 50 + 0
    assert price_cart(prog, cart, 0, 120).max_points_payable == 120  # the balance limits too


def test_no_redemption_on_the_first_purchase() -> None:
    prog = program(redemption={"max_share_percent": 30, "allow_on_first_purchase": False})
    cart = [line("1", "X", "1000.00")]
    first = price_cart(prog, cart, 0, 500, context=PricingContext(first_purchase=True))
    assert (first.points_cap, first.max_points_payable, first.points_accrued) == (0, 0, 50)
    assert ("redemption.allow_on_first_purchase", None) in rules_of(first)
    second = price_cart(prog, cart, 0, 500, context=PricingContext(first_purchase=False))
    assert second.max_points_payable == 300
    allowed = price_cart(program(), cart, 0, 500, context=PricingContext(first_purchase=True))
    assert allowed.max_points_payable == 300


def test_a_captured_write_off_above_the_cap_is_booked_without_a_negative_line() -> None:
    """A till took 1 500 points before the receipt arrived: booked as taken, within each line."""
    cart = [line("A", "X", "1000.00"), line("B", "Y", "500.50")]
    priced = price_cart(program(), cart, 1500, 1500)
    assert [ln.points_spent for ln in priced.lines] == [1000, 500]
    assert all(ln.points_spent * 100 <= ln.amount_kopecks - ln.discount_kopecks for ln in priced.lines)


# ---------------------------------------------------------------------------------------------
# referral
# ---------------------------------------------------------------------------------------------


def test_referral_points_for_the_intermediary(building: Program) -> None:
    foreman = Referrer(account_id="acc-foreman", segment="partner", since=date(2026, 1, 10), label="card …0021")
    cart = [line("1", "WP-5001", "1200.00", "12"), line("2", "TO-7001", "6000.00"), line("3", "CM-1", "1000.00")]
    context = PricingContext(on=date(2026, 3, 12), store="S04", segment="retail", referrer=foreman)
    priced = price_cart(building, cart, 1000, 5000, context=context)
    assert priced.referral is not None
    # 3 % of what the client paid with money for finishing and building goods (not tools)
    paid = {ln.line_id: ln.amount_kopecks - ln.discount_kopecks - ln.points_spent * 100 for ln in priced.lines}
    # 1 000 points spread by what each line may take: 30 % of 14 400, 30 % of 6 000, 15 % of 1 000
    assert [ln.points_spent for ln in priced.lines] == [689, 287, 24]
    assert paid == {"1": 1_371_100, "2": 571_300, "3": 97_600}
    assert priced.referral.points == (1_371_100 + 97_600) * 3 // 100 // 100 == 440
    assert [ln.referral_points for ln in priced.lines] == [411, 0, 29]
    assert (priced.referral.account_id, priced.referral.rule, priced.referral.expiry_days) == (
        "acc-foreman",
        "referral:foreman",
        180,
    )
    assert rules_of(priced)[("referral:foreman", None)][0] == 440
    a_year_later = PricingContext(on=date(2027, 1, 10), segment="retail", referrer=foreman)
    assert price_cart(building, cart, 0, 0, context=a_year_later).referral is None  # 12 months are over
    not_a_partner = Referrer(account_id="acc", segment="retail", since=date(2026, 3, 1))
    assert (
        price_cart(building, cart, 0, 0, context=PricingContext(on=date(2026, 3, 12), referrer=not_a_partner)).referral
        is None
    )


# ---------------------------------------------------------------------------------------------
# the demo program keeps its numbers; explanations add up
# ---------------------------------------------------------------------------------------------


def test_a_program_without_rules_prices_as_the_foundation_did() -> None:
    """The demo's numbers (tests/ledger/test_purchase_flow.py) with and without a context."""
    cart = [line("A", "DRILL-01", "500.00", "2"), line("B", "BITS-SET", "250.50")]
    for context in (None, PricingContext(on=date(2026, 3, 12), store="S1", segment="x", first_purchase=True)):
        priced = price_cart(program(), cart, 300, 600, context=context)
        assert (priced.max_points_payable, priced.points_accrued) == (375, 47)
        assert [(ln.points_spent, ln.points_accrued) for ln in priced.lines] == [(240, 38), (60, 9)]
        assert priced.explanation == [
            ("accrual.percent", "5% of the amount paid with money", 47),
            ("redemption.max_share_percent", "at most 30% payable by points", 375),
        ]


def test_the_explanation_accounts_for_every_point_and_kopeck(building: Program) -> None:
    cart = [line("1", "PN-2001", "2500.00", "4"), line("2", "GK-4001", "400.00", "30"), line("3", "SRV-LIFT", "900.00")]
    context = PricingContext(on=date(2026, 3, 14), store="S06", segment="partner", turnover_kopecks=350_000_00)
    priced = price_cart(building, cart, 0, 0, context=context)
    earned = sum(
        a.points
        for a in priced.applications
        if a.line_id is not None and not a.rule.startswith(("kind:", "price_type"))
    )
    assert earned == priced.points_accrued == 700
    assert sum(a.discount_kopecks for a in priced.applications) == priced.discount_kopecks == 170000
    assert rules_of(priced)[("discount:partner-300k", "1")] == (400, 40000)
    assert rules_of(priced)[("discount:spb-paint", "1")] == (0, 100000)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

percents = st.integers(min_value=0, max_value=100)


@st.composite
def programs(draw: st.DrawFn) -> Program:
    kinds = ["a", "b", "c"]
    rules = []
    for i in range(draw(st.integers(0, 5))):
        take_as = draw(st.sampled_from(["discount", "points", "split"]))
        rule: dict[str, Any] = {
            "id": f"r{i}",
            "description": f"rule {i}",
            "percent": draw(percents),
            "take_as": take_as,
            "priority": i,
            "when": {"kinds": draw(st.lists(st.sampled_from(kinds), max_size=2, unique=True))},
        }
        if take_as == "split":
            rule["points_share_percent"] = draw(percents)
        rules.append(rule)
    groups = []
    if len(rules) >= 2 and draw(st.booleans()):
        groups.append(
            {
                "id": "g",
                "combine": draw(st.sampled_from(["best_of", "sum", "exclusive"])),
                "members": [r["id"] for r in rules[:2]],
            }
        )
    return Program.model_validate(
        {
            "name": "property",
            "point_value": draw(st.sampled_from(["0.01", "0.10", "0.50", "1.00", "3.00", "10.00"])),
            "accrual": {"percent": draw(percents), "on_amount_paid_by_points": draw(st.booleans())},
            "redemption": {"max_share_percent": draw(percents)},
            "catalogue": {
                "kinds": [
                    {"code": k, "prefixes": [k.upper()], "max_share_percent": draw(st.one_of(st.none(), percents))}
                    for k in kinds
                ],
            },
            "discounts": {"combine": draw(st.sampled_from(["best_of", "sum"])), "rules": rules, "groups": groups},
        }
    )


carts = st.lists(
    st.tuples(
        st.sampled_from(["A-1", "B-1", "C-1", "Z-1"]),
        st.integers(min_value=0, max_value=10_000_000),  # kopecks
        st.sampled_from(["1", "2", "0.5", "3.125"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prog=programs(), cart=carts, fraction=st.fractions(min_value=0, max_value=1), balance=st.integers(0, 10**7))
def test_no_rules_make_a_negative_price_or_a_discount_above_the_line_or_points_above_the_cap(
    prog: Program, cart: list[tuple[str, int, str]], fraction: Any, balance: int
) -> None:
    lines = [
        CartLine(
            line_id=str(i),
            item=item,
            quantity=Decimal(qty),
            # the unit price a till shows for this line total (rounded up to kopecks: a line's
            # amount is never above price x quantity)
            price=(Decimal(amount) / 100 / Decimal(qty)).quantize(Decimal("0.01"), rounding=ROUND_CEILING),
            amount=Decimal(amount) / 100,
        )
        for i, (item, amount, qty) in enumerate(cart)
    ]
    probe = price_cart(prog, lines, 0, balance)
    assert 0 <= probe.max_points_payable <= probe.points_cap
    points = int(probe.max_points_payable * fraction)
    priced = price_cart(prog, lines, points, balance)
    pv = prog.point_value_kopecks
    assert priced.points_cap == probe.points_cap
    assert priced.points_spent == sum(ln.points_spent for ln in priced.lines) == points
    assert priced.points_spent <= priced.max_points_payable <= priced.points_cap
    share_cap = sum((ln.amount_kopecks - ln.discount_kopecks) * min_share(prog, ln.item) for ln in priced.lines)
    assert priced.points_cap * pv <= share_cap / 100
    for ln in priced.lines:
        assert 0 <= ln.discount_kopecks <= ln.amount_kopecks
        assert ln.amount_kopecks - ln.discount_kopecks - ln.points_spent * pv >= 0
        assert ln.points_accrued >= 0
        if min_share(prog, ln.item) == 0:
            assert ln.points_spent == 0
    assert priced.points_accrued == sum(ln.points_accrued for ln in priced.lines)
    assert priced.payable_kopecks >= 0


def min_share(prog: Program, item: str) -> int:
    """The strictest percentage of a line payable by points (program, kind)."""
    kind = prog.catalogue.kind(prog.catalogue.kind_of(item) or "")
    shares = [prog.redemption.max_share_percent]
    if kind is not None and kind.max_share_percent is not None:
        shares.append(kind.max_share_percent)
    return int(min(shares))

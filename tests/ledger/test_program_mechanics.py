"""Issue 19: the mechanics retailers asked for — discounts that scale with the receipt's own
amount (``receipt_from``/``receipt_below``), quantity conditions (``quantity_from``) and N+1
(``every_nth_free``) — at the engine, in ``check-config``, and identical through the JSON API and
the 1C till's ``calculatediscounts`` on a running gateway.

Point value 1 rouble unless a test says otherwise.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.operations import CartLine
from gateway.config import DEMO_CONFIG, ConfigError, parse_config
from gateway.core.allocation import cumulative_share
from gateway.core.pricing import PricedCart, price_cart
from gateway.core.program import Program
from tests.conftest import Gateway
from tests.raw_http import basic_header, raw_request
from tests.support import TILL, card_with_points, key

BASE: dict[str, Any] = {"name": "test", "accrual": {"percent": 5}, "redemption": {"max_share_percent": 30}}
TEA_GUID = "6a1f5a2e-0000-4000-8000-00000000e001"  # a 1C Номенклатура Ref, as a till sends it

# A tea shop: a scale by the receipt's amount (overlapping steps in a best_of group), a volume
# discount on a line, N+1 on tea, and extra points on large receipts.
MECHANICS: dict[str, Any] = {
    "catalogue": {"kinds": [{"code": "tea", "name": "Чай", "prefixes": ["TEA-"], "items": [TEA_GUID]}]},
    "discounts": {
        "combine": "best_of",
        "rules": [
            {
                "id": "scale-5",
                "description": "Скидка 5 % от 5 000 ₽",
                "percent": 5,
                "when": {"receipt_from": 5000, "receipt_below": 20000},
            },
            {
                "id": "scale-10",
                "description": "Скидка 10 % от 15 000 ₽",
                "percent": 10,
                "when": {"receipt_from": 15000},
            },
            {"id": "bulk", "description": "От 10 штук 7 %", "percent": 7, "when": {"quantity_from": 10}},
            {
                "id": "tea-3",
                "description": "Третий чай в подарок",
                "every_nth_free": {"n": 3},
                "when": {"kinds": ["tea"]},
            },
        ],
    },
    "accrual": {
        "percent": 5,
        "rules": [
            {
                "id": "big",
                "description": "+2 % с чека от 10 000 ₽",
                "combine": "add",
                "percent": 2,
                "when": {"receipt_from": 10000},
            },
        ],
    },
}


def program(**sections: Any) -> Program:
    return Program.model_validate({**BASE, **sections})


def line(line_id: str, item: str, price: str, quantity: str = "1") -> CartLine:
    return CartLine(line_id=line_id, item=item, price=Decimal(price), quantity=Decimal(quantity))


def discounts(priced: PricedCart) -> dict[str, int]:
    return {ln.line_id: ln.discount_kopecks for ln in priced.lines}


def explained(priced: PricedCart, rule: str) -> dict[str | None, str]:
    return {a.line_id: a.description for a in priced.applications if a.rule == rule}


@pytest.fixture(scope="module")
def shop() -> Program:
    return program(**MECHANICS)


# ---------------------------------------------------------------------------------------------
# the receipt's own amount
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "rule", "discount"),
    [
        ("4999.99", None, 0),
        ("5000.00", "scale-5", 25000),
        ("14999.99", "scale-5", 74999),  # 5 % of 1 499 999 kopecks, rounded down on the line
        ("15000.00", "scale-10", 150000),  # both steps apply (they overlap): best_of takes 10 %
        ("19999.99", "scale-10", 199999),
        ("25000.00", "scale-10", 250000),
    ],
)
def test_a_discount_scales_with_the_receipt_amount(shop: Program, price: str, rule: str | None, discount: int) -> None:
    priced = price_cart(shop, [line("1", "COFFEE-1", price)], 0, 0)
    assert priced.discount_kopecks == discount
    assert {a.rule for a in priced.applications if a.rule.startswith("discount:")} == (
        {f"discount:{rule}"} if rule else set()
    )


def test_the_threshold_is_the_cart_total_before_discounts_and_every_line_explains_it(shop: Program) -> None:
    # 3 000 + 2 000 = 5 000 before the discount: 5 % on both lines, although after its own
    # discount the cart (4 750) is below the step's threshold.
    priced = price_cart(shop, [line("a", "COFFEE-1", "3000"), line("b", "COFFEE-2", "2000")], 0, 0)
    assert discounts(priced) == {"a": 15000, "b": 10000}
    text = explained(priced, "discount:scale-5")
    assert set(text) == {"a", "b"}
    for description in text.values():
        assert description == "Скидка 5 % от 5 000 ₽ (5%; receipt 5 000.00 from 5 000.00 below 20 000.00)"


def test_an_accrual_rule_on_the_receipt_amount(shop: Program) -> None:
    small = price_cart(shop, [line("1", "COFFEE-1", "4000")], 0, 0)
    assert small.points_accrued == 200  # 5 % of 4 000
    big = price_cart(shop, [line("1", "COFFEE-1", "10000")], 0, 0)
    # 10 000 - 5 % = 9 500 paid; 5 % + 2 % of it
    assert big.points_accrued == 665
    step = explained(big, "accrual:big")
    assert step == {"1": "+2%: +2 % с чека от 10 000 ₽ (receipt 10 000.00 from 10 000.00)"}


def test_check_config_rejects_an_empty_step_at_its_line_and_accepts_overlapping_steps() -> None:
    demo = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    demo["program"].update(json.loads(json.dumps(MECHANICS)))
    good = yaml.safe_dump(demo, allow_unicode=True, sort_keys=False)
    assert parse_config(good, "program.yaml").program.discounts.rules[1].when.receipt_from == 15000
    bad = good.replace("receipt_below: 20000", "receipt_below: 5000", 1)
    assert bad != good
    with pytest.raises(ConfigError) as caught:
        parse_config(bad, "program.yaml")
    number = next(n for n, text in enumerate(bad.splitlines(), 1) if "receipt_below: 5000" in text)
    assert re.search(
        rf"program\.yaml:{number}: program\.discounts\.rules\.0\.when\.receipt_below: .*"
        r"receipt_below 5000 must be above receipt_from 5000",
        str(caught.value),
    ), str(caught.value)


# ---------------------------------------------------------------------------------------------
# quantity and N+1
# ---------------------------------------------------------------------------------------------


def test_a_quantity_condition_holds_per_line(shop: Program) -> None:
    priced = price_cart(shop, [line("many", "CUP-1", "10", "10"), line("few", "CUP-1", "10", "9.999")], 0, 0)
    assert discounts(priced) == {"many": 700, "few": 0}
    assert explained(priced, "discount:bulk") == {"many": "От 10 штук 7 % (7%; quantity 10 from 10)"}


def test_every_third_tea_is_free_spread_over_the_tea_lines(shop: Program) -> None:
    cart = [line("a", "TEA-1", "100", "3"), line("b", "TEA-2", "50"), line("c", "COFFEE-1", "1000")]
    priced = price_cart(shop, cart, 0, 0)
    # 4 tea units: one free, the cheapest (50.00), spread 300 : 50 over the tea lines
    assert discounts(priced) == {"a": 4286, "b": 714, "c": 0}
    assert priced.discount_kopecks == 5000
    text = explained(priced, "discount:tea-3")
    assert set(text) == {"a", "b"}
    assert "1 of 4 units, 50.00 spread over the lines" in text["a"]


@pytest.mark.parametrize(
    ("quantities", "free_kopecks"),
    [
        (("2", "0"), 0),  # two units: nothing free
        (("2", "1"), 5000),  # three: the cheapest one
        (("3", "3"), 10000),  # six: the two cheapest (both at 50)
        (("2.5", "0.9"), 0),  # whole units only: 2 of 2.5 kg, none of 0.9
        (("6", "0"), 20000),  # six at 100: two free
    ],
)
def test_n_plus_one_counts_whole_units_and_frees_the_cheapest(
    shop: Program, quantities: tuple[str, str], free_kopecks: int
) -> None:
    cart = [line("a", "TEA-1", "100", quantities[0])]
    if quantities[1] != "0":
        cart.append(line("b", "TEA-2", "50", quantities[1]))
    assert price_cart(shop, cart, 0, 0).discount_kopecks == free_kopecks


def test_n_plus_one_in_a_best_of_with_a_percent_takes_the_larger_per_line(shop: Program) -> None:
    # 3 teas at 2 000 = 6 000: the scale gives 5 % = 300 a line, the free tea 2 000 spread
    # (666.67 a line) is larger on each line.
    priced = price_cart(
        shop, [line("a", "TEA-1", "2000"), line("b", "TEA-2", "2000"), line("c", "TEA-3", "2000")], 0, 0
    )
    assert discounts(priced) == {"a": 66667, "b": 66667, "c": 66666}
    assert {a.rule for a in priced.applications if a.discount_kopecks} == {"discount:tea-3"}


def test_a_rule_gives_exactly_one_of_percent_and_every_nth_free() -> None:
    for bad in ({"percent": 5, "every_nth_free": {"n": 3}}, {}, {"every_nth_free": {"n": 1}}):
        with pytest.raises(ValueError):
            program(discounts={"rules": [{"id": "x", "description": "x", **bad}]})


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@st.composite
def mechanics(draw: st.DrawFn) -> Program:
    rules: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 4))):
        rule: dict[str, Any] = {"id": f"r{i}", "description": f"rule {i}", "priority": i}
        when: dict[str, Any] = {}
        if draw(st.booleans()):
            rule["every_nth_free"] = {"n": draw(st.integers(2, 5))}
        else:
            rule["percent"] = draw(st.integers(0, 100))
        low = draw(st.one_of(st.none(), st.integers(0, 50_000)))
        if low is not None:
            when["receipt_from"] = low
            if draw(st.booleans()):
                when["receipt_below"] = low + draw(st.integers(1, 50_000))
        if draw(st.booleans()):
            when["quantity_from"] = draw(st.sampled_from(["1", "2", "3", "0.5"]))
        if draw(st.booleans()):
            when["kinds"] = [draw(st.sampled_from(["a", "b"]))]
        rule["when"] = when
        take_as = draw(st.sampled_from(["discount", "points", "split"]))
        rule["take_as"] = take_as
        if take_as == "split":
            rule["points_share_percent"] = draw(st.integers(0, 100))
        rules.append(rule)
    return program(
        point_value=draw(st.sampled_from(["0.01", "0.50", "1.00", "3.00"])),
        accrual={"percent": draw(st.integers(0, 100))},
        redemption={"max_share_percent": draw(st.integers(0, 100))},
        catalogue={"kinds": [{"code": "a", "prefixes": ["A"]}, {"code": "b", "prefixes": ["B"]}]},
        discounts={"combine": draw(st.sampled_from(["best_of", "sum", "exclusive"])), "rules": rules},
    )


carts = st.lists(
    st.tuples(
        st.sampled_from(["A-1", "B-1", "Z-1"]),
        st.integers(min_value=0, max_value=3_000_000),  # kopecks
        st.sampled_from(["1", "2", "3", "0.5", "4.25", "7"]),
    ),
    min_size=1,
    max_size=8,
)


def cart_lines(cart: list[tuple[str, int, str]]) -> list[CartLine]:
    return [
        CartLine(
            line_id=str(i),
            item=item,
            quantity=Decimal(qty),
            price=(Decimal(amount) / 100 / Decimal(qty)).quantize(Decimal("0.01"), rounding=ROUND_CEILING),
            amount=Decimal(amount) / 100,
        )
        for i, (item, amount, qty) in enumerate(cart)
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prog=mechanics(), cart=carts, fraction=st.fractions(min_value=0, max_value=1), balance=st.integers(0, 10**6))
def test_discounts_never_exceed_the_line_and_points_are_never_negative(
    prog: Program, cart: list[tuple[str, int, str]], fraction: Fraction, balance: int
) -> None:
    lines = cart_lines(cart)
    probe = price_cart(prog, lines, 0, balance)
    points = int(probe.max_points_payable * fraction)
    priced = price_cart(prog, lines, points, balance)
    pv = prog.point_value_kopecks
    assert priced.points_spent == sum(ln.points_spent for ln in priced.lines) == points
    for ln in priced.lines:
        assert 0 <= ln.discount_kopecks <= ln.amount_kopecks
        assert ln.amount_kopecks - ln.discount_kopecks - ln.points_spent * pv >= 0
        assert ln.points_accrued >= 0 and ln.points_spent >= 0
    assert priced.points_accrued == sum(ln.points_accrued for ln in priced.lines) >= 0
    assert priced.payable_kopecks >= 0
    # every kopeck of discount is explained by a rule on its line
    assert sum(a.discount_kopecks for a in priced.applications) == priced.discount_kopecks


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prog=mechanics(),
    cart=carts,
    fraction=st.fractions(min_value=0, max_value=1),
    cuts=st.lists(st.lists(st.fractions(min_value=0, max_value=1), max_size=4), min_size=8, max_size=8),
)
def test_refunds_of_any_split_add_up_to_the_whole(
    prog: Program, cart: list[tuple[str, int, str]], fraction: Fraction, cuts: list[list[Fraction]]
) -> None:
    """Each line returned in any number of parts: the discount, points spent and points earned
    given or taken back (cumulatively per line, as the ledger takes them back) add up to
    exactly the line's, and never go negative."""
    lines = cart_lines(cart)
    probe = price_cart(prog, lines, 0, 10**6)
    priced = price_cart(prog, lines, int(probe.max_points_payable * fraction), 10**6)
    for ln, steps in zip(priced.lines, cuts, strict=False):
        whole = Fraction(Decimal(ln.quantity))
        returned = sorted({whole * cut for cut in steps} | {whole})
        for value in (ln.discount_kopecks, ln.points_spent, ln.points_accrued):
            done = Fraction(0)
            parts = []
            for upto in returned:
                parts.append(cumulative_share(value, upto, whole) - cumulative_share(value, done, whole))
                done = upto
            assert all(part >= 0 for part in parts)
            assert sum(parts) == value


# ---------------------------------------------------------------------------------------------
# through a running gateway: the JSON API and the 1C till price alike
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def mechanics_gateway(start_gateway: Any) -> Gateway:
    demo = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    demo["program"].update(json.loads(json.dumps(MECHANICS)))
    config = parse_config(yaml.safe_dump(demo, allow_unicode=True, sort_keys=False), "mechanics.yaml")
    gw: Gateway = start_gateway(config)
    return gw


def test_json_api_and_the_1c_till_give_the_same_n_plus_one_and_scale(mechanics_gateway: Gateway) -> None:
    gw = mechanics_gateway
    # The JSON API: 3 teas at 1 700 = 5 100 (scale 5 % = 85 a line; the free tea 1 700 spread
    # 566.67 a line is larger), one anonymous calculation.
    body = {
        "lines": [
            {"line_id": "1", "item": TEA_GUID, "price": "1700.00", "quantity": "2"},
            {"line_id": "2", "item": "TEA-OOLONG", "price": "1700.00", "quantity": "1"},
        ]
    }
    api = gw.http.post("/api/v1/calculate", json=body, headers={**TILL, **key()})
    assert api.status_code == 200, api.text
    data = api.json()
    assert [(ln["line_id"], ln["discount"]) for ln in data["lines"]] == [("1", "1133.33"), ("2", "566.67")]
    assert data["total_discount"] == "1700.00"
    rules = {(a["rule"], a["line_id"]) for a in data["explanation"] if Decimal(a["discount"])}
    assert rules == {("discount:tea-3", "1"), ("discount:tea-3", "2")}

    # The 1C till (1C:УНФ, AlexanderYekat/unf, CommonModules/ОбщегоНазначенияРМК: the cart of
    # calculatediscounts; DataProcessors/РабочееМестоКассира/Forms/ФормаРМК reads
    # AmountOfAutomaticDiscount per line) — the same goods, anonymous (no card shown yet).
    goods = [
        {
            "LineUID": "1",
            "Count": 2,
            "Item": {"Ref": TEA_GUID, "Name": "Чай улун"},
            "Price": 1700,
            "Amount": 3400,
            "AmountOfAutomaticDiscount": 0,
            "AmountOfManualDiscount": 0,
            "TotalAmount": 3400,
            "VATRate": "20%",
        },
        {
            "LineUID": "2",
            "Count": 1,
            "Item": {"Ref": "TEA-OOLONG", "Name": "Чай улун"},
            "Price": 1700,
            "Amount": 1700,
            "AmountOfAutomaticDiscount": 0,
            "AmountOfManualDiscount": 0,
            "TotalAmount": 1700,
            "VATRate": "20%",
        },
    ]
    cart = {
        "ObjectTime": "2026-11-23T12:30:00",
        "CurrentDate": "2026-11-23T12:30:00",
        "LoyaltyCardsList": [],
        "LoyaltyCardPresented": False,
        "RetailStore": {"Ref": "3c2e9a10-0000-4000-8000-0000000000a1", "Name": "Магазин"},
        "BlockBonuses": "0",
        "GetMaxBonusPay": True,
        "Return": False,
        "Currency": "руб.",
        "Goods": goods,
    }
    reply = raw_request(
        gw.url,
        "GET",
        "/hs/loyaltyservice/calculatediscounts/",
        auth=basic_header("касса", "demo-till"),
        body=json.dumps(cart, ensure_ascii=False).encode(),
    )
    assert reply.status == 200, reply.body
    till = reply.json()
    assert isinstance(till, dict) and till.get("Error") is False, till
    automatic = {g["LineUID"]: Decimal(str(g["AmountOfAutomaticDiscount"])) for g in till["Goods"]}
    assert automatic == {"1": Decimal("1133.33"), "2": Decimal("566.67")}


# ---------------------------------------------------------------------------------------------
# tier progress: GET /api/v1/cards/{number}/tier
# ---------------------------------------------------------------------------------------------

TIERS: dict[str, Any] = {
    "window": {"kind": "quarter"},
    "levels": [
        {"code": "base", "name": "Базовый", "from_turnover": 0, "to_turnover": 10000, "cashback_percent": 5},
        {"code": "silver", "name": "Серебряный", "from_turnover": 10000, "to_turnover": 50000, "cashback_percent": 7},
        {"code": "gold", "name": "Золотой", "from_turnover": 50000, "cashback_percent": 10},
    ],
}


def test_tier_progress_follows_the_purchases(start_gateway: Any) -> None:
    demo = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    demo["program"].update(json.loads(json.dumps({**MECHANICS, "tiers": TIERS})))
    gw: Gateway = start_gateway(parse_config(yaml.safe_dump(demo, allow_unicode=True, sort_keys=False), "t.yaml"))
    gw.clock.freeze()
    card = card_with_points(gw.service, 100)
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Moscow")).date()
    first_month = (today.month - 1) // 3 * 3 + 1
    start = date(today.year, first_month, 1)
    end = (date(today.year + 1, 1, 1) if first_month == 10 else date(today.year, first_month + 3, 1)) - timedelta(1)

    def progress() -> dict[str, Any]:
        reply = gw.http.get(f"/api/v1/cards/{card}/tier", headers=TILL)
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        return data

    before = progress()
    assert before["tier"] == {"code": "base", "name": "Базовый", "cashback_percent": "5"}
    assert (before["qualifying_turnover"], before["window_turnover"], before["remaining"]) == (
        "0.00",
        "0.00",
        "10000.00",
    )
    assert before["next_tier"]["code"] == "silver" and before["next_tier_from"] == "10000.00"
    assert (before["window"], before["window_start"], before["window_end"]) == ("quarter", str(start), str(end))

    # 12 000 less the 5 % scale = 11 400 paid: the purchase crosses into silver at once
    receipt = {
        "receipt_id": "r-tier-1",
        "card_number": card,
        "lines": [{"line_id": "1", "item": "COFFEE-1", "price": "12000.00", "quantity": "1"}],
    }
    committed = gw.http.post("/api/v1/receipts", json=receipt, headers={**TILL, **key()})
    assert committed.status_code == 200, committed.text
    after = progress()
    assert after["tier"]["code"] == "silver"
    assert (after["qualifying_turnover"], after["window_turnover"]) == ("11400.00", "11400.00")
    assert after["next_tier"]["code"] == "gold" and after["remaining"] == "38600.00"
    # an unknown card is the API's stable error in its own shape
    missing = gw.http.get("/api/v1/cards/2999999999999/tier", headers=TILL)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "card_not_found"


def test_an_n_plus_one_receipt_refunded_in_parts_adds_up_to_the_whole(mechanics_gateway: Gateway) -> None:
    """A booked N+1 receipt returned unit by unit: the money, the points given back and the
    points taken back add up to exactly the receipt's, and the ledger's invariants hold."""
    gw = mechanics_gateway
    card = card_with_points(gw.service, 500)
    receipt = {
        "receipt_id": "r-n1",
        "card_number": card,
        "points_to_spend": 301,
        "lines": [
            {"line_id": "1", "item": "TEA-1", "price": "333.33", "quantity": "3"},
            {"line_id": "2", "item": "TEA-2", "price": "100.01", "quantity": "1"},
            {"line_id": "3", "item": "COFFEE-1", "price": "57.77", "quantity": "1"},
        ],
    }
    booked = gw.http.post("/api/v1/receipts", json=receipt, headers={**TILL, **key()})
    assert booked.status_code == 200, booked.text
    result = booked.json()
    # four teas: one free, the cheapest (100.01) spread 999.99 : 100.01 over the tea lines
    assert [ln["discount"] for ln in result["lines"]] == ["90.92", "9.09", "0.00"]
    assert result["points_spent"] == 301
    parts = [("1", "1"), ("2", "1"), ("1", "2"), ("3", "1")]
    money, returned, reversed_ = Decimal(0), 0, 0
    for number, (line_id, quantity) in enumerate(parts):
        refund = {
            "refund_id": f"rf-{number}",
            "lines": [{"line_id": line_id, "quantity": quantity}],
        }
        reply = gw.http.post("/api/v1/receipts/r-n1/refunds", json=refund, headers={**TILL, **key()})
        assert reply.status_code == 200, reply.text
        data = reply.json()
        money += Decimal(data["amount_refunded"])
        returned += data["points_returned"]
        reversed_ += data["points_reversed"]
        assert data["points_returned"] >= 0 and data["points_reversed"] >= 0
    assert money == Decimal(result["total_amount"]) - Decimal(result["total_discount"])
    assert (returned, reversed_) == (result["points_spent"], result["points_accrued"])
    balance = gw.http.get(f"/api/v1/cards/{card}/balance", headers=TILL).json()
    assert balance["balance"] == 500
    gw.assert_invariants()

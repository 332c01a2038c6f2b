"""Issue 19: the customer's choice of a discount or points (``reward_choice``), at the engine and
through the JSON API; protocols that cannot carry the choice (the 1C till, Manzana SOAP) get the
program's default.

Point value 1 rouble; 5 % accrual; a 10 % discount for regulars.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import yaml

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import CartLine, CommitRequest
from contracts.program import SimulationCart
from gateway.config import DEMO_CONFIG, parse_config
from gateway.core.pricing import PricedCart, price_cart
from gateway.core.program import Program
from gateway.core.rules.context import PricingContext
from gateway.core.simulation import simulate
from gateway.ledger.canonical import canonical_hash
from tests.adapters.onec.test_soap_manzana import SAVON_HEADERS, post, savon_cheque, savon_reply
from tests.conftest import Gateway
from tests.support import TILL, card_with_points, key

BASE: dict[str, Any] = {"name": "test", "accrual": {"percent": 5}, "redemption": {"max_share_percent": 30}}
CHOICE: dict[str, Any] = {
    "discounts": {"rules": [{"id": "regular", "description": "Скидка 10 % постоянным", "percent": 10}]},
    "reward_choice": {"default": "points", "description": "Скидка или баллы"},
}
CARDED = PricingContext()  # a customer with a card (anonymous=False)


def program(**sections: Any) -> Program:
    return Program.model_validate({**BASE, **sections})


def cart() -> list[CartLine]:
    return [
        CartLine(line_id="1", item="SKU-1", price=Decimal("600"), quantity=Decimal(1)),
        CartLine(line_id="2", item="SKU-2", price=Decimal("200"), quantity=Decimal(2)),
    ]


def steps(priced: PricedCart) -> dict[str, str]:
    return {a.rule: a.description for a in priced.applications if a.line_id is None}


@pytest.mark.parametrize(
    ("reward", "discount", "accrued", "text"),
    [
        (None, 0, 50, "Скидка или баллы: the program's default points, no discount rule applies"),
        ("points", 0, 50, "Скидка или баллы: the customer chose points, no discount rule applies"),
        ("discount", 10000, 0, "Скидка или баллы: the customer chose the discount, no points are accrued"),
    ],
)
def test_the_customer_gets_the_discount_or_the_points_never_both(
    reward: Any, discount: int, accrued: int, text: str
) -> None:
    priced = price_cart(program(**CHOICE), cart(), 0, 0, context=CARDED, reward=reward)
    assert (priced.discount_kopecks, priced.points_accrued, priced.reward) == (discount, accrued, reward or "points")
    assert steps(priced)["reward_choice"] == text
    assert all(line.points_accrued == 0 for line in priced.lines) == (accrued == 0)


def test_without_a_card_the_purchase_gets_the_discount() -> None:
    priced = price_cart(program(**CHOICE), cart(), 0, 0, context=PricingContext(anonymous=True), reward="points")
    assert (priced.discount_kopecks, priced.points_accrued, priced.reward) == (10000, 0, "discount")
    assert steps(priced)["reward_choice"] == "Скидка или баллы: no card, so the discount, no points are accrued"


def test_the_discount_choice_drops_a_discount_taken_as_points_too() -> None:
    rules = [{"id": "pts", "description": "5 % баллами", "percent": 5, "take_as": "points"}]
    prog = program(discounts={"rules": rules}, reward_choice={"default": "discount"})
    assert price_cart(prog, cart(), 0, 0, context=CARDED).points_accrued == 0
    # points: the accrual (5 % of 1 000), no discount rule; without a choice both (+ 5 % as points)
    assert price_cart(prog, cart(), 0, 0, context=CARDED, reward="points").points_accrued == 50
    assert price_cart(program(discounts={"rules": rules}), cart(), 0, 0, context=CARDED).points_accrued == 100


def test_a_promo_code_applies_whatever_the_choice() -> None:
    prog = program(**CHOICE, promo_codes=[{"code": "SALE", "description": "−100 ₽", "discount_amount": 100}])
    promo = prog.promo("SALE")
    priced = price_cart(prog, cart(), 0, 0, promo, context=CARDED, reward="points")
    assert (priced.discount_kopecks, priced.points_accrued) == (10000, 45)  # 5 % of 900


def test_a_program_without_a_choice_refuses_one() -> None:
    with pytest.raises(LoyaltyError) as caught:
        price_cart(program(), cart(), 0, 0, context=CARDED, reward="discount")
    assert caught.value.code == ErrorCode.VALIDATION_ERROR
    plain = price_cart(program(**{"discounts": CHOICE["discounts"]}), cart(), 0, 0, context=CARDED)
    assert (plain.discount_kopecks, plain.points_accrued, plain.reward) == (10000, 45, None)


def test_a_request_without_a_choice_fingerprints_as_before_the_field_existed() -> None:
    """Receipts booked before ``reward`` existed keep their idempotency: a request that makes no
    choice dumps without the key, one that does dumps with it (and so is another request)."""
    plain = CommitRequest(receipt_id="r", card_number="1", lines=cart())
    assert "reward" not in plain.model_dump()
    chosen = plain.model_copy(update={"reward": "points"})
    assert chosen.model_dump()["reward"] == "points"
    assert canonical_hash("commit", plain) != canonical_hash("commit", chosen)
    assert canonical_hash("commit", plain) == canonical_hash("commit", CommitRequest.model_validate(plain.model_dump()))


def test_a_sample_cart_simulates_the_choice() -> None:
    prog = program(**CHOICE)
    sample = {"name": "скидка", "lines": [line.model_dump() for line in cart()], "reward": "discount"}
    chosen = simulate(prog, SimulationCart.model_validate(sample))
    assert (chosen.total_discount, chosen.points_to_accrue) == (Decimal("100.00"), 0)
    default = simulate(prog, SimulationCart.model_validate({**sample, "reward": None}))
    assert (default.total_discount, default.points_to_accrue) == (Decimal("0.00"), 50)


# ---------------------------------------------------------------------------------------------
# through a running gateway
# ---------------------------------------------------------------------------------------------


def config(extra: dict[str, Any]) -> Any:
    demo = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    demo["program"].update(json.loads(json.dumps(extra)))
    return parse_config(yaml.safe_dump(demo, allow_unicode=True, sort_keys=False), "choice.yaml")


LINES = [
    {"line_id": "1", "item": "SKU-1", "price": "600.00", "quantity": "1"},
    {"line_id": "2", "item": "SKU-2", "price": "200.00", "quantity": "2"},
]


@pytest.fixture
def choice_gateway(start_gateway: Any) -> Gateway:
    gw: Gateway = start_gateway(config(CHOICE))
    return gw


def test_the_json_api_calculates_and_books_the_customers_choice(choice_gateway: Gateway) -> None:
    gw = choice_gateway
    card = card_with_points(gw.service, 100)
    calc = gw.http.post(
        "/api/v1/calculate", json={"card_number": card, "lines": LINES, "reward": "discount"}, headers={**TILL, **key()}
    )
    assert calc.status_code == 200, calc.text
    data = calc.json()
    assert (data["total_discount"], data["points_to_accrue"], data["reward"]) == ("100.00", 0, "discount")
    assert [ln["discount"] for ln in data["lines"]] == ["60.00", "40.00"]
    default = gw.http.post("/api/v1/calculate", json={"card_number": card, "lines": LINES}, headers={**TILL, **key()})
    assert (default.json()["total_discount"], default.json()["points_to_accrue"]) == ("0.00", 50)

    receipt = {"receipt_id": "r-choice", "card_number": card, "lines": LINES, "reward": "discount"}
    booked = gw.http.post("/api/v1/receipts", json=receipt, headers={**TILL, **key()})
    assert booked.status_code == 200, booked.text
    result = booked.json()
    assert (result["total_discount"], result["points_accrued"], result["amount_payable"]) == ("100.00", 0, "900.00")
    assert any(a["rule"] == "reward_choice" for a in result["explanation"])
    # a till's retry of the same receipt gets the same answer; the same receipt with the other
    # choice is another receipt under a used id
    again = gw.http.post("/api/v1/receipts", json=receipt, headers={**TILL, **key()})
    assert again.json()["transaction_id"] == result["transaction_id"]
    other = gw.http.post("/api/v1/receipts", json={**receipt, "reward": "points"}, headers={**TILL, **key()})
    assert other.json()["error"]["code"] == "receipt_already_committed", other.text

    points = {"receipt_id": "r-points", "card_number": card, "lines": LINES, "reward": "points"}
    booked = gw.http.post("/api/v1/receipts", json=points, headers={**TILL, **key()})
    assert (booked.json()["total_discount"], booked.json()["points_accrued"]) == ("0.00", 50)
    balance = gw.http.get(f"/api/v1/cards/{card}/balance", headers=TILL).json()
    assert balance["balance"] == 150
    gw.assert_invariants()


def test_a_choice_where_the_program_offers_none_is_refused_and_books_nothing(gateway: Gateway) -> None:
    card = card_with_points(gateway.service, 100)
    before = gateway.ledger_snapshot()
    receipt = {"receipt_id": "r-x", "card_number": card, "lines": LINES, "reward": "points"}
    reply = gateway.http.post("/api/v1/receipts", json=receipt, headers={**TILL, **key()})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "validation_error"
    assert gateway.ledger_snapshot() == before
    bad = gateway.http.post("/api/v1/calculate", json={"lines": LINES, "reward": "both"}, headers={**TILL, **key()})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    ("default", "discount", "charged"), [("points", "0.000", "76.00"), ("discount", "10.000", "0.00")]
)
def test_a_soap_cheque_cannot_choose_and_gets_the_programs_default(
    start_gateway: Any, default: str, discount: str, charged: str
) -> None:
    """Manzana's ``ChequeRequest`` has no element for such a choice (the WSDL recorded in
    Jeiwan/manzana-client ``spec/fixtures``): a cheque gets the program's default."""
    gw: Gateway = start_gateway(config({**CHOICE, "reward_choice": {"default": default}}))
    reply = savon_reply(post(gw, savon_cheque("Soft", f"c-{default}"), SAVON_HEADERS))
    assert (reply["discount"], reply["charged_bonus"]) == (discount, charged)

"""``gateway simulate FILE CARTS``: the integrator's dry run of sample carts before launch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gateway.cli import app as cli

PROGRAMS = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs"
BUILDING = PROGRAMS / "building-materials.yaml"
CARTS = PROGRAMS / "building-materials-carts.yaml"


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["simulate", *args])


def test_the_sample_carts_as_json() -> None:
    result = run(str(BUILDING), str(CARTS), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["program"] == "stroydvor"
    summary = [
        (
            r["segment"],
            r["zone"],
            r["tier"],
            r["tier_upgrade"],
            r["total_discount"],
            r["max_points_payable"],
            r["points_to_accrue"],
            r["points_pending"],
            r["referral_points"],
        )
        for r in data["results"]
    ]
    assert summary == [
        ("retail", "msk", "silver", None, "0.00", 2000, 944, 0, 0),  # retail 10 %, small wholesale 2 %
        ("retail", "msk", "silver", "gold", "0.00", 5100, 2550, 0, 0),  # crossing into gold earns 15 %
        ("partner", "spb", None, None, "1700.00", 4335, 700, 0, 0),  # split partner discount + paint offer
        ("wholesale", "nsk", None, None, "1520.00", 0, 0, 0, 0),  # wholesale: no points either way
        ("new_home", "mo", "base", None, "1008.00", 0, 6139, 4500, 401),  # first purchase, birthday, referral
    ]
    first = data["results"][0]
    assert [
        (ln["line_id"], ln["kind"], ln["price_type"], ln["points_spent"], ln["points_accrued"]) for ln in first["lines"]
    ] == [
        ("1", "tiles", "retail", 669, 783),
        ("2", "cement", "small_wholesale", 331, 161),
        ("3", "services", "retail", 0, 0),
    ]


def test_the_sample_carts_as_tables() -> None:
    result = run(str(BUILDING), str(CARTS))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for shown in (
        "Retail crossing into gold with this purchase segment retail, zone msk, tier silver → gold",
        "tier.upgrade",
        "this purchase (17 000.00) takes the turnover to 307 000.00",
        "discount:partner-300k",
        "Partner discount, quarterly turnover from 300 000 (8%, 50% of it as points)",
        "price_type:wholesale",
        "until shipment",
        "referral:foreman",
        "redemption.allow_on_first_purchase",
    ):
        assert shown in text, shown


def test_bad_carts_are_reported_with_their_line(tmp_path: Path) -> None:
    carts = tmp_path / "carts.yaml"
    carts.write_text(
        "carts:\n  - name: x\n    lines:\n      - {line_id: '1', item: A, quantity: 1, price: -5}\n", "utf-8"
    )
    result = run(str(BUILDING), str(carts))
    assert result.exit_code == 2
    assert "carts.yaml:4: carts.0.lines.0.price" in " ".join(result.output.split())


def test_a_refused_cart_fails_the_run_but_the_others_are_shown(tmp_path: Path) -> None:
    carts = tmp_path / "carts.json"
    cart = {"lines": [{"line_id": "1", "item": "TL-1", "quantity": 1, "price": "1000.00"}]}
    carts.write_text(
        json.dumps([{**cart, "name": "greedy", "points_to_spend": 301}, {**cart, "name": "fine"}]), "utf-8"
    )
    result = run(str(BUILDING), str(carts), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["results"][0]["error"]["code"] == "points_limit_exceeded"
    assert data["results"][0]["error"]["details"]["max_points_payable"] == 300
    assert data["results"][1]["points_to_accrue"] == 50


def test_an_unknown_promo_code_is_refused(tmp_path: Path) -> None:
    carts = tmp_path / "carts.yaml"
    carts.write_text(
        "- {promo_code: NOPE, lines: [{line_id: '1', item: A, quantity: 1, price: 10}]}\n"
        "- {date: 2026-04-01, promo_code: spring10, lines: [{line_id: '1', item: A, quantity: 1, price: 10}]}\n"
        "- {date: 2026-06-01, promo_code: SPRING10, lines: [{line_id: '1', item: A, quantity: 1, price: 10}]}\n",
        "utf-8",
    )
    result = run(str(BUILDING), str(carts), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["results"][0]["error"]["code"] == "promocode_not_found"
    assert data["results"][1]["total_discount"] == "1.00"
    assert data["results"][2]["error"]["code"] == "promocode_unavailable"
    assert data["results"][2]["error"]["details"]["reason"] == "expired"

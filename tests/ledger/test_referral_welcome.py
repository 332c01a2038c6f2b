"""Referral both ways over real HTTP: the friend who registers naming a referrer gets
``bonuses.referral_welcome`` of their own at once (beside the program's welcome bonus), once per
friend whatever the channel or the retries; the referrer still earns the program's share of the
friend's purchases; ``check-config`` rejects a bad ``referral_welcome``.

The building-materials example program with ``referral_welcome: {points: 300, expiry_days: 90}``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import load_config
from gateway.store.models import Lot
from gateway.store.models_program import BonusGrant
from tests.conftest import Gateway, json_of
from tests.support import SITE, TILL, FakeClock, key

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"
FOREMAN, FRIEND, STRANGER = "2700000021011", "2700000021028", "2700000021035"
WALLPAPER = [{"line_id": "1", "item": "WP-5001", "quantity": "10", "price": "1000.00"}]


def program_file(tmp_path: Path, welcome: str = "{points: 300, expiry_days: 90}") -> Path:
    text = BUILDING.read_text("utf-8")
    assert text.count("\n  bonuses:\n") == 1
    path = tmp_path / "building-referral.yaml"
    path.write_text(text.replace("\n  bonuses:\n", f"\n  bonuses:\n    referral_welcome: {welcome}\n"), "utf-8")
    return path


@pytest.fixture
def gw(start_gateway: Any, tmp_path: Path) -> Gateway:
    return start_gateway(config=load_config(program_file(tmp_path)))  # type: ignore[no-any-return]


def post(gw: Gateway, path: str, body: dict[str, Any], who: dict[str, str], status: int = 200, **h: str) -> Any:
    response = gw.http.post(path, json=body, headers={**who, **(h or key())})
    assert response.status_code == status, response.text
    return json_of(response)


def balance(gw: Gateway, card: str) -> int:
    response = gw.http.get(f"/api/v1/cards/{card}/balance", headers=TILL)
    assert response.status_code == 200, response.text
    return int(json_of(response)["balance"])


def test_the_referred_friend_gets_their_own_bonus_once_and_the_referrer_their_share(
    gw: Gateway, clock: FakeClock
) -> None:
    post(gw, "/api/v1/customers", {"card_number": FOREMAN, "phone": "+79990021011", "segment": "partner"}, SITE)
    assert balance(gw, FOREMAN) == 200  # the program's welcome bonus only: nobody referred the foreman
    friend_body = {"card_number": FRIEND, "phone": "+79990021028", "referrer_card": FOREMAN}
    same_key = key()
    friend = post(gw, "/api/v1/customers", friend_body, SITE, **same_key)
    assert friend["welcome_points"] == 200 + 300 and friend["referrer_id"] is not None
    assert balance(gw, FRIEND) == 500
    # A retry of the registration and a second registration of the same phone grant nothing more.
    assert post(gw, "/api/v1/customers", friend_body, SITE, **same_key) == friend
    again = post(gw, "/api/v1/customers", {**friend_body, "card_number": None}, TILL, 409)
    assert again["error"]["code"] == "customer_already_exists"
    assert balance(gw, FRIEND) == 500
    with gw.service.db.read() as session:
        grants = session.exec(select(BonusGrant).where(BonusGrant.kind == "referral_welcome")).all()
        assert [(g.customer_id, g.points, g.source_customer_id) for g in grants] == [
            (friend["customer_id"], 300, friend["referrer_id"])
        ]
        lot = session.get(Lot, grants[0].lot_id)
        assert lot is not None and lot.source == "referral_welcome" and lot.expires_at is not None
        assert lot.expires_at - lot.created_at == timedelta(days=90)

    # The friend buys: the foreman earns the program's referral share as before (3 % of the
    # finishing goods paid with money).
    receipt = post(
        gw,
        "/api/v1/receipts",
        {"receipt_id": "R-21-1", "card_number": FRIEND, "store": "S01", "lines": WALLPAPER},
        TILL,
    )
    assert receipt["points_accrued"] > 0
    assert balance(gw, FOREMAN) == 200 + 300  # 3 % of 10 000
    gw.assert_invariants()


def test_without_a_referrer_or_the_setting_there_is_no_friend_bonus(
    start_gateway: Any, gw: Gateway, tmp_path: Path
) -> None:
    stranger = post(gw, "/api/v1/customers", {"card_number": STRANGER, "phone": "+79990021035"}, TILL)
    assert stranger["welcome_points"] == 200 and balance(gw, STRANGER) == 200
    unknown = post(gw, "/api/v1/customers", {"card_number": FRIEND, "referrer_card": "999"}, SITE, 404)
    assert unknown["error"]["code"] == "referrer_not_found"
    plain = start_gateway(config=load_config(BUILDING))  # no referral_welcome in the program
    post(plain, "/api/v1/customers", {"card_number": FOREMAN, "segment": "partner"}, SITE)
    friend = post(plain, "/api/v1/customers", {"card_number": FRIEND, "referrer_card": FOREMAN}, SITE)
    assert friend["welcome_points"] == 200 and balance(plain, FRIEND) == 200


def test_check_config_shows_the_friend_bonus_and_rejects_a_bad_one(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["check-config", str(program_file(tmp_path))])
    assert ok.exit_code == 0, ok.output
    assert "referred friend 300" in " ".join(ok.output.split())
    for bad in ("{points: 0}", "{points: 10, expiry_days: 0}", "{points: 10, cashback: 5}"):
        result = runner.invoke(cli, ["check-config", str(program_file(tmp_path, bad))])
        assert result.exit_code == 1, bad
        assert "referral_welcome" in " ".join(result.output.split()), result.output


def test_the_referrer_may_be_named_by_phone_in_any_common_notation(gw: Gateway) -> None:
    """The phone is the card wherever a card number is accepted: a friend tells the cashier the
    foreman's phone, typed as it comes (8…, +7…, ten digits)."""
    foreman = post(
        gw, "/api/v1/customers", {"card_number": FOREMAN, "phone": "+79990021011", "segment": "partner"}, SITE
    )
    for n, typed in enumerate(("89990021011", "+79990021011", "9990021011")):
        friend = post(gw, "/api/v1/customers", {"phone": f"+7999002110{n}", "referrer_card": typed}, SITE)
        assert (friend["welcome_points"], friend["referrer_id"]) == (200 + 300, foreman["customer_id"])
    unknown = post(gw, "/api/v1/customers", {"phone": "+79990021109", "referrer_card": "89990029999"}, SITE, 404)
    assert unknown["error"]["code"] == "referrer_not_found"

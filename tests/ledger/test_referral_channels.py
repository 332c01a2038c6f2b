"""Referrals in every channel.

Registration (issue 20): a friend registering by SMS code names the referrer with the code request
(kept with the code) or with the confirmation, by card number or phone; the Bitrix site's
``OnAfterUserRegister`` carries the referral code too (an unknown one is dropped there: the user
registered already; the module reads it from a user field); with SMS codes an unknown code is
``referrer_not_found`` before any SMS is paid for. The 1C till's card issue
(``issueclientcard``) has no referrer field — 1C:УНФ sends only ``ПараметрыМетодовБонуснойПодсистемы`` plus ``Client``
(``AlexanderYekat/unf`` ``CommonModules/СерверЛояльностиПолучательДанныхКлиентСервер``,
``ПараметрыЗапросаВыдатьКартуКлиенту``) — so none is invented there.

Returns (issue 19): the intermediary's share follows the friend's purchase back — from a till
receipt's refund and from a web/ERP order's return — exactly as a purchase's own points are
taken back on an ordinary return: the credit's own lots, then the intermediary's other points,
pending ones included; only what they already spent is the shortfall, recorded.

The building-materials example program: the foreman (segment ``partner``) earns 3 % of the tiles
his clients pay in money; ``referral_welcome`` of 300 points for the friend.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from contracts.operations import (
    BalanceRequest,
    CartLine,
    CommitRequest,
    RefundLine,
    RefundRequest,
    RegisterCustomerRequest,
)
from contracts.orders import OrderQuantity, OrderRequest, OrderReturn, OrderShipment
from gateway.config import GatewayConfig, Settings, load_config, parse_config
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Notification
from gateway.store.models_program import GrantReversal
from gateway.wiring import build_service
from tests.conftest import Gateway, json_of
from tests.support import SITE, FakeClock, key, noon

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"
DEMO = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "gateway.yaml"
SITE_SECRET = "demo-bitrix-site-secret"


def program_text(pending_days: int = 0) -> str:
    text = BUILDING.read_text("utf-8")
    assert text.count("\n  bonuses:\n") == 1 and text.count("    pending_days: 0\n") == 1
    text = text.replace("\n  bonuses:\n", "\n  bonuses:\n    referral_welcome: {points: 300, expiry_days: 90}\n")
    return text.replace("    pending_days: 0\n", f"    pending_days: {pending_days}\n")


# -- registration: SMS code and the Bitrix site ----------------------------------------------------


@pytest.fixture
def gw(start_gateway: Any) -> Gateway:
    config = parse_config(program_text(), "building.yaml")
    demo = load_config(DEMO)
    assert demo.bitrix is not None
    site_only = demo.bitrix.model_copy(update={"commerceml": None})
    return start_gateway(config=config.model_copy(update={"bitrix": site_only}))  # type: ignore[no-any-return]


def post(gw: Gateway, path: str, body: dict[str, Any], who: dict[str, str], status: int = 200) -> Any:
    response = gw.http.post(path, json=body, headers={**who, **key()})
    assert response.status_code == status, response.text
    return json_of(response)


def foreman(gw: Gateway, card: str, phone: str) -> str:
    body = {"card_number": card, "phone": phone, "segment": "partner"}
    return str(post(gw, "/api/v1/customers", body, SITE)["customer_id"])


def last_code(gw: Gateway, phone: str) -> str:
    with gw.service.db.read() as session:
        codes = session.exec(
            select(Notification.code).where(Notification.phone == phone, Notification.topic == "verification")
        ).all()
    assert codes and codes[-1] is not None
    return codes[-1]


def test_sms_registration_with_the_referral_code_given_with_the_code_request(gw: Gateway) -> None:
    referrer = foreman(gw, "2700000041015", "+79990041015")
    sent = post(gw, "/api/v1/registration/code", {"phone": "+79990041022", "referrer": "2700000041015"}, SITE, 202)
    assert sent["phone"] == "+799***1022"
    code = last_code(gw, "+79990041022")
    friend = post(gw, "/api/v1/registration/verify", {"phone": "+79990041022", "code": code}, SITE)
    assert friend["created"] is True and friend["referrer_id"] == referrer
    assert friend["welcome_points"] == 200 + 300  # the program's welcome bonus and the friend's own


def test_sms_registration_with_the_referrer_named_by_phone_at_confirmation(gw: Gateway) -> None:
    """The confirmation's referral code wins over the code request's; a phone in any common
    notation names the referrer as their card does."""
    foreman(gw, "2700000041039", "+79990041039")
    second = foreman(gw, "2700000041046", "+79990041046")
    post(gw, "/api/v1/registration/code", {"phone": "+79990041053", "referrer": "2700000041039"}, SITE, 202)
    code = last_code(gw, "+79990041053")
    body = {"phone": "+79990041053", "code": code, "referrer": "89990041046"}
    friend = post(gw, "/api/v1/registration/verify", body, SITE)
    assert friend["referrer_id"] == second and friend["welcome_points"] == 500


def test_an_unknown_referral_code_is_refused_before_any_code_is_sent(gw: Gateway) -> None:
    refused = post(gw, "/api/v1/registration/code", {"phone": "+79990041060", "referrer": "2799999999999"}, SITE, 404)
    assert refused["error"]["code"] == "referrer_not_found"
    with gw.service.db.read() as session:
        assert session.exec(select(Notification).where(Notification.phone == "+79990041060")).all() == []


def site_event(gw: Gateway, event: str, data: dict[str, Any]) -> Any:
    from adapters.bitrix.site.signing import signature

    raw = json.dumps({"event_id": str(uuid.uuid4()), "event": event, "data": data}).encode()
    timestamp = str(int(gw.clock().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Bitrix-Timestamp": timestamp,
        "X-Bitrix-Signature": signature(SITE_SECRET, timestamp, raw),
    }
    return gw.http.post("/bitrix/site/events", content=raw, headers=headers)


def test_bitrix_site_registration_carries_the_referral_code(gw: Gateway) -> None:
    referrer = foreman(gw, "2700000041077", "+79990041077")
    data = {"user_id": "701", "phone": "+7 999 004-10-84", "name": "Глеб", "referrer_card": "+79990041077"}
    response = site_event(gw, "OnAfterUserRegister", data)
    assert response.status_code == 200, response.text
    friend = json_of(response)["result"]
    assert friend["created"] is True and friend["referrer_id"] == referrer and friend["welcome_points"] == 500
    unknown = site_event(
        gw, "OnAfterUserRegister", {**data, "user_id": "702", "phone": "+79990041091", "referrer_card": "2799999999999"}
    )
    # The event arrives after the user registered on the site: a mistyped code is dropped, the
    # customer is still created (without the friend's bonus).
    assert unknown.status_code == 200, unknown.text
    stranger = json_of(unknown)["result"]
    assert stranger["created"] is True and stranger["referrer_id"] is None and stranger["welcome_points"] == 200


@pytest.mark.skipif(shutil.which("php") is None, reason="php-cli is not installed")
def test_the_bitrix_module_sends_the_referral_code_the_user_came_with(gateway: Gateway, tmp_path: Path) -> None:
    """The module (``integrations/bitrix-module``) reads the code from the user field
    ``referrer_field`` (``UF_LOYALTY_REFERRER``): a phone typed any way names the referrer."""
    from tests.adapters.bitrix.test_bitrix_module import run_php

    out = run_php("register_referral.php", gateway.url, tmp_path / "queue")
    assert out["new_card"] and out["queue"] == {"pending": 0, "failed": 0}
    boris = gateway.http.get("/api/v1/customers", params={"phone": "+79990000002"}, headers=SITE).json()
    dina = gateway.http.get("/api/v1/customers", params={"phone": "+79125554466"}, headers=SITE).json()
    assert dina["referrer_id"] == boris["customer_id"]


# -- returns: the intermediary's share comes back in every channel ------------------------------------


@pytest.fixture
def service(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    """Points wait 14 days before they can be spent (``pending_days``), referral points too."""
    clock.freeze()
    assert clock.frozen_at is not None
    clock.offset = noon(date(2026, 1, 15)) - clock.frozen_at
    config: GatewayConfig = parse_config(program_text(pending_days=14), "building.yaml")
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def register(service: LoyaltyService, card: str, **fields: Any) -> str:
    request = RegisterCustomerRequest(card_number=card, phone=f"+7999{card[-7:]}", **fields)
    return service.register_customer("site", uuid.uuid4().hex, request).customer_id


def tiles(roubles: int, quantity: int = 10) -> list[CartLine]:
    return [CartLine(line_id="1", item="TL-1001", quantity=Decimal(quantity), price=Decimal(roubles) / quantity)]


def buy(service: LoyaltyService, card: str, receipt: str, roubles: int, spend: int | None = None) -> None:
    request = CommitRequest(
        receipt_id=receipt, card_number=card, store="S01", lines=tiles(roubles), points_to_spend=spend
    )
    service.commit("tills", uuid.uuid4().hex, request)


def points(service: LoyaltyService, card: str) -> tuple[int, int]:
    found = service.balance("tills", BalanceRequest(card_number=card))
    return found.available, found.pending


def later(clock: FakeClock, days: int) -> None:
    clock.offset += timedelta(days=days)


def test_a_refunded_till_receipt_takes_the_share_back_from_pending_referral_points_too(
    service: LoyaltyService, clock: FakeClock
) -> None:
    """The foreman earned 300 on his client's first receipt and spent them (his own purchase
    earns him some points, pending); the client's second receipt earned him 300 more, pending
    too. The first receipt is refunded: as on an ordinary return, the 300 come out of what he
    still has — his pending points — and nothing is short."""
    boss, client = "2700000042012", "2700000042029"
    register(service, boss, segment="partner")
    register(service, client, referrer_card=boss)
    buy(service, client, "R-1", 10_000)
    assert points(service, boss) == (200, 300)  # 3 % of 10 000 ₽, pending 14 days
    later(clock, 15)
    buy(service, boss, "R-B-0", 1_000)  # points are not usable on a first purchase
    buy(service, boss, "R-B", 10_000, spend=500)  # the foreman spends all he has
    available, own = points(service, boss)
    assert available == 0 and own > 0  # what his own purchase earns him, pending 14 days
    buy(service, client, "R-2", 10_000)
    assert points(service, boss) == (0, own + 300)

    service.refund("tills", uuid.uuid4().hex, RefundRequest(receipt_id="R-1", refund_id="RF-1", full=True))
    assert points(service, boss) == (0, own)
    with service.db.read() as session:
        (reversal,) = session.exec(select(GrantReversal)).all()
        assert (reversal.points, reversal.shortfall) == (300, 0)
    assert service.check().ok


def test_partial_refunds_of_a_referred_receipt_take_back_exactly_the_whole_share(service: LoyaltyService) -> None:
    boss, client = "2700000042036", "2700000042043"
    register(service, boss, segment="partner")
    register(service, client, referrer_card=boss)
    buy(service, client, "R-3", 10_000)  # ten tiles: 300 for the foreman
    for n, quantity in enumerate((3, 3, 4)):
        lines = [RefundLine(line_id="1", quantity=Decimal(quantity))]
        service.refund("tills", uuid.uuid4().hex, RefundRequest(receipt_id="R-3", refund_id=f"RF-3-{n}", lines=lines))
    assert points(service, boss) == (200, 0)
    with service.db.read() as session:
        assert sorted(r.points for r in session.exec(select(GrantReversal)).all()) == [90, 90, 120]
    assert service.check().ok


def web_order(
    card: str, version: int, shipped: int, returned: int = 0, *, cancelled: bool = False, count: int = 10
) -> OrderRequest:
    at = noon(date(2026, 1, 15))
    return OrderRequest(
        order_id="W-REF-2",
        version=version,
        card_number=card,
        store="S01",
        lines=tiles(1_000 * count, count),
        paid=True,
        cancelled=cancelled,
        shipments=[OrderShipment(shipment_id="S1", shipped_at=at, lines=[OrderQuantity(line_id="1", quantity=shipped)])]
        if shipped
        else [],
        returns=[OrderReturn(return_id="R1", returned_at=at, lines=[OrderQuantity(line_id="1", quantity=returned)])]
        if returned
        else [],
    )


def test_a_returned_order_takes_the_share_back_from_pending_points_and_records_what_is_short(
    service: LoyaltyService, clock: FakeClock
) -> None:
    """A web order (or an ERP one: the same operation) earns the foreman 300, pending until it
    ships, then usable after 14 days; he spends them on a purchase that earns him a little,
    pending. The order is returned in full: what he has pending comes back out first, only the
    rest — points he had already spent — is the shortfall, recorded."""
    boss, client = "2700000042050", "2700000042067"
    register(service, boss, segment="partner")
    register(service, client, referrer_card=boss)
    service.apply_order("site", "o-1", web_order(client, 1, 0))
    assert points(service, boss) == (200, 300)  # pending with the order's own points
    service.apply_order("site", "o-2", web_order(client, 2, 10))
    later(clock, 15)
    assert points(service, boss) == (500, 0)
    buy(service, boss, "R-B2-0", 1_000)  # points are not usable on a first purchase
    buy(service, boss, "R-B2", 4_000, spend=500)  # at most 15 % of building goods in points
    available, own = points(service, boss)
    assert available == 0 and 0 < own < 300

    service.apply_order("site", "o-3", web_order(client, 3, 10, 10))
    assert points(service, boss) == (0, 0)
    with service.db.read() as session:
        (reversal,) = session.exec(select(GrantReversal)).all()
        assert (reversal.points, reversal.shortfall) == (own, 300 - own)
    assert service.check().ok


def test_what_the_foreman_owes_from_a_return_is_netted_against_the_order_s_later_share(
    service: LoyaltyService, clock: FakeClock
) -> None:
    """As with an order's own points: the foreman spent the 300 of a shipped order; 8 of its 10
    tiles come back (240 owed, of which his pending points cover some, the rest is short); the
    order is then changed to 20 tiles, 8 still returned — 360 worth now, 300 more than posted:
    the shortfall is paid from them first, only the rest is credited."""
    boss, client = "2700000042074", "2700000042081"
    register(service, boss, segment="partner")
    register(service, client, referrer_card=boss)
    service.apply_order("site", "o-1", web_order(client, 1, 10))
    later(clock, 15)
    assert points(service, boss) == (500, 0)
    buy(service, boss, "R-B3-0", 1_000)
    buy(service, boss, "R-B3", 4_000, spend=500)
    _, own = points(service, boss)
    assert 0 < own < 240

    service.apply_order("site", "o-2", web_order(client, 2, 10, 8))
    short = 240 - own
    assert points(service, boss) == (0, 0)
    service.apply_order("site", "o-3", web_order(client, 3, 20, 8, count=20))
    assert points(service, boss) == (0, 300 - short)  # pending the program's 14 days
    with service.db.read() as session:
        assert sum(r.shortfall for r in session.exec(select(GrantReversal)).all()) == 0
    assert service.check().ok

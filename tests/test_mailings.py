"""Audiences, mailings with consent and a holdout, unsubscribe links (issue 20).

Uses the building-materials example program (zones of stores, segments, tiers, dates in Moscow
time) on a real database (SQLite or PostgreSQL); the clock is a ``FakeClock``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from contracts.operations import CartLine, CommitRequest, RegisterCustomerRequest
from contracts.profiles import UpdateCustomerRequest
from gateway.audience import Audience, audience_size, customer_batches
from gateway.config import GatewayConfig, Settings, load_config
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Customer
from gateway.wiring import build_service
from tests.support import FakeClock

BUILDING = Path(__file__).resolve().parent.parent / "gateway" / "demo" / "programs" / "building-materials.yaml"


def set_time(clock: FakeClock, moment: datetime) -> None:
    clock.freeze()
    assert clock.frozen_at is not None
    clock.offset = moment - clock.frozen_at


def noon(day: date) -> datetime:
    """Noon in Moscow (09:00 UTC): far from any day boundary."""
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


@pytest.fixture
def config() -> GatewayConfig:
    return load_config(BUILDING)


@pytest.fixture
def service(database_url: str, config: GatewayConfig, clock: FakeClock) -> Iterator[LoyaltyService]:
    set_time(clock, noon(date(2026, 3, 2)))
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def register(
    service: LoyaltyService,
    card: str,
    *,
    email: str | None = None,
    birth: date | None = None,
    consent: bool | None = None,
) -> str:
    request = RegisterCustomerRequest(
        card_number=card, phone=f"+7999{card[-7:]}", name=f"Покупатель {card[-3:]}", email=email, birth_date=birth
    )
    customer_id = service.register_customer("site", uuid.uuid4().hex, request).customer_id
    if consent is not None:
        change = UpdateCustomerRequest(customer_id=customer_id, ad_consent=consent, ad_consent_channel="site")
        service.update_customer("site", uuid.uuid4().hex, change)
    return customer_id


def buy(service: LoyaltyService, card: str, roubles: int, store: str = "S01") -> None:
    request = CommitRequest(
        receipt_id=uuid.uuid4().hex,
        card_number=card,
        store=store,
        lines=[CartLine(line_id="1", item="TL-1001", quantity=Decimal(1), price=Decimal(roubles))],
    )
    service.commit("tills", uuid.uuid4().hex, request)


def size(service: LoyaltyService, **filters: object) -> int:
    with service.db.read() as session:
        return audience_size(session, service.program, Audience.model_validate(filters))


def test_an_audience_selects_by_segment_tier_zone_purchase_dates_birthday_and_lists(
    service: LoyaltyService, clock: FakeClock
) -> None:
    ids = {n: register(service, f"290000000000{n}", birth=date(1990, 5 if n < 3 else 7, 10)) for n in range(1, 7)}
    set_time(clock, noon(date(2026, 1, 10)))
    buy(service, "2900000000001", 1000, store="S06")  # spb, January only: lapsed since February
    set_time(clock, noon(date(2026, 2, 20)))
    buy(service, "2900000000002", 1000, store="S01")  # msk, in February
    buy(service, "2900000000003", 1000, store="S13")  # nsk
    set_time(clock, noon(date(2026, 3, 2)))
    service.update_customer(
        "operator", uuid.uuid4().hex, UpdateCustomerRequest(customer_id=ids[4], segment="wholesale")
    )
    with service.db.write() as session:
        customer = session.get(Customer, ids[5])
        assert customer is not None
        customer.tier = "gold"
        session.add(customer)
        merged = session.get(Customer, ids[6])
        assert merged is not None
        merged.merged_into = ids[5]
        session.add(merged)

    assert size(service) == 5  # the merged customer is never in an audience
    assert size(service, segments=["wholesale"]) == 1
    assert size(service, segments=["retail"]) == 4  # no segment set: the program's default
    assert size(service, tiers=["gold"]) == 1
    assert size(service, zones=["spb"]) == 1
    assert size(service, zones=["spb", "nsk"]) == 2
    assert size(service, stores=["s01"]) == 1  # store codes as typed in any case
    assert size(service, last_purchase_after=date(2026, 2, 1)) == 2
    assert size(service, last_purchase_before=date(2026, 2, 1)) == 1
    assert size(service, birthday_month=5) == 2
    assert size(service, birthday_month=7) == 3
    assert size(service, cards=["2900000000001", "2900000000004"], phones=["8 (999) 000-00-05"]) == 3
    assert size(service, cards=["2900000000006"]) == 0  # merged
    assert size(service, birthday_month=5, last_purchase_after=date(2026, 2, 1)) == 1

    with service.db.read() as session:
        pages = list(customer_batches(session, service.program, Audience(), batch=2))
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(i for page in pages for i in page) == sorted(v for k, v in ids.items() if k != 6)

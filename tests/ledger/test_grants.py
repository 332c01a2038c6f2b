"""One-off grants of points to an audience ("points during the seasonal slump", issue 19): each
customer of the audience once (``grant:<grant id>:<customer>``), with the grant's own expiry,
booked in batches, visible in the customer's history; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from contracts.errors import LoyaltyError
from contracts.operations import BalanceRequest, RegisterCustomerRequest
from contracts.profiles import UpdateCustomerRequest
from gateway.config import GatewayConfig, Settings, load_config
from gateway.ledger.service import LoyaltyService
from gateway.mailings import grants
from gateway.mailings.requests import GrantRequest
from gateway.store.models import LedgerEntry, Lot
from gateway.store.models_mailings import PointsGrant
from gateway.store.models_program import BonusGrant
from gateway.wiring import build_service
from tests.conftest import Gateway
from tests.support import MARKETER, TILL, FakeClock, key

ROOT = Path(__file__).resolve().parents[2]
BUILDING = ROOT / "gateway" / "demo" / "programs" / "building-materials.yaml"
DEMO = ROOT / "gateway" / "demo" / "gateway.yaml"
SLUMP_ENDS = datetime(2026, 4, 30, 20, 59, tzinfo=UTC)  # 23:59 in Moscow


def building() -> GatewayConfig:
    """The building-materials program (segments retail, partner…) with the demo's clients."""
    return load_config(DEMO).model_copy(update={"program": load_config(BUILDING).program, "demo": None})


@pytest.fixture
def service(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(datetime(2026, 2, 10, 9, 0, tzinfo=UTC))
    svc = build_service(Settings(database_url=database_url), building(), clock)
    yield svc
    svc.db.dispose()


def customers(service: LoyaltyService, count: int, segment: str | None = None, prefix: str = "2950") -> list[str]:
    cards = []
    for n in range(count):
        card = f"{prefix}{n:09d}"
        customer = service.register_customer(
            "site", uuid.uuid4().hex, RegisterCustomerRequest(card_number=card, phone=f"+7997{prefix[-3:]}{n:04d}")
        )
        if segment is not None:
            change = UpdateCustomerRequest(customer_id=customer.customer_id, segment=segment)
            service.update_customer("operator", uuid.uuid4().hex, change)
        cards.append(card)
    return cards


def balance(service: LoyaltyService, card: str) -> int:
    return service.balance("tills", BalanceRequest(card_number=card)).available


def slump(**audience: object) -> GrantRequest:
    return GrantRequest.model_validate(
        {"description": "Бонусы в межсезонье", "points": 500, "expires_at": SLUMP_ENDS, "audience": audience}
    )


def test_a_grant_gives_each_customer_of_the_audience_points_with_their_own_expiry(service: LoyaltyService) -> None:
    partners = customers(service, 30, segment="partner")
    others = customers(service, 5, prefix="2951")
    grant = grants.create(service, "operator", "slump-2026", slump(segments=["partner"]))
    done = grants.run(service, grant.id)

    assert (done.state, done.customers, done.points_total) == ("done", 30, 15_000)
    assert {balance(service, card) for card in partners} == {200 + 500}  # 200 welcome points each
    assert {balance(service, card) for card in others} == {200}
    with service.db.read() as session:
        lots = session.exec(select(Lot).where(Lot.source == "grant")).all()
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.kind == "grant")).all()
    assert len(lots) == len(entries) == 30
    assert {lot.expires_at for lot in lots} == {SLUMP_ENDS}
    assert {entry.client_id for entry in entries} == {"operator"}  # who granted them
    customer_id = service.balance("tills", BalanceRequest(card_number=partners[0])).customer_id
    history = service.customer_history("operator", customer_id)
    assert [(e.kind, e.points) for e in history.entries if e.kind == "grant"] == [("grant", 500)]
    assert service.check().ok


def test_re_running_a_grant_grants_nobody_twice(service: LoyaltyService) -> None:
    cards = customers(service, 60)
    grant = grants.create(service, "operator", "slump", slump())
    grants.run(service, grant.id, max_batches=1)  # 25 of 60, then the worker stops
    assert grants.result(service, grant.id).customers == 25
    # Two workers go on at once, then the job runs again on a finished grant.
    workers = [threading.Thread(target=grants.run, args=(service, grant.id)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    grants.run(service, grant.id)
    # A lost cursor (say, restored from an old backup) walks everyone again: nobody gets it twice.
    with service.db.write() as session:
        row = session.get(PointsGrant, grant.id)
        assert row is not None
        row.cursor, row.state = "", "granting"
        session.add(row)
    grants.run(service, grant.id)

    found = grants.result(service, grant.id)
    assert (found.state, found.customers, found.points_total) == ("done", 60, 30_000)
    assert {balance(service, card) for card in cards} == {700}
    with service.db.read() as session:
        keys = session.exec(select(BonusGrant.key).where(col(BonusGrant.kind) == "grant")).all()
    assert len(keys) == len(set(keys)) == 60
    assert service.check().ok


def test_the_same_key_makes_the_same_grant_and_another_request_under_it_is_refused(service: LoyaltyService) -> None:
    customers(service, 3)
    first = grants.create(service, "operator", "slump", slump())
    assert grants.create(service, "operator", "slump", slump()).id == first.id
    with pytest.raises(LoyaltyError) as conflict:
        grants.create(service, "operator", "slump", slump(segments=["partner"]))
    assert conflict.value.code.value == "idempotency_conflict"
    with pytest.raises(LoyaltyError) as unknown:
        grants.create(service, "operator", "other", slump(zones=["atlantis"]))
    assert unknown.value.code.value == "validation_error"


def test_a_marketer_grants_over_the_api_the_job_books_it_and_a_till_may_not(
    start_gateway: object, clock: FakeClock
) -> None:
    gateway: Gateway = start_gateway(building())  # type: ignore[operator]
    cards = customers(gateway.service, 4)
    body = {"description": "Бонусы в межсезонье", "points": 300, "audience": {"cards": cards[:2]}}
    refused = gateway.http.post("/api/v1/grants", json=body, headers={**TILL, **key()})
    assert refused.status_code == 403
    created = gateway.http.post("/api/v1/grants", json=body, headers={**MARKETER, "Idempotency-Key": "g1"})
    assert created.status_code == 200, created.text
    grant_id = created.json()["grant_id"]
    assert created.json()["state"] == "granting" and created.json()["audience_text"] == "карт в списке: 2"
    assert grants.run_due(gateway.service) == {"grants": 1}
    shown = gateway.http.get(f"/api/v1/grants/{grant_id}", headers=MARKETER).json()
    assert (shown["state"], shown["customers"], shown["points_total"]) == ("done", 2, 600)
    assert [balance(gateway.service, card) for card in cards] == [500, 500, 200, 200]

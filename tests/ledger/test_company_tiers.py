"""A company account has its own segment and its own tier (issue 19): the turnover of the
company — every contact's purchases on the company card — places it on its segment's ladder, and
every contact's purchase on the company card is priced by the company's segment and tier, not by
the contact's own.

Uses the plumbing example program (``gateway/demo/programs/plumbing.yaml``): installers climb
«Партнёр» (5 % off, 1 % cashback) → «Партнёр Серебро» from 300 000 roubles a quarter (8 % off,
2 %) → «Партнёр Золото» from 1 000 000 (12 %, 3 %). Real database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.accounts import CompanyRequest, MemberRequest
from contracts.operations import CalculateRequest, CartLine, CommitRequest, RegisterCustomerRequest
from gateway.config import Settings, load_config
from gateway.ledger import program_jobs
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Customer
from gateway.wiring import build_service
from tests.support import FakeClock, noon

PLUMBING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "plumbing.yaml"


@pytest.fixture
def service(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(date(2026, 2, 10)))
    svc = build_service(Settings(database_url=database_url), load_config(PLUMBING), clock)
    yield svc
    svc.db.dispose()


def register(service: LoyaltyService, card: str, segment: str) -> str:
    request = RegisterCustomerRequest(card_number=card, phone=f"+7997{card[-7:]}", segment=segment)
    return service.register_customer("site", uuid.uuid4().hex, request).customer_id


def company_with(service: LoyaltyService, contacts: dict[str, str], segment: str | None = None) -> str:
    """A company whose contacts (personal card → company card) are buyers."""
    company = service.company_create(
        "operator", uuid.uuid4().hex, CompanyRequest(name="ООО Тепломонтаж", segment=segment)
    )
    for personal, company_card in contacts.items():
        contact = register(service, personal, "installers")
        service.company_add_member(
            "operator",
            uuid.uuid4().hex,
            MemberRequest(company_id=company.company_id, customer_id=contact, role="buyer", card_number=company_card),
        )
    return company.company_id


def pipes(roubles: int) -> list[CartLine]:
    return [CartLine(line_id="1", item="FT-400", price_type="installer", quantity=Decimal(1), price=Decimal(roubles))]


def buy(service: LoyaltyService, card: str, roubles: int) -> Any:
    request = CommitRequest(receipt_id=uuid.uuid4().hex, card_number=card, store="M01", lines=pipes(roubles))
    return service.commit("tills", uuid.uuid4().hex, request)


def quote(service: LoyaltyService, card: str, roubles: int) -> tuple[Decimal, int]:
    result = service.calculate("tills", CalculateRequest(card_number=card, store="M01", lines=pipes(roubles)))
    return result.total_discount, result.points_to_accrue


def stored(service: LoyaltyService, customer_id: str) -> Customer:
    with service.db.read() as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found


def test_a_contact_buying_on_the_company_card_gets_the_companys_tier_benefits(service: LoyaltyService) -> None:
    company = company_with(service, {"2810000000011": "2810000000012", "2810000000021": "2810000000022"})
    assert service.company("operator", company).segment == "installers"  # the segment its contacts share

    first = buy(service, "2810000000012", 200_000)  # Партнёр: 5 % off, 190 000 of turnover
    assert first.total_discount == Decimal("10000.00")
    # the second contact's 200 000 takes the *company* to 380 000 (each contact alone: 200 000):
    # the receipt is priced at Серебро, 8 % off, and the company holds the level
    second = buy(service, "2810000000022", 200_000)
    assert (second.total_discount, second.points_accrued) == (Decimal("16000.00"), 3680)
    assert stored(service, company).tier == "partner_silver"

    # any contact on the company card: Серебро's 8 % and 2 %; on their own card: Партнёр's 5 % and 1 %
    assert quote(service, "2810000000012", 10_000) == (Decimal("800.00"), 184)
    assert quote(service, "2810000000011", 10_000) == (Decimal("500.00"), 95)

    progress = service.tier_progress("tills", "2810000000022")
    assert (progress.ladder, progress.tier.code if progress.tier else None) == ("partner", "partner_silver")
    assert progress.window_turnover == Decimal("374000.00")  # 190 000 + 184 000: the company's quarter


def test_the_daily_job_keeps_a_company_in_its_contacts_segment_and_places_it_by_its_own_turnover(
    service: LoyaltyService, clock: FakeClock
) -> None:
    company = company_with(service, {"2810000000031": "2810000000032"})
    buy(service, "2810000000032", 400_000)  # 5 % gives 380 000: Серебро at 8 %, 368 000 this quarter
    assert stored(service, company).tier == "partner_silver"

    program_jobs.run_daily(service)
    kept = stored(service, company)
    assert (kept.segment, kept.tier) == ("installers", "partner_silver")  # not moved to retail

    clock.set(noon(date(2026, 7, 1)))  # Q3: the company bought nothing in Q2
    program_jobs.run_daily(service)
    assert stored(service, company).tier == "partner"


def test_a_company_created_with_a_segment_keeps_it_whatever_its_contacts_are(service: LoyaltyService) -> None:
    company = company_with(service, {"2810000000041": "2810000000042"}, segment="wholesale")
    assert service.company("operator", company).segment == "wholesale"
    # wholesale is on the partner ladder too, and pays nothing with points
    result = service.calculate("tills", CalculateRequest(card_number="2810000000042", store="M01", lines=pipes(10_000)))
    assert (result.total_discount, result.points_to_accrue, result.max_points_payable) == (Decimal("500.00"), 95, 0)

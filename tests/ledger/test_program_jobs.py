"""The program's date-driven mechanics on a real database: segment transitions, tier
recalculation over the quarter (upgrade on purchase, downgrade by the job), birthday bonuses and
their expiry — each idempotent, safe with several workers, in bounded batches.

Uses the building-materials example program: tiers by quarterly turnover (retail and new-home
owners), new-home owners become retail customers after 12 months, 500 birthday points living 30
days (up to 7 days late), dates in Moscow time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlmodel import Session, col, select

from contracts.operations import (
    BalanceRequest,
    CartLine,
    CommitRequest,
    RefundRequest,
    RegisterCustomerRequest,
)
from contracts.orders import OrderQuantity, OrderRequest, OrderReturn, OrderShipment
from gateway.config import GatewayConfig, Settings, load_config
from gateway.importer.history import HistoryImporter
from gateway.ledger import program_jobs
from gateway.ledger.pricing_context import window_turnover
from gateway.ledger.service import LoyaltyService
from gateway.store.models import Account, Customer, LedgerEntry, Lot
from gateway.store.models_program import BonusGrant, ProgramJobRun, StatusChange
from gateway.wiring import build_service
from gateway.workers.runner import run_once
from tests.support import FakeClock, noon

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"


@pytest.fixture
def config() -> GatewayConfig:
    return load_config(BUILDING)


@pytest.fixture
def service(database_url: str, config: GatewayConfig, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(date(2026, 1, 15)))
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def register(service: LoyaltyService, card: str, **fields: object) -> str:
    request = RegisterCustomerRequest(card_number=card, phone=f"+7999{card[-7:]}", **fields)
    return service.register_customer("site", uuid.uuid4().hex, request).customer_id


def buy(service: LoyaltyService, card: str, roubles: int, receipt: str | None = None) -> str:
    request = CommitRequest(
        receipt_id=receipt or uuid.uuid4().hex,
        card_number=card,
        store="S01",
        lines=[CartLine(line_id="1", item="TL-1001", quantity=Decimal(1), price=Decimal(roubles))],
    )
    return service.commit("tills", uuid.uuid4().hex, request).transaction_id


def customer(service: LoyaltyService, customer_id: str) -> Customer:
    with service.db.read() as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found


def changes(service: LoyaltyService, customer_id: str, attribute: str) -> list[tuple[str | None, str | None, str]]:
    with service.db.read() as session:
        rows = session.exec(
            select(StatusChange)
            .where(StatusChange.customer_id == customer_id, StatusChange.attribute == attribute)
            .order_by(col(StatusChange.id))
        ).all()
        return [(r.old_value, r.new_value, r.reason) for r in rows]


def available(service: LoyaltyService, card: str) -> int:
    return service.balance("tills", BalanceRequest(card_number=card)).available


def test_new_home_owner_becomes_retail_after_twelve_months(service: LoyaltyService, clock: FakeClock) -> None:
    owner = register(service, "2700000000101", segment="new_home")
    plain = register(service, "2700000000102")
    assert (customer(service, owner).segment, customer(service, owner).segment_since) == ("new_home", date(2026, 1, 15))
    assert customer(service, plain).segment == "retail"  # the default segment

    clock.set(noon(date(2027, 1, 14)))
    program_jobs.run_daily(service)
    assert customer(service, owner).segment == "new_home"  # one day short

    clock.set(noon(date(2027, 1, 15)))
    done = program_jobs.run_daily(service)
    assert done["segments_changed"] == 1
    moved = customer(service, owner)
    assert (moved.segment, moved.segment_since) == ("retail", date(2027, 1, 15))
    assert changes(service, owner, "segment") == [
        (None, "new_home", "registration"),
        ("new_home", "retail", "transition"),
    ]

    assert program_jobs.run_daily(service) == {}  # the same day again: nothing
    clock.set(noon(date(2027, 3, 1)))
    assert program_jobs.run_daily(service).get("segments_changed", 0) == 0
    assert service.check().ok


def test_a_late_job_dates_the_transition_when_it_was_due(service: LoyaltyService, clock: FakeClock) -> None:
    owner = register(service, "2700000000103", segment="new_home")
    clock.set(noon(date(2027, 2, 3)))  # the job did not run for weeks
    program_jobs.run_daily(service)
    assert customer(service, owner).segment_since == date(2027, 1, 15)


def test_tier_rises_on_the_crossing_purchase_and_falls_with_the_turnover(
    service: LoyaltyService, clock: FakeClock
) -> None:
    card = "2700000000111"
    buyer = register(service, card)
    clock.set(noon(date(2026, 2, 2)))
    program_jobs.run_daily(service)
    assert customer(service, buyer).tier == "base"

    buy(service, card, 60_000)
    assert customer(service, buyer).tier == "base"
    crossing = buy(service, card, 50_000)  # 110 000 this quarter: silver, on this very purchase
    assert (customer(service, buyer).tier, customer(service, buyer).tier_since) == ("silver", date(2026, 2, 2))
    with service.db.read() as session:
        change = session.exec(select(StatusChange).where(StatusChange.transaction_id == crossing)).one()
        assert (change.old_value, change.new_value, change.reason, change.turnover_kopecks) == (
            "base",
            "silver",
            "purchase",
            110_000_00,
        )
    assert program_jobs.run_daily(service).get("tiers_changed", 0) == 0  # the job agrees

    clock.set(noon(date(2026, 5, 20)))  # next quarter: last quarter's 110 000 keeps silver
    program_jobs.run_daily(service)
    assert customer(service, buyer).tier == "silver"

    clock.set(noon(date(2026, 7, 1)))  # the quarter after: nothing bought since March
    done = program_jobs.run_daily(service)
    assert done["tiers_changed"] == 1
    assert customer(service, buyer).tier == "base"
    assert changes(service, buyer, "tier") == [
        (None, "base", "schedule"),
        ("base", "silver", "purchase"),
        ("silver", "base", "schedule"),
    ]
    assert program_jobs.run_daily(service) == {}
    assert service.check().ok


def test_a_refund_below_the_threshold_downgrades_at_the_next_job(service: LoyaltyService, clock: FakeClock) -> None:
    card = "2700000000112"
    buyer = register(service, card)
    clock.set(noon(date(2026, 3, 2)))
    first = buy(service, card, 120_000, receipt="R-1")
    buy(service, card, 190_000, receipt="R-2")
    assert customer(service, buyer).tier == "gold"  # 310 000
    service.refund("tills", uuid.uuid4().hex, RefundRequest(receipt_id=first, refund_id="RF-1", amount=Decimal(20_000)))
    clock.set(noon(date(2026, 3, 3)))
    program_jobs.run_daily(service)
    assert customer(service, buyer).tier == "silver"  # 290 000


def test_partners_have_no_tier(service: LoyaltyService, clock: FakeClock) -> None:
    partner = register(service, "2700000000113", segment="partner")
    buy(service, "2700000000113", 500_000)
    clock.set(noon(date(2026, 1, 16)))
    program_jobs.run_daily(service)
    assert customer(service, partner).tier is None


def test_birthday_bonus_once_a_year_and_it_expires(service: LoyaltyService, clock: FakeClock) -> None:
    clock.set(noon(date(2026, 5, 10)))
    card = "2700000000121"
    birthday_girl = register(service, card, birth_date=date(1990, 5, 20))
    partner = register(service, "2700000000122", birth_date=date(1985, 5, 20), segment="partner")
    start = available(service, card)  # the welcome bonus (200 points living 60 days)

    clock.set(noon(date(2026, 5, 19)))
    program_jobs.run_daily(service)
    assert available(service, card) == start

    clock.set(noon(date(2026, 5, 20)))
    done = program_jobs.run_daily(service)
    assert done["birthday_bonuses"] == 1  # the partner's segment has no birthday bonus
    assert available(service, card) == start + 500
    assert program_jobs.run_daily(service) == {}
    clock.set(noon(date(2026, 5, 23)))
    program_jobs.run_daily(service)  # still within the grace days: no second grant
    assert available(service, card) == start + 500
    with service.db.read() as session:
        grants = session.exec(select(BonusGrant).where(BonusGrant.kind == "birthday")).all()
        assert [(g.key, g.points) for g in grants] == [(f"birthday:{birthday_girl}:2026", 500)]
        assert partner not in {g.customer_id for g in grants}

    clock.set(noon(date(2026, 6, 20)))  # 31 days later: the birthday points expired
    run_once(service)
    assert available(service, card) == start
    assert service.check().ok

    clock.set(noon(date(2027, 5, 26)))  # next year, the job 6 days late: still granted
    program_jobs.run_daily(service)
    assert available(service, card) == 500  # the welcome bonus is long gone


def test_no_birthday_bonus_for_a_birthday_before_registration(service: LoyaltyService, clock: FakeClock) -> None:
    clock.set(noon(date(2026, 5, 22)))
    card = "2700000000123"
    register(service, card, birth_date=date(1990, 5, 20))  # joined two days after the birthday
    start = available(service, card)
    program_jobs.run_daily(service)
    assert available(service, card) == start


def test_batches_and_workers_on_several_replicas_grant_each_bonus_once(
    database_url: str, config: GatewayConfig, clock: FakeClock
) -> None:
    clock.set(noon(date(2026, 3, 20)))
    services = [build_service(Settings(database_url=database_url), config, clock) for _ in range(3)]
    try:
        cards = [f"27000000002{i:02d}" for i in range(9)]
        for card in cards:
            register(services[0], card, birth_date=date(1991, 4, 2))
        clock.set(noon(date(2026, 4, 2)))
        errors: list[BaseException] = []

        def work(svc: LoyaltyService) -> None:
            try:
                for _ in range(5):  # a worker that finds a batch leased to another one tries again later
                    program_jobs.run_daily(svc, batch=2)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(svc,)) for svc in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors
        program_jobs.run_daily(services[0], batch=2)  # whatever is left
        with services[0].db.read() as session:
            grants = session.exec(select(BonusGrant).where(BonusGrant.kind == "birthday")).all()
            run = session.get(ProgramJobRun, (program_jobs.JOB, date(2026, 4, 2)))
        assert len(grants) == len(cards) == len({g.customer_id for g in grants})
        assert run is not None and run.finished_at is not None and run.processed >= len(cards)
        assert all(available(services[0], card) == 200 + 500 for card in cards)
        assert services[0].check().ok
    finally:
        for svc in services:
            svc.db.dispose()


def test_a_batch_of_a_dead_worker_is_taken_over_when_its_lease_runs_out(
    service: LoyaltyService, clock: FakeClock
) -> None:
    cards = [f"27000000003{i:02d}" for i in range(3)]
    for card in cards:
        register(service, card, birth_date=date(1992, 2, 1))
    clock.set(noon(date(2026, 2, 1)))
    claim = program_jobs._claim(service, batch=10)  # a worker takes the batch, then dies
    assert claim is not None and len(claim.customer_ids) == 3
    assert program_jobs.run_daily(service) == {}  # the batch is leased: nobody else touches it
    assert all(available(service, card) == 200 for card in cards)

    clock.advance(seconds=program_jobs.LEASE.total_seconds() + 1)
    done = program_jobs.run_daily(service)
    assert done["birthday_bonuses"] == 3
    assert all(available(service, card) == 700 for card in cards)
    program_jobs._advance(service, claim, 10, 0)  # the dead worker's late report changes nothing
    assert program_jobs.run_daily(service) == {}
    assert service.check().ok


def test_the_job_is_registered_and_does_nothing_for_a_program_without_dates(
    database_url: str, clock: FakeClock
) -> None:
    from gateway.config import DEMO_CONFIG
    from gateway.wiring import build_jobs

    demo = load_config(DEMO_CONFIG)
    svc = build_service(Settings(database_url=database_url), demo, clock)
    try:
        jobs = {job.name: job for job in build_jobs(svc, demo)}
        assert jobs["program"].run() == {}
        with svc.db.read() as session:
            assert session.exec(select(ProgramJobRun)).first() is None
    finally:
        svc.db.dispose()
    assert timedelta(seconds=jobs["program"].every_seconds) <= timedelta(hours=1)


# -- what else counts as turnover: web and ERP orders, the old system's purchases ----------------


def place(card: str, version: int, roubles: int, *, shipped: list[tuple[str, int, date]], **extra: Any) -> OrderRequest:
    """An order of ten tiles for ``roubles``, shipped in parts (id, tiles, day) and maybe more."""
    return OrderRequest(
        order_id="W-7",
        version=version,
        card_number=card,
        store="S01",
        lines=[CartLine(line_id="1", item="TL-1001", quantity=Decimal(10), price=Decimal(roubles) / 10)],
        paid=True,
        shipments=[
            OrderShipment(
                shipment_id=shipment,
                shipped_at=noon(day),
                lines=[OrderQuantity(line_id="1", quantity=Decimal(tiles))],
            )
            for shipment, tiles, day in shipped
        ],
        **extra,
    )


def test_shipped_order_goods_count_as_turnover_and_raise_the_tier(service: LoyaltyService, clock: FakeClock) -> None:
    card = "2700000000121"
    buyer = register(service, card)
    clock.set(noon(date(2026, 2, 2)))
    program_jobs.run_daily(service)
    buy(service, card, 40_000)

    def apply(request: OrderRequest) -> None:
        service.apply_order("site", f"order:{request.version}", request)

    apply(place(card, 1, 100_000, shipped=[]))  # placed and paid: nothing shipped, nothing counts
    assert customer(service, buyer).tier == "base"
    clock.set(noon(date(2026, 2, 5)))
    apply(place(card, 2, 100_000, shipped=[("S1", 4, date(2026, 2, 4))]))  # 40 000 + 40 000
    assert customer(service, buyer).tier == "base"
    apply(place(card, 3, 100_000, shipped=[("S1", 4, date(2026, 2, 4)), ("S2", 6, date(2026, 2, 5))]))
    upgraded = customer(service, buyer)
    assert (upgraded.tier, upgraded.tier_since) == ("silver", date(2026, 2, 5))  # 140 000 this quarter
    with service.db.read() as session:
        change = session.exec(
            select(StatusChange).where(StatusChange.customer_id == buyer, StatusChange.new_value == "silver")
        ).one()
        assert (change.reason, change.turnover_kopecks) == ("order", 140_000_00)
    apply(place(card, 3, 100_000, shipped=[("S1", 4, date(2026, 2, 4)), ("S2", 6, date(2026, 2, 5))]))  # replayed
    with service.db.read() as session:
        assert turnover_of(session, service, buyer) == 140_000_00

    # six tiles come back: the turnover loses them, the daily job lowers the tier
    back = OrderReturn(
        return_id="RT1", returned_at=noon(date(2026, 2, 6)), lines=[OrderQuantity(line_id="1", quantity=Decimal(6))]
    )
    clock.set(noon(date(2026, 2, 6)))
    apply(place(card, 4, 100_000, shipped=[("S1", 4, date(2026, 2, 4)), ("S2", 6, date(2026, 2, 5))], returns=[back]))
    assert customer(service, buyer).tier == "silver"  # a return never lowers a tier on the spot
    clock.set(noon(date(2026, 2, 7)))
    program_jobs.run_daily(service)
    assert customer(service, buyer).tier == "base"  # 40 000 + 40 000
    with service.db.read() as session:
        assert turnover_of(session, service, buyer) == 80_000_00

    # cancelled: the order counts nothing at all
    apply(place(card, 5, 100_000, shipped=[("S1", 4, date(2026, 2, 4))], cancelled=True))
    with service.db.read() as session:
        assert turnover_of(session, service, buyer) == 40_000_00
    assert service.check().ok


def turnover_of(session: Session, service: LoyaltyService, customer_id: str) -> int:
    account = session.exec(select(Account.id).where(Account.customer_id == customer_id)).one()
    return window_turnover(session, service.program, account, service.clock())[0]


def test_the_old_systems_purchases_count_towards_the_tier(
    service: LoyaltyService, clock: FakeClock, database_url: str, tmp_path: Path
) -> None:
    card = "2700000000122"
    buyer = register(service, card)
    clock.set(noon(date(2026, 2, 10)))
    history = tmp_path / "history.csv"
    history.write_text(
        "id;card_number;occurred_at;kind;amount;points_accrued;points_spent;receipt;store;note\n"
        f"H1;{card};2026-01-20 12:00;purchase;250000;0;0;R-1;S01;\n"
        f"H2;{card};2026-01-25 12:00;return;20000;0;0;R-1;S01;\n"
        f"H3;{card};2025-09-20 12:00;purchase;900000;0;0;R-0;S01;\n",  # two quarters ago: too old
        encoding="utf-8",
    )
    report = HistoryImporter(service.db).run(history)
    assert report.imported == 3 and report.reconciled
    program_jobs.run_daily(service)
    assert customer(service, buyer).tier == "silver"  # 230 000 this quarter
    buy(service, card, 80_000)  # 310 000: gold on this purchase
    assert customer(service, buyer).tier == "gold"


def test_a_quiet_day_locks_no_one_and_a_busy_one_only_those_it_changes(
    service: LoyaltyService, clock: FakeClock
) -> None:
    """The daily job reads a batch's standing at once and opens a write transaction only for the
    customers whose day changes something (issue 22: a quiet run over 500,000 customers must not
    hold the write lock for minutes)."""
    quiet = [register(service, f"27000000004{i:02d}") for i in range(5)]
    climber = register(service, "2700000000450")
    born = register(service, "2700000000451", birth_date=date(1990, 1, 17))
    program_jobs.run_daily(service)  # the first day places everyone at the base tier
    assert program_jobs.worth_a_look(service, [*quiet, climber, born], date(2026, 1, 15)) == []

    clock.set(noon(date(2026, 1, 17)))
    buy(service, "2700000000450", 150_000)  # crosses into silver at once (upgrade on purchase)
    with service.db.write() as session:  # …but a back-office correction set the tier back
        row = session.get(Customer, climber)
        assert row is not None
        row.tier = "base"
        session.add(row)
    looked_at = program_jobs.worth_a_look(service, [*quiet, climber, born], date(2026, 1, 17))
    assert looked_at == sorted([climber, born])  # the tier to restore, the birthday to grant
    done = program_jobs.run_daily(service)
    assert (done["tiers_changed"], done["birthday_bonuses"], done["customers"]) == (1, 1, 7)
    assert program_jobs.worth_a_look(service, [*quiet, climber, born], date(2026, 1, 17)) == []


# -- issue 22: the day's changes are written a chunk of customers per transaction ---------------


class _CustomersPerTransaction:
    """How many customer rows each committed write transaction updated (those that updated any)."""

    def __init__(self, service: LoyaltyService) -> None:
        self.engine = service.db.write_engine
        self.updated: list[int] = []
        self._pending = 0

    def _statement(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE CUSTOMERS"):
            self._pending += len(parameters) if many else 1

    def _commit(self, _connection: Any) -> None:
        if self._pending:
            self.updated.append(self._pending)
        self._pending = 0

    def __enter__(self) -> _CustomersPerTransaction:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


def test_the_first_day_places_everyone_a_chunk_per_transaction_and_records_every_change(
    service: LoyaltyService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program's first day changes every customer: they are placed ``WRITE_BATCH`` to a
    transaction (short locks), each change recorded as one placed alone would be."""
    monkeypatch.setattr(program_jobs, "WRITE_BATCH", 10)
    people = [register(service, f"27000000005{i:02d}") for i in range(25)]
    with service.db.write() as session:  # the program is new: nobody has a segment or tier yet
        session.execute(update(Customer).values(segment=None, segment_since=None, tier=None))
    with _CustomersPerTransaction(service) as writes:
        done = program_jobs.run_daily(service, batch=100)
    assert (done["segments_changed"], done["tiers_changed"], done["customers"]) == (25, 25, 25)
    assert writes.updated == [10, 10, 5]
    for person in people:
        placed = customer(service, person)
        assert (placed.segment, placed.segment_since, placed.tier, placed.tier_since) == (
            "retail",
            date(2026, 1, 15),
            "base",
            date(2026, 1, 15),
        )
        assert changes(service, person, "segment")[-1] == (None, "retail", "schedule")
        assert changes(service, person, "tier") == [(None, "base", "schedule")]
    assert program_jobs.run_daily(service) == {}  # the same day again: nothing


def test_a_chunk_of_birthday_bonuses_is_booked_as_lots_entries_and_grants_that_add_up(
    service: LoyaltyService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(program_jobs, "WRITE_BATCH", 5)
    cards = [f"27000000006{i:02d}" for i in range(12)]
    people = [register(service, card, birth_date=date(1988, 2, 3)) for card in cards]
    program_jobs.run_daily(service)  # the tiers of the first day
    clock.set(noon(date(2026, 2, 4)))  # a day after the birthday: within the grace days
    done = program_jobs.run_daily(service)
    assert done["birthday_bonuses"] == 12
    assert all(available(service, card) == 200 + 500 for card in cards)
    with service.db.read() as session:
        grants = session.exec(select(BonusGrant).where(BonusGrant.kind == "birthday")).all()
        lots = {lot.id: lot for lot in session.exec(select(Lot).where(Lot.source == "birthday")).all()}
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.kind == "birthday")).all()
        accounts = {a.customer_id: a.id for a in session.exec(select(Account)).all()}
    assert sorted(g.key for g in grants) == sorted(f"birthday:{p}:2026" for p in people)
    for grant in grants:  # each grant names its own lot, on the customer's account, living 30 days
        lot = lots[grant.lot_id]
        assert (lot.account_id, lot.points, lot.remaining) == (accounts[grant.customer_id], 500, 500)
        assert lot.expires_at is not None and lot.expires_at - lot.created_at == timedelta(days=30)
    assert sorted((e.lot_id, e.account_id, e.points) for e in entries) == sorted(
        (lot.id, lot.account_id, 500) for lot in lots.values()
    )
    assert all(e.client_id == program_jobs.CLIENT for e in entries)
    assert program_jobs.run_daily(service) == {}
    assert service.check().ok

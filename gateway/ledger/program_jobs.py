"""The daily program job: segment transitions by date, tier recalculation over the window
(upgrade and downgrade), and birthday bonuses.

It walks every customer once per local day, in batches. A worker *leases* the next batch on the
day's ``program_job_runs`` row (short transaction), reads the batch's standing in a few
set-based statements (no write lock: segment, tier, birthday, the window's turnover of every
account at once) to find the few customers whose day changes anything, handles those
``WRITE_BATCH`` at a time in one short transaction under their account locks (set-based reads
and multi-row writes, issue 22), then moves the cursor on. So the job never holds the write lock
for more than a chunk of customers, and a quiet day over 500,000 customers is a few hundred
reads. Replicas take turns; a batch
whose worker died is taken over when its lease runs out. Every step is decided from the
customer's state under that lock (and a birthday grant has a unique key per customer and year),
so a customer handled twice — a second run the same day, two workers on one batch — changes
nothing the second time. Point expiry is not here: the maintenance pass expires lots.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select

from gateway.core.program import Program
from gateway.core.rules.conditions import birthday_passed_within
from gateway.core.rules.segments import add_months
from gateway.ledger.context import Ctx
from gateway.ledger.pricing_context import ladder_turnovers, local_day
from gateway.ledger.program_status import (
    segment_in_effect,
    tier_decision,
)
from gateway.store.models import Account, Customer, LedgerEntry, Lot
from gateway.store.models_program import BonusGrant, ProgramJobRun, StatusChange

if TYPE_CHECKING:
    from gateway.ledger.service import LoyaltyService

JOB = "program-daily"
LEASE = timedelta(minutes=10)
BATCH = 2000
# Customers changed per write transaction: a first day places every customer; 100 of them
# (an update, two status changes each) keep SQLite's write lock to a few tens of milliseconds.
WRITE_BATCH = 100
CLIENT = "system:program"


def needed(program: Program) -> bool:
    """Whether the program has anything for the daily job to do."""
    return bool(
        program.all_ladders()
        or program.bonuses.birthday is not None
        or any(segment.becomes for segment in program.segments)
    )


@dataclass(frozen=True)
class _Claim:
    day: date
    lease: str
    customer_ids: list[str]


def run_daily(service: LoyaltyService, batch: int = BATCH, max_batches: int = 10_000) -> dict[str, int]:
    """Work through today's customers (or what is left of them); returns what changed."""
    if not needed(service.program):
        return {}
    done: Counter[str] = Counter()
    for _ in range(max_batches):
        claim = _claim(service, batch)
        if claim is None:
            break
        result = process_customers(service, worth_a_look(service, claim.customer_ids, claim.day), claim.day)
        done.update(result)
        _advance(service, claim, batch, sum(result.values()))
        done["customers"] += len(claim.customer_ids)
    return dict(done)


def _claim(service: LoyaltyService, batch: int) -> _Claim | None:
    now = service.clock()
    day = local_day(service.program, now)
    try:
        with service.db.write() as session:
            if session.get(ProgramJobRun, (JOB, day)) is None:
                session.add(ProgramJobRun(job=JOB, day=day, updated_at=now))
    except IntegrityError:
        pass  # another worker started the day at the same moment
    with service.db.write() as session:
        run = session.exec(
            select(ProgramJobRun).where(ProgramJobRun.job == JOB, ProgramJobRun.day == day).with_for_update()
        ).one()
        if run.finished_at is not None:
            return None
        if run.lease_until is not None and run.lease_until > now:
            return None  # another worker has the current batch
        ids = list(
            session.exec(
                select(Customer.id)
                .where(col(Customer.id) > run.cursor, col(Customer.merged_into).is_(None))
                .order_by(col(Customer.id))
                .limit(batch)
            ).all()
        )
        lease = str(uuid.uuid4())
        run.leased_by = lease
        run.lease_until = now + LEASE
        run.updated_at = now
        session.add(run)
        return _Claim(day, lease, ids)


def _advance(service: LoyaltyService, claim: _Claim, batch: int, changed: int) -> None:
    now = service.clock()
    with service.db.write() as session:
        run = session.exec(
            select(ProgramJobRun).where(ProgramJobRun.job == JOB, ProgramJobRun.day == claim.day).with_for_update()
        ).one()
        if run.leased_by != claim.lease:
            return  # our lease ran out and another worker took the batch over
        if claim.customer_ids:
            run.cursor = max(run.cursor, claim.customer_ids[-1])
        run.processed += len(claim.customer_ids)
        run.changed += changed
        run.leased_by = None
        run.lease_until = None
        if len(claim.customer_ids) < batch:
            run.finished_at = now
        run.updated_at = now
        session.add(run)


def worth_a_look(service: LoyaltyService, customer_ids: list[str], day: date) -> list[str]:
    """The customers of a batch whose day may change something, decided from their standing
    read at once; ``process_customers`` decides again under their locks, so a purchase in
    between is never overwritten."""
    if not customer_ids:
        return []
    program = service.program
    now = service.clock()
    with service.db.read() as session:
        rows = session.execute(
            sa_select(
                col(Customer.id),
                col(Account.id),
                col(Customer.segment),
                col(Customer.segment_since),
                col(Customer.tier),
                col(Customer.birth_date),
                col(Customer.created_at),
            )
            .join(Account, col(Account.customer_id) == col(Customer.id))
            .where(col(Customer.id).in_(customer_ids))
        ).all()
        turnovers = (
            ladder_turnovers(session, program, {row[1]: row[2] for row in rows}, now) if program.all_ladders() else {}
        )
        bonus = program.bonuses.birthday
        birthday_keys: dict[str, str] = {}
        for customer_id, _, segment, _, _, born, created_at in rows:
            if bonus is None or born is None:
                continue
            if bonus.segments and segment_in_effect(program, segment) not in bonus.segments:
                continue
            birthday = birthday_passed_within(born, day, bonus.grace_days)
            if birthday is not None and local_day(program, created_at) <= birthday:
                birthday_keys[customer_id] = f"birthday:{customer_id}:{birthday.year}"
        granted = set(
            session.exec(select(BonusGrant.key).where(col(BonusGrant.key).in_(list(birthday_keys.values())))).all()
        )
    wanted: list[str] = []
    decide = _Decisions.of(program)
    for customer_id, account_id, segment, since, tier, _, _ in rows:
        current, previous = turnovers.get(account_id, (0, 0))
        birthday_key = birthday_keys.get(customer_id)
        tier_moves = decide.tier(segment, tier, current, previous)
        if (
            _segment_moves(program, segment, since, day)
            or tier_moves is not None
            or (birthday_key is not None and birthday_key not in granted)
        ):
            wanted.append(customer_id)
    return sorted(wanted)


class _Decisions:
    """``tier_decision`` of the daily job (downgrades allowed) remembered by its arguments: it
    is pure, a batch of 2,000 customers has few distinct standings (most have no turnover in
    the window), and each call sorted the ladder's levels again (~40 % of a quiet day's CPU)."""

    _last: _Decisions | None = None

    def __init__(self, program: Program) -> None:
        self.program = program
        self._tiers: dict[tuple[str | None, str | None, int, int], tuple[str | None, int] | None] = {}

    @classmethod
    def of(cls, program: Program) -> _Decisions:
        """The memo of this program (a reloaded program gets a new one)."""
        last = cls._last
        if last is None or last.program is not program:
            last = cls._last = cls(program)
        return last

    def tier(
        self, stored_segment: str | None, stored_tier: str | None, current: int, previous: int
    ) -> tuple[str | None, int] | None:
        key = (stored_segment, stored_tier, current, previous)
        if key not in self._tiers:
            if len(self._tiers) > 100_000:
                self._tiers.clear()
            segment = segment_in_effect(self.program, stored_segment)
            self._tiers[key] = tier_decision(self.program, segment, stored_tier, current, previous, only_up=False)
        return self._tiers[key]


def _segment_moves(program: Program, segment_code: str | None, since: date | None, day: date) -> bool:
    if segment_code is None:
        return program.default_segment is not None
    segment = program.segment(segment_code)
    return segment is not None and since is not None and segment.transition_due(since, day)


def process_customer(service: LoyaltyService, customer_id: str, day: date) -> Counter[str]:
    """Everything the day changes for one customer, in one transaction under their lock."""
    return process_customers(service, [customer_id], day)


def process_customers(service: LoyaltyService, customer_ids: list[str], day: date) -> Counter[str]:
    """Everything the day changes for these customers, ``WRITE_BATCH`` of them per transaction
    (see ``_process_chunk``); a first day that places everyone is as short a lock as any."""
    done: Counter[str] = Counter()
    for start in range(0, len(customer_ids), WRITE_BATCH):
        done.update(_process_chunk(service, customer_ids[start : start + WRITE_BATCH], day))
    return +done


@dataclass
class _Standing:
    """A customer's standing as the job reads it under the lock (plain values, no ORM object:
    a first day places every customer, and building an ORM object per row cost ~1 ms)."""

    customer_id: str
    account_id: str
    segment: str | None
    segment_since: date | None
    tier: str | None
    tier_since: date | None
    birth_date: date | None
    created_at: datetime


def _process_chunk(service: LoyaltyService, customer_ids: list[str], day: date) -> Counter[str]:
    """One write transaction for a chunk of customers: lock their accounts (in account order,
    as every multi-account writer does), read their standing again under the lock — segment,
    tier, birth date, the window's turnover of every account in one statement, the grants
    already made — and decide each customer afresh with the pure rules (``segment_moves``,
    ``tier_decision``, ``birthday_key``), so a purchase booked since ``worth_a_look`` read the
    batch is never overwritten. The writes are set-based: the customers' new standing as one
    executemany, each change recorded in ``program_status_changes`` and each birthday bonus
    booked as a lot with its ledger entry and its grant (``grant_birthdays``) in multi-row
    inserts."""
    done: Counter[str] = Counter()
    if not customer_ids:
        return done
    program = service.program
    now = service.clock()
    with service.db.write() as session:
        ctx = Ctx(service.db, session, program, now, CLIENT)
        standings = _lock_standings(ctx, customer_ids)
        segments = {s.account_id: s.segment for s in standings}  # each ladder's window
        turnovers = ladder_turnovers(session, program, segments, now) if program.all_ladders() else {}
        changes: list[dict[str, Any]] = []
        moved: list[_Standing] = []
        due: dict[str, _Standing] = {}
        for standing in standings:
            changed = _place(program, standing, day, turnovers.get(standing.account_id, (0, 0)), now, changes)
            done["segments_changed"] += changed["segment"]
            done["tiers_changed"] += changed["tier"]
            if changed:
                moved.append(standing)
            key = birthday_key(
                program, standing.customer_id, standing.segment, standing.birth_date, standing.created_at, day
            )
            if key is not None:
                due[key] = standing
        if moved:
            session.execute(_UPDATE_STANDING, [_standing_params(s) for s in moved])
            session.execute(sa_insert(_table(StatusChange)), changes)
        granted = set(session.exec(select(BonusGrant.key).where(col(BonusGrant.key).in_(list(due)))).all())
        done["birthday_bonuses"] += grant_birthdays(
            ctx, [(s.customer_id, s.account_id, key) for key, s in due.items() if key not in granted]
        )
    return done


def _table(model: type[SQLModel]) -> Table:
    """A model's table: the job writes through Core (executemany, multi-row inserts), as the
    ORM's unit of work would build an object and a statement per row."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


_CUSTOMERS = _table(Customer)
_UPDATE_STANDING = (
    sa_update(_CUSTOMERS)
    .where(_CUSTOMERS.c.id == bindparam("b_id"))
    .values(
        segment=bindparam("b_segment"),
        segment_since=bindparam("b_segment_since"),
        tier=bindparam("b_tier"),
        tier_since=bindparam("b_tier_since"),
    )
)


def _standing_params(standing: _Standing) -> dict[str, Any]:
    return {
        "b_id": standing.customer_id,
        "b_segment": standing.segment,
        "b_segment_since": standing.segment_since,
        "b_tier": standing.tier,
        "b_tier_since": standing.tier_since,
    }


def _lock_standings(ctx: Ctx, customer_ids: list[str]) -> list[_Standing]:
    """Lock the accounts of these customers for the rest of the transaction, in account order
    (SQLite: the write transaction already holds the database's write lock), and read the
    customers' standing under the lock."""
    stmt = (
        sa_select(
            col(Customer.id),
            col(Account.id),
            col(Customer.segment),
            col(Customer.segment_since),
            col(Customer.tier),
            col(Customer.tier_since),
            col(Customer.birth_date),
            col(Customer.created_at),
        )
        .join(Account, col(Account.customer_id) == col(Customer.id))
        .where(col(Customer.id).in_(customer_ids))
        .order_by(col(Account.id))
    )
    if not ctx.db.is_sqlite:
        stmt = stmt.with_for_update(of=Account)
    return [_Standing(*row) for row in ctx.session.execute(stmt).all()]


def _place(
    program: Program,
    standing: _Standing,
    day: date,
    turnover: tuple[int, int],
    now: datetime,
    changes: list[dict[str, Any]],
) -> Counter[str]:
    """Move ``standing`` to the segment and tier the day gives it; each change is appended to
    ``changes`` as a ``program_status_changes`` row (what ``record_change`` writes)."""
    changed: Counter[str] = Counter()

    def record(attribute: str, old: str | None, new: str | None, reason: str, turnover_kopecks: int | None) -> None:
        changes.append(
            {
                "customer_id": standing.customer_id,
                "attribute": attribute,
                "old_value": old,
                "new_value": new,
                "reason": reason,
                "turnover_kopecks": turnover_kopecks,
                "transaction_id": None,
                "created_at": now,
            }
        )
        changed[attribute] += 1

    created_day = local_day(program, standing.created_at)
    for segment, since, reason in segment_moves(program, standing.segment, standing.segment_since, created_day, day):
        record("segment", standing.segment, segment, reason, None)
        standing.segment, standing.segment_since = segment, since
    current, previous = turnover
    decided = _Decisions.of(program).tier(standing.segment, standing.tier, current, previous)
    if decided is not None:
        tier, qualifying = decided
        record("tier", standing.tier, tier, "schedule", qualifying if tier is not None else None)
        standing.tier, standing.tier_since = tier, day
    return changed


def segment_moves(
    program: Program, segment_code: str | None, since: date | None, created_day: date, day: date
) -> list[tuple[str, date, str]]:
    """The segment changes ``day`` brings, each as (segment, since, reason): a customer without
    a segment is placed in the default one (since the day they joined); a segment that turns
    into another after some months (new-home owner → retail) moves them, dated when it was due."""
    moves: list[tuple[str, date, str]] = []
    if segment_code is None and program.default_segment is not None:
        segment_code, since = program.default_segment, created_day
        moves.append((segment_code, since, "schedule"))
    for _ in range(len(program.segments)):  # a chain of transitions ends: validation rejects cycles
        segment = program.segment(segment_code)
        if segment is None or segment.becomes is None or since is None or not segment.transition_due(since, day):
            break
        assert segment.after_months is not None
        segment_code, since = segment.becomes, add_months(since, segment.after_months)
        moves.append((segment_code, since, "transition"))
    return moves


def birthday_key(
    program: Program,
    customer_id: str,
    segment: str | None,
    birth_date: date | None,
    created_at: datetime,
    day: date,
) -> str | None:
    """The grant key of the birthday bonus due to a customer on ``day`` (up to ``grace_days``
    late, once per year, not for a birthday before they joined), or None."""
    bonus = program.bonuses.birthday
    if bonus is None or birth_date is None:
        return None
    if bonus.segments and segment_in_effect(program, segment) not in bonus.segments:
        return None
    birthday = birthday_passed_within(birth_date, day, bonus.grace_days)
    if birthday is None or local_day(program, created_at) > birthday:
        return None
    return f"birthday:{customer_id}:{birthday.year}"


def grant_birthdays(ctx: Ctx, grants: list[tuple[str, str, str]]) -> int:
    """Book birthday bonuses — (customer id, account id, grant key): keys not granted yet, the
    accounts locked — as ``accounts.add_lot`` books any credit (a lot and its ledger entry,
    same columns) and record each grant, in one multi-row insert per table instead of two
    flushes per customer."""
    bonus = ctx.program.bonuses.birthday
    if bonus is None or not grants:
        return 0
    days = bonus.expiry_days or ctx.program.expiry.days
    expires_at = ctx.now + timedelta(days=days) if days else None
    lot_ids = (
        ctx.session.execute(
            sa_insert(_table(Lot)).returning(_table(Lot).c.id, sort_by_parameter_order=True),
            [
                {
                    "account_id": account_id,
                    "source": "birthday",
                    "points": bonus.points,
                    "remaining": bonus.points,
                    "available_at": ctx.now,
                    "expires_at": expires_at,
                    "transaction_id": None,
                    "origin_lot_id": None,
                    "created_at": ctx.now,
                }
                for _, account_id, _ in grants
            ],
        )
        .scalars()
        .all()
    )
    ctx.session.execute(
        sa_insert(_table(LedgerEntry)),
        [
            {
                "account_id": account_id,
                "kind": "birthday",
                "points": bonus.points,
                "lot_id": lot_id,
                "hold_id": None,
                "transaction_id": None,
                "refund_id": None,
                "client_id": ctx.client_id,
                "note": None,
                "created_at": ctx.now,
            }
            for lot_id, (_, account_id, _) in zip(lot_ids, grants, strict=True)
        ],
    )
    ctx.session.execute(
        sa_insert(_table(BonusGrant)),
        [
            {
                "key": key,
                "kind": "birthday",
                "customer_id": customer_id,
                "account_id": account_id,
                "points": bonus.points,
                "lot_id": lot_id,
                "transaction_id": None,
                "source_customer_id": None,
                "lines_json": "{}",
                "reversed_points": 0,
                "description": bonus.description,
                "created_at": ctx.now,
            }
            for lot_id, (customer_id, account_id, key) in zip(lot_ids, grants, strict=True)
        ],
    )
    return len(grants)

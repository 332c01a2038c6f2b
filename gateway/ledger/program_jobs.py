"""The daily program job: segment transitions by date, tier recalculation over the window
(upgrade and downgrade), and birthday bonuses.

It walks every customer once per local day, in batches. A worker *leases* the next batch on the
day's ``program_job_runs`` row (short transaction), reads the batch's standing in a few
set-based statements (no write lock: segment, tier, birthday, the window's turnover of every
account at once) to find the few customers whose day changes anything, handles each of those in
a transaction of its own under the customer's account lock, then moves the cursor on. So the
job never holds the write lock for more than one customer, and a quiet day over 500,000
customers is a few hundred reads. Replicas take turns; a batch
whose worker died is taken over when its lease runs out. Every step is decided from the
customer's state under that lock (and a birthday grant has a unique key per customer and year),
so a customer handled twice — a second run the same day, two workers on one batch — changes
nothing the second time. Point expiry is not here: the maintenance pass expires lots.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gateway.core.program import Program
from gateway.core.rules.conditions import birthday_passed_within
from gateway.core.rules.segments import add_months
from gateway.ledger.accounts import add_lot, lock_account
from gateway.ledger.context import Ctx
from gateway.ledger.pricing_context import ladder_turnovers, local_day
from gateway.ledger.program_status import (
    effective_segment,
    recalculate_tier,
    segment_in_effect,
    set_segment,
    tier_decision,
)
from gateway.store.models import Account, Customer
from gateway.store.models_program import BonusGrant, ProgramJobRun

if TYPE_CHECKING:
    from gateway.ledger.service import LoyaltyService

JOB = "program-daily"
LEASE = timedelta(minutes=10)
BATCH = 2000
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
        changed = 0
        for customer_id in worth_a_look(service, claim.customer_ids, claim.day):
            result = process_customer(service, customer_id, claim.day)
            done.update(result)
            changed += sum(result.values())
        _advance(service, claim, batch, changed)
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
    read at once; ``process_customer`` decides again under each one's lock, so a purchase in
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
    for customer_id, account_id, segment, since, tier, _, _ in rows:
        current, previous = turnovers.get(account_id, (0, 0))
        birthday_key = birthday_keys.get(customer_id)
        tier_moves = tier_decision(program, segment_in_effect(program, segment), tier, current, previous, only_up=False)
        if (
            _segment_moves(program, segment, since, day)
            or tier_moves is not None
            or (birthday_key is not None and birthday_key not in granted)
        ):
            wanted.append(customer_id)
    return sorted(wanted)


def _segment_moves(program: Program, segment_code: str | None, since: date | None, day: date) -> bool:
    if segment_code is None:
        return program.default_segment is not None
    segment = program.segment(segment_code)
    return segment is not None and since is not None and segment.transition_due(since, day)


def process_customer(service: LoyaltyService, customer_id: str, day: date) -> Counter[str]:
    """Everything the day changes for one customer, in one transaction under their lock."""
    done: Counter[str] = Counter()
    now = service.clock()
    with service.db.write() as session:
        ctx = Ctx(service.db, session, service.program, now, CLIENT)
        account = session.exec(select(Account).where(Account.customer_id == customer_id)).first()
        if account is None:
            return done
        lock_account(ctx, account.id)
        customer = session.get(Customer, customer_id)
        if customer is None:  # pragma: no cover - customers are never deleted
            return done
        session.refresh(customer)
        done["segments_changed"] += transition_segment(ctx, customer, day)
        done["tiers_changed"] += recalculate_tier(ctx, customer, account.id, day)
        done["birthday_bonuses"] += grant_birthday(ctx, customer, account.id, day)
        session.flush()
    return +done


def transition_segment(ctx: Ctx, customer: Customer, day: date) -> int:
    """Place a customer without a segment in the default one; move a customer whose segment
    turns into another after some months (new-home owner → retail), dated when it was due."""
    program = ctx.program
    changed = 0
    if customer.segment is None and program.default_segment is not None:
        changed += set_segment(
            ctx, customer, program.default_segment, local_day(program, customer.created_at), "schedule"
        )
    for _ in range(len(program.segments)):  # a chain of transitions ends: validation rejects cycles
        segment = program.segment(customer.segment)
        since = customer.segment_since
        if segment is None or segment.becomes is None or since is None or not segment.transition_due(since, day):
            break
        assert segment.after_months is not None
        changed += set_segment(ctx, customer, segment.becomes, add_months(since, segment.after_months), "transition")
    return changed


def grant_birthday(ctx: Ctx, customer: Customer, account_id: str, day: date) -> int:
    """The birthday bonus, once per customer and year (up to ``grace_days`` late)."""
    program = ctx.program
    bonus = program.bonuses.birthday
    if bonus is None or customer.birth_date is None:
        return 0
    if bonus.segments and effective_segment(program, customer) not in bonus.segments:
        return 0
    birthday = birthday_passed_within(customer.birth_date, day, bonus.grace_days)
    if birthday is None or local_day(program, customer.created_at) > birthday:
        return 0
    key = f"birthday:{customer.id}:{birthday.year}"
    if ctx.session.get(BonusGrant, key) is not None:
        return 0
    days = bonus.expiry_days or program.expiry.days
    lot = add_lot(
        ctx,
        account_id,
        "birthday",
        bonus.points,
        entry_kind="birthday",
        available_at=ctx.now,
        expires_at=ctx.now + timedelta(days=days) if days else None,
    )
    ctx.session.add(
        BonusGrant(
            key=key,
            kind="birthday",
            customer_id=customer.id,
            account_id=account_id,
            points=bonus.points,
            lot_id=lot.id,
            description=bonus.description,
            created_at=ctx.now,
        )
    )
    return 1

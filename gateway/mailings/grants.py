"""One-off grants of points to an audience (issue 19): created once per idempotency key, then
booked in batches — each batch one short write transaction that books the ledger's grants
(``gateway.ledger.grants``, once per ``grant:<grant id>:<customer>``) and moves the grant's
cursor. A re-run, a crash half-way or two workers at once grant nobody twice."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, LoyaltyError
from gateway.audience import Audience, customer_ids, page
from gateway.ledger.context import Ctx
from gateway.ledger.grants import PointsToGrant, grant_to
from gateway.ledger.service import LoyaltyService
from gateway.mailings.requests import GrantRequest, GrantResult
from gateway.store.models_mailings import PointsGrant
from gateway.store.models_program import BonusGrant

BATCH = 25  # customers per transaction: each books a lot under its account lock (~3 ms on SQLite)


def _hash(request: GrantRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def _get(session: Session, grant_id: str) -> PointsGrant:
    grant = session.get(PointsGrant, grant_id)
    if grant is None:
        raise LoyaltyError(ErrorCode.NOT_FOUND, "no such grant", grant_id=grant_id)
    return grant


def _find(service: LoyaltyService, client_id: str, key: str) -> PointsGrant | None:
    with service.db.read() as session:
        return session.exec(
            select(PointsGrant).where(col(PointsGrant.created_by) == client_id, col(PointsGrant.idempotency_key) == key)
        ).first()


def create(service: LoyaltyService, client_id: str, key: str, request: GrantRequest) -> PointsGrant:
    """A grant to the audience (booked by ``run``); the same key and request give the same grant."""
    digest = _hash(request)
    existing = _find(service, client_id, key)
    if existing is None:
        with service.db.read() as session:  # an unknown zone is refused now, not half-way
            session.execute(customer_ids(service.program, request.audience).limit(1)).all()
        grant = PointsGrant(
            id=uuid.uuid4().hex[:16],
            created_by=client_id,
            idempotency_key=key,
            request_hash=digest,
            description=request.description,
            points=request.points,
            expires_at=request.expires_at,
            audience_json=request.audience.model_dump_json(exclude_defaults=True),
            created_at=service.clock(),
        )
        try:
            with service.db.write() as session:
                session.add(grant)
            return grant
        except IntegrityError:
            existing = _find(service, client_id, key)
            if existing is None:  # pragma: no cover
                raise
    if existing.request_hash != digest:
        raise LoyaltyError(ErrorCode.IDEMPOTENCY_CONFLICT, "this key made another grant", grant_id=existing.id)
    return existing


def run_batch(service: LoyaltyService, grant_id: str, batch: int = BATCH) -> tuple[str, int]:
    """Book the next batch of a grant; returns its state and how many were booked now."""
    with service.db.read() as session:
        grant = _get(session, grant_id)
        if grant.state != "granting":
            return grant.state, 0
        audience = Audience.model_validate_json(grant.audience_json)
        found, last = page(session, service.program, audience, grant.cursor, batch)
    with service.db.write() as session:
        current = _get(session, grant_id)
        if current.state != "granting" or current.cursor != grant.cursor:
            return current.state, 0  # another worker took this batch
        now = service.clock()
        booked = 0
        if found:
            points = PointsToGrant(current.id, current.points, current.expires_at, current.description)
            booked = grant_to(Ctx(service.db, session, service.program, now, current.created_by), points, found)
            current.customers += booked
        if last is None:
            current.state = "done"
            current.finished_at = now
        else:
            current.cursor = last
        session.add(current)
        return current.state, booked


def run(service: LoyaltyService, grant_id: str, max_batches: int | None = None) -> GrantResult:
    done = 0
    while max_batches is None or done < max_batches:
        state, _ = run_batch(service, grant_id)
        done += 1
        if state != "granting":
            break
    return result(service, grant_id)


def run_due(service: LoyaltyService, max_batches: int = 40) -> dict[str, int]:
    """The periodic job: a few batches of every grant still granting."""
    with service.db.read() as session:
        due = list(
            session.execute(sa_select(col(PointsGrant.id)).where(col(PointsGrant.state) == "granting")).scalars()
        )
    for grant_id in due:
        run(service, grant_id, max_batches)
    return {"grants": len(due)}


def result(service: LoyaltyService, grant_id: str) -> GrantResult:
    with service.db.read() as session:
        grant = _get(session, grant_id)
        booked = session.execute(
            sa_select(func.count(), func.coalesce(func.sum(col(BonusGrant.points)), 0)).where(
                col(BonusGrant.key).startswith(f"grant:{grant.id}:")
            )
        ).one()
    return GrantResult(
        grant_id=grant.id,
        description=grant.description,
        points=grant.points,
        expires_at=grant.expires_at,
        audience_text=Audience.model_validate_json(grant.audience_json).describe(),
        state="done" if grant.state == "done" else "granting",
        customers=int(booked[0]),
        points_total=int(booked[1]),
        created_by=grant.created_by,
        created_at=grant.created_at,
        finished_at=grant.finished_at,
    )

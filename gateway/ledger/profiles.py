"""Profile upkeep: one change of a registered customer in one transaction, each changed field
recorded with the calling client, old and new value (masked where personal) and time.

A segment change goes through ``program_status.set_segment`` (a status change with reason
``profile``): pricing reads the stored segment, so the next receipt is priced by it."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.profiles import (
    ProfileChangeInfo,
    ProfileChangesRequest,
    ProfileChangesResult,
    ProfileResult,
    UpdateCustomerRequest,
)
from gateway.ledger import program_status
from gateway.ledger.context import Ctx
from gateway.ledger.customers import customer_result
from gateway.ledger.merge import refuse_merged
from gateway.ledger.pricing_context import local_day
from gateway.store.models import Account, Customer
from gateway.store.models_profiles import ProfileChange

PERSONAL = frozenset({"name", "email", "birth_date"})


def mask(field: str, value: str | None) -> str | None:
    """What the history keeps of a personal value: enough for an operator to recognise it."""
    if value is None or field not in PERSONAL:
        return value
    if field == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if field == "birth_date":
        return "****-**-**"
    return value[:1] + "***"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _wanted(ctx: Ctx, customer: Customer, req: UpdateCustomerRequest) -> dict[str, object]:
    """Field -> new value of everything the request asks for, validated before anything is written."""
    wanted: dict[str, object] = {name: None for name in req.clear if name != "referrer"}
    if "referrer" in req.clear:
        wanted["referrer_id"] = None
    for name in ("name", "birth_date", "gender"):
        value = getattr(req, name)
        if value is not None:
            wanted[name] = value
    if req.email is not None:
        email = req.email.strip().lower()
        other = ctx.session.exec(select(Customer).where(Customer.email == email)).first()
        if other is not None and other.id != customer.id:
            raise LoyaltyError(ErrorCode.CUSTOMER_ALREADY_EXISTS, field="email", customer_id=other.id)
        wanted["email"] = email
    if req.segment is not None:
        if ctx.program.segment(req.segment) is None:
            known = ", ".join(s.code for s in ctx.program.segments) or "none"
            raise LoyaltyError(
                ErrorCode.VALIDATION_ERROR, f"unknown segment (known: {known})", field="segment", segment=req.segment
            )
        wanted["segment"] = req.segment
    referrer = program_status.referrer_named(ctx, req.referrer_card, req.referrer_customer_id)
    if referrer is not None:
        if referrer.id == customer.id:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "a customer cannot refer themselves", field="referrer")
        wanted["referrer_id"] = referrer.id
    if req.ad_consent is not None:
        wanted["ad_consent"] = req.ad_consent
        # Kept in UTC as every time in the ledger (the answer matches what a later read gives).
        wanted["ad_consent_at"] = (req.ad_consent_at or ctx.now).astimezone(UTC)
        wanted["ad_consent_channel"] = req.ad_consent_channel
    return wanted


def customer_of(ctx: Ctx, customer_id: str) -> Customer:
    customer = ctx.session.get(Customer, customer_id)
    if customer is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, customer_id=customer_id)
    return customer


def update_customer(ctx: Ctx, req: UpdateCustomerRequest) -> ProfileResult:
    customer = customer_of(ctx, req.customer_id)
    refuse_merged(ctx, customer.id)
    account = ctx.session.exec(select(Account).where(Account.customer_id == customer.id)).first()
    if account is not None:  # two changes of one customer at once: the second sees the first
        ctx.db.lock_account(ctx.session, account.id)
        ctx.session.refresh(customer)
    wanted = _wanted(ctx, customer, req)
    changed: list[str] = []
    for name, new in wanted.items():
        old = getattr(customer, name)
        if old == new:
            continue
        if name == "segment":
            # Recorded as a status change too; the default segment stands in for an empty one.
            program_status.set_segment(
                ctx, customer, new if isinstance(new, str) else None, local_day(ctx.program, ctx.now), "profile"
            )
        else:
            setattr(customer, name, new)
        ctx.session.add(
            ProfileChange(
                customer_id=customer.id,
                client_id=ctx.client_id,
                field=name,
                old_value=mask(name, _text(old)),
                new_value=mask(name, _text(new)),
                created_at=ctx.now,
            )
        )
        changed.append(name)
    ctx.session.add(customer)
    try:
        ctx.session.flush()
    except IntegrityError as exc:  # another customer took this e-mail at the same moment
        raise LoyaltyError(ErrorCode.CUSTOMER_ALREADY_EXISTS, field="email") from exc
    return profile_result(ctx, customer, changed)


def profile_result(ctx: Ctx, customer: Customer, changed: list[str] | None = None) -> ProfileResult:
    return ProfileResult(
        customer=customer_result(ctx, customer),
        gender="male" if customer.gender == "male" else "female" if customer.gender == "female" else None,
        ad_consent=customer.ad_consent,
        ad_consent_at=customer.ad_consent_at,
        ad_consent_channel=customer.ad_consent_channel,
        changed=changed or [],
    )


def profile_changes(ctx: Ctx, req: ProfileChangesRequest) -> ProfileChangesResult:
    customer_of(ctx, req.customer_id)
    rows = ctx.session.exec(
        select(ProfileChange)
        .where(ProfileChange.customer_id == req.customer_id)
        .order_by(col(ProfileChange.id))
        .limit(req.limit)
    ).all()
    return ProfileChangesResult(
        customer_id=req.customer_id,
        changes=[
            ProfileChangeInfo(
                field=r.field,
                old_value=r.old_value,
                new_value=r.new_value,
                client_id=r.client_id,
                changed_at=r.created_at,
            )
            for r in rows
        ],
    )

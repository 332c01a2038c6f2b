"""Company (B2B) accounts: a company is a customer whose account is shared by its contacts.

Each contact is a customer of their own (their personal card and points stay theirs) and gets a
*company card*: a card held by the contact that reaches the company's account. The contact's
role (``gateway.ledger.members``) decides what that card may do. Removing a contact blocks their
company cards; adding them again unblocks those cards.

A company has its own segment (given at creation, else the one its contacts share when the first
joins) and its own tier: the turnover of its account — every contact's purchases on the company
card — places it on its segment's ladder, and its cards are priced by both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal, cast

from sqlalchemy import func
from sqlmodel import col, select

from contracts.accounts import (
    CompanyMember,
    CompanyRequest,
    CompanyResult,
    MemberRemoveRequest,
    MemberRequest,
    MemberRole,
    MemberRoleRequest,
)
from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import CardInfo
from gateway.ledger.accounts import available_points
from gateway.ledger.context import Ctx
from gateway.ledger.customers import card_ref, generate_card_number
from gateway.ledger.members import RIGHTS
from gateway.ledger.merge import account_of
from gateway.ledger.pricing_context import contacts_segment, local_day
from gateway.ledger.program_status import set_segment
from gateway.store.models import Account, Card, Customer, LedgerEntry
from gateway.store.models_accounts import AccountMember, Company

CardStatus = Literal["active", "blocked", "replaced"]


def _company(ctx: Ctx, company_id: str) -> tuple[Company, Account]:
    company = ctx.session.get(Company, company_id)
    if company is None:
        raise LoyaltyError(ErrorCode.COMPANY_NOT_FOUND, company_id=company_id)
    return company, account_of(ctx, company.customer_id)


def _cards(ctx: Ctx, account_id: str, customer_id: str) -> Sequence[Card]:
    return ctx.session.exec(
        select(Card)
        .where(Card.account_id == account_id, Card.customer_id == customer_id)
        .order_by(col(Card.created_at), col(Card.number))
    ).all()


def _card_info(card: Card) -> CardInfo:
    return CardInfo(
        card_number=card.number,
        card_ref=card.ref,
        status=cast(CardStatus, card.status),
        replaced_by=card.replaced_by,
    )


def company_result(ctx: Ctx, company: Company, account: Account) -> CompanyResult:
    members: list[CompanyMember] = []
    for member, customer in ctx.session.exec(
        select(AccountMember, Customer)
        .join(Customer, col(Customer.id) == col(AccountMember.customer_id))
        .where(AccountMember.account_id == account.id)
        .order_by(col(AccountMember.added_at), col(AccountMember.customer_id))
    ).all():
        rights = RIGHTS.get(member.role, frozenset()) if member.removed_at is None else frozenset()
        members.append(
            CompanyMember(
                customer_id=customer.id,
                name=customer.name,
                phone=customer.phone,
                role=cast(MemberRole, member.role),
                active=member.removed_at is None,
                may_earn="earn" in rights,
                may_spend="spend" in rights,
                cards=[_card_info(c) for c in _cards(ctx, account.id, customer.id)],
                added_at=member.added_at,
                removed_at=member.removed_at,
            )
        )
    balance = ctx.session.exec(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.account_id == account.id)
    ).one()
    owner = ctx.session.get(Customer, company.customer_id)
    return CompanyResult(
        company_id=company.customer_id,
        name=company.name,
        inn=company.inn,
        kpp=company.kpp,
        segment=owner.segment if owner is not None else None,
        balance=int(balance),
        available=available_points(ctx, account.id),
        members=members,
        created_at=company.created_at,
    )


def create_company(ctx: Ctx, req: CompanyRequest) -> CompanyResult:
    email = req.email.strip().lower() if req.email else None
    if email is not None and ctx.session.exec(select(Customer.id).where(Customer.email == email)).first():
        raise LoyaltyError(ErrorCode.CUSTOMER_ALREADY_EXISTS, field="email")
    if req.segment is not None and ctx.program.segment(req.segment) is None:
        known = ", ".join(s.code for s in ctx.program.segments) or "none"
        raise LoyaltyError(
            ErrorCode.VALIDATION_ERROR, f"unknown segment (known: {known})", field="segment", segment=req.segment
        )
    customer = Customer(
        id=str(uuid.uuid4()),
        email=email,
        name=req.name,
        external_ref=req.external_ref,
        created_by=ctx.client_id,
        created_at=ctx.now,
    )
    ctx.session.add(customer)
    ctx.session.flush()
    if req.segment is not None:  # the company's own segment (a wholesale buyer): its cards price by it
        set_segment(ctx, customer, req.segment, local_day(ctx.program, ctx.now), "registration")
    account = Account(id=str(uuid.uuid4()), customer_id=customer.id, created_at=ctx.now)
    company = Company(
        customer_id=customer.id, name=req.name, inn=req.inn, kpp=req.kpp, created_by=ctx.client_id, created_at=ctx.now
    )
    ctx.session.add(account)
    ctx.session.add(company)
    ctx.session.flush()
    return company_result(ctx, company, account)


def _contact(ctx: Ctx, customer_id: str) -> Customer:
    customer = ctx.session.get(Customer, customer_id)
    if customer is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, customer_id=customer_id)
    if customer.merged_into is not None:
        raise LoyaltyError(ErrorCode.CUSTOMER_MERGED, customer_id=customer.id, merged_into=customer.merged_into)
    if ctx.session.get(Company, customer.id) is not None:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "a company cannot be a contact", customer_id=customer.id)
    return customer


def add_member(ctx: Ctx, req: MemberRequest) -> CompanyResult:
    """Make a customer a contact with a role, and give them a company card (the given number or
    a fresh one). A former contact is taken back: their company cards are unblocked."""
    company, account = _company(ctx, req.company_id)
    ctx.db.lock_account(ctx.session, account.id)
    contact = _contact(ctx, req.customer_id)
    member = ctx.session.get(AccountMember, (account.id, contact.id))
    if member is not None and member.removed_at is None:
        raise LoyaltyError(ErrorCode.MEMBER_ALREADY_EXISTS, company_id=company.customer_id, customer_id=contact.id)
    if member is None:
        member = AccountMember(
            account_id=account.id, customer_id=contact.id, role=req.role, added_by=ctx.client_id, added_at=ctx.now
        )
    else:
        member.role, member.added_by, member.added_at, member.removed_at = req.role, ctx.client_id, ctx.now, None
    ctx.session.add(member)
    former = [c for c in _cards(ctx, account.id, contact.id) if c.status == "blocked"]
    for card in former:
        card.status = "active"
        ctx.session.add(card)
    if req.card_number is not None or not former:
        number = req.card_number or generate_card_number(ctx)
        if ctx.session.get(Card, number) is not None:
            raise LoyaltyError(ErrorCode.CARD_ALREADY_EXISTS, card_number=number)
        ctx.session.add(
            Card(
                number=number,
                ref=card_ref(number),
                customer_id=contact.id,
                account_id=account.id,
                status="active",
                created_at=ctx.now,
            )
        )
    ctx.session.flush()
    _settle_segment(ctx, company, account)
    return company_result(ctx, company, account)


def _settle_segment(ctx: Ctx, company: Company, account: Account) -> None:
    """A company created without a segment takes the one its contacts share when its first
    contact joins, so that it has a segment (and a ladder, and a tier) of its own: the daily job
    would otherwise place it in the default segment and its card would stop pricing as its
    wholesale or installer buyers do. Later contacts change nothing; an operator may."""
    owner = ctx.session.get(Customer, company.customer_id)
    if owner is None or owner.segment is not None or not ctx.program.segments:
        return
    shared = contacts_segment(ctx.session, account.id)
    if shared is not None and ctx.program.segment(shared) is not None:
        set_segment(ctx, owner, shared, local_day(ctx.program, ctx.now), "contacts")
        ctx.session.flush()


def _active_member(ctx: Ctx, account: Account, customer_id: str) -> AccountMember:
    member = ctx.session.get(AccountMember, (account.id, customer_id))
    if member is None or member.removed_at is not None:
        raise LoyaltyError(ErrorCode.MEMBER_NOT_FOUND, customer_id=customer_id)
    return member


def set_role(ctx: Ctx, req: MemberRoleRequest) -> CompanyResult:
    company, account = _company(ctx, req.company_id)
    ctx.db.lock_account(ctx.session, account.id)
    member = _active_member(ctx, account, req.customer_id)
    member.role = req.role
    ctx.session.add(member)
    ctx.session.flush()
    return company_result(ctx, company, account)


def remove_member(ctx: Ctx, req: MemberRemoveRequest) -> CompanyResult:
    """The contact leaves: their company cards are blocked (their personal card is untouched).
    Holds their cards made stay until they resolve."""
    company, account = _company(ctx, req.company_id)
    ctx.db.lock_account(ctx.session, account.id)
    member = _active_member(ctx, account, req.customer_id)
    member.removed_at = ctx.now
    ctx.session.add(member)
    for card in _cards(ctx, account.id, req.customer_id):
        if card.status == "active":
            card.status = "blocked"
            ctx.session.add(card)
    ctx.session.flush()
    return company_result(ctx, company, account)


def company(ctx: Ctx, company_id: str) -> CompanyResult:
    return company_result(ctx, *_company(ctx, company_id))

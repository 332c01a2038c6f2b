"""Customers and cards: register, look up, issue a card, replace a lost card."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Literal, cast

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import (
    CardInfo,
    CardResult,
    CustomerResult,
    IssueCardRequest,
    LookupCustomerRequest,
    RegisterCustomerRequest,
    ReplaceCardRequest,
)
from gateway.ledger import program_status, referrals
from gateway.ledger.accounts import add_lot, find_card
from gateway.ledger.context import Ctx
from gateway.ledger.merge import refuse_merged, survivor_of
from gateway.ledger.phones import normalize_phone
from gateway.store.models import Account, Card, Customer

CardStatus = Literal["active", "blocked", "replaced"]


def _card_info(card: Card) -> CardInfo:
    return CardInfo(
        card_number=card.number,
        card_ref=card.ref,
        status=cast(CardStatus, card.status),
        replaced_by=card.replaced_by,
    )


def customer_result(ctx: Ctx, customer: Customer, *, created: bool = False, welcome: int = 0) -> CustomerResult:
    cards = ctx.session.exec(
        select(Card).where(Card.customer_id == customer.id).order_by(col(Card.created_at), col(Card.number))
    ).all()
    return CustomerResult(
        customer_id=customer.id,
        phone=customer.phone,
        email=customer.email,
        name=customer.name,
        birth_date=customer.birth_date,
        created=created,
        welcome_points=welcome,
        cards=[_card_info(c) for c in cards],
        segment=customer.segment,
        tier=customer.tier,
        referrer_id=customer.referrer_id,
    )


CARD_REF_NAMESPACE = uuid.UUID("6f1c2a52-3b7e-5d4a-9c1e-1c0a7e5b2d90")


def card_ref(number: str) -> str:
    """The card's stable GUID (1C ``CardRef``): derived from its number, so it never changes."""
    return str(uuid.uuid5(CARD_REF_NAMESPACE, number))


def ean13_check_digit(digits12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits12))
    return str((10 - total % 10) % 10)


def generate_card_number(ctx: Ctx, prefix: str = "27") -> str:
    """A fresh EAN-13 card number (prints as a barcode on plastic and in wallets)."""
    for _ in range(20):
        body = prefix + "".join(secrets.choice("0123456789") for _ in range(12 - len(prefix)))
        number = body + ean13_check_digit(body)
        if ctx.session.get(Card, number) is None:
            return number
    raise LoyaltyError(ErrorCode.INTERNAL_ERROR, "could not generate a free card number")


def _new_card(ctx: Ctx, customer_id: str, account_id: str, number: str | None) -> Card:
    if number is None:
        number = generate_card_number(ctx)
    elif ctx.session.get(Card, number) is not None:
        raise LoyaltyError(ErrorCode.CARD_ALREADY_EXISTS, card_number=number)
    card = Card(
        number=number,
        ref=card_ref(number),
        customer_id=customer_id,
        account_id=account_id,
        status="active",
        created_at=ctx.now,
    )
    ctx.session.add(card)
    return card


def register_customer(ctx: Ctx, req: RegisterCustomerRequest) -> CustomerResult:
    phone = normalize_phone(req.phone) if req.phone else None
    email = req.email.strip().lower() if req.email else None
    if phone is not None:
        other = ctx.session.exec(select(Customer).where(Customer.phone == phone)).first()
        if other is not None:
            raise LoyaltyError(ErrorCode.CUSTOMER_ALREADY_EXISTS, field="phone", customer_id=other.id)
    if email is not None:
        other = ctx.session.exec(select(Customer).where(Customer.email == email)).first()
        if other is not None:
            raise LoyaltyError(ErrorCode.CUSTOMER_ALREADY_EXISTS, field="email", customer_id=other.id)
    customer = Customer(
        id=str(uuid.uuid4()),
        phone=phone,
        email=email,
        name=req.name,
        birth_date=req.birth_date,
        external_ref=req.external_ref,
        created_by=ctx.client_id,
        created_at=ctx.now,
    )
    account = Account(id=str(uuid.uuid4()), customer_id=customer.id, created_at=ctx.now)
    try:
        ctx.session.add(customer)
        ctx.session.flush()
        ctx.session.add(account)
        ctx.session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race for this phone/e-mail
        raise LoyaltyError(ErrorCode.CUSTOMER_ALREADY_EXISTS) from exc
    _new_card(ctx, customer.id, account.id, req.card_number)
    program_status.on_registration(ctx, customer, req)  # segment, referrer (unknown ones roll all back)
    welcome = ctx.program.welcome_bonus
    if welcome.points:
        days = welcome.expiry_days or ctx.program.expiry.days
        add_lot(
            ctx,
            account.id,
            "welcome",
            welcome.points,
            entry_kind="welcome",
            available_at=ctx.now,
            expires_at=ctx.now + timedelta(days=days) if days else None,
        )
    friend = referrals.welcome_friend(ctx, customer.id, account.id, customer.referrer_id)
    ctx.session.flush()
    return customer_result(ctx, customer, created=True, welcome=welcome.points + friend)


def lookup_customer(ctx: Ctx, req: LookupCustomerRequest) -> CustomerResult:
    customer: Customer | None
    if req.card_number is not None:
        card = find_card(ctx, req.card_number)
        customer = ctx.session.get(Customer, card.customer_id)
    elif req.card_ref is not None:
        by_ref = ctx.session.exec(select(Card).where(Card.ref == req.card_ref)).first()
        if by_ref is None:
            raise LoyaltyError(ErrorCode.CARD_NOT_FOUND, card_ref=req.card_ref)
        customer = ctx.session.get(Customer, by_ref.customer_id)
    elif req.customer_id is not None:
        customer = ctx.session.get(Customer, req.customer_id)
    elif req.phone is not None:
        customer = ctx.session.exec(select(Customer).where(Customer.phone == normalize_phone(req.phone))).first()
    else:
        email = (req.email or "").strip().lower()
        customer = ctx.session.exec(select(Customer).where(Customer.email == email)).first()
    if customer is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND)
    return customer_result(ctx, survivor_of(ctx, customer))  # a merged duplicate answers as its survivor


def _account_of(ctx: Ctx, customer_id: str) -> Account:
    account = ctx.session.exec(select(Account).where(Account.customer_id == customer_id)).first()
    if account is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, customer_id=customer_id)
    return account


def issue_card(ctx: Ctx, req: IssueCardRequest) -> CardResult:
    if ctx.session.get(Customer, req.customer_id) is None:
        raise LoyaltyError(ErrorCode.CUSTOMER_NOT_FOUND, customer_id=req.customer_id)
    refuse_merged(ctx, req.customer_id)
    account = _account_of(ctx, req.customer_id)
    card = _new_card(ctx, req.customer_id, account.id, req.card_number)
    ctx.session.flush()
    return CardResult(customer_id=req.customer_id, card=_card_info(card))


def replace_card(ctx: Ctx, req: ReplaceCardRequest) -> CardResult:
    """A lost or damaged card: the account (and its points) moves to a new card number."""
    old = find_card(ctx, req.card_number)
    ctx.db.lock_account(ctx.session, old.account_id)
    ctx.session.refresh(old)
    if old.status != "active":
        raise LoyaltyError(ErrorCode.CARD_BLOCKED, card_number=old.number, status=old.status)
    new = _new_card(ctx, old.customer_id, old.account_id, req.new_card_number)
    old.status = "replaced"
    old.replaced_by = new.number
    ctx.session.add(old)
    ctx.session.flush()
    return CardResult(customer_id=old.customer_id, card=_card_info(new), previous_card=_card_info(old))

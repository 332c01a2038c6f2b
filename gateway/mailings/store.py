"""Create a mailing (once per idempotency key), read it, preview its audience, consent and cost,
start and cancel it. Each is one short transaction; the preview only counts (in SQL)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, LoyaltyError
from gateway.audience import Audience, customer_ids
from gateway.config import GatewayConfig
from gateway.ledger.service import LoyaltyService
from gateway.mailings import texts, unsubscribe
from gateway.mailings.config import Channel, MailingsConfig
from gateway.mailings.requests import ChannelPreview, MailingPreview, MailingRequest, MailingResult
from gateway.store.models import Customer
from gateway.store.models_mailings import Mailing

# An unsubscribe link's length for the cost estimate: the public URL, "/u/" and a 48-character token.
TOKEN_LENGTH = 48


def holdout_of(settings: MailingsConfig, request: MailingRequest) -> int:
    """The share held out: the request's, else the configured one for advertising. A service
    mailing (a changed opening time, a recall) is news every customer needs: nobody is held out."""
    if request.holdout_percent is not None:
        return request.holdout_percent
    return settings.holdout_percent if request.kind == "advertising" else 0


def request_hash(request: MailingRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def audience_of(mailing: Mailing) -> Audience:
    return Audience.model_validate_json(mailing.audience_json)


def request_of(mailing: Mailing) -> MailingRequest:
    """The request a mailing was created from (its stored columns)."""
    return MailingRequest(
        name=mailing.name,
        kind=mailing.kind,
        channel=mailing.channel,
        subject=mailing.subject,
        template=mailing.template,
        audience=audience_of(mailing),
        holdout_percent=mailing.holdout_percent,
        promo_mode=mailing.promo_mode,
        campaign_id=mailing.campaign_id,
        shared_code=mailing.shared_code,
        gift_points=mailing.gift_points,
        conversion_days=mailing.conversion_days,
        per_minute=mailing.per_minute,
    )


def result(mailing: Mailing) -> MailingResult:
    return MailingResult(
        mailing_id=mailing.id,
        name=mailing.name,
        kind=mailing.kind,
        channel=mailing.channel,
        state=mailing.state,
        audience_text=audience_of(mailing).describe(),
        holdout_percent=mailing.holdout_percent,
        recipients=mailing.recipients,
        holdout=mailing.holdout,
        skipped_consent=mailing.skipped_consent,
        skipped_contact=mailing.skipped_contact,
        created_by=mailing.created_by,
        created_at=mailing.created_at,
        sending_at=mailing.sending_at,
        queued_at=mailing.queued_at,
    )


def _check(service: LoyaltyService, config: GatewayConfig, request: MailingRequest) -> None:
    if request.kind == "advertising" and config.mailings.public_url is None:
        raise LoyaltyError(
            ErrorCode.NOT_CONFIGURED, "advertising needs unsubscribe links: set mailings.public_url", field="kind"
        )
    if request.channel == "email" and not config.mailings.chains.get("email"):
        raise LoyaltyError(ErrorCode.NOT_CONFIGURED, "no e-mail provider: set mailings.chains.email", field="channel")
    if request.promo_mode == "personal" and request.campaign_id is not None:
        service.campaign("system:mailings", request.campaign_id)  # campaign_not_found when there is none
    with service.db.read() as session:  # unknown zones and the like: refused now, not when sending
        session.execute(customer_ids(service.program, request.audience).limit(1)).all()


def create(
    service: LoyaltyService, config: GatewayConfig, client_id: str, key: str, request: MailingRequest
) -> Mailing:
    """A draft mailing; the same key with the same request gives the same mailing, with another
    request ``idempotency_conflict``."""
    digest = request_hash(request)
    existing = find_by_key(service, client_id, key)
    if existing is None:
        _check(service, config, request)
        settings = config.mailings
        mailing = Mailing(
            id=uuid.uuid4().hex[:16],
            created_by=client_id,
            idempotency_key=key,
            request_hash=digest,
            name=request.name,
            kind=request.kind,
            channel=request.channel,
            subject=request.subject,
            template=request.template,
            audience_json=request.audience.model_dump_json(exclude_defaults=True),
            holdout_percent=holdout_of(settings, request),
            promo_mode=request.promo_mode,
            campaign_id=request.campaign_id,
            shared_code=request.shared_code,
            gift_points=request.gift_points,
            conversion_days=request.conversion_days or settings.conversion_days,
            per_minute=request.per_minute or settings.per_minute,
            start_at=request.start_at,
            created_at=service.clock(),
        )
        if request.gift_points and request.gift_expiry_days:
            mailing.gift_expires_at = mailing.created_at + timedelta(days=request.gift_expiry_days)
        try:
            with service.db.write() as session:
                session.add(mailing)
            return mailing
        except IntegrityError:  # the same key at the same moment: the other request's mailing stands
            existing = find_by_key(service, client_id, key)
            if existing is None:  # pragma: no cover
                raise
    if existing.request_hash != digest:
        raise LoyaltyError(ErrorCode.IDEMPOTENCY_CONFLICT, "this key created another mailing", mailing_id=existing.id)
    return existing


def find_by_key(service: LoyaltyService, client_id: str, key: str) -> Mailing | None:
    with service.db.read() as session:
        return session.exec(
            select(Mailing).where(col(Mailing.created_by) == client_id, col(Mailing.idempotency_key) == key)
        ).first()


def get(session: Session, mailing_id: str) -> Mailing:
    mailing = session.get(Mailing, mailing_id)
    if mailing is None:
        raise LoyaltyError(ErrorCode.NOT_FOUND, "no such mailing", mailing_id=mailing_id)
    return mailing


def read(service: LoyaltyService, mailing_id: str) -> Mailing:
    with service.db.read() as session:
        return get(session, mailing_id)


def preview(service: LoyaltyService, config: GatewayConfig, request: MailingRequest) -> MailingPreview:
    """How many the audience holds, who is reachable on each channel and may get this mailing,
    the expected holdout, SMS parts and cost — all counted by the database in one statement."""
    ids = customer_ids(service.program, request.audience).subquery()
    consent = col(Customer.ad_consent).is_(True)
    phone = col(Customer.phone).is_not(None)
    email = col(Customer.email).is_not(None)

    query = (
        sa_select(
            func.count(),
            func.coalesce(func.sum(case((consent, 1), else_=0)), 0),
            func.coalesce(func.sum(case((phone, 1), else_=0)), 0),
            func.coalesce(func.sum(case((phone & consent, 1), else_=0)), 0),
            func.coalesce(func.sum(case((email, 1), else_=0)), 0),
            func.coalesce(func.sum(case((email & consent, 1), else_=0)), 0),
        )
        .select_from(Customer)
        .join(ids, ids.c.id == col(Customer.id))
    )
    with service.db.read() as session:
        total, consenting, phones, phones_ok, emails, emails_ok = (int(v) for v in session.execute(query).one())
    settings = config.mailings
    holdout = holdout_of(settings, request)
    advertising = request.kind == "advertising"
    link_length = len(unsubscribe.url(settings.public_url or "https://x", "t" * TOKEN_LENGTH))
    channels: list[ChannelPreview] = []
    reach: dict[Channel, tuple[int, int]] = {"sms": (phones, phones_ok), "email": (emails, emails_ok)}
    for channel, (reachable, agreed) in reach.items():
        allowed = agreed if advertising else reachable
        held = allowed * holdout // 100
        template = texts.full_template(
            request.template, advertising=advertising, channel=channel, footers=settings.footers
        )
        parts = texts.parts_of(channel, template, link_length)
        price = settings.prices.get(channel)
        messages = allowed - held
        cost = (price * parts * messages).quantize(Decimal("0.01")) if price is not None else None
        channels.append(
            ChannelPreview(
                channel=channel,
                reachable=reachable,
                allowed=allowed,
                holdout=held,
                messages=messages,
                parts_per_message=parts,
                price=price,
                cost=cost,
            )
        )
    return MailingPreview(
        audience=total,
        audience_text=request.audience.describe(),
        advertising_allowed=consenting,
        channels=channels,
    )


def start(service: LoyaltyService, mailing_id: str) -> Mailing:
    """Approve a draft for sending (the planner takes it from here); a second call changes nothing."""
    now = service.clock()
    with service.db.write() as session:
        mailing = get(session, mailing_id)
        if mailing.state == "cancelled":
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "the mailing is cancelled", mailing_id=mailing_id)
        if mailing.state == "draft":
            mailing.state = "sending"
            mailing.sending_at = now
            session.add(mailing)
        unsubscribe.link_key(session, now)  # made once, before any batch needs it
        return mailing


def cancel(service: LoyaltyService, mailing_id: str) -> Mailing:
    """Stop planning: messages queued already still go (they are in the outbox)."""
    with service.db.write() as session:
        mailing = get(session, mailing_id)
        if mailing.state in ("draft", "sending"):
            mailing.state = "cancelled"
            session.add(mailing)
        return mailing


def window(mailing: Mailing) -> tuple[datetime | None, datetime | None]:
    """The report window: from when sending started (or was scheduled to) for ``conversion_days``."""
    start_at = max(filter(None, [mailing.sending_at, mailing.start_at]), default=None)
    return start_at, (start_at + timedelta(days=mailing.conversion_days) if start_at else None)

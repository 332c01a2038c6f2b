"""Registration by phone: send a code, check it, hand out a card.

Codes are random, stored only as an HMAC (a per-installation key kept in the database, shared by
replicas), expire after ``ttl_seconds``, allow ``max_attempts`` wrong guesses and are replaced by
a resend; resends are rate-limited per phone (an interval and an hourly cap) and per end
customer's address when the calling system forwards it (an hourly cap) — never per the calling
system's own address: a site sends every visitor's request from one address. Both limits and the
wrong-code counter hold under concurrency on both databases (a per-phone advisory lock on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite; the code row is read ``FOR UPDATE``). Phones are masked
in every log line.

A referral code (the referrer's card number, or their phone: the phone is the card) may come with
the code request — kept with the code — or with the confirmation, which wins; an unknown one is
``referrer_not_found`` before any code is sent or used. A phone counts as confirmed once a code
sent to it was entered, or when another channel vouched for it (``record_confirmed``: a contact
shared in Telegram); the ``phone_unconfirmed`` reminders (``gateway/notify/reminders.py``) read it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import CustomerResult, LookupCustomerRequest, RegisterCustomerRequest
from gateway.config import NotificationsConfig
from gateway.ledger.phones import mask_phone, normalize_phone
from gateway.ledger.service import LoyaltyService
from gateway.notify.queue import enqueue
from gateway.store.models import GatewaySecret, Notification, VerificationCode
from gateway.store.models_lifecycle import CodeReferrer

log = logging.getLogger("gateway.notify.verification")
SECRET_NAME = "verification-hmac"


@dataclass(frozen=True)
class CodeSent:
    phone_masked: str
    expires_at: datetime
    resend_after: datetime


def shared_secret(session: Session, name: str, now: datetime) -> bytes:
    """A random key made once per installation and kept in the database, so that every process
    and replica uses the same one."""
    row = session.get(GatewaySecret, name)
    if row is None:
        try:
            with session.begin_nested():
                row = GatewaySecret(name=name, value=secrets.token_hex(32), created_at=now)
                session.add(row)
        except IntegrityError:  # another replica made it first
            row = session.get(GatewaySecret, name)
    assert row is not None
    return bytes.fromhex(row.value)


def _secret(session: Session, now: datetime) -> bytes:
    return shared_secret(session, SECRET_NAME, now)


def _digest(key: bytes, phone: str, code: str) -> str:
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


class PhoneVerification:
    def __init__(self, service: LoyaltyService, config: NotificationsConfig) -> None:
        self.service = service
        self.config = config
        self.policy = config.verification

    def _limited(self, retry_at: datetime, now: datetime, what: str) -> LoyaltyError:
        seconds = max(1, int((retry_at - now).total_seconds()) + 1)
        return LoyaltyError(ErrorCode.RATE_LIMITED, f"too many codes {what}", retry_after=seconds)

    def _serialize_phone(self, session: Session, phone: str) -> None:
        """Make concurrent requests for one phone take turns (PostgreSQL; SQLite writers already do)."""
        if not self.service.db.is_sqlite:
            key = int.from_bytes(hashlib.sha256(f"verification:{phone}".encode()).digest()[:8], "big", signed=True)
            session.execute(sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def referrer_id(self, client_id: str, referral_code: str) -> str:
        """The customer a referral code names: a card number or a phone (in any common notation)."""
        try:
            return self.service.lookup_customer(client_id, LookupCustomerRequest(card_number=referral_code)).customer_id
        except LoyaltyError as exc:
            if exc.code not in (ErrorCode.CARD_NOT_FOUND, ErrorCode.CUSTOMER_NOT_FOUND):
                raise
            raise LoyaltyError(ErrorCode.REFERRER_NOT_FOUND, referrer=referral_code) from exc

    def request_code(
        self, phone_raw: str, client_ip: str | None, *, referrer: str | None = None, client_id: str = "site"
    ) -> CodeSent:
        """Send a code to ``phone_raw``. ``client_ip`` is the end customer's address as the calling
        system saw it (None: not known; only the per-phone limits apply). ``referrer``: the
        referral code the customer came with, kept with the code for the confirmation."""
        phone = normalize_phone(phone_raw)
        referrer_id = self.referrer_id(client_id, referrer) if referrer else None
        now = self.service.clock()
        policy = self.policy
        hour_ago = now - timedelta(hours=1)
        with self.service.db.write() as session:
            self._serialize_phone(session, phone)
            recent = list(
                session.exec(
                    select(VerificationCode)
                    .where(VerificationCode.phone == phone, col(VerificationCode.created_at) > hour_ago)
                    .order_by(col(VerificationCode.created_at).desc())
                ).all()
            )
            if recent and recent[0].created_at + timedelta(seconds=policy.resend_interval_seconds) > now:
                raise self._limited(
                    recent[0].created_at + timedelta(seconds=policy.resend_interval_seconds), now, "for this phone"
                )
            if len(recent) >= policy.max_per_phone_per_hour:
                raise self._limited(recent[-1].created_at + timedelta(hours=1), now, "for this phone this hour")
            if client_ip:
                from_ip = session.exec(
                    select(func.count())
                    .select_from(VerificationCode)
                    .where(VerificationCode.client_ip == client_ip, col(VerificationCode.created_at) > hour_ago)
                ).one()
                if int(from_ip) >= policy.max_per_ip_per_hour:
                    raise self._limited(now + timedelta(minutes=10), now, "from this address this hour")
            for old in recent:  # a new code replaces every earlier one
                old.attempts_left = 0
                session.add(old)
            code = f"{secrets.randbelow(10**policy.code_length):0{policy.code_length}d}"
            row = VerificationCode(
                id=str(uuid.uuid4()),
                phone=phone,
                code_hash=_digest(_secret(session, now), phone, code),
                expires_at=now + timedelta(seconds=policy.ttl_seconds),
                attempts_left=policy.max_attempts,
                client_ip=client_ip,
                created_at=now,
            )
            session.add(row)
            if referrer_id is not None:
                session.add(CodeReferrer(code_id=row.id, referrer_customer_id=referrer_id, created_at=now))
            text = self.config.templates["verification"].format(code=code)
            enqueue(
                session,
                Notification(
                    id=f"code:{row.id}",
                    kind="verification",
                    topic="verification",
                    phone=phone,
                    text=text,
                    code=code,
                    ttl_seconds=policy.ttl_seconds,
                    created_at=now,
                ),
                now,
            )
        log.info("verification code sent to %s", mask_phone(phone))
        return CodeSent(
            phone_masked=mask_phone(phone),
            expires_at=row.expires_at,
            resend_after=now + timedelta(seconds=policy.resend_interval_seconds),
        )

    def _check(self, phone: str, code: str) -> str:
        """Consume the code if it is right; returns the code's id. Wrong guesses are counted
        (committed even though the request fails)."""
        now = self.service.clock()
        failure: LoyaltyError | None = None
        with self.service.db.write() as session:
            # FOR UPDATE: concurrent guesses take turns on the row, so each sees the attempts the
            # others used (without it, PostgreSQL let 25 guesses through where 4 were allowed).
            row = session.exec(
                select(VerificationCode)
                .where(VerificationCode.phone == phone, col(VerificationCode.used_at).is_(None))
                .order_by(col(VerificationCode.created_at).desc())
                .limit(1)
                .with_for_update()
            ).first()
            if row is None:
                raise LoyaltyError(ErrorCode.CODE_INVALID, "no code was requested for this phone")
            if row.attempts_left <= 0:
                raise LoyaltyError(ErrorCode.CODE_ATTEMPTS_EXCEEDED)
            if row.expires_at <= now:
                raise LoyaltyError(ErrorCode.CODE_EXPIRED)
            expected = row.code_hash
            if hmac.compare_digest(expected, _digest(_secret(session, now), phone, code.strip())):
                row.used_at = now
                session.add(row)
                return row.id
            row.attempts_left -= 1
            session.add(row)
            if row.attempts_left <= 0:
                failure = LoyaltyError(ErrorCode.CODE_ATTEMPTS_EXCEEDED)
            else:
                failure = LoyaltyError(ErrorCode.CODE_INVALID, attempts_left=row.attempts_left)
        log.info("wrong verification code for %s", mask_phone(phone))
        raise failure

    def verify(self, client_id: str, request: RegisterCustomerRequest, code: str) -> CustomerResult:
        """Check the code for ``request.phone`` and return the customer with a usable card:
        registered now (with the welcome bonus), or the one who already has this phone."""
        if not request.phone:
            raise LoyaltyError(ErrorCode.VALIDATION_ERROR, "phone is required", field="phone")
        phone = normalize_phone(request.phone)
        if request.referrer_card is not None:  # a card number or a phone: named by the customer id
            named = self.referrer_id(client_id, request.referrer_card)
            request = request.model_copy(update={"referrer_card": None, "referrer_customer_id": named})
        code_id = self._check(phone, code)
        if request.referrer_customer_id is None:
            with self.service.db.read() as session:
                kept = session.get(CodeReferrer, code_id)
            if kept is not None:
                request = request.model_copy(update={"referrer_customer_id": kept.referrer_customer_id})
        try:
            return self.service.register_customer(client_id, f"verified:{code_id}", request)
        except LoyaltyError as exc:
            if exc.code != ErrorCode.CUSTOMER_ALREADY_EXISTS or exc.details.get("field") != "phone":
                raise
            return self.service.lookup_customer(client_id, LookupCustomerRequest(phone=phone))

    def record_confirmed(self, phone_raw: str) -> None:
        """Record ``phone_raw`` as confirmed without a code: another channel vouched for it (a
        contact the user shared in Telegram is their own verified phone)."""
        phone = normalize_phone(phone_raw)
        now = self.service.clock()
        with self.service.db.write() as session:
            session.add(
                VerificationCode(
                    id=str(uuid.uuid4()),
                    phone=phone,
                    code_hash=secrets.token_hex(32),  # no code was sent: nothing can match it
                    expires_at=now,
                    attempts_left=0,
                    created_at=now,
                    used_at=now,
                )
            )
        log.info("phone %s confirmed by another channel", mask_phone(phone))

"""``gateway import cards FILE.csv``: customers, cards and opening balances from a CSV.

Columns (header row required; UTF-8, with or without BOM; ``;``, ``,`` or tab separated):
``card_number`` (required), ``phone``, ``email``, ``name``, ``birth_date`` (``YYYY-MM-DD`` or
``DD.MM.YYYY``), ``balance`` (whole points, default 0), ``expires_at`` (when the opening balance
expires: a date means the start of that day in the import's time zone; empty = never).

* Streaming: the file is read row by row and written in batches (``batch_size``), so memory does
  not grow with the file (beyond the set of card numbers and contacts seen, kept compact).
* Resumable and idempotent: every batch is one transaction, and cards that already exist are
  skipped — run it again after an interruption, or twice, and every card is imported exactly once.
* Rejected rows (bad card number, bad or repeated phone or e-mail, negative or fractional
  balance, bad date) go to the report with a reason code; nothing of a rejected row is written.
* Reconciliation: points in the file = points imported + points in rejected rows + points of
  cards already present; the points imported by this file are then re-counted from the ledger.

Each card gets its own customer and account. The opening balance is one lot (source ``import``)
and one ledger entry (kind ``import``) written by the client ``import:cards:<digest of the file>``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, insert, literal, select
from sqlmodel import Session, SQLModel, col

from contracts.errors import LoyaltyError
from gateway.importer.bulk import BulkInsert
from gateway.importer.common import (
    E164_RU,
    EMAIL_TEXT_RE,
    ImportReport,
    RejectCode,
    Rejects,
    RowError,
    among,
    calendar_date,
    card_number,
    declared_points,
    field_of,
    start_of_day_utc,
    whole,
)
from gateway.importer.runner import Importer, Tallied
from gateway.ledger.customers import card_ref
from gateway.ledger.phones import normalize_phone
from gateway.store.models import Card, Customer, LedgerEntry
from gateway.store.types import UTCDateTime

TABLES = SQLModel.metadata.tables
OPENING_LOT_SOURCE = "import"

_customers = BulkInsert(
    TABLES["customers"], ["id", "phone", "email", "name", "birth_date", "external_ref", "created_by", "created_at"]
)
_accounts = BulkInsert(TABLES["accounts"], ["id", "customer_id", "created_at"])
_cards = BulkInsert(
    TABLES["cards"], ["number", "ref", "customer_id", "account_id", "status", "replaced_by", "created_at"]
)
_lots = BulkInsert(
    TABLES["lots"],
    ["account_id", "source", "points", "remaining", "available_at", "expires_at", "transaction_id", "created_at"],
)


@dataclass(frozen=True, slots=True)
class CardRow:
    line: int
    card_number: str
    phone: str | None
    email: str | None
    name: str | None
    birth_date: date | None
    balance: int
    expires_at: datetime | None


def _phone(text: str) -> str:
    if E164_RU.match(text):
        return text
    if len(text) == 11 and text.isdigit() and text[0] in "78":
        return "+7" + text[1:]
    try:
        return normalize_phone(text)
    except LoyaltyError as exc:
        raise RowError(RejectCode.BAD_PHONE, f"bad phone {text!r}") from exc


class OrderedIds:
    """UUIDs (RFC 9562 version 7 layout) that increase within a run and from run to run: the
    millisecond the run started, 12 random bits, then a counter. Rows inserted with them append
    to the end of every index keyed by them instead of landing at random places, which keeps an
    import of half a million customers from thrashing the database's page cache."""

    def __init__(self, now: datetime) -> None:
        millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
        self._high = (millis << 16) | 0x7000 | secrets.randbits(12)
        self._counter = secrets.randbits(40) << 16

    def next(self) -> str:
        self._counter += 1
        value = (self._high << 64) | (0b10 << 62) | self._counter
        return str(uuid.UUID(int=value))


class CardImporter(Importer[CardRow]):
    kind = "cards"
    required = ("card_number",)
    tallies = (Tallied("points", "points"),)

    def start(self) -> None:
        self._ids = OrderedIds(self.now)

    def parse(self, line: int, raw: dict[str, str]) -> CardRow:
        number = card_number(field_of(raw, "card_number"))
        balance = whole(field_of(raw, "balance") or "0", "balance")
        email = field_of(raw, "email").lower() or None
        if email is not None and not EMAIL_TEXT_RE.match(email):
            raise RowError(RejectCode.BAD_EMAIL, f"bad e-mail {email!r}")
        phone = field_of(raw, "phone")
        birth = field_of(raw, "birth_date")
        expires = field_of(raw, "expires_at")
        return CardRow(
            line=line,
            card_number=number,
            phone=_phone(phone) if phone else None,
            email=email,
            name=field_of(raw, "name")[:256] or None,
            birth_date=calendar_date(birth, "birth date") if birth else None,
            balance=balance,
            expires_at=start_of_day_utc(calendar_date(expires, "expiry date"), self.zone) if expires else None,
        )

    def key_of(self, raw: dict[str, str]) -> str:
        return field_of(raw, "card_number")

    def declared(self, raw: dict[str, str]) -> dict[str, int]:
        return {"points": max(0, declared_points(field_of(raw, "balance")))}

    def amounts(self, row: CardRow) -> dict[str, int]:
        return {"points": row.balance}

    def unique(self, row: CardRow) -> Sequence[tuple[str, str]]:
        pairs = [("card number", row.card_number)]
        if row.phone:
            pairs.append(("phone", row.phone))
        if row.email:
            pairs.append(("e-mail", row.email))
        return pairs

    def write(self, session: Session, rows: list[CardRow], report: ImportReport, reject: Rejects) -> None:
        client = self.client_id(report)
        dialect = session.get_bind().dialect.name
        existing: dict[str, str] = {
            number: created_by
            for number, created_by in session.execute(
                select(col(Card.number), col(Customer.created_by))
                .join(Customer, col(Customer.id) == col(Card.customer_id))
                .where(among(col(Card.number), [r.card_number for r in rows], dialect))
            )
        }
        phones = [r.phone for r in rows if r.phone]
        emails = [r.email for r in rows if r.email]
        taken: set[str] = set()
        if phones:
            query = select(col(Customer.phone)).where(among(col(Customer.phone), phones, dialect))
            taken |= {phone for phone in session.execute(query).scalars() if phone is not None}
        if emails:
            query = select(col(Customer.email)).where(among(col(Customer.email), emails, dialect))
            taken |= {email for email in session.execute(query).scalars() if email is not None}
        fresh: list[CardRow] = []
        for row in rows:
            if row.card_number in existing:
                self.existing(report, row, existing[row.card_number] == client)
            elif (row.phone and row.phone in taken) or (row.email and row.email in taken):
                error = RowError(RejectCode.CONTACT_TAKEN, "phone or e-mail belongs to another customer")
                reject(row.line, row.card_number, error, self.amounts(row))
            else:
                fresh.append(row)
        if not fresh:
            return
        now = self.now
        ids = [self._ids.next() for _ in fresh]
        accounts = [self._ids.next() for _ in fresh]
        _customers(
            session,
            (
                (cid, r.phone, r.email, r.name, r.birth_date, r.card_number, client, now)
                for cid, r in zip(ids, fresh, strict=True)
            ),
        )
        _accounts(session, ((aid, cid, now) for aid, cid in zip(accounts, ids, strict=True)))
        _cards(
            session,
            (
                (r.card_number, card_ref(r.card_number), cid, aid, "active", None, now)
                for r, cid, aid in zip(fresh, ids, accounts, strict=True)
            ),
        )
        funded = [(aid, r) for aid, r in zip(accounts, fresh, strict=True) if r.balance > 0]
        if funded:
            _lots(
                session,
                ((aid, OPENING_LOT_SOURCE, r.balance, r.balance, now, r.expires_at, None, now) for aid, r in funded),
            )
            # One entry per opening lot, written from the lots themselves (these accounts are new
            # in this batch, so their import lots are exactly the ones just written).
            lots = TABLES["lots"]
            session.execute(
                insert(TABLES["ledger_entries"]).from_select(
                    ["account_id", "kind", "points", "lot_id", "client_id", "created_at"],
                    select(
                        lots.c.account_id,
                        literal("import"),
                        lots.c.points,
                        lots.c.id,
                        literal(client),
                        literal(now, UTCDateTime()),
                    ).where(
                        lots.c.source == OPENING_LOT_SOURCE,
                        among(lots.c.account_id, [aid for aid, _ in funded], dialect),
                    ),
                )
            )
        for row in fresh:
            self.imported(report, row)

    def recount(self, session: Session, report: ImportReport) -> None:
        total = session.execute(
            select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                col(LedgerEntry.client_id) == self.client_id(report), col(LedgerEntry.kind) == "import"
            )
        ).scalar_one()
        report.tallies["points"].recounted = int(total)

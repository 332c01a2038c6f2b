"""``gateway import cards FILE.csv``: customers, cards and opening balances from a CSV.

Columns (header row required, UTF-8 or UTF-8 with BOM, comma or semicolon separated):
``card_number`` (required), ``phone``, ``email``, ``name``, ``birth_date`` (YYYY-MM-DD or
DD.MM.YYYY), ``balance`` (whole points, default 0), ``expires_at`` (date the balance expires;
empty = never).

* Streaming: the file is read row by row and written in batches (``batch_size``), so memory does
  not grow with the file.
* Resumable and idempotent: every batch is one transaction, ids are derived from the card number,
  and cards that already exist are skipped — run it again after an interruption, or twice, and
  every card is imported exactly once.
* Rejected rows (bad card number, bad or duplicate phone or e-mail, negative or fractional
  balance, bad date) go to a report CSV with the reason; nothing of a rejected row is written.
* Reconciliation: points in the file = points imported + points in rejected rows + points of
  cards already present; the imported points are then re-counted from the ledger.
"""

from __future__ import annotations

import csv
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, insert, literal, select
from sqlmodel import SQLModel, col

from contracts.errors import LoyaltyError
from gateway.ledger.customers import card_ref
from gateway.ledger.phones import normalize_phone
from gateway.store.db import Database
from gateway.store.models import Card, Customer, LedgerEntry
from gateway.store.types import UTCDateTime

CARD_RE = re.compile(r"^[0-9A-Za-z\-_]{1,64}$")
E164_RU = re.compile(r"^\+7\d{10}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TABLES = SQLModel.metadata.tables
NAMESPACE = uuid.UUID("2f0b8e0a-5d6c-5b0e-9a51-6d7c1c0a1e01")


class RowError(ValueError):
    pass


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    skipped_existing: int = 0
    rejected: int = 0
    points_in_file: int = 0
    points_imported: int = 0
    points_rejected: int = 0
    points_existing: int = 0
    points_from_earlier_runs: int = 0  # of points_existing: cards this same file imported before
    points_in_ledger: int = 0
    import_id: str = ""
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, card, reason) — first 20 only

    @property
    def reconciled(self) -> bool:
        balanced = self.points_in_file == self.points_imported + self.points_rejected + self.points_existing
        return balanced and self.points_in_ledger == self.points_imported + self.points_from_earlier_runs


@dataclass(frozen=True)
class CardRow:
    line: int
    card_number: str
    phone: str | None
    email: str | None
    name: str | None
    birth_date: date | None
    balance: int
    expires_at: datetime | None


def _phone(raw: str) -> str:
    text = raw.strip()
    if E164_RU.match(text):
        return text
    if len(text) == 11 and text.isdigit() and text[0] in "78":
        return "+7" + text[1:]
    try:
        return normalize_phone(text)
    except LoyaltyError as exc:
        raise RowError(f"bad phone {text!r}") from exc


def _date(raw: str, what: str) -> date:
    text = raw.strip()
    try:
        return date.fromisoformat(text)  # the common case, and much faster than strptime
    except ValueError:
        pass
    for fmt in ("%d.%m.%Y",):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise RowError(f"bad {what} {text!r}")


def parse_row(line: int, row: dict[str, str]) -> CardRow:
    def value(name: str) -> str:
        return (row.get(name) or "").strip()

    number = value("card_number")
    if not CARD_RE.match(number):
        raise RowError(f"bad card number {number!r}")
    balance_text = value("balance") or "0"
    if not re.fullmatch(r"-?\d+", balance_text):
        raise RowError(f"balance {balance_text!r} is not a whole number of points")
    balance = int(balance_text)
    if balance < 0:
        raise RowError(f"negative balance {balance}")
    email = value("email").lower() or None
    if email is not None and not EMAIL_RE.match(email):
        raise RowError(f"bad e-mail {email!r}")
    expires = value("expires_at")
    return CardRow(
        line=line,
        card_number=number,
        phone=_phone(value("phone")) if value("phone") else None,
        email=email,
        name=value("name")[:256] or None,
        birth_date=_date(value("birth_date"), "birth date") if value("birth_date") else None,
        balance=balance,
        expires_at=datetime.combine(_date(expires, "expiry date"), datetime.min.time(), UTC) if expires else None,
    )


def _rows(handle: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    sample = handle.readline()
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    header = [h.strip().lower().lstrip("\ufeff") for h in next(csv.reader([sample], delimiter=delimiter))]
    if "card_number" not in header:
        raise ValueError("the CSV needs a header row with at least `card_number`")
    for line, values in enumerate(csv.reader(handle, delimiter=delimiter), start=2):
        if values:
            yield line, dict(zip(header, values, strict=False))


def _import_id(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class CardImporter:
    def __init__(self, db: Database, *, batch_size: int = 5000, now: datetime | None = None) -> None:
        self.db = db
        self.batch_size = batch_size
        self.now = now or datetime.now(UTC)

    def run(
        self,
        path: Path,
        rejects_path: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        report = ImportReport(import_id=_import_id(path))
        client = f"import:{report.import_id}"
        reject_file = rejects_path.open("w", encoding="utf-8", newline="") if rejects_path else None
        reject_writer = csv.writer(reject_file) if reject_file else None
        if reject_writer:
            reject_writer.writerow(["line", "card_number", "reason"])
        seen_cards: set[str] = set()
        seen_contacts: set[str] = set()

        def reject(line: int, card: str, reason: str, points: int) -> None:
            report.rejected += 1
            report.points_rejected += points
            if len(report.rejects) < 20:
                report.rejects.append((line, card, reason))
            if reject_writer:
                reject_writer.writerow([line, card, reason])

        batch: list[CardRow] = []
        try:
            with path.open("r", encoding="utf-8-sig", newline="") as handle:
                for line, raw in _rows(handle):
                    report.rows += 1
                    declared = raw.get("balance", "").strip()
                    points = int(declared) if re.fullmatch(r"\d+", declared or "") else 0
                    report.points_in_file += points
                    try:
                        row = parse_row(line, raw)
                    except RowError as exc:
                        reject(line, (raw.get("card_number") or "").strip(), str(exc), points)
                        continue
                    if row.card_number in seen_cards:
                        reject(line, row.card_number, "card number repeated in the file", points)
                        continue
                    contacts = [c for c in (row.phone, row.email) if c]
                    if any(c in seen_contacts for c in contacts):
                        reject(line, row.card_number, "phone or e-mail repeated in the file", points)
                        continue
                    seen_cards.add(row.card_number)
                    seen_contacts.update(contacts)
                    batch.append(row)
                    if len(batch) >= self.batch_size:
                        self._write(batch, report, client, reject)
                        batch = []
                        if progress:
                            progress(report.rows)
                if batch:
                    self._write(batch, report, client, reject)
                    if progress:
                        progress(report.rows)
        finally:
            if reject_file:
                reject_file.close()
        with self.db.read() as session:
            total = session.execute(
                select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                    col(LedgerEntry.client_id) == client, col(LedgerEntry.kind) == "import"
                )
            ).scalar_one()
        report.points_in_ledger = int(total)
        return report

    def _write(
        self, rows: list[CardRow], report: ImportReport, client: str, reject: Callable[[int, str, str, int], None]
    ) -> None:
        with self.db.write() as session:
            numbers = [r.card_number for r in rows]
            existing: dict[str, str] = {
                number: created_by
                for number, created_by in session.execute(
                    select(col(Card.number), col(Customer.created_by))
                    .join(Customer, col(Customer.id) == col(Card.customer_id))
                    .where(col(Card.number).in_(numbers))
                )
            }
            phones = [r.phone for r in rows if r.phone]
            emails = [r.email for r in rows if r.email]
            taken: set[str] = set()
            if phones:
                taken |= set(
                    session.execute(select(col(Customer.phone)).where(col(Customer.phone).in_(phones))).scalars()
                )
            if emails:
                taken |= set(
                    session.execute(select(col(Customer.email)).where(col(Customer.email).in_(emails))).scalars()
                )
            fresh: list[CardRow] = []
            for row in rows:
                if row.card_number in existing:
                    report.skipped_existing += 1
                    report.points_existing += row.balance
                    if existing[row.card_number] == client:
                        report.points_from_earlier_runs += row.balance
                elif (row.phone and row.phone in taken) or (row.email and row.email in taken):
                    reject(row.line, row.card_number, "phone or e-mail belongs to another customer", row.balance)
                else:
                    fresh.append(row)
            if not fresh:
                return
            now = self.now
            ids = {r.card_number: str(uuid.uuid5(NAMESPACE, r.card_number)) for r in fresh}
            accounts = {r.card_number: str(uuid.uuid5(NAMESPACE, "account:" + r.card_number)) for r in fresh}
            # Core inserts (plain executemany): the ORM's bulk machinery costs more than the writes.
            session.execute(
                insert(TABLES["customers"]),
                [
                    {
                        "id": ids[r.card_number],
                        "phone": r.phone,
                        "email": r.email,
                        "name": r.name,
                        "birth_date": r.birth_date,
                        "external_ref": r.card_number,
                        "created_by": client,
                        "created_at": now,
                    }
                    for r in fresh
                ],
            )
            session.execute(
                insert(TABLES["accounts"]),
                [{"id": accounts[r.card_number], "customer_id": ids[r.card_number], "created_at": now} for r in fresh],
            )
            session.execute(
                insert(TABLES["cards"]),
                [
                    {
                        "number": r.card_number,
                        "ref": card_ref(r.card_number),
                        "customer_id": ids[r.card_number],
                        "account_id": accounts[r.card_number],
                        "status": "active",
                        "replaced_by": None,
                        "created_at": now,
                    }
                    for r in fresh
                ],
            )
            funded = [r for r in fresh if r.balance > 0]
            if funded:
                session.execute(
                    insert(TABLES["lots"]),
                    [
                        {
                            "account_id": accounts[r.card_number],
                            "source": "import",
                            "points": r.balance,
                            "remaining": r.balance,
                            "available_at": now,
                            "expires_at": r.expires_at,
                            "transaction_id": None,
                            "origin_lot_id": None,
                            "created_at": now,
                        }
                        for r in funded
                    ],
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
                            lots.c.source == "import",
                            lots.c.account_id.in_([accounts[r.card_number] for r in funded]),
                        ),
                    )
                )
            report.imported += len(fresh)
            report.points_imported += sum(r.balance for r in fresh)

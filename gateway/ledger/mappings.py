"""Reporting of references the integrator's mapping does not know yet.

Bounded, because the references come from outside: one request records at most
``MAX_PER_REQUEST`` of them, each cut to the column's length, and the table grows to at most
``MAX_ROWS`` references (after that only the ones already known are counted) — a till that sends
a 10,000-line cart of unknown goods, or a 20 MB reference, costs a few rows, not megabytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.store.models import UnmappedRef


@dataclass(frozen=True, slots=True)
class Unmapped:
    source: str
    kind: str
    ref: str
    name: str | None


MAX_PER_REQUEST = 50
MAX_ROWS = 10_000
REF_LENGTH = 128
NAME_LENGTH = 256


def bounded(items: Iterable[Unmapped]) -> list[Unmapped]:
    """At most ``MAX_PER_REQUEST`` distinct references, each cut to what the table keeps."""
    kept: dict[Unmapped, None] = {}
    for item in items:
        short = Unmapped(
            item.source[:32], item.kind[:32], item.ref[:REF_LENGTH], (item.name or None) and item.name[:NAME_LENGTH]
        )
        kept[short] = None
        if len(kept) >= MAX_PER_REQUEST:
            break
    return list(kept)


def record_unmapped(session: Session, items: Iterable[Unmapped], now: datetime) -> None:
    room: int | None = None
    for item in bounded(items):
        row = session.get(UnmappedRef, (item.source, item.kind, item.ref))
        if row is None:
            if room is None:
                room = MAX_ROWS - int(session.exec(select(func.count()).select_from(UnmappedRef)).one())
            if room <= 0:
                continue  # the report is full: the integrator has enough to map first
            room -= 1
            session.add(
                UnmappedRef(
                    source=item.source,
                    kind=item.kind,
                    ref=item.ref,
                    name=item.name,
                    first_seen=now,
                    last_seen=now,
                )
            )
        else:
            row.seen += 1
            row.last_seen = now
            if item.name:
                row.name = item.name
            session.add(row)


def list_unmapped(session: Session) -> list[UnmappedRef]:
    return list(
        session.exec(
            select(UnmappedRef).order_by(
                col(UnmappedRef.source), col(UnmappedRef.kind), col(UnmappedRef.last_seen).desc()
            )
        ).all()
    )

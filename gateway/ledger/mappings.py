"""Reporting of references the integrator's mapping does not know yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from gateway.store.models import UnmappedRef


@dataclass(frozen=True, slots=True)
class Unmapped:
    source: str
    kind: str
    ref: str
    name: str | None


def record_unmapped(session: Session, items: Iterable[Unmapped], now: datetime) -> None:
    for item in set(items):
        row = session.get(UnmappedRef, (item.source, item.kind, item.ref))
        if row is None:
            session.add(
                UnmappedRef(
                    source=item.source,
                    kind=item.kind,
                    ref=item.ref,
                    name=(item.name or None) and item.name[:256],
                    first_seen=now,
                    last_seen=now,
                )
            )
        else:
            row.seen += 1
            row.last_seen = now
            if item.name:
                row.name = item.name[:256]
            session.add(row)


def list_unmapped(session: Session) -> list[UnmappedRef]:
    return list(
        session.exec(
            select(UnmappedRef).order_by(
                col(UnmappedRef.source), col(UnmappedRef.kind), col(UnmappedRef.last_seen).desc()
            )
        ).all()
    )

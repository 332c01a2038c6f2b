"""Clean-up of what the Bitrix adapter keeps only for a while."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, delete

from gateway.store.db import Database
from gateway.store.models_bitrix import Bitrix24Event


def purge_bitrix24_events(db: Database, before: datetime) -> int:
    """Bitrix24 events finished (processed or ignored) before ``before``; failed and queued
    ones stay for the operator."""
    with db.write() as session:
        result = session.exec(
            delete(Bitrix24Event).where(
                col(Bitrix24Event.status).in_(("processed", "ignored")),
                col(Bitrix24Event.processed_at) < before,
            )
        )
        return int(result.rowcount or 0)


def failed_exchange_files(db: Database, limit: int = 20) -> list[str]:
    """Files of 1C's CommerceML exchange that could not be applied, latest first, each as one
    line with its reason (for ``gateway bitrix status`` and the operator page)."""
    from adapters.bitrix.commerceml.store import failed_files

    return [
        f"{f.at:%Y-%m-%d %H:%M:%S} {f.filename}"
        + (f" (из {f.archive})" if f.archive else "")
        + f", {f.size} байт: {f.error}"
        for f in failed_files(db, limit)
    ]

"""What the CLI and the stuck-items view read and change of the sync's own tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from gateway.ledger.service import LoyaltyService
from gateway.store.models_erp import ErpOrder, ErpSyncState


def failing_orders(service: LoyaltyService, erp: str, limit: int = 50) -> list[ErpOrder]:
    with service.db.read() as session:
        return list(
            session.exec(
                select(ErpOrder)
                .where(ErpOrder.erp == erp, ErpOrder.state == "failed")
                .order_by(col(ErpOrder.updated_at).desc())
                .limit(limit)
            ).all()
        )


def sync_state(service: LoyaltyService, erp: str) -> ErpSyncState | None:
    with service.db.read() as session:
        return session.get(ErpSyncState, erp)


def retry_now(service: LoyaltyService, erp: str, order_ref: str | None = None) -> int:
    """Make failed orders (one, or all) due for the next sync run."""
    now = service.clock()
    with service.db.write() as session:
        stmt = update(ErpOrder).where(col(ErpOrder.erp) == erp, col(ErpOrder.state) == "failed")
        if order_ref is not None:
            stmt = stmt.where(col(ErpOrder.order_ref) == order_ref)
        return int(session.execute(stmt.values(next_retry_at=now)).rowcount)  # type: ignore[attr-defined]


def last_seen(service: LoyaltyService, erp: str) -> datetime | None:
    with service.db.read() as session:
        row = session.exec(
            select(ErpOrder.changed_at).where(ErpOrder.erp == erp).order_by(col(ErpOrder.changed_at).desc()).limit(1)
        ).first()
        return row


# -- stuck items (``gateway tx stuck|show|replay``) --------------------------------------------------


def stuck_orders(service: LoyaltyService) -> list[tuple[str, datetime, str]]:
    """(item id ``erp:<erp>:<order>``, since, what is wrong) of every ERP order set aside."""
    with service.db.read() as session:
        rows = session.exec(
            select(ErpOrder).where(ErpOrder.state == "failed").order_by(col(ErpOrder.first_seen_at))
        ).all()
        return [
            (
                f"erp:{row.erp}:{row.order_ref}",
                row.first_seen_at,
                f"ERP order {row.number or row.order_ref} not applied after {row.failures} tries "
                f"({row.error_code or 'error'}): {row.error or ''}",
            )
            for row in rows
        ]


def stuck_order(service: LoyaltyService, ident: str) -> dict[str, str] | None:
    erp, _, order_ref = ident.partition(":")
    with service.db.read() as session:
        row = session.get(ErpOrder, (erp, order_ref))
        return {k: str(v) for k, v in row.model_dump().items()} if row is not None else None


def replay_stuck(service: LoyaltyService, ident: str) -> str | None:
    erp, _, order_ref = ident.partition(":")
    if not retry_now(service, erp, order_ref):
        return None
    return "read again from the ERP at the next sync run (or `gateway sync run` now)"

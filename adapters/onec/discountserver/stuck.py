"""Store documents whose last update the gateway refused, for ``gateway tx stuck`` and the
operator page: each stays listed until the store's queue resends it and it is booked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select

from gateway.ledger.service import LoyaltyService
from gateway.store.models_discountserver import DiscountServerDocument

KIND = "discountserver"


def refused_documents(service: LoyaltyService) -> list[tuple[str, datetime, str | None, str]]:
    """(item id, since, card number, what happened) per refused document."""
    with service.db.read() as session:
        rows = session.exec(
            select(DiscountServerDocument)
            .where(col(DiscountServerDocument.status) == "refused")
            .order_by(col(DiscountServerDocument.updated_at))
        ).all()
        return [
            (
                f"{KIND}:{row.id}",
                row.updated_at,
                row.card_number,
                f"{row.document_type} {row.document_ref} from {row.client_id} refused: "
                f"{row.error_code}: {row.error_message}; the store resends it from its queue",
            )
            for row in rows
        ]


def refused_document(service: LoyaltyService, row_id: str) -> dict[str, Any] | None:
    with service.db.read() as session:
        row = session.get(DiscountServerDocument, row_id)
        return None if row is None else {key: str(value) for key, value in row.model_dump().items()}

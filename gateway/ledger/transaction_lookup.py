"""Find a receipt or a hold of a client by the start of its id.

Protocols that can only carry a number for a transaction (Manzana's ``TransactionID`` is an
integer) encode the start of our transaction id in it; this is how they find it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from gateway.store.models import Card, Hold, Receipt


@dataclass(frozen=True)
class FoundTransaction:
    kind: Literal["receipt", "hold"]
    id: str  # the receipt's transaction id or the hold id
    receipt_id: str | None  # the client's receipt id (a receipt, or the receipt a hold was made for)
    card_number: str


def find_by_id_prefix(session: Session, client_id: str, prefix: str) -> FoundTransaction | None:
    """The client's receipt, else hold, whose id starts with ``prefix`` (at least 12 characters)."""
    if len(prefix) < 12 or not all(c in "0123456789abcdef-" for c in prefix):
        return None
    receipt = session.exec(
        select(Receipt).where(Receipt.client_id == client_id, col(Receipt.id).startswith(prefix)).limit(1)
    ).first()
    if receipt is not None:
        return FoundTransaction("receipt", receipt.id, receipt.receipt_id, receipt.card_number)
    hold = session.exec(
        select(Hold).where(Hold.client_id == client_id, col(Hold.id).startswith(prefix)).limit(1)
    ).first()
    if hold is None:
        return None
    card = session.exec(select(Card).where(Card.account_id == hold.account_id).limit(1)).first()
    return FoundTransaction("hold", hold.id, hold.receipt_id, card.number if card else "")

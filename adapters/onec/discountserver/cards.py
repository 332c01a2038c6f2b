"""Which card a store means: Розница names cards by the GUID of its ``ИнформационныеКарты`` item.

The gateway knows a reference only from (a) the import of the 1C card catalogue
(``gateway discountserver import-cards``: GUID and number per card, kept in
``discount_server_cards``), or (b) the card's own ``CardRef`` the gateway gave it (a card created
through the gateway and loaded into 1C with that GUID). Anything else is refused with
``card_not_found``: a sale is never booked on a guessed card, and a store is never told a balance
that might be someone else's.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from adapters.onec.discountserver.wire import Fault
from gateway.store.models import Card
from gateway.store.models_discountserver import DiscountServerCard


def resolve(session: Session, ref: str | None) -> Card:
    """The card behind a 1C reference, or a ``card_not_found`` fault naming what to do."""
    if ref is None:
        raise Fault("card_not_found", "Не указан идентификатор карты")
    mapped = session.get(DiscountServerCard, ref)
    number = mapped.card_number if mapped is not None else None
    card = session.get(Card, number) if number is not None else None
    if card is None:
        card = session.exec(select(Card).where(col(Card.ref) == ref)).first()
    if card is None:
        detail = f" (номер {number} не найден в шлюзе)" if number else ""
        raise Fault(
            "card_not_found",
            f"Карта 1С {ref} не известна шлюзу лояльности{detail}: загрузите справочник "
            "информационных карт командой gateway discountserver import-cards",
        )
    return card


def account_cards(session: Session, account_id: str) -> list[str]:
    """Every card number of the account: 1C counts a card's history (replaced cards) together."""
    return list(session.exec(select(Card.number).where(col(Card.account_id) == account_id)).all())

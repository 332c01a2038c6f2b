"""An audience: which customers a mailing or a one-off grant reaches, as one SQL selection.

The filters combine with AND; inside a list, any value matches (OR). Merged customers (whose
card moved to a survivor) are never in an audience. The selection is a ``SELECT customers.id``
that callers count (``audience_size``: the database counts, no row is loaded), join, or stream
in keyset batches (``customer_batches``) — never a list of every customer held in memory.

* ``segments`` — the customer's segment, the program's default segment for those without one;
* ``tiers`` — the customer's tier; a customer whose tier is not set yet counts as the lowest level;
* ``zones`` / ``stores`` — bought (a till receipt) at a store of the zone / at one of the stores;
* ``last_purchase_after`` — bought (a receipt or an order) on or after that local day;
* ``last_purchase_before`` — bought before that local day and not since (lapsed customers);
* ``birthday_month`` — born in that month (1–12);
* ``cards`` / ``phones`` — a list: the customers of these cards, of these phones (any common
  notation: ``+7 912 …``, ``8912…``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, String, exists, extract, func, literal, or_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from contracts.errors import ErrorCode, LoyaltyError
from gateway.core.program import Program
from gateway.ledger.phones import phone_in_card_field
from gateway.ledger.pricing_context import local_midnight
from gateway.store.models import Account, Card, Customer, Receipt
from gateway.store.models_orders import Order

MAX_LISTED = 20_000  # cards or phones named one by one (bound parameters of one statement)
BATCH = 2_000  # customer ids per batch when an audience is walked


class Audience(BaseModel):
    """Who is in: every filter given must hold (an empty audience is every customer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: list[str] = Field(default_factory=list, max_length=100)
    tiers: list[str] = Field(default_factory=list, max_length=100)
    zones: list[str] = Field(default_factory=list, max_length=100)
    stores: list[str] = Field(default_factory=list, max_length=1000)
    last_purchase_after: date | None = Field(default=None, description="Bought on or after this day")
    last_purchase_before: date | None = Field(default=None, description="Bought before this day and not since")
    birthday_month: int | None = Field(default=None, ge=1, le=12)
    cards: list[str] = Field(default_factory=list, max_length=MAX_LISTED)
    phones: list[str] = Field(default_factory=list, max_length=MAX_LISTED)

    @field_validator("phones")
    @classmethod
    def _phones_readable(cls, phones: list[str]) -> list[str]:
        bad = [p for p in phones if phone_in_card_field(p) is None]
        if bad:
            raise ValueError(f"not phone numbers: {len(bad)} (the first at position {phones.index(bad[0]) + 1})")
        return phones

    def describe(self) -> str:
        """The filters in a line, in Russian, for the operator (no personal data: lists are counted)."""
        parts: list[str] = []
        if self.segments:
            parts.append("сегмент: " + ", ".join(self.segments))
        if self.tiers:
            parts.append("уровень: " + ", ".join(self.tiers))
        if self.zones:
            parts.append("зона покупок: " + ", ".join(self.zones))
        if self.stores:
            parts.append("магазины: " + ", ".join(self.stores))
        if self.last_purchase_after:
            parts.append(f"покупали с {self.last_purchase_after:%d.%m.%Y}")
        if self.last_purchase_before:
            parts.append(f"не покупали с {self.last_purchase_before:%d.%m.%Y}")
        if self.birthday_month:
            parts.append(f"день рождения в месяце {self.birthday_month}")
        if self.cards:
            parts.append(f"карт в списке: {len(self.cards)}")
        if self.phones:
            parts.append(f"телефонов в списке: {len(self.phones)}")
        return "; ".join(parts) or "все покупатели"


def _purchased(since: date | None, until: date | None, program: Program) -> Any:
    """EXISTS a receipt or an order of the customer's account in ``[since, until)`` (local days)."""
    receipt = sa_select(col(Receipt.id)).join(Account, col(Account.id) == col(Receipt.account_id))
    order = sa_select(col(Order.id)).join(Account, col(Account.id) == col(Order.account_id))
    receipt = receipt.where(col(Account.customer_id) == col(Customer.id))
    order = order.where(col(Account.customer_id) == col(Customer.id))
    if since is not None:
        receipt = receipt.where(col(Receipt.created_at) >= local_midnight(program, since))
        order = order.where(col(Order.created_at) >= local_midnight(program, since))
    if until is not None:
        receipt = receipt.where(col(Receipt.created_at) < local_midnight(program, until))
        order = order.where(col(Order.created_at) < local_midnight(program, until))
    return or_(exists(receipt), exists(order))


def _bought_at(store_filter: Any) -> Any:
    return exists(
        sa_select(col(Receipt.id))
        .join(Account, col(Account.id) == col(Receipt.account_id))
        .where(col(Account.customer_id) == col(Customer.id), store_filter)
    )


def _zone_filter(program: Program, zones: list[str]) -> Any:
    catalogue = program.catalogue
    known = {z.code: z for z in catalogue.zones}
    unknown = [z for z in zones if z not in known and z != catalogue.default_zone]
    if unknown:
        raise LoyaltyError(ErrorCode.VALIDATION_ERROR, f"audience: unknown zones {unknown}", field="zones")
    store = func.lower(col(Receipt.store))
    listed = [s.lower() for z in catalogue.zones for s in z.stores]
    wanted = [s.lower() for code in zones if code in known for s in known[code].stores]
    conditions: list[Any] = [store.in_(wanted)] if wanted else []
    if catalogue.default_zone in zones:  # stores no zone lists belong to the default zone
        conditions.append(col(Receipt.store).is_(None) | store.not_in(listed) if listed else literal(True))
    return _bought_at(or_(*conditions)) if conditions else literal(False)


def customer_ids(program: Program, audience: Audience) -> Select[Any]:
    """``SELECT customers.id`` of the audience (not merged), for counting, joining or batching."""
    query = sa_select(col(Customer.id)).where(col(Customer.merged_into).is_(None))
    if audience.segments:
        default = program.default_segment
        segment: Any = col(Customer.segment)
        if default is not None:
            segment = func.coalesce(segment, literal(default, String))
        query = query.where(segment.in_(audience.segments))
    if audience.tiers:
        lowest = program.tiers.ordered()[0].code if program.tiers is not None and program.tiers.levels else None
        tier = col(Customer.tier).in_(audience.tiers)
        query = query.where(tier | col(Customer.tier).is_(None) if lowest in audience.tiers else tier)
    if audience.zones:
        query = query.where(_zone_filter(program, audience.zones))
    if audience.stores:
        query = query.where(_bought_at(func.lower(col(Receipt.store)).in_([s.lower() for s in audience.stores])))
    if audience.last_purchase_after is not None:
        query = query.where(_purchased(audience.last_purchase_after, None, program))
    if audience.last_purchase_before is not None:
        before = audience.last_purchase_before
        query = query.where(_purchased(None, before, program), ~_purchased(before, None, program))
    if audience.birthday_month is not None:
        query = query.where(extract("month", col(Customer.birth_date)) == audience.birthday_month)
    listed: list[Any] = []
    if audience.cards:
        listed.append(sa_select(col(Card.customer_id)).where(col(Card.number).in_(audience.cards)))
    if audience.phones:
        phones = sorted({phone_in_card_field(p) or p for p in audience.phones})
        listed.append(sa_select(col(Customer.id)).where(col(Customer.phone).in_(phones)))
    if listed:
        query = query.where(col(Customer.id).in_(union_all(*listed) if len(listed) > 1 else listed[0]))
    return query


def audience_size(session: Session, program: Program, audience: Audience) -> int:
    """How many customers the audience holds, counted by the database."""
    counted = sa_select(func.count()).select_from(customer_ids(program, audience).subquery())
    return int(session.execute(counted).scalar_one())


def page(
    session: Session, program: Program, audience: Audience, after: str, size: int = BATCH
) -> tuple[list[str], str | None]:
    """The audience's customers among the next ``size`` customers by id after ``after``, and the
    last id of that window (None: no customer after ``after``) — the cursor of the next page.

    The window is read first (an index range on the primary key) and the audience's filters are
    applied to its customers only: a page costs the same at the start and at the end of 500,000
    customers, whatever the filters (SQLite, asked for "not merged, id after X, in id order" in one
    query, scans the ``merged_into`` index and sorts every customer instead)."""
    ids = list(
        session.execute(
            sa_select(col(Customer.id)).where(col(Customer.id) > after).order_by(col(Customer.id)).limit(size)
        ).scalars()
    )
    if not ids:
        return [], None
    window: Select[Any] = sa_select(col(Customer.id).label("id")).where(col(Customer.id) > after)
    window_sq = window.order_by(col(Customer.id)).limit(size).subquery("window")
    found = session.execute(
        customer_ids(program, audience).join(window_sq, window_sq.c.id == col(Customer.id)).order_by(col(Customer.id))
    ).scalars()
    return list(found), ids[-1]


def customer_batches(
    session: Session, program: Program, audience: Audience, batch: int = BATCH, after: str = ""
) -> Iterator[list[str]]:
    """The audience's customer ids in id order, in pages of at most ``batch`` (see ``page``)."""
    cursor: str | None = after
    while cursor is not None:
        found, cursor = page(session, program, audience, cursor, batch)
        if found:
            yield found

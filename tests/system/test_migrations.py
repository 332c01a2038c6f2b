"""Migrations build exactly the schema the models describe, and upgrading is repeatable."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import gateway.store.models  # noqa: F401
from gateway.store import migrate


def _engine_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(_engine_url(database_url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == [], f"models and migrations disagree; add a migration: {diff}"
        assert set(inspect(engine).get_table_names()) >= set(SQLModel.metadata.tables)
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_keeps_data(database_url: str) -> None:
    from gateway.config import DEMO_CONFIG, load_config
    from gateway.ledger.service import LoyaltyService
    from gateway.seed import seed_demo
    from gateway.store.db import Database

    db = Database(database_url)
    service = LoyaltyService(db, load_config(DEMO_CONFIG).program)
    assert seed_demo(service, load_config(DEMO_CONFIG)) == 3
    migrate.upgrade(database_url)
    migrate.upgrade(database_url)
    assert migrate.current_revision(_engine_url(database_url)) is not None
    assert service.check().accounts == 3
    assert seed_demo(service, load_config(DEMO_CONFIG)) == 0
    db.dispose()


def test_the_order_turnover_migration_counts_orders_applied_before_it(database_url: str) -> None:
    """0008 added ``order_turnover``: orders already in the database are booked when it runs,
    exactly as if they had been applied after it."""
    from decimal import Decimal

    from alembic import command

    from contracts.operations import CartLine
    from contracts.orders import OrderQuantity, OrderRequest, OrderReturn, OrderShipment
    from gateway.config import DEMO_CONFIG, load_config
    from gateway.ledger.service import LoyaltyService
    from gateway.store.db import Database
    from tests.support import card_with_points

    db = Database(database_url)
    service = LoyaltyService(db, load_config(DEMO_CONFIG).program)
    card = card_with_points(service, 0)

    def quantities(count: int) -> list[OrderQuantity]:
        return [OrderQuantity(line_id="A", quantity=Decimal(count))]

    for order_id, cancelled in (("W-1", False), ("W-2", True)):
        request = OrderRequest(
            order_id=order_id,
            version=1,
            card_number=card,
            lines=[CartLine(line_id="A", item="TILE", quantity=Decimal(3), price=Decimal("333.33"))],
            paid=True,
            shipments=[OrderShipment(shipment_id="S1", lines=quantities(2))],
            returns=[OrderReturn(return_id="R1", lines=quantities(1))],
            cancelled=cancelled,
        )
        service.apply_order("site", order_id, request)

    query = text("SELECT order_pk, account_id, document, occurred_at, amount_kopecks FROM order_turnover ORDER BY 3")
    engine = create_engine(_engine_url(database_url))
    with engine.connect() as conn:
        booked = conn.execute(query).all()
    assert [(row.document, row.amount_kopecks) for row in booked] == [("return:R1", -333_33), ("shipment:S1", 666_66)]

    command.downgrade(migrate.alembic_config(database_url), "0007")
    assert "order_turnover" not in inspect(engine).get_table_names()
    migrate.upgrade(database_url)
    with engine.connect() as conn:
        assert conn.execute(query).all() == booked
    engine.dispose()
    db.dispose()

"""Migrations build exactly the schema the models describe, and upgrading is repeatable."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
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

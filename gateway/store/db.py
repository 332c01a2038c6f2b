"""Engines and units of work.

SQLite (the embedded default) runs in WAL mode; every write transaction starts with
``BEGIN IMMEDIATE`` so writers are serialized by the database itself and a debit can never
interleave with another. Reads use a separate engine with deferred transactions, which WAL lets
run beside a writer. On PostgreSQL, writers lock the account row (``SELECT ... FOR UPDATE``)
before touching its points, so debits of one account are serialized across processes and hosts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool
from sqlmodel import Session, create_engine

from gateway.store.models import Account

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 40
SQLITE_POOL_OVERFLOW = 8


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    # A pool of open connections: opening one (and its PRAGMAs) per transaction cost more than
    # most transactions. A pooled connection is used by one thread at a time. The pool keeps as
    # many connections as the server has worker threads (anyio's default: 40), so a burst of
    # concurrent requests does not open and close overflow connections on every request.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        poolclass=QueuePool,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_OVERFLOW,
        pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that we emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Owns the engines of one database and hands out units of work."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        elif self.dialect == "postgresql":
            if parsed.drivername == "postgresql":
                url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
            self.write_engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
            self.read_engine = self.write_engine
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception."""
        with Session(self.write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.read_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def lock_account(self, session: Session, account_id: str) -> Account | None:
        """Serialize writers of one account for the rest of the transaction."""
        stmt = select(Account).where(Account.id == account_id)  # type: ignore[arg-type]
        if not self.is_sqlite:  # SQLite: BEGIN IMMEDIATE already holds the write lock
            stmt = stmt.with_for_update()
        return session.execute(stmt).scalar_one_or_none()

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()

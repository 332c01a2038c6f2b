"""Fast inserts of many rows of one table, inside the caller's transaction.

An import of 500,000 cards writes two million rows; SQLAlchemy's per-row parameter handling
alone would cost more than the database. Values are therefore converted once per column with
the dialect's own bind processors (so stored values are exactly what the ORM would store) and
handed to the driver in one go: ``COPY … FROM STDIN`` on PostgreSQL, one prepared statement run
with ``executemany`` on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlmodel import Session


class BulkInsert:
    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = list(columns)
        self._processors: dict[str, list[Callable[[Any], Any] | None]] = {}

    def _for(self, session: Session) -> tuple[Any, list[Callable[[Any], Any] | None]]:
        dialect = session.get_bind().dialect
        if dialect.name not in self._processors:
            self._processors[dialect.name] = [
                self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.columns
            ]
        return dialect, self._processors[dialect.name]

    def __call__(self, session: Session, rows: Iterable[Sequence[Any]]) -> int:
        """Insert ``rows`` (tuples in the order of ``columns``); returns how many."""
        dialect, processors = self._for(session)
        converters = [(i, p) for i, p in enumerate(processors) if p is not None]
        prepared: list[tuple[Any, ...]] = []
        for row in rows:
            values = list(row)
            for index, convert in converters:
                values[index] = convert(values[index])
            prepared.append(tuple(values))
        if not prepared:
            return 0
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in self.columns)
        target = quote(self.table.name)
        raw: Any = session.connection().connection.dbapi_connection  # psycopg or sqlite3
        if dialect.name == "postgresql":
            with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                for prepared_row in prepared:
                    copy.write_row(prepared_row)
        else:
            marks = ", ".join("?" for _ in self.columns)
            cursor = raw.cursor()
            try:
                cursor.executemany(f"INSERT INTO {target} ({names}) VALUES ({marks})", prepared)
            finally:
                cursor.close()
        return len(prepared)

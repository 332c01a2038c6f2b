"""Persistence: SQLModel tables, engines (SQLite WAL by default, PostgreSQL), migrations."""

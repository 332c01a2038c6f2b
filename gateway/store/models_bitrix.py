"""Tables of the Bitrix adapter: site event ids (replay protection), Bitrix24 events received,
CommerceML exchange sessions with their uploaded files, and the order export cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.store.models import _pk, _ts


class BitrixSiteEvent(SQLModel, table=True):
    """A signed site event that was answered successfully: the same event id is answered with this
    reply for as long as its timestamp is inside the replay window (and a while after)."""

    __tablename__ = "bitrix_site_events"

    client_id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=128)
    event: str = Field(max_length=64)
    request_hash: str = Field(max_length=64)
    response_json: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=_ts(index=True))


class Bitrix24Event(SQLModel, table=True):
    """An outbound-webhook call of a Bitrix24 portal, stored before it is acknowledged (Bitrix24
    never resends), then processed through the outbox. A call about an entity whose previous call
    is still queued joins it (processing fetches the entity's latest state anyway). The
    application token is never stored."""

    __tablename__ = "bitrix24_events"
    __table_args__ = (
        Index("ix_bitrix24_events_entity", "member_id", "entity_id", "status"),
        Index("ix_bitrix24_events_status_received", "status", "received_at"),
    )

    id: int | None = Field(default=None, sa_column=_pk())
    member_id: str = Field(max_length=64)
    event: str = Field(max_length=64)
    entity_id: str | None = Field(default=None, max_length=64)
    event_ts: str | None = Field(default=None, max_length=32, description="`ts` as Bitrix24 sent it")
    # queued | processing | processed | ignored | failed
    status: str = Field(max_length=16)
    detail: str | None = Field(default=None, max_length=1000)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=_ts())
    processed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class BitrixExchangeSession(SQLModel, table=True):
    """A CommerceML exchange session opened by ``checkauth`` (the cookie is stored as a hash)."""

    __tablename__ = "bitrix_exchange_sessions"

    id: str = Field(primary_key=True, max_length=64, description="SHA-256 of the session cookie value")
    sessid: str = Field(max_length=64)
    client_id: str = Field(max_length=64)
    zip: bool = False
    version: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(sa_column=_ts())
    last_seen_at: datetime = Field(sa_column=_ts(index=True))


class BitrixExchangeFile(SQLModel, table=True):
    """A file 1C uploaded (in chunks) within a session, or one extracted from its archive."""

    __tablename__ = "bitrix_exchange_files"
    __table_args__ = (UniqueConstraint("session_id", "filename", name="uq_bitrix_exchange_files_name"),)

    id: int | None = Field(default=None, sa_column=_pk())
    session_id: str = Field(foreign_key="bitrix_exchange_sessions.id", max_length=64, index=True)
    filename: str = Field(max_length=255)
    archive: str | None = Field(default=None, max_length=255, description="The archive it was extracted from")
    size: int = Field(default=0, sa_type=BigInteger)
    chunks: int = Field(default=0)
    extracted: bool = Field(default=False, description="For an archive: its members are files of the session")
    validated: bool = Field(default=False, description="The whole file was checked before anything was applied")
    documents_done: int = Field(default=0, description="Top-level documents already imported")
    finished: bool = False
    error: str | None = Field(default=None, max_length=500, description="Why the file could not be applied")
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())


class BitrixExchangeChunk(SQLModel, table=True):
    __tablename__ = "bitrix_exchange_chunks"

    file_id: int = Field(foreign_key="bitrix_exchange_files.id", primary_key=True, sa_type=BigInteger)
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class BitrixExportCursor(SQLModel, table=True):
    """Where the order export to 1C stands: ``committed`` moves to ``pending`` on ``success``."""

    __tablename__ = "bitrix_export_cursors"

    name: str = Field(primary_key=True, max_length=64)
    committed_sequence: int = Field(default=0, sa_type=BigInteger)
    pending_sequence: int | None = Field(default=None, sa_type=BigInteger)
    updated_at: datetime = Field(sa_column=_ts())


class BitrixCmlOrderVersion(SQLModel, table=True):
    """An order version made by applying 1C's own news: ``query`` does not send it back to 1C
    (Bitrix marks such orders ``UPDATED_1C``)."""

    __tablename__ = "bitrix_cml_order_versions"

    client_id: str = Field(primary_key=True, max_length=64)
    order_id: str = Field(primary_key=True, max_length=128)
    version: int = Field(primary_key=True, sa_type=BigInteger)
    created_at: datetime = Field(sa_column=_ts())

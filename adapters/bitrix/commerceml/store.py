"""Exchange sessions, uploaded files and the export cursor, kept in the database so that any
replica can serve any call of an exchange (1C's calls of one session may reach different ones).

Files are stored as the chunks 1C sent (at most ``file_limit`` bytes each) and read back one
chunk per query, so neither an upload nor an import holds a whole file in memory.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select

from gateway.store.db import Database
from gateway.store.models_bitrix import (
    BitrixCmlOrderVersion,
    BitrixExchangeChunk,
    BitrixExchangeFile,
    BitrixExchangeSession,
    BitrixExportCursor,
)

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f:*?\"<>|]")
_BITRIX_PREFIXES = re.compile(r"^(/tmp/|upload/1c/webdata)")


def safe_filename(raw: str | None) -> str | None:
    """The name under which a file of 1C is kept, or None if it could escape its session
    (absolute, ``..``, drive letters, control characters) or is too long."""
    if not raw:
        return None
    name = _BITRIX_PREFIXES.sub("", raw.strip().replace("\\", "/")).strip("/")
    parts = name.split("/")
    if not name or len(name) > 255 or _UNSAFE_NAME.search(name) or any(p in ("", ".", "..") for p in parts):
        return None
    return name


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


@dataclass(frozen=True)
class ExchangeSession:
    id: str
    sessid: str
    client_id: str
    zip: bool
    version: str | None


def _session(row: BitrixExchangeSession) -> ExchangeSession:
    return ExchangeSession(row.id, row.sessid, row.client_id, row.zip, row.version)


def open_session(
    db: Database, client_id: str, now: datetime, ttl: timedelta, cookie: str | None = None
) -> tuple[str, ExchangeSession]:
    """The session of a ``checkauth``: (the cookie value 1C will send back, the session).

    A ``checkauth`` carrying the cookie of a live session of the same client keeps that session,
    as PHP keeps ``PHPSESSID`` for a logged-in user. Without one, a new session takes over the
    files and the agreed protocol (``version``, ``zip``) of the client's latest live session:
    Bitrix keeps 1C's files in one directory per site, not per session, so an upload that a
    second ``checkauth`` interrupts goes on where it was."""
    with db.write() as session:
        if cookie and len(cookie) <= 128:
            row = session.get(BitrixExchangeSession, _digest(cookie))
            if row is not None and row.client_id == client_id and row.last_seen_at + ttl >= now:
                row.last_seen_at = now
                session.add(row)
                return cookie, _session(row)
        latest = session.exec(
            select(BitrixExchangeSession)
            .where(
                BitrixExchangeSession.client_id == client_id,
                col(BitrixExchangeSession.last_seen_at) >= now - ttl,
            )
            .order_by(col(BitrixExchangeSession.last_seen_at).desc())
            .limit(1)
        ).first()
        cookie = secrets.token_hex(16)
        row = BitrixExchangeSession(
            id=_digest(cookie),
            sessid=secrets.token_hex(16),
            client_id=client_id,
            zip=latest.zip if latest is not None else False,
            version=latest.version if latest is not None else None,
            created_at=now,
            last_seen_at=now,
        )
        session.add(row)
        session.flush()
        if latest is not None:
            files = session.exec(select(BitrixExchangeFile).where(BitrixExchangeFile.session_id == latest.id)).all()
            for file in files:
                file.session_id = row.id
                session.add(file)
        return cookie, _session(row)


def find_session(db: Database, cookie: str | None, ttl: timedelta, now: datetime) -> ExchangeSession | None:
    """The live session of this cookie (its idle time is reset), or None."""
    if not cookie or len(cookie) > 128:
        return None
    with db.write() as session:
        row = session.get(BitrixExchangeSession, _digest(cookie))
        if row is None or row.last_seen_at + ttl < now:
            return None
        row.last_seen_at = now
        session.add(row)
        return _session(row)


def start_exchange(db: Database, session_id: str, zip_enabled: bool, version: str | None, now: datetime) -> None:
    """``init``: forget the session's earlier files, remember what was agreed."""
    with db.write() as session:
        _delete_files(session, [session_id])
        row = session.get(BitrixExchangeSession, session_id)
        if row is not None:
            row.zip = zip_enabled
            row.version = version
            row.last_seen_at = now
            session.add(row)


def _delete_files(session: Session, session_ids: list[str]) -> int:
    if not session_ids:
        return 0
    file_ids = select(BitrixExchangeFile.id).where(col(BitrixExchangeFile.session_id).in_(session_ids))
    session.exec(delete(BitrixExchangeChunk).where(col(BitrixExchangeChunk.file_id).in_(file_ids)))
    result = session.exec(delete(BitrixExchangeFile).where(col(BitrixExchangeFile.session_id).in_(session_ids)))
    return int(result.rowcount or 0)


class FileTooLarge(Exception):
    pass


def append_chunk(
    db: Database,
    session_id: str,
    filename: str,
    data: bytes,
    max_bytes: int,
    now: datetime,
    archive: str | None = None,
) -> BitrixExchangeFile:
    """Append ``data`` to the file (created on its first chunk)."""
    with db.write() as session:
        stmt = select(BitrixExchangeFile).where(
            BitrixExchangeFile.session_id == session_id, BitrixExchangeFile.filename == filename
        )
        if not db.is_sqlite:
            stmt = stmt.with_for_update()
        row = session.exec(stmt).first()
        if row is None:
            row = BitrixExchangeFile(
                session_id=session_id, filename=filename, archive=archive, created_at=now, updated_at=now
            )
            session.add(row)
            session.flush()
        if row.size + len(data) > max_bytes:
            raise FileTooLarge(f"{filename}: more than {max_bytes} bytes")
        assert row.id is not None
        if data:
            session.add(BitrixExchangeChunk(file_id=row.id, seq=row.chunks, data=data))
            row.chunks += 1
            row.size += len(data)
        # A file written again after it was imported is a new file: import it from the start.
        row.validated = False
        row.documents_done = 0
        row.finished = False
        row.extracted = False
        row.error = None
        row.updated_at = now
        session.add(row)
        session.flush()
        return row.model_copy()


def get_file(db: Database, session_id: str, filename: str) -> BitrixExchangeFile | None:
    with db.read() as session:
        row = session.exec(
            select(BitrixExchangeFile).where(
                BitrixExchangeFile.session_id == session_id, BitrixExchangeFile.filename == filename
            )
        ).first()
        return row.model_copy() if row is not None else None


def session_files(db: Database, session_id: str) -> list[BitrixExchangeFile]:
    with db.read() as session:
        rows = session.exec(
            select(BitrixExchangeFile)
            .where(BitrixExchangeFile.session_id == session_id)
            .order_by(col(BitrixExchangeFile.filename))
        ).all()
        return [r.model_copy() for r in rows]


def update_file(db: Database, file_id: int, now: datetime, **values: object) -> None:
    with db.write() as session:
        row = session.get(BitrixExchangeFile, file_id)
        if row is None:
            return
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = now
        session.add(row)


def read_chunks(db: Database, file_id: int) -> Iterator[bytes]:
    """The file's bytes, one stored chunk at a time."""
    with db.read() as session:
        count = session.exec(select(func.count()).where(BitrixExchangeChunk.file_id == file_id)).one()
    for seq in range(int(count)):
        with db.read() as session:
            chunk = session.get(BitrixExchangeChunk, (file_id, seq))
            data = bytes(chunk.data) if chunk is not None else b""
        yield data


def purge(db: Database, idle_before: datetime) -> int:
    """Delete sessions idle since before ``idle_before`` with their files; returns how many."""
    with db.write() as session:
        ids = list(
            session.exec(
                select(BitrixExchangeSession.id).where(col(BitrixExchangeSession.last_seen_at) < idle_before)
            ).all()
        )
        _delete_files(session, ids)
        if ids:
            session.exec(delete(BitrixExchangeSession).where(col(BitrixExchangeSession.id).in_(ids)))
        return len(ids)


# -- export cursor -------------------------------------------------------------------------


def cursor(db: Database, name: str) -> int:
    with db.read() as session:
        row = session.get(BitrixExportCursor, name)
        return row.committed_sequence if row is not None else 0


def set_pending(db: Database, name: str, sequence: int, now: datetime) -> None:
    """What the last ``query`` delivered; committed by ``success``."""
    for attempt in range(2):
        try:
            with db.write() as session:
                row = session.get(BitrixExportCursor, name)
                if row is None:
                    row = BitrixExportCursor(name=name, committed_sequence=0, updated_at=now)
                row.pending_sequence = sequence
                row.updated_at = now
                session.add(row)
            return
        except IntegrityError:
            if attempt:
                raise  # a concurrent first query created the row: the second attempt updates it


def commit(db: Database, name: str, now: datetime) -> int:
    """Move the cursor past what the last ``query`` delivered; returns the committed sequence."""
    with db.write() as session:
        stmt = select(BitrixExportCursor).where(BitrixExportCursor.name == name)
        if not db.is_sqlite:
            stmt = stmt.with_for_update()
        row = session.exec(stmt).first()
        if row is None:
            return 0
        if row.pending_sequence is not None and row.pending_sequence > row.committed_sequence:
            row.committed_sequence = row.pending_sequence
        row.pending_sequence = None
        row.updated_at = now
        session.add(row)
        return row.committed_sequence


def delete_files(db: Database, session_id: str, *, names: list[str] | None = None, archive: str | None = None) -> int:
    """Delete some files of a session: by name, or every file extracted from ``archive``."""
    with db.write() as session:
        stmt = select(BitrixExchangeFile.id).where(BitrixExchangeFile.session_id == session_id)
        if names is not None:
            stmt = stmt.where(col(BitrixExchangeFile.filename).in_(names))
        if archive is not None:
            stmt = stmt.where(BitrixExchangeFile.archive == archive)
        ids = [i for i in session.exec(stmt).all() if i is not None]
        if not ids:
            return 0
        session.exec(delete(BitrixExchangeChunk).where(col(BitrixExchangeChunk.file_id).in_(ids)))
        session.exec(delete(BitrixExchangeFile).where(col(BitrixExchangeFile.id).in_(ids)))
        return len(ids)


# -- what 1C itself changed, and what could not be applied ---------------------------------


def remember_1c_version(db: Database, client_id: str, order_id: str, version: int, now: datetime) -> None:
    """The order's ``version`` was made from 1C's news: ``query`` will not send it back."""
    try:
        with db.write() as session:
            if session.get(BitrixCmlOrderVersion, (client_id, order_id, version)) is None:
                row = BitrixCmlOrderVersion(client_id=client_id, order_id=order_id, version=version, created_at=now)
                session.add(row)
    except IntegrityError:
        pass  # a concurrent import of the same file remembered it first


def versions_from_1c(db: Database, client_id: str, orders: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these (order id, version) pairs 1C made."""
    if not orders:
        return set()
    with db.read() as session:
        rows = session.exec(
            select(BitrixCmlOrderVersion.order_id, BitrixCmlOrderVersion.version).where(
                BitrixCmlOrderVersion.client_id == client_id,
                col(BitrixCmlOrderVersion.order_id).in_({order_id for order_id, _ in orders}),
            )
        ).all()
    wanted = set(orders)
    return {(order_id, version) for order_id, version in rows if (order_id, version) in wanted}


@dataclass(frozen=True)
class FailedFile:
    filename: str
    archive: str | None
    size: int
    error: str
    at: datetime


def failed_files(db: Database, limit: int = 20) -> list[FailedFile]:
    """Files of 1C that could not be applied, latest first, with the reason."""
    with db.read() as session:
        rows = session.exec(
            select(BitrixExchangeFile)
            .where(col(BitrixExchangeFile.error).is_not(None))
            .order_by(col(BitrixExchangeFile.updated_at).desc())
            .limit(limit)
        ).all()
        return [FailedFile(r.filename, r.archive, r.size, r.error or "", r.updated_at) for r in rows]

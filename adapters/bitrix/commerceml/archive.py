"""Safe extraction of the zip archives 1C sends when the site answered ``zip=yes``.

Nothing in an archive is trusted: members are stored as files of the same session under
names checked like uploaded ones (no absolute paths, no ``..``, no drive letters), links and
encrypted members are refused, there are at most ``MAX_MEMBERS`` of them.

A zip bomb costs nothing but the reading of its first bytes: the archive may give at most
``min(max_bytes, max_ratio × its own size)`` bytes (1C's XML packs some 10 to 30 times). The
sizes it declares are checked first, then the bytes it really gives are counted in a first pass
that writes nothing and stops as soon as the bound is passed; only an archive that stays within
it is written, member by member. A failed extraction leaves no member behind.
"""

from __future__ import annotations

import stat
import tempfile
import zipfile
from datetime import datetime

from adapters.bitrix.commerceml import store
from gateway.store.db import Database
from gateway.store.models_bitrix import BitrixExchangeFile

MAX_MEMBERS = 200
SPOOL_IN_MEMORY = 8 * 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"


class ArchiveError(Exception):
    """The archive is refused; the message says why (it is shown to 1C)."""


def is_zip(db: Database, file: BitrixExchangeFile) -> bool:
    if file.id is None or file.size < len(ZIP_MAGIC):
        return False
    first = next(store.read_chunks(db, file.id), b"")
    return first.startswith(ZIP_MAGIC)


def _members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    found: list[tuple[zipfile.ZipInfo, str]] = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            raise ArchiveError(f"ссылка в архиве не допускается: {info.filename[:100]}")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"зашифрованный файл в архиве: {info.filename[:100]}")
        name = store.safe_filename(info.filename)
        if name is None:
            raise ArchiveError(f"недопустимое имя файла в архиве: {info.filename[:100]!r}")
        found.append((info, name))
    if len(found) > MAX_MEMBERS:
        raise ArchiveError(f"в архиве больше {MAX_MEMBERS} файлов")
    if len({name for _, name in found}) != len(found):
        raise ArchiveError("в архиве повторяются имена файлов")
    return found


def _measure(archive: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, str]], limit: int, block: int) -> int:
    """What the members really decompress to, counted without keeping any of it; stops (raises)
    as soon as it passes ``limit``."""
    declared = sum(info.file_size for info, _ in members)
    if declared > limit:
        raise ArchiveError(f"распакованный архив больше {limit} байт (заявлено {declared})")
    total = 0
    try:
        for info, _ in members:
            with archive.open(info) as source:
                while data := source.read(block):
                    total += len(data)
                    if total > limit:
                        raise ArchiveError(f"распакованный архив больше {limit} байт")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ArchiveError(f"ошибка распаковки архива: {type(exc).__name__}") from exc
    return total


def extract(
    db: Database,
    session_id: str,
    file: BitrixExchangeFile,
    *,
    max_bytes: int,
    block: int,
    now: datetime,
    max_ratio: int | None = None,
) -> list[str]:
    """Store the archive's members as files of the session; returns their names."""
    assert file.id is not None
    if max_ratio is not None:
        max_bytes = min(max_bytes, max(file.size, 1) * max_ratio)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        for chunk in store.read_chunks(db, file.id):
            spool.write(chunk)
        spool.seek(0)
        try:
            archive = zipfile.ZipFile(spool)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ArchiveError("файл не является zip-архивом") from exc
        with archive:
            members = _members(archive)
            names = [name for _, name in members]
            if file.filename in names:
                raise ArchiveError("архив содержит файл с собственным именем")
            _measure(archive, members, max_bytes, block)
            store.delete_files(db, session_id, archive=file.filename)
            store.delete_files(db, session_id, names=[n for n in names if n != file.filename])
            total = 0
            try:
                for info, name in members:
                    store.append_chunk(db, session_id, name, b"", max_bytes, now, archive=file.filename)
                    with archive.open(info) as source:
                        while data := source.read(block):
                            total += len(data)
                            if total > max_bytes:
                                raise ArchiveError(f"распакованный архив больше {max_bytes} байт")
                            store.append_chunk(db, session_id, name, data, max_bytes, now, archive=file.filename)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
                store.delete_files(db, session_id, archive=file.filename)
                raise ArchiveError(f"ошибка распаковки архива: {type(exc).__name__}") from exc
            except ArchiveError:
                store.delete_files(db, session_id, archive=file.filename)
                raise
    return names

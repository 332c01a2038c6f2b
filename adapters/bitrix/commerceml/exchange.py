"""The steps of the 1C exchange protocol (``type=sale``), as Bitrix's own exchange component
answers them (``avshatalov48/bitrix-core-business``
``modules/sale/install/components/bitrix/sale.export.1c/component.php``):

``checkauth`` (HTTP Basic) -> ``init`` -> ``file`` (1C's documents, appended chunk by chunk)
-> ``import`` (``progress`` until done, then ``success``) -> ``query`` (our orders) -> ``success``;
``info`` answers the site's statuses, payment systems and delivery services.

Two generations of 1C: one sends ``version`` with ``init`` and then calls ``import``; an older
one sends none and never calls ``import`` — Bitrix imports the file on ``file`` then, and so do
we (a zip first extracted). Every reply is text (first line ``success``, ``progress``,
``failure`` or ``error``, then a message) except ``query`` and ``info``, which answer XML.
Failures change nothing that was not already done: a hostile or malformed file is refused whole
before any of it is applied, and the reason stays on the file for ``gateway bitrix status``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.bitrix.commerceml import archive, store
from adapters.bitrix.commerceml.documents import parse_top_level
from adapters.bitrix.commerceml.export import ExportedOrder, info_xml, orders_xml
from adapters.bitrix.commerceml.importer import ImportReport, apply_package
from adapters.bitrix.config import CommerceMLConfig
from contracts.errors import LoyaltyError
from contracts.operations import CustomerResult, LookupCustomerRequest
from gateway.ledger.service import LoyaltyService
from gateway.store.models_bitrix import BitrixExchangeFile
from gateway.xmlsafe import UnsafeXml, iter_children

log = logging.getLogger("adapters.bitrix.commerceml")

# Bitrix's own wording, which 1C shows to its operator.
AUTH_FAILED = "Ошибка авторизации. Неверное имя пользователя или пароль."
NO_RIGHTS = "У Вас нет прав для обмена. Проверьте настройки компонента."
SESSID_MISMATCH = "Ошибка проверки источника запроса. Обновите модуль обмена."
UNKNOWN_COMMAND = "Неизвестная команда."
ONLY_SALE = "Шлюз лояльности обменивается только заказами (type=sale)."
EMPTY_FILE = "Файл для импорта пуст."
BAD_NAME = "Недопустимое имя файла."
UNZIP_DONE = "Распаковка архива завершена."
IMPORT_STEP_SECONDS = 20.0


@dataclass(frozen=True)
class Reply:
    """A reply: text lines, or (``xml``) the body of ``query``."""

    text: str = ""
    xml: bytes | None = None
    cookie: tuple[str, str] | None = None


def text(status: str, *lines: str) -> Reply:
    return Reply("\n".join([status, *lines]) + "\n")


def cursor_name(cfg: CommerceMLConfig) -> str:
    return f"commerceml:{cfg.orders_client}"[:64]


def checkauth(service: LoyaltyService, cfg: CommerceMLConfig, client_id: str, cookie: str | None = None) -> Reply:
    ttl = timedelta(seconds=cfg.session_ttl_seconds)
    value, session = store.open_session(service.db, client_id, service.clock(), ttl, cookie)
    log.info("1C exchange: session %s for %s", "kept" if value == cookie else "opened", client_id)
    return Reply(f"success\n{cfg.cookie_name}\n{value}\nsessid={session.sessid}\n", cookie=(cfg.cookie_name, value))


def init(service: LoyaltyService, cfg: CommerceMLConfig, session: store.ExchangeSession, version: str | None) -> Reply:
    version = (version or "").strip()[:16] or None
    store.start_exchange(service.db, session.id, cfg.zip, version, service.clock())
    reply = f"zip={'yes' if cfg.zip else 'no'}\nfile_limit={cfg.file_limit}\n"
    if version:
        # Bitrix ends with "version=2.09" and no line feed.
        reply += f"sessid={session.sessid}\nversion={cfg.schema_version}"
    return Reply(reply)


def info(cfg: CommerceMLConfig) -> Reply:
    return Reply(xml=info_xml(cfg))


def upload(
    service: LoyaltyService, cfg: CommerceMLConfig, session: store.ExchangeSession, filename: str | None, body: bytes
) -> Reply:
    name = store.safe_filename(filename)
    if name is None:
        return text("failure", BAD_NAME)
    try:
        stored = store.append_chunk(service.db, session.id, name, body, cfg.max_file_bytes, service.clock())
    except store.FileTooLarge:
        return text("failure", f"Файл {name} больше {cfg.max_file_bytes} байт.")
    log.info("1C exchange: %s now %d bytes in %d chunks", name, stored.size, stored.chunks)
    if session.version is None:
        return _import_whole(service, cfg, session, name)
    return text("success")


def _import_whole(service: LoyaltyService, cfg: CommerceMLConfig, session: store.ExchangeSession, name: str) -> Reply:
    """The older 1C (``init`` without ``version``) never calls ``import``: as Bitrix does, the
    file is imported when it is received, whole, and the reply says how it went."""
    while True:
        reply = import_step(service, cfg, session, name, unbounded=True)
        if not reply.text.startswith("progress"):
            return reply


def _validate(service: LoyaltyService, cfg: CommerceMLConfig, file: BitrixExchangeFile) -> int:
    """Read the whole file once, applying nothing: a hostile or broken file is refused before
    any of its documents changes an order. Returns the number of top-level documents."""
    assert file.id is not None
    count = 0
    for _ in iter_children(store.read_chunks(service.db, file.id), max_bytes=cfg.max_file_bytes):
        count += 1
    return count


def _import_file(
    service: LoyaltyService,
    cfg: CommerceMLConfig,
    file: BitrixExchangeFile,
    report: ImportReport,
    budget: int,
    *,
    unbounded: bool = False,
) -> tuple[bool, int]:
    """Apply up to ``budget`` documents of the file from where the last step stopped; returns
    (finished, documents applied in this step)."""
    assert file.id is not None
    now = service.clock
    if not file.validated:
        _validate(service, cfg, file)
        store.update_file(service.db, file.id, now(), validated=True)
    done = file.documents_done
    used = 0
    started = time.monotonic()
    finished = True
    for index, element in enumerate(
        iter_children(store.read_chunks(service.db, file.id), max_bytes=cfg.max_file_bytes)
    ):
        if index < done:
            continue
        if not unbounded and (used >= budget or time.monotonic() - started > IMPORT_STEP_SECONDS):
            finished = False
            break
        package = parse_top_level(element)
        if package is not None:
            apply_package(service, cfg, package, report)
        used += 1
    # Progress is saved once per step: a step cut short (a crash) is simply done again, and its
    # documents then change nothing (each is applied only if it changes the stored order).
    store.update_file(service.db, file.id, now(), documents_done=done + used, finished=finished)
    return finished, used


def _failed(service: LoyaltyService, file: BitrixExchangeFile, reason: str) -> Reply:
    """The file cannot be applied: the reason stays on it (``gateway bitrix status``, the
    operator page) and 1C gets it as Bitrix's ``failure``. Other files import as before."""
    assert file.id is not None
    store.update_file(service.db, file.id, service.clock(), error=reason[:500])
    log.warning("1C exchange: %s refused: %s", file.filename, reason)
    return text("failure", reason)


def import_step(
    service: LoyaltyService,
    cfg: CommerceMLConfig,
    session: store.ExchangeSession,
    filename: str | None,
    *,
    unbounded: bool = False,
) -> Reply:
    name = store.safe_filename(filename)
    if name is None:
        return text("failure", BAD_NAME)
    db = service.db
    now = service.clock()
    # An archive is extracted by a step of its own, as Bitrix does. One that failed keeps its
    # reason and is not tried again, so it blocks no other file of the session.
    for candidate in store.session_files(db, session.id):
        if candidate.archive is None and not candidate.extracted and candidate.error is None:
            if not archive.is_zip(db, candidate):
                continue
            try:
                members = archive.extract(
                    db,
                    session.id,
                    candidate,
                    max_bytes=cfg.max_unzipped_bytes,
                    max_ratio=cfg.max_unzip_ratio,
                    block=cfg.file_limit,
                    now=now,
                )
            except archive.ArchiveError as exc:
                return _failed(service, candidate, f"Архив {candidate.filename}: {exc}")
            assert candidate.id is not None
            store.update_file(db, candidate.id, now, extracted=True)
            log.info("1C exchange: %s extracted (%d files)", candidate.filename, len(members))
            if not unbounded:
                return text("progress", UNZIP_DONE)
    file = store.get_file(db, session.id, name)
    if file is None:
        # 1C names a file of the archive it sent; if that archive could not be unpacked, say why.
        failed = [f.error for f in store.session_files(db, session.id) if f.archive is None and f.error]
        return text("failure", failed[-1] if failed else EMPTY_FILE)
    if file.size == 0 and not file.extracted:
        return text("failure", EMPTY_FILE)
    if file.error is not None:
        return text("failure", file.error)
    if file.extracted:  # the archive itself was named: import the XML files it held, in turn
        targets = [f for f in store.session_files(db, session.id) if f.archive == file.filename]
    else:
        targets = [file]
    report = ImportReport()
    budget = cfg.import_batch
    for target in targets:
        if target.finished:
            continue
        if target.error is not None:
            return text("failure", target.error)
        try:
            finished, used = _import_file(service, cfg, target, report, budget, unbounded=unbounded)
        except UnsafeXml as exc:
            return _failed(service, target, f"Файл {target.filename} отклонён: {exc}")
        except LoyaltyError as exc:
            # A failure of the ledger itself (not of one order): the step is done again on retry.
            return text("failure", f"{exc.code.value}: {exc.message}")
        budget -= used
        if not finished:
            log.info("1C exchange: %s in progress (%s)", target.filename, _summary(report))
            return text("progress", f"Обработано документов: {target.documents_done + used}.", *report.warnings)
    log.info("1C exchange: %s imported (%s)", name, _summary(report))
    return text("success", *report.warnings)


def _summary(report: ImportReport) -> str:
    return f"applied {report.applied}, unchanged {report.unchanged}, skipped {report.skipped}"


def query(service: LoyaltyService, cfg: CommerceMLConfig) -> Reply:
    """The orders changed since the last committed export (the same ones again until ``success``)."""
    db = service.db
    name = cursor_name(cfg)
    after = store.cursor(db, name)
    records = service.order_changes(cfg.orders_client, after, cfg.export_limit)
    # Only what changed on the site: a version 1C's own news made is not sent back to it.
    echoes = store.versions_from_1c(db, cfg.orders_client, [(r.snapshot.order_id, r.result.version) for r in records])
    customers: dict[str, CustomerResult | None] = {}
    exported: list[ExportedOrder] = []
    for record in records:
        if (record.snapshot.order_id, record.result.version) in echoes:
            continue
        card = record.snapshot.card_number
        if card not in customers:
            try:
                customers[card] = service.lookup_customer(cfg.orders_client, LookupCustomerRequest(card_number=card))
            except LoyaltyError:
                customers[card] = None
        exported.append(ExportedOrder(record, customers[card]))
    now = service.clock()
    store.set_pending(db, name, records[-1].sequence if records else after, now)
    log.info("1C exchange: %d orders exported after #%d (%d of 1C's own skipped)", len(exported), after, len(echoes))
    return Reply(xml=orders_xml(exported, cfg, service.program.point_value, now))


def success(service: LoyaltyService, cfg: CommerceMLConfig) -> Reply:
    committed = store.commit(service.db, cursor_name(cfg), service.clock())
    log.info("1C exchange: export committed up to #%d", committed)
    return text("success")


def purge(service: LoyaltyService, cfg: CommerceMLConfig) -> int:
    """Sessions idle longer than ``keep_files_hours`` go, with their files."""
    idle_before: datetime = service.clock() - timedelta(hours=cfg.keep_files_hours)
    return store.purge(service.db, idle_before)

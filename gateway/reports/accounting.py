"""For the accountants: what did not finish or failed — unresolved point reservations, failed
and interrupted requests, undelivered outbound messages — with the points and receipts at stake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, case, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from gateway.core.program import Program
from gateway.reports.base import Column, Filters, Report, mask_card
from gateway.reports.purchases import T

# A request still "received" this long after it arrived belongs to a process that died
# (the same threshold as the operator page's stuck list).
INTERRUPTED_AFTER = timedelta(minutes=5)

STATES = {
    "hold_overdue": "Резерв баллов не закрыт после срока",
    "hold_attention": "Резерв баллов отложен: нужна проверка",
    "request_failed": "Запрос отклонён с ошибкой",
    "request_interrupted": "Запрос прерван (процесс остановился)",
    "message_dead": "Сообщение не доставлено (попытки исчерпаны)",
    "message_retrying": "Сообщение доставляется повторно",
}


def stuck(session: Session, program: Program, filters: Filters) -> Report:
    holds = T["holds"]
    journal = T["journal"]
    outbox = T["outbox"]
    now = filters.now or datetime.now(UTC)
    nothing: Any = literal(None, String)
    in_period = (holds.c.created_at >= filters.start) & (holds.c.created_at < filters.end)
    overdue = select(
        literal("hold_overdue").label("state"),
        holds.c.id.label("ref"),
        holds.c.created_at.label("at"),
        holds.c.client_id.label("client"),
        holds.c.card_number.label("card"),
        holds.c.receipt_id.label("receipt"),
        func.coalesce(holds.c.captured_points, holds.c.points).label("points"),
        holds.c.status.label("detail"),
    ).where(in_period, holds.c.status.in_(("open", "captured")), holds.c.expires_at <= now, holds.c.attention.is_(None))
    attention = select(
        literal("hold_attention"),
        holds.c.id,
        holds.c.created_at,
        holds.c.client_id,
        holds.c.card_number,
        holds.c.receipt_id,
        func.coalesce(holds.c.captured_points, holds.c.points),
        holds.c.attention,
    ).where(in_period, holds.c.status.in_(("open", "captured")), holds.c.attention.is_not(None))
    j_period = (journal.c.created_at >= filters.start) & (journal.c.created_at < filters.end)
    failed = select(
        literal("request_failed"),
        journal.c.id,
        journal.c.created_at,
        journal.c.client_id,
        journal.c.card_number,
        journal.c.receipt_id,
        literal(None, BigInteger),
        func.coalesce(journal.c.error_code, "") + literal(": ") + func.coalesce(journal.c.operation, ""),
    ).where(j_period, journal.c.state == "failed")
    interrupted = select(
        literal("request_interrupted"),
        journal.c.id,
        journal.c.created_at,
        journal.c.client_id,
        journal.c.card_number,
        journal.c.receipt_id,
        literal(None, BigInteger),
        journal.c.operation,
    ).where(j_period, journal.c.state.in_(("received", "abandoned")), journal.c.created_at < now - INTERRUPTED_AFTER)
    o_period = (outbox.c.created_at >= filters.start) & (outbox.c.created_at < filters.end)
    messages = select(
        case((outbox.c.state == "dead", "message_dead"), else_="message_retrying"),
        cast(outbox.c.id, String),
        outbox.c.created_at,
        outbox.c.destination,
        nothing,
        nothing,
        literal(None, BigInteger),
        outbox.c.kind + literal(": ") + func.coalesce(outbox.c.last_error, ""),
    ).where(o_period, (outbox.c.state == "dead") | ((outbox.c.state == "pending") & (outbox.c.attempts > 0)))
    query = union_all(overdue, attention, failed, interrupted, messages).subquery("stuck")
    result = session.execute(select(query).order_by(query.c.at, query.c.ref).limit(filters.limit)).all()
    rows = []
    for state, ref, at, client, card, receipt, points, detail in result:
        code = str(state)
        rows.append(
            (
                code,
                STATES[code],
                str(ref),
                at,
                client,
                mask_card(card),
                receipt or "",
                None if points is None else int(points),
                (detail or "")[:300],
            )
        )
    columns = (
        Column("state", "Код", "Code"),
        Column("title", "Что не так", "What is wrong"),
        Column("ref", "Идентификатор", "Reference"),
        Column("at", "Когда", "When", "datetime"),
        Column("client", "Клиент шлюза", "Gateway client"),
        Column("card", "Карта", "Card"),
        Column("receipt", "Чек", "Receipt"),
        Column("points", "Баллов", "Points", "points"),
        Column("detail", "Подробности", "Details"),
    )
    notes = ["Разобрать и повторить: страница оператора /operator или `gateway stuck`."]
    return Report(
        "stuck", "Зависшие и ошибочные операции", "Stuck and failed transactions", columns, rows, notes, filters
    )

"""The date-driven notification jobs: found with set-based reads, written in short batches,
and one bad template never stops the other messages nor the receipt that triggers one."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from contracts.operations import CartLine, CommitRequest, RegisterCustomerRequest
from gateway.config import NotificationsConfig, ProviderConfig, Settings, load_config
from gateway.ledger.service import LoyaltyService
from gateway.notify import triggers as triggers_module
from gateway.notify.triggers import NotificationTriggers
from gateway.store.models import Notification
from gateway.wiring import build_service
from tests.support import FakeClock


def _notifications(tmp_path: Path, **templates: str) -> NotificationsConfig:
    config = NotificationsConfig(
        providers={"console": ProviderConfig(type="console", path=str(tmp_path / "messages.jsonl"))},
        triggers=["points_accrued", "points_expiring", "birthday"],
    )
    return config.model_copy(update={"templates": {**config.templates, **templates}})


def _service(database_url: str, clock: FakeClock, notifications: NotificationsConfig) -> LoyaltyService:
    demo = load_config(Path(__file__).resolve().parents[2] / "gateway" / "demo" / "gateway.yaml")
    config = demo.model_copy(update={"notifications": notifications})
    return build_service(Settings(database_url=database_url), config, clock)


def _register(service: LoyaltyService, n: int, **fields: Any) -> str:
    request = RegisterCustomerRequest(card_number=f"27100000{n:05d}", phone=f"+7912700{n:04d}", **fields)
    service.register_customer("site", uuid.uuid4().hex, request)
    return request.card_number or ""


def _topics(service: LoyaltyService) -> list[str]:
    with service.db.read() as session:
        return sorted(n.topic for n in session.exec(select(Notification)).all())


def test_birthdays_are_found_by_date_and_sent_once(database_url: str, clock: FakeClock, tmp_path: Path) -> None:
    clock.freeze()
    today = clock().date()
    notifications = _notifications(tmp_path)
    service = _service(database_url, clock, notifications)
    _register(service, 1, birth_date=date(1990, today.month, today.day), name="Анна")
    _register(service, 2, birth_date=date(1990, 1 if today.month != 1 else 2, 1), name="Борис")
    _register(service, 3, name="Вера")
    triggers = NotificationTriggers(notifications)
    assert triggers.run_daily_jobs(service) == 1
    assert triggers.run_daily_jobs(service) == 0
    with service.db.read() as session:
        (message,) = session.exec(select(Notification).where(Notification.topic == "birthday")).all()
    assert "Анна" in message.text
    service.db.dispose()


def test_a_bad_template_skips_its_messages_only(
    database_url: str, clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """Issue 20: one bad template silently stopped all daily messages. Messages are written in
    batches; a template naming a field its trigger lacks is logged, the others still go out."""
    monkeypatch.setattr(triggers_module, "WRITE_BATCH", 2)
    clock.freeze()
    today = clock().date()
    bad = _notifications(tmp_path, points_accrued="Начислено {points} из {nonexistent}")
    service = _service(database_url, clock, bad)
    for n in range(5):
        _register(service, 10 + n, birth_date=date(1985, today.month, today.day))
    card = _register(service, 20)
    receipt = CommitRequest(
        receipt_id="R-1", card_number=card, lines=[CartLine(line_id="1", item="X", quantity=1, price=1000)]
    )
    with caplog.at_level(logging.ERROR, logger="gateway.notify.triggers"):
        committed = service.commit("tills", uuid.uuid4().hex, receipt)  # the receipt is booked all the same
        assert committed.points_accrued > 0
        assert NotificationTriggers(bad).run_daily_jobs(service) == 5
    assert _topics(service) == ["birthday"] * 5
    assert "'points_accrued' cannot be filled" in caplog.text
    service.db.dispose()

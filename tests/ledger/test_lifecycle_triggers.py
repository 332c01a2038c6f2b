"""Lifecycle triggers of the daily notification job (issue 20): win-back with gift points and a
follow-up, once per lapse; tier changed; close to the next tier before the quarter ends; points
expired; each also a webhook event through the outbox; templates checked by ``check-config``.

The clock (``FakeClock``) is moved across days; the gateway runs on a real database (SQLite or
PostgreSQL). Uses the building-materials example program: tiers by quarterly turnover (base,
silver from 100 000 ₽, gold from 300 000 ₽), 5 % cashback on base, 200 welcome points living 60
days, dates in Moscow time.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from contracts.operations import BalanceRequest, CartLine, CommitRequest, RegisterCustomerRequest
from gateway.cli import app as cli
from gateway.config import (
    ConfigError,
    GatewayConfig,
    NotificationsConfig,
    ProviderConfig,
    Settings,
    TierCloseConfig,
    WebhookConfig,
    WinBackConfig,
    load_config,
    parse_config,
)
from gateway.ledger.service import LoyaltyService
from gateway.notify import triggers as triggers_module
from gateway.notify.triggers import NotificationTriggers
from gateway.store.models import LedgerEntry, Notification, OutboxMessage
from gateway.store.models_program import BonusGrant
from gateway.wiring import build_service
from gateway.workers.runner import run_once
from tests.support import FakeClock, noon

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"


def notifications(tmp_path: Path, **extra: object) -> NotificationsConfig:
    return NotificationsConfig(
        providers={"console": ProviderConfig(type="console", path=str(tmp_path / "messages.jsonl"))},
        triggers=["win_back", "tier_changed", "tier_close", "points_expired"],
        win_back=WinBackConfig(after_days=30, gift_points=300, gift_expiry_days=14, follow_up_days=10),
        tier_close=TierCloseConfig(percent=20, days=14),
        **extra,
    )


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    building = load_config(BUILDING)
    hook = WebhookConfig(id="crm", url="http://127.0.0.1:9/hook", events=["customer.*"])
    return building.model_copy(update={"notifications": notifications(tmp_path), "webhooks": [hook]})


@pytest.fixture
def service(database_url: str, config: GatewayConfig, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(date(2026, 1, 15)))
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def register(service: LoyaltyService, card: str, name: str) -> str:
    request = RegisterCustomerRequest(card_number=card, phone=f"+7999{card[-7:]}", name=name)
    return service.register_customer("site", uuid.uuid4().hex, request).customer_id


def buy(service: LoyaltyService, card: str, roubles: int) -> None:
    request = CommitRequest(
        receipt_id=uuid.uuid4().hex,
        card_number=card,
        store="S01",
        lines=[CartLine(line_id="1", item="TL-1001", quantity=Decimal(1), price=Decimal(roubles))],
    )
    service.commit("tills", uuid.uuid4().hex, request)


def balance(service: LoyaltyService, card: str) -> int:
    return service.balance("tills", BalanceRequest(card_number=card)).available


def messages(service: LoyaltyService, topic: str) -> list[Notification]:
    with service.db.read() as session:
        return list(
            session.exec(
                select(Notification).where(Notification.topic == topic).order_by(col(Notification.created_at))
            ).all()
        )


def events(service: LoyaltyService, name: str) -> list[dict[str, object]]:
    with service.db.read() as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.destination == "webhook:crm", OutboxMessage.kind == name)
        ).all()
        return [json.loads(row.payload_json) for row in rows]


def test_win_back_gift_follow_up_and_once_per_lapse(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """A customer buys, stops buying, gets a win-back with 300 gift points (expiring in 14 days),
    a follow-up 10 days later, comes back — and gets no second win-back until the next lapse."""
    triggers = NotificationTriggers(config.notifications)
    register(service, "2700000000011", "Анна")
    register(service, "2700000000022", "Борис")
    buy(service, "2700000000011", 1000)
    buy(service, "2700000000022", 1000)
    clock.set(noon(date(2026, 2, 5)))
    buy(service, "2700000000022", 1000)  # Борис keeps buying

    clock.set(noon(date(2026, 2, 13)))  # 29 days since Анна's purchase
    assert triggers.run_daily_jobs(service) == 0
    clock.set(noon(date(2026, 2, 14)))  # 30 days
    before = balance(service, "2700000000011")
    assert triggers.run_daily_jobs(service) == 1
    (win_back,) = messages(service, "win_back")
    assert win_back.text.startswith("Анна, давно вас не видели! Дарим 300 бонусов")
    assert "28.02.2026" in win_back.text  # the gift lives 14 days
    assert balance(service, "2700000000011") == before + 300
    assert triggers.run_daily_jobs(service) == 0  # a second run (or a replica) gives nothing twice
    assert balance(service, "2700000000011") == before + 300
    with service.db.read() as session:
        (grant,) = session.exec(select(BonusGrant).where(BonusGrant.kind == "win_back")).all()
        assert grant.points == 300
    (event,) = events(service, "customer.win_back")
    assert event["data"]["gift_points"] == 300  # type: ignore[index]
    assert "phone" not in event["data"] and "name" not in event["data"]  # type: ignore[operator]

    clock.set(noon(date(2026, 2, 23)))
    assert triggers.run_daily_jobs(service) == 0  # the follow-up waits 10 days
    clock.set(noon(date(2026, 2, 24)))
    assert triggers.run_daily_jobs(service) == 1
    assert len(messages(service, "win_back_follow_up")) == 1
    assert triggers.run_daily_jobs(service) == 0

    clock.set(noon(date(2026, 2, 26)))
    buy(service, "2700000000011", 2000)  # Анна comes back
    for day in (27, 28):
        clock.set(noon(date(2026, 2, day)))
        triggers.run_daily_jobs(service)
    assert len(messages(service, "win_back")) == 1  # the purchase re-armed it: no second one yet
    clock.set(noon(date(2026, 3, 28)))  # 30 days after Анна's return: a new lapse; Борис's since 03-07
    triggers.run_daily_jobs(service)
    texts = [m.text for m in messages(service, "win_back")]
    assert sum(t.startswith("Анна") for t in texts) == 2
    assert sum(t.startswith("Борис") for t in texts) == 1
    with service.db.read() as session:
        assert len(session.exec(select(BonusGrant).where(BonusGrant.kind == "win_back")).all()) == 3
    assert service.check().ok


def test_tier_changed_and_close_to_the_next_tier(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """The quarter ends 2026-03-31: within 14 days a customer 15 000 ₽ short of silver
    (100 000 ₽) hears how much is left; one who reached silver hears the new tier's name."""
    triggers = NotificationTriggers(config.notifications)
    register(service, "2700000000033", "Вера")
    register(service, "2700000000044", "Глеб")
    register(service, "2700000000055", "Дина")
    clock.set(noon(date(2026, 3, 1)))
    buy(service, "2700000000033", 85_000)
    buy(service, "2700000000044", 120_000)  # crosses silver: upgraded on purchase
    buy(service, "2700000000055", 50_000)
    assert triggers.run_daily_jobs(service) == 1  # the quarter ends in 31 days: only the tier change
    (changed,) = messages(service, "tier_changed")
    assert changed.text == "Глеб, ваш уровень теперь «Серебряный»."
    assert messages(service, "tier_close") == []

    clock.set(noon(date(2026, 3, 18)))  # 14 days left
    assert triggers.run_daily_jobs(service) == 1
    (close,) = messages(service, "tier_close")
    assert close.text == "Вера, до уровня «Серебряный» осталось купить на 15000 ₽ до 31.03.2026."
    assert triggers.run_daily_jobs(service) == 0  # once per quarter
    clock.set(noon(date(2026, 3, 25)))
    assert triggers.run_daily_jobs(service) == 0
    assert len(events(service, "customer.tier_close")) == 1
    assert len(events(service, "customer.tier_changed")) == 1


def test_points_expired(service: LoyaltyService, config: GatewayConfig, clock: FakeClock) -> None:
    """The 200 welcome points live 60 days; the expiry pass burns them, the job tells the customer."""
    triggers = NotificationTriggers(config.notifications)
    register(service, "2700000000066", "Елена")
    clock.set(noon(date(2026, 3, 17)))
    run_once(service)
    with service.db.read() as session:
        assert session.exec(select(LedgerEntry).where(LedgerEntry.kind == "expire")).all()
    assert triggers.run_daily_jobs(service) == 1
    (expired,) = messages(service, "points_expired")
    assert expired.text == "Сгорело бонусов: 200. Баланс: 0."
    clock.set(noon(date(2026, 3, 18)))
    assert triggers.run_daily_jobs(service) == 0


def test_a_bad_lifecycle_template_is_skipped_not_blocking(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """A template that cannot be filled (built in code, past check-config) skips its own
    messages; the others still go out, and the gift is booked once all the same."""
    good = config.notifications
    triggers = NotificationTriggers(
        good.model_copy(update={"templates": {**good.templates, "win_back": "{nonexistent}"}})
    )
    register(service, "2700000000077", "Жанна")
    clock.set(noon(date(2026, 2, 1)))
    buy(service, "2700000000077", 1000)
    clock.set(noon(date(2026, 3, 17)))  # 44 days: win-back due; the welcome points expired
    run_once(service)
    assert triggers.run_daily_jobs(service) == 1
    assert messages(service, "win_back") == []
    assert len(messages(service, "points_expired")) == 1
    assert triggers.run_daily_jobs(service) == 0
    with service.db.read() as session:
        assert len(session.exec(select(BonusGrant).where(BonusGrant.kind == "win_back")).all()) == 1
    assert service.check().ok


TEMPLATES = """\
notifications:
  triggers: [win_back, tier_close]
  templates:
    verification: "Код: {code}"
    points_accrued: "+{points}, баланс {balance}"
    points_spent: "-{points}"
    points_expiring: "{points} до {date}"
    birthday: "С днём рождения, {name}!"
    win_back: "{name}, дарим {bonus} бонусов"
    balance_high: "Накопилось {points} бонусов"
"""


def test_check_config_names_the_template_its_field_and_line(tmp_path: Path) -> None:
    """Each bad template is reported at its own line (issue 20: like every other config error,
    ``file:line: key: message``), all of them at once."""
    text = BUILDING.read_text(encoding="utf-8") + TEMPLATES
    lines = text.splitlines()
    win_back = lines.index('    win_back: "{name}, дарим {bonus} бонусов"') + 1
    balance_high = lines.index('    balance_high: "Накопилось {points} бонусов"') + 1
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "shop.yaml")
    assert str(caught.value).splitlines() == [
        f"shop.yaml:{win_back}: notifications.templates.win_back: {{bonus}} is not a field of this message "
        "(it has: balance, days, gift_expires, gift_points, name)",
        f"shop.yaml:{balance_high}: notifications.templates.balance_high: {{points}} is not a field of this "
        "message (it has: balance, name, threshold)",
    ]

    bad = tmp_path / "shop.yaml"
    bad.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["check-config", str(bad)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"shop.yaml:{win_back}: notifications.templates.win_back: {{bonus}}" in output
    assert f"shop.yaml:{balance_high}: notifications.templates.balance_high: {{points}}" in output
    text = text.replace("{points} бонусов", "{balance} бонусов")

    for broken, problem in (("{name", "expected '}'"), ("{0} бонусов", "{0} is not a field")):
        with pytest.raises(ConfigError, match=re.escape(problem)):
            parse_config(text.replace("{name}, дарим {bonus} бонусов", broken))
    good = tmp_path / "good.yaml"
    good.write_text(text.replace("{bonus}", "{gift_points}"), encoding="utf-8")
    assert CliRunner().invoke(cli, ["check-config", str(good)]).exit_code == 0


def test_check_config_warns_of_a_template_no_message_uses_and_a_webhook_only_trigger_left_off(
    tmp_path: Path,
) -> None:
    text = BUILDING.read_text(encoding="utf-8") + TEMPLATES.replace(
        '    win_back: "{name}, дарим {bonus} бонусов"\n    balance_high: "Накопилось {points} бонусов"\n',
        '    balanse_high: "Накопилось {balance} бонусов"\n  webhook_only: [win_back, balance_high]\n',
    )
    lines = text.splitlines()
    typo = lines.index('    balanse_high: "Накопилось {balance} бонусов"') + 1
    webhook_only = lines.index("  webhook_only: [win_back, balance_high]") + 1
    path = tmp_path / "shop.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["check-config", str(path)])
    assert result.exit_code == 0, result.output  # valid: warnings only
    output = " ".join(result.output.split())
    assert f"shop.yaml:{typo}: notifications.templates.balanse_high: no message uses this template" in output
    assert (
        f"shop.yaml:{webhook_only}: notifications.webhook_only.1: balance_high is not in "
        "notifications.triggers: it never fires"
    ) in output
    assert "webhook_only.0" not in output  # win_back is switched on


def test_two_replicas_at_once_give_each_gift_once(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers run the job at the same moment (small batches, so they interleave): every
    lapsed customer gets one win-back and one gift, and the ledger stays consistent."""
    monkeypatch.setattr(triggers_module, "GIFT_BATCH", 3)
    cards = [f"27000000001{n:02d}" for n in range(12)]
    for n, card in enumerate(cards):
        register(service, card, f"Клиент {n}")
        buy(service, card, 1000)
    clock.set(noon(date(2026, 2, 14)))
    before = {card: balance(service, card) for card in cards}
    results: list[int] = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(NotificationTriggers(config.notifications).run_daily_jobs(service))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    assert sum(results) == len(cards)
    assert len(messages(service, "win_back")) == len(cards)
    assert all(balance(service, card) == before[card] + 300 for card in cards)
    with service.db.read() as session:
        assert len(session.exec(select(BonusGrant).where(BonusGrant.kind == "win_back")).all()) == len(cards)
    assert len(events(service, "customer.win_back")) == len(cards)
    assert service.check().ok

"""The two remaining lifecycle triggers of issue 20 — the balance has grown above a threshold
("у вас накопилось N бонусов — потратьте"), the phone given at registration was never confirmed
— each a message and a webhook event (or the event alone), once, on real databases.

The building-materials example program: 5 % cashback on base, points usable at once, 200
welcome points living 60 days. The clock (``FakeClock``) is moved across days.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from sqlmodel import col, select

from adapters.sms import smsru
from adapters.sms.smsru import SmsRu
from contracts.operations import BalanceRequest, CartLine, CommitRequest, RegisterCustomerRequest
from gateway.config import (
    BalanceHighConfig,
    GatewayConfig,
    NotificationsConfig,
    PhoneUnconfirmedConfig,
    ProviderConfig,
    Settings,
    WebhookConfig,
    load_config,
)
from gateway.ledger.service import LoyaltyService
from gateway.notify import triggers as triggers_module
from gateway.notify.cascade import Cascade, CascadeSettings
from gateway.notify.triggers import NotificationTriggers
from gateway.notify.verification import PhoneVerification
from gateway.outbound.relay import Relay, RelaySettings
from gateway.store.models import Notification, OutboxMessage
from gateway.store.models_lifecycle import BalanceAlert
from gateway.wiring import build_service
from tests.support import FakeClock, noon

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"


def notifications(tmp_path: Path, **extra: object) -> NotificationsConfig:
    return NotificationsConfig(
        providers={"console": ProviderConfig(type="console", path=str(tmp_path / "messages.jsonl"))},
        triggers=["balance_high", "phone_unconfirmed"],
        balance_high=BalanceHighConfig(points=1000),
        phone_unconfirmed=PhoneUnconfirmedConfig(after_days=3, again_after_days=10, within_days=5),
        **extra,
    )


def configured(tmp_path: Path, **extra: object) -> GatewayConfig:
    hook = WebhookConfig(
        id="crm",
        url="http://127.0.0.1:9/hook",
        events=["customer.balance_high", "customer.phone_unconfirmed", "customer.phone_unconfirmed_again"],
    )
    return load_config(BUILDING).model_copy(
        update={"notifications": notifications(tmp_path, **extra), "webhooks": [hook]}
    )


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return configured(tmp_path)


@pytest.fixture
def service(database_url: str, config: GatewayConfig, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(date(2026, 1, 15)))
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def phone_of(card: str) -> str:
    return f"+7999{card[-7:]}"


def register(service: LoyaltyService, card: str, name: str) -> str:
    request = RegisterCustomerRequest(card_number=card, phone=phone_of(card), name=name)
    return service.register_customer("site", uuid.uuid4().hex, request).customer_id


def buy(service: LoyaltyService, card: str, roubles: int, spend: int | None = None) -> None:
    request = CommitRequest(
        receipt_id=uuid.uuid4().hex,
        card_number=card,
        store="S01",
        lines=[CartLine(line_id="1", item="TL-1001", quantity=Decimal(1), price=Decimal(roubles))],
        points_to_spend=spend,
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


def only(config: GatewayConfig, trigger: str) -> NotificationsConfig:
    return config.notifications.model_copy(update={"triggers": [trigger]})


def confirm_phone(service: LoyaltyService, config: GatewayConfig, card: str) -> None:
    """The customer enters the code sent to their phone (``/api/v1/registration``'s operation)."""
    verification = PhoneVerification(service, config.notifications)
    verification.request_code(phone_of(card), None)
    with service.db.read() as session:
        code = session.exec(
            select(Notification.code)
            .where(Notification.phone == phone_of(card), Notification.topic == "verification")
            .order_by(col(Notification.created_at).desc())
        ).first()
    assert code is not None
    verification.verify("site", RegisterCustomerRequest(phone=phone_of(card)), code)


# -- balance above the threshold -----------------------------------------------------------------


def test_balance_high_once_per_crossing_again_after_it_fell_below(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """1000 points is the threshold. Анна reaches 1200 and hears it once however often the job
    runs and however much more she earns; she spends down to 1010 (still above: nothing), then
    to 510 (below: the alert re-arms), earns back above — and hears it a second time. Борис,
    at 700, never hears it."""
    triggers = NotificationTriggers(only(config, "balance_high"))
    anna, boris = "2700000003011", "2700000003028"
    register(service, anna, "Анна")
    register(service, boris, "Борис")
    buy(service, anna, 20_000)  # 5 % of 20 000 ₽ = 1000 points + 200 welcome
    buy(service, boris, 10_000)  # 500 + 200
    assert (balance(service, anna), balance(service, boris)) == (1200, 700)

    assert triggers.run_daily_jobs(service) == 1
    (first,) = messages(service, "balance_high")
    assert first.text == "Анна, у вас накопилось 1200 бонусов — потратьте их на следующую покупку!"
    assert triggers.run_daily_jobs(service) == 0  # the same day again, or a replica
    clock.set(noon(date(2026, 1, 16)))
    buy(service, anna, 2_000)  # 1300 now, still above: no new crossing
    assert triggers.run_daily_jobs(service) == 0

    buy(service, anna, 1_000, spend=300)  # 1300 − 300 + 5 % of the 700 ₽ paid in money = 1035
    assert balance(service, anna) == 1035
    assert triggers.run_daily_jobs(service) == 0  # never below the threshold
    buy(service, anna, 2_000, spend=600)  # 1035 − 600 + 70 = 505
    assert balance(service, anna) == 505
    assert triggers.run_daily_jobs(service) == 0  # below: nothing to say, the alert re-arms
    with service.db.read() as session:
        (alert,) = session.exec(select(BalanceAlert)).all()
        assert (alert.sent, alert.armed) == (1, True)

    clock.set(noon(date(2026, 1, 20)))
    buy(service, anna, 10_000)  # 505 + 500 = 1005: above again
    assert triggers.run_daily_jobs(service) == 1
    texts = [m.text for m in messages(service, "balance_high")]
    assert texts[1] == "Анна, у вас накопилось 1005 бонусов — потратьте их на следующую покупку!"
    assert [m.id.rsplit(":", 1)[1] for m in messages(service, "balance_high")] == ["1", "2"]
    assert triggers.run_daily_jobs(service) == 0
    sent = events(service, "customer.balance_high")
    assert sorted(e["data"]["balance"] for e in sent) == [1005, 1200]  # type: ignore[index]
    assert all("name" not in e["data"] for e in sent)  # type: ignore[operator]
    assert service.check().ok


def test_balance_high_repeats_after_m_days_while_it_stays_above(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    config = configured(tmp_path)
    rule = BalanceHighConfig(points=1000, repeat_days=30)
    config = config.model_copy(update={"notifications": config.notifications.model_copy(update={"balance_high": rule})})
    clock.set(noon(date(2026, 1, 15)))
    service = build_service(Settings(database_url=database_url), config, clock)
    try:
        triggers = NotificationTriggers(only(config, "balance_high"))
        register(service, "2700000003035", "Вера")
        buy(service, "2700000003035", 20_000)
        assert triggers.run_daily_jobs(service) == 1
        clock.set(noon(date(2026, 2, 13)))  # 29 days
        assert triggers.run_daily_jobs(service) == 0
        clock.set(noon(date(2026, 2, 14)))  # 30 days, still above
        assert triggers.run_daily_jobs(service) == 1
        assert triggers.run_daily_jobs(service) == 0
        assert len(messages(service, "balance_high")) == 2
    finally:
        service.db.dispose()


def test_two_replicas_at_once_send_each_balance_alert_once(
    service: LoyaltyService, config: GatewayConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triggers_module, "WRITE_BATCH", 3)
    cards = [f"27000000031{n:02d}" for n in range(10)]
    for n, card in enumerate(cards):
        register(service, card, f"Клиент {n}")
        buy(service, card, 20_000)
    results: list[int] = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(NotificationTriggers(only(config, "balance_high")).run_daily_jobs(service))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    assert sum(results) == len(cards)
    assert len(messages(service, "balance_high")) == len(cards)
    assert len(events(service, "customer.balance_high")) == len(cards)
    with service.db.read() as session:
        assert sorted(a.sent for a in session.exec(select(BalanceAlert)).all()) == [1] * len(cards)


# -- phone not confirmed -------------------------------------------------------------------------


def test_unconfirmed_phone_reminded_after_3_days_once_and_again_after_10(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """Глеб registered at a till and never confirmed his phone: a reminder on day 3 and a second
    on day 10. Дина confirmed hers with a code at once: nothing. Егор got the first reminder,
    confirmed on day 5: no second one."""
    triggers = NotificationTriggers(config.notifications)
    gleb, dina, egor = "2700000003042", "2700000003059", "2700000003066"
    for card, name in ((gleb, "Глеб"), (dina, "Дина"), (egor, "Егор")):
        register(service, card, name)
    confirm_phone(service, config, dina)

    clock.set(noon(date(2026, 1, 17)))  # two days
    assert triggers.run_daily_jobs(service) == 0
    clock.set(noon(date(2026, 1, 18)))  # three days
    assert triggers.run_daily_jobs(service) == 2
    texts = sorted(m.text for m in messages(service, "phone_unconfirmed"))
    assert texts == [
        "Глеб, подтвердите, пожалуйста, номер телефона — так ваши бонусы (200) под защитой.",
        "Егор, подтвердите, пожалуйста, номер телефона — так ваши бонусы (200) под защитой.",
    ]
    assert triggers.run_daily_jobs(service) == 0
    clock.set(noon(date(2026, 1, 20)))
    confirm_phone(service, config, egor)
    assert triggers.run_daily_jobs(service) == 0

    clock.set(noon(date(2026, 1, 25)))  # ten days
    assert triggers.run_daily_jobs(service) == 1
    (again,) = messages(service, "phone_unconfirmed_again")
    assert again.text.startswith("Глеб, напоминаем: номер телефона ещё не подтверждён.")
    assert triggers.run_daily_jobs(service) == 0
    clock.set(noon(date(2026, 2, 25)))
    assert triggers.run_daily_jobs(service) == 0  # nothing more, ever
    assert len(events(service, "customer.phone_unconfirmed")) == 2
    assert len(events(service, "customer.phone_unconfirmed_again")) == 1


def test_unconfirmed_phones_older_than_the_window_are_left_alone(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """Switching the trigger on does not flood the customers registered long ago: a reminder is
    sent only within ``within_days`` (5) of its day."""
    register(service, "2700000003073", "Жанна")
    clock.set(noon(date(2026, 1, 24)))  # day 9: the first reminder's window (days 3–8) is over
    assert NotificationTriggers(config.notifications).run_daily_jobs(service) == 0
    clock.set(noon(date(2026, 1, 25)))  # day 10: the second one is due
    assert NotificationTriggers(config.notifications).run_daily_jobs(service) == 1
    assert len(messages(service, "phone_unconfirmed_again")) == 1


# -- a message and/or a webhook event; a bad template blocks nothing ---------------------------


def test_a_webhook_only_trigger_emits_its_event_without_a_message(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    config = configured(tmp_path, webhook_only=["phone_unconfirmed"])
    clock.set(noon(date(2026, 1, 15)))
    service = build_service(Settings(database_url=database_url), config, clock)
    try:
        customer = register(service, "2700000003080", "Зоя")
        clock.set(noon(date(2026, 1, 18)))
        triggers = NotificationTriggers(config.notifications)
        assert triggers.run_daily_jobs(service) == 0  # no message
        assert triggers.run_daily_jobs(service) == 0
        assert messages(service, "phone_unconfirmed") == []
        (event,) = events(service, "customer.phone_unconfirmed")
        assert event["key"] == f"phone_unconfirmed:{customer}"
        assert event["data"] == {
            "customer_id": customer,
            "topic": "phone_unconfirmed",
            "days": 3,
            "balance": 200,
        }
    finally:
        service.db.dispose()


def test_a_bad_balance_template_skips_its_own_messages_only(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """A template that cannot be filled (made in code, past check-config) skips the balance
    alerts; the phone reminders of the same run still go out, the alert's webhook event too,
    and the skipped alert is not retried into a flood."""
    good = config.notifications
    triggers = NotificationTriggers(
        good.model_copy(update={"templates": {**good.templates, "balance_high": "{nonexistent}"}})
    )
    register(service, "2700000003097", "Ирина")
    buy(service, "2700000003097", 20_000)
    clock.set(noon(date(2026, 1, 18)))
    assert triggers.run_daily_jobs(service) == 1
    assert messages(service, "balance_high") == []
    assert len(messages(service, "phone_unconfirmed")) == 1
    assert len(events(service, "customer.balance_high")) == 1
    assert triggers.run_daily_jobs(service) == 0
    assert len(events(service, "customer.balance_high")) == 1


def test_a_phone_confirmed_by_another_channel_gets_no_reminder(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """A contact shared in Telegram is the user's own verified phone: the bot records it
    (``PhoneVerification.record_confirmed``) and the reminders leave the customer alone."""
    register(service, "2700000003103", "Кира")
    register(service, "2700000003110", "Лев")
    PhoneVerification(service, config.notifications).record_confirmed("8 (999) 000-31-03")
    clock.set(noon(date(2026, 1, 18)))
    assert NotificationTriggers(config.notifications).run_daily_jobs(service) == 1
    (reminder,) = messages(service, "phone_unconfirmed")
    assert reminder.text.startswith("Лев,")


def test_a_message_refused_at_send_time_does_not_hold_back_the_others(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    """The day's reminders go out through SMS.ru; the provider refuses one number for good
    (status 202, a bad number): that message is dead-lettered, the other two are delivered."""
    cards = ("2700000003127", "2700000003134", "2700000003141")
    for n, card in enumerate(cards):
        register(service, card, f"Клиент {n}")
    clock.set(noon(date(2026, 1, 18)))
    assert NotificationTriggers(config.notifications).run_daily_jobs(service) == 3
    refused = phone_of(cards[1]).lstrip("+")

    def answer(request: httpx.Request) -> httpx.Response:
        to = parse_qs(request.content.decode())["to"][0]
        if to == refused:
            return httpx.Response(200, json={"status": "ERROR", "status_code": 202, "status_text": "bad number"})
        sms = {to: {"status": "OK", "status_code": 100, "sms_id": f"s-{to}", "cost": "3.5"}}
        return httpx.Response(200, json={"status": "OK", "sms": sms})

    cascade = Cascade(
        service.db,
        {"smsru": SmsRu("api")},
        {"verification": ["smsru"], "notification": ["smsru"]},
        clock=clock,
        settings=CascadeSettings(quick_retries=1, wait_multiplier=0.01, wait_max=0.02),
    )
    relay = Relay(service.db, {"notify": cascade}, settings=RelaySettings(base_delay=timedelta(0)), clock=clock)
    with respx.mock(assert_all_called=False) as mock:
        mock.post(smsru.URL).mock(side_effect=answer)
        result = relay.run_once()
    assert result.delivered == 2  # (the webhook events have no receiver in this relay: dead, not counted here)
    statuses = {m.phone: m.status for m in messages(service, "phone_unconfirmed")}
    assert statuses == {phone_of(cards[0]): "sent", phone_of(cards[1]): "failed", phone_of(cards[2]): "sent"}

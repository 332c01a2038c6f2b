"""The Telegram bot end to end, over loopback: the fake Bot API (testing/fake_telegram.py, after
core.telegram.org/bots/api) posts updates to the gateway's webhook and receives its answers.

A customer registers by sharing their phone, answers the questionnaire, gets the card as a
barcode, buys at a till and gets the accrual message in the chat, later an expiry message;
«Стоп» ends advertising consent but not service messages; a resent update does nothing twice."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pytest
import zxingcpp
from PIL import Image
from sqlmodel import select

from adapters.telegram_bot import TelegramPoller
from gateway.bots.config import BotsConfig, TelegramBotConfig
from gateway.bots.fallback import send_unread_on
from gateway.config import DEMO_CONFIG, GatewayConfig, NotificationsConfig, ProviderConfig, load_config
from gateway.mailings import planner
from gateway.notify.triggers import NotificationTriggers
from gateway.store.models import Notification
from gateway.store.models_bots import BotChat
from gateway.store.models_profiles import ProfileChange
from gateway.wiring import build_bots
from testing.fake_telegram import FakeTelegram, SentMessage, TelegramUser
from tests.conftest import Gateway
from tests.support import MARKETER, TILL, key

SECRET = "webhook-secret-for-the-test-0001"
HOOK = "/bots/telegram/webhook"


def _config(tmp_path: Path, fake: FakeTelegram, mode: Literal["polling", "webhook"] = "webhook") -> GatewayConfig:
    demo = load_config(DEMO_CONFIG)
    bots = BotsConfig(
        telegram=TelegramBotConfig(
            token=fake.token,
            mode=mode,
            webhook_secret=SECRET,
            api_url=fake.url,
            username="demo_bonus_bot",
            poll_timeout_seconds=0,
        )
    )
    notifications = NotificationsConfig(
        providers={
            "telegram_bot": ProviderConfig(type="bot", bot="telegram"),
            "sms": ProviderConfig(type="console", path=str(tmp_path / "sms.jsonl")),
        },
        chains={"verification": ["sms"], "notification": ["telegram_bot", "sms"]},
        triggers=["points_accrued", "points_expiring"],
    )
    return demo.model_copy(update={"bots": bots, "notifications": notifications})


@pytest.fixture
def bot_gateway(start_gateway: Callable[..., Gateway], telegram: FakeTelegram, tmp_path: Path) -> Gateway:
    gateway = start_gateway(_config(tmp_path, telegram))
    telegram.set_webhook(gateway.url + HOOK, SECRET)
    return gateway


def _texts(messages: list[SentMessage]) -> list[str]:
    return [m.text for m in messages]


def _register(telegram: FakeTelegram, user: TelegramUser) -> None:
    telegram.send_text(user, "/start")
    telegram.share_contact(user)
    for answer in ("Анна", "15.03.1990", "Женский", "Да"):
        telegram.send_text(user, answer)


def _customer_of(gateway: Gateway, user: TelegramUser) -> str:
    with gateway.service.db.read() as session:
        chat = session.get(BotChat, ("telegram", str(user.id)))
        assert chat is not None and chat.customer_id is not None
        return chat.customer_id


def _card_of(gateway: Gateway, customer_id: str) -> str:
    profile = gateway.service.customer_profile("bot", customer_id)
    return profile.customer.cards[0].card_number


def _buy(gateway: Gateway, card: str, receipt: str, price: int) -> dict[str, Any]:
    body = {
        "receipt_id": receipt,
        "card_number": card,
        "lines": [{"line_id": "1", "item": "milk", "quantity": 1, "price": price}],
    }
    response = gateway.http.post("/api/v1/receipts", json=body, headers={**TILL, **key()})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _relay(gateway: Gateway) -> None:
    assert gateway.relay is not None
    gateway.relay.run_once()


def _scanned(png: bytes) -> str:
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)


def test_a_customer_registers_by_sharing_the_phone_and_answers_the_questionnaire(
    bot_gateway: Gateway, telegram: FakeTelegram
) -> None:
    user = telegram.user(1001, "Анна", "79161234567")
    telegram.send_text(user, "/start")
    (welcome,) = telegram.messages_to(user)
    assert "поделитесь номером телефона" in welcome.text
    assert welcome.reply_markup is not None
    assert welcome.reply_markup["keyboard"][0][0] == {"text": "Поделиться телефоном", "request_contact": True}

    telegram.share_contact(user)
    registered, ask_name = telegram.messages_to(user)[1:]
    assert "Приветственные бонусы: 100" in registered.text
    assert ask_name.text == "Как вас зовут?"
    for answer in ("Анна", "15.03.1990", "Женский", "Да"):
        telegram.send_text(user, answer)

    customer_id = _customer_of(bot_gateway, user)
    profile = bot_gateway.service.customer_profile("bot", customer_id)
    assert profile.customer.phone == "+79161234567"
    assert profile.customer.name == "Анна"
    assert profile.customer.birth_date == date(1990, 3, 15)
    assert profile.gender == "female"
    assert (profile.ad_consent, profile.ad_consent_channel) == (True, "bot")
    card = profile.customer.cards[0].card_number
    photos = [m for m in telegram.messages_to(user) if m.method == "sendPhoto"]
    assert len(photos) == 1 and photos[0].photo is not None
    assert _scanned(photos[0].photo) == card  # the till's scanner reads the card number off the picture
    assert f"https://t.me/demo_bonus_bot?start={card}" in telegram.messages_to(user)[-1].text

    telegram.send_text(user, "Баланс")
    assert telegram.messages_to(user)[-1].text.startswith("Доступно бонусов: 100.\nОжидают начисления: 0.")
    assert "100 сгорят" in telegram.messages_to(user)[-1].text  # the welcome bonus lives 30 days


def test_purchase_accrual_and_expiry_reach_the_chat_and_stop_ends_advertising_only(
    bot_gateway: Gateway, telegram: FakeTelegram, tmp_path: Path
) -> None:
    user = telegram.user(1002, "Борис", "79161234568")
    _register(telegram, user)
    customer_id = _customer_of(bot_gateway, user)
    card = _card_of(bot_gateway, customer_id)
    before = len(telegram.messages_to(user))

    receipt = _buy(bot_gateway, card, "R-1", 1000)
    assert receipt["points_accrued"] == 50  # 5 % of 1000 roubles
    _relay(bot_gateway)
    assert _texts(telegram.messages_to(user)[before:]) == ["Начислено бонусов: 50. Баланс: 150."]

    # 25 days later the welcome bonus (30 days) is within the 7 days of the expiry notice
    bot_gateway.clock.advance(days=25)
    NotificationTriggers(_config(tmp_path, telegram).notifications).run_daily_jobs(bot_gateway.service)
    _relay(bot_gateway)
    expiry = telegram.messages_to(user)[-1].text
    assert expiry.startswith("100 бонусов сгорят ")

    telegram.send_text(user, "Стоп")
    assert "Сообщения о начислениях и списаниях бонусов будут приходить" in telegram.messages_to(user)[-1].text
    profile = bot_gateway.service.customer_profile("bot", customer_id)
    assert (profile.ad_consent, profile.ad_consent_channel) == (False, "bot")

    _buy(bot_gateway, card, "R-2", 2000)
    _relay(bot_gateway)
    assert telegram.messages_to(user)[-1].text == "Начислено бонусов: 100. Баланс: 250."  # service messages still go
    with bot_gateway.service.db.read() as session:
        sent = session.exec(select(Notification).where(Notification.topic == "points_accrued")).all()
    assert {n.provider for n in sent} == {"telegram_bot"}


def test_a_resent_update_changes_nothing_and_is_answered_once(bot_gateway: Gateway, telegram: FakeTelegram) -> None:
    user = telegram.user(1003, "Вера", "79161234569")
    telegram.send_text(user, "/start")
    contact = telegram.share_contact(user)
    telegram.send_text(user, "Вера")
    birth = telegram.send_text(user, "01.02.1985")
    snapshot = bot_gateway.ledger_snapshot()
    answers = len(telegram.messages_to(user))

    assert telegram.resend(contact) == 200  # Telegram did not get our answer and sends it again
    assert telegram.resend(birth) == 200
    assert bot_gateway.ledger_snapshot() == snapshot  # no second customer, no second welcome bonus
    assert len(telegram.messages_to(user)) == answers  # and no second answer
    with bot_gateway.service.db.read() as session:
        changes = session.exec(select(ProfileChange)).all()
        chat = session.get(BotChat, ("telegram", str(user.id)))
    assert changes == []  # the questionnaire is written once, when it ends
    assert chat is not None and chat.step == "q:gender"
    bot_gateway.assert_invariants()


def test_a_webhook_call_without_the_secret_token_is_refused(bot_gateway: Gateway, telegram: FakeTelegram) -> None:
    user = telegram.user(1004, "Глеб", "79161234570")
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "from": {"id": user.id, "is_bot": False, "first_name": "Глеб"},
            "chat": {"id": user.id, "type": "private"},
            "date": 0,
            "contact": {"phone_number": user.phone, "first_name": "Глеб", "user_id": user.id},
        },
    }
    snapshot = bot_gateway.ledger_snapshot()
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong-secret-wrong-secret"}):
        response = bot_gateway.http.post(HOOK, content=json.dumps(update), headers=headers)
        assert response.status_code == 403
    assert bot_gateway.ledger_snapshot() == snapshot
    assert telegram.messages_to(user) == []


def test_somebody_elses_contact_is_not_taken_as_the_customers_phone(
    bot_gateway: Gateway, telegram: FakeTelegram
) -> None:
    user = telegram.user(1005, "Дина", "79161234571")
    other = telegram.user(1006, "Егор", "79161234572")
    telegram.send_text(user, "/start")
    snapshot = bot_gateway.ledger_snapshot()
    telegram.share_contact(user, of=other)
    assert telegram.messages_to(user)[-1].text.startswith("Это чужой номер.")
    assert bot_gateway.ledger_snapshot() == snapshot


def test_a_customer_who_blocked_the_bot_gets_the_message_by_sms(
    bot_gateway: Gateway, telegram: FakeTelegram, tmp_path: Path
) -> None:
    user = telegram.user(1007, "Жанна", "79161234573")
    _register(telegram, user)
    card = _card_of(bot_gateway, _customer_of(bot_gateway, user))
    telegram.block(user)
    _buy(bot_gateway, card, "R-1", 1000)
    _relay(bot_gateway)
    sms = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(m["phone"], m["text"]) for m in sms] == [("+79161234573", "Начислено бонусов: 50. Баланс: 150.")]
    with bot_gateway.service.db.read() as session:
        chat = session.get(BotChat, ("telegram", str(user.id)))
    assert chat is not None and chat.blocked  # the next message goes to SMS without trying the bot


def test_a_reply_told_to_wait_by_telegram_is_sent_after_retry_after(
    bot_gateway: Gateway, telegram: FakeTelegram
) -> None:
    user = telegram.user(1008, "Зоя", "79161234574")
    telegram.fail_next(429, retry_after=1)
    telegram.send_text(user, "/start")
    assert telegram.calls.count("sendMessage") == 2
    assert len(telegram.messages_to(user)) == 1


def test_long_polling_confirms_updates_and_a_restarted_poller_answers_nothing_twice(
    start_gateway: Callable[..., Gateway], telegram: FakeTelegram, tmp_path: Path
) -> None:
    config = _config(tmp_path, telegram, mode="polling")
    gateway = start_gateway(config)
    bots = build_bots(gateway.service, config)
    assert bots.telegram is not None and bots.telegram_api is not None
    user = telegram.user(1009, "Ирина", "79161234575")
    telegram.send_text(user, "/start")
    telegram.share_contact(user)

    first = TelegramPoller(bots.telegram, bots.telegram_api, timeout_seconds=0)
    assert first.poll_once() == 2
    answered = len(telegram.messages_to(user))
    assert answered == 3  # welcome; registered; the first question
    # A poller that starts afresh (a restart before the offset was confirmed) gets both again
    again = TelegramPoller(bots.telegram, bots.telegram_api, timeout_seconds=0)
    assert again.poll_once() == 2
    assert len(telegram.messages_to(user)) == answered
    assert again.poll_once() == 0  # confirmed by the offset now
    with gateway.service.db.read() as session:
        chat = session.get(BotChat, ("telegram", str(user.id)))
    assert chat is not None and chat.customer_id is not None


def test_an_accrual_message_unread_in_the_bot_goes_by_sms_once_after_the_configured_hours(
    start_gateway: Callable[..., Gateway], telegram: FakeTelegram, tmp_path: Path
) -> None:
    config = _config(tmp_path, telegram)
    assert config.bots is not None
    config = config.model_copy(update={"bots": config.bots.model_copy(update={"unread_fallback_hours": 4})})
    gateway = start_gateway(config)
    telegram.set_webhook(gateway.url + HOOK, SECRET)
    reader, silent = telegram.user(1011, "Кира", "79161234581"), telegram.user(1012, "Лев", "79161234582")
    for user, receipt in ((reader, "R-1"), (silent, "R-2")):
        _register(telegram, user)
        _buy(gateway, _card_of(gateway, _customer_of(gateway, user)), receipt, 1000)
    _relay(gateway)
    telegram.send_text(reader, "Баланс")  # writing to the bot after the message reads it

    gateway.clock.advance(hours=3)
    assert send_unread_on(gateway.service.db, 4, gateway.clock()) == 0  # not yet: 3 hours of 4
    gateway.clock.advance(hours=2)
    assert send_unread_on(gateway.service.db, 4, gateway.clock()) == 1
    assert send_unread_on(gateway.service.db, 4, gateway.clock()) == 0  # once
    _relay(gateway)
    sms = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(m["phone"], m["text"]) for m in sms] == [("+79161234582", "Начислено бонусов: 50. Баланс: 150.")]
    accruals = [m for m in telegram.messages_to(silent) if m.text.startswith("Начислено")]
    assert len(accruals) == 1  # the copy went by SMS, not into the chat again


def test_the_bot_token_never_reaches_a_log_line(
    bot_gateway: Gateway, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    user = telegram.user(1013, "Мария", "79161234583")
    with caplog.at_level(logging.DEBUG):
        _register(telegram, user)
    assert any("/bot***/sendMessage" in record.getMessage() for record in caplog.records)  # httpx logged the calls
    secret_part = telegram.token.split(":")[1]
    assert not [r for r in caplog.records if secret_part in r.getMessage()]


def test_after_stop_an_advertising_mailing_passes_the_customer_by_and_purchases_are_still_announced(
    start_gateway: Callable[..., Gateway], telegram: FakeTelegram, tmp_path: Path
) -> None:
    config = _config(tmp_path, telegram)
    config = config.model_copy(
        update={"mailings": config.mailings.model_copy(update={"public_url": "https://loyalty.example"})}
    )
    gateway = start_gateway(config)
    telegram.set_webhook(gateway.url + HOOK, SECRET)
    agreed, stopped = telegram.user(1014, "Нина", "79161234584"), telegram.user(1015, "Олег", "79161234585")
    _register(telegram, agreed)
    _register(telegram, stopped)  # both agree to advertising in the questionnaire
    telegram.send_text(stopped, "Стоп")

    body = {"name": "Краски", "kind": "advertising", "channel": "sms", "template": "Скидка 10 % на краски!"}
    created = gateway.http.post("/api/v1/mailings", json={**body, "holdout_percent": 0}, headers={**MARKETER, **key()})
    assert created.status_code == 200, created.text
    mailing = created.json()["mailing_id"]
    assert gateway.http.post(f"/api/v1/mailings/{mailing}/send", headers=MARKETER).status_code == 200
    planner.plan_due(gateway.service, config)
    _relay(gateway)
    (advert,) = [m.text for m in telegram.messages_to(agreed) if m.text.startswith("Скидка")]
    assert advert.startswith("Скидка 10 % на краски! Отписаться: https://loyalty.example/u/")  # into the bot chat
    assert [m.text for m in telegram.messages_to(stopped) if m.text.startswith("Скидка")] == []

    _buy(gateway, _card_of(gateway, _customer_of(gateway, stopped)), "R-1", 1000)
    _relay(gateway)
    assert telegram.messages_to(stopped)[-1].text == "Начислено бонусов: 50. Баланс: 150."

"""A customer's whole story with the shop, end to end (issue 20): registers through the Telegram
bot (the fake Bot API, testing/fake_telegram.py), buys at a till, gets the accrual and expiry
messages in the chat, stops buying, receives a win-back message with gift points, comes back and
pays with them — and the win-back is not sent again for the same lapse.

Demo program: 5 % accrual, a welcome bonus of 100 points living 30 days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import NotificationsConfig, WinBackConfig
from gateway.notify.triggers import NotificationTriggers
from testing.fake_telegram import FakeTelegram
from tests.adapters.bots.test_bots_telegram import (
    HOOK,
    SECRET,
    _buy,
    _card_of,
    _config,
    _customer_of,
    _register,
    _relay,
    _texts,
)
from tests.conftest import Gateway
from tests.support import TILL, key


@pytest.fixture
def notifications(tmp_path: Path, telegram: FakeTelegram) -> NotificationsConfig:
    chosen = _config(tmp_path, telegram).notifications
    return chosen.model_copy(
        update={
            "triggers": ["points_accrued", "points_spent", "points_expiring", "win_back", "phone_unconfirmed"],
            "win_back": WinBackConfig(after_days=60, within_days=30, gift_points=200, gift_expiry_days=30),
        }
    )


@pytest.fixture
def shop(
    start_gateway: Callable[..., Gateway], telegram: FakeTelegram, tmp_path: Path, notifications: NotificationsConfig
) -> Gateway:
    gateway = start_gateway(_config(tmp_path, telegram).model_copy(update={"notifications": notifications}))
    telegram.set_webhook(gateway.url + HOOK, SECRET)
    return gateway


def test_register_buy_lapse_win_back_and_come_back(
    shop: Gateway, telegram: FakeTelegram, notifications: NotificationsConfig
) -> None:
    daily = NotificationTriggers(notifications)
    user = telegram.user(2001, "Вера", "79161230001")
    _register(telegram, user)
    customer_id = _customer_of(shop, user)
    card = _card_of(shop, customer_id)

    # Day 0: a purchase at the till, announced in the chat.
    seen = len(telegram.messages_to(user))
    assert _buy(shop, card, "S-1", 1000)["points_accrued"] == 50  # 5 % of 1 000
    _relay(shop)
    assert _texts(telegram.messages_to(user)[seen:]) == ["Начислено бонусов: 50. Баланс: 150."]

    # Day 3: the phone came from her own Telegram contact — no "confirm your phone" reminder.
    shop.clock.advance(days=3)
    daily.run_daily_jobs(shop.service)
    _relay(shop)
    assert len(telegram.messages_to(user)) == seen + 1

    # Day 25: the welcome bonus (30 days) expires within the 7-day notice.
    shop.clock.advance(days=22)
    daily.run_daily_jobs(shop.service)
    _relay(shop)
    welcome_expires = (shop.clock() + timedelta(days=5)).strftime("%d.%m.%Y")
    assert telegram.messages_to(user)[-1].text == f"100 бонусов сгорят {welcome_expires}. Успейте потратить!"

    # Day 61: no purchase for 60 days — the win-back message with 200 gift points (the welcome
    # bonus has expired meanwhile: 50 + 200 on the card).
    shop.clock.advance(days=36)
    seen = len(telegram.messages_to(user))
    daily.run_daily_jobs(shop.service)
    _relay(shop)
    win_back = [m.text for m in telegram.messages_to(user)[seen:] if "давно вас не видели" in m.text]
    gift_expires = (shop.clock() + timedelta(days=30)).strftime("%d.%m.%Y")
    assert win_back == [f"Анна, давно вас не видели! Дарим 200 бонусов, они действуют до {gift_expires}."]
    balance = shop.http.get(f"/api/v1/cards/{card}/balance", headers=TILL).json()
    assert balance["available"] == 250

    # A second run the same day (another replica, a retry) neither writes nor grants again.
    daily.run_daily_jobs(shop.service)
    _relay(shop)
    assert sum("давно вас не видели" in m.text for m in telegram.messages_to(user)) == 1
    assert shop.http.get(f"/api/v1/cards/{card}/balance", headers=TILL).json()["available"] == 250

    # Day 62: she comes back and pays 200 roubles of 2 000 with the gift; 5 % of the 1 800 paid
    # with money accrues.
    shop.clock.advance(days=1)
    body = {
        "receipt_id": "S-2",
        "card_number": card,
        "lines": [{"line_id": "1", "item": "milk", "quantity": 1, "price": 2000}],
        "points_to_spend": 200,
    }
    booked = shop.http.post("/api/v1/receipts", json=body, headers={**TILL, **key()})
    assert booked.status_code == 200, booked.text
    assert (booked.json()["points_spent"], booked.json()["points_accrued"]) == (200, 90)
    _relay(shop)
    # Both messages of the receipt give the balance after it: 250 - 200 + 90.
    assert sorted(_texts(telegram.messages_to(user))[-2:]) == [
        "Начислено бонусов: 90. Баланс: 140.",
        "Списано бонусов: 200. Баланс: 140.",
    ]

    # Back as a customer: the lapse is over, and the next daily runs send no win-back for it.
    shop.clock.advance(days=10)
    daily.run_daily_jobs(shop.service)
    _relay(shop)
    assert sum("давно вас не видели" in m.text for m in telegram.messages_to(user)) == 1
    shop.assert_invariants()

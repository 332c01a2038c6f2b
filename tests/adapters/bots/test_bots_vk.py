"""The VK community bot end to end, over loopback: the fake VK (testing/fake_vk.py, after
dev.vk.com's Callback API and messages.send) posts events to the gateway and receives its answers.

The Callback API's confirmation is answered with the configured string, an event with a wrong
secret is refused, a customer registers by a typed phone and its SMS code and sees the balance
and the card; a resent event does nothing twice; a notification reaches the VK chat."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlmodel import col, select

from gateway.bots.config import BotsConfig, VkBotConfig
from gateway.config import DEMO_CONFIG, GatewayConfig, NotificationsConfig, ProviderConfig, load_config
from gateway.store.models import Notification
from gateway.store.models_bots import BotChat
from testing.fake_vk import FakeVk
from tests.conftest import Gateway
from tests.support import TILL, key

PATH = "/bots/vk/callback"
USER = 150001


@pytest.fixture
def vk() -> Iterator[FakeVk]:
    with FakeVk() as fake:
        yield fake


def _config(tmp_path: Path, fake: FakeVk) -> GatewayConfig:
    demo = load_config(DEMO_CONFIG)
    bots = BotsConfig(
        vk=VkBotConfig(
            group_id=fake.group_id,
            access_token=fake.access_token,
            secret=fake.secret,
            confirmation=fake.confirmation,
            api_url=fake.url,
        ),
        questionnaire=["name", "ad_consent"],
    )
    notifications = NotificationsConfig(
        providers={
            "vk_bot": ProviderConfig(type="bot", bot="vk"),
            "sms": ProviderConfig(type="console", path=str(tmp_path / "sms.jsonl")),
        },
        chains={"verification": ["sms"], "notification": ["vk_bot", "sms"]},
        triggers=["points_accrued"],
    )
    return demo.model_copy(update={"bots": bots, "notifications": notifications})


@pytest.fixture
def vk_gateway(start_gateway: Callable[..., Gateway], vk: FakeVk, tmp_path: Path) -> Gateway:
    gateway = start_gateway(_config(tmp_path, vk))
    vk.callback_url = gateway.url + PATH
    return gateway


def _last_code(gateway: Gateway) -> str:
    with gateway.service.db.read() as session:
        sent = session.exec(
            select(Notification).where(Notification.kind == "verification").order_by(col(Notification.created_at))
        ).all()
    assert sent and sent[-1].code is not None
    return sent[-1].code


def _texts(vk: FakeVk) -> list[str]:
    return [m.text for m in vk.messages_to(USER)]


def _register(gateway: Gateway, vk: FakeVk) -> None:
    vk.message_new(USER, "Начать")
    vk.message_new(USER, "8 (916) 555-01-02")
    vk.message_new(USER, _last_code(gateway))
    vk.message_new(USER, "Пётр")
    vk.message_new(USER, "Нет")


def test_the_confirmation_event_is_answered_with_the_configured_string(vk_gateway: Gateway, vk: FakeVk) -> None:
    response = vk.confirm()
    assert response.status_code == 200
    assert response.text == vk.confirmation


def test_an_event_with_a_wrong_secret_is_refused_and_changes_nothing(vk_gateway: Gateway, vk: FakeVk) -> None:
    snapshot = vk_gateway.ledger_snapshot()
    vk.message_new(USER, "Начать", secret="not-the-secret")
    assert {status for _, status, _ in vk.deliveries} == {403}
    assert vk.messages_to(USER) == []
    assert vk_gateway.ledger_snapshot() == snapshot
    with vk_gateway.service.db.read() as session:
        assert session.exec(select(BotChat)).all() == []


def test_a_customer_registers_with_a_typed_phone_and_its_code_and_sees_balance_and_card(
    vk_gateway: Gateway, vk: FakeVk
) -> None:
    vk.message_new(USER, "Начать")
    assert "Напишите номер телефона" in _texts(vk)[-1]
    vk.message_new(USER, "8 (916) 555-01-02")
    assert _texts(vk)[-1] == "Мы отправили код на +791***0102. Напишите его сюда."
    vk.message_new(USER, "000000" if _last_code(vk_gateway) != "000000" else "111111")
    assert _texts(vk)[-1] == "Код не подходит. Осталось попыток: 4."
    vk.message_new(USER, _last_code(vk_gateway))
    assert "Приветственные бонусы: 100" in _texts(vk)[-2]
    assert _texts(vk)[-1] == "Как вас зовут?"
    vk.message_new(USER, "Пётр")
    vk.message_new(USER, "Нет")

    with vk_gateway.service.db.read() as session:
        chat = session.get(BotChat, ("vk", str(USER)))
    assert chat is not None and chat.customer_id is not None
    profile = vk_gateway.service.customer_profile("bot", chat.customer_id)
    assert (profile.customer.phone, profile.customer.name) == ("+79165550102", "Пётр")
    assert (profile.ad_consent, profile.ad_consent_channel) == (False, "bot")
    card = profile.customer.cards[0].card_number
    (picture,) = [m for m in vk.messages_to(USER) if m.photo is not None]
    (scanned,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(picture.photo or b"")))
    assert scanned.text == card
    assert picture.keyboard is not None
    assert picture.keyboard["buttons"][0][0]["action"] == {"type": "text", "label": "Баланс"}

    vk.message_new(USER, "Баланс")
    assert _texts(vk)[-1].startswith("Доступно бонусов: 100.")


def test_a_resent_event_is_answered_once(vk_gateway: Gateway, vk: FakeVk) -> None:
    vk.message_new(USER, "Начать")
    event = vk.message_new(USER, "+7 916 555-01-03")
    snapshot = vk_gateway.ledger_snapshot()
    answers = len(vk.messages_to(USER))
    assert vk.post(event) == "ok"  # VK sends the event again
    assert len(vk.messages_to(USER)) == answers
    assert vk_gateway.ledger_snapshot() == snapshot
    with vk_gateway.service.db.read() as session:
        codes = session.exec(select(Notification).where(Notification.kind == "verification")).all()
    assert len(codes) == 1  # one code, not two


def test_a_purchase_is_announced_in_the_vk_chat(vk_gateway: Gateway, vk: FakeVk) -> None:
    _register(vk_gateway, vk)
    with vk_gateway.service.db.read() as session:
        chat = session.get(BotChat, ("vk", str(USER)))
    assert chat is not None and chat.customer_id is not None
    card = vk_gateway.service.customer_profile("bot", chat.customer_id).customer.cards[0].card_number
    body = {
        "receipt_id": "R-1",
        "card_number": card,
        "lines": [{"line_id": "1", "item": "x", "quantity": 1, "price": 400}],
    }
    assert vk_gateway.http.post("/api/v1/receipts", json=body, headers={**TILL, **key()}).status_code == 200
    assert vk_gateway.relay is not None
    vk_gateway.relay.run_once()
    assert _texts(vk)[-1] == "Начислено бонусов: 20. Баланс: 120."

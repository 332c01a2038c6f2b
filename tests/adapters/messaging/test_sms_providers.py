"""Each provider's success, each documented error class and timeouts, against respx (the
providers' clouds cannot run here); and the cascade over them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from adapters.sms import smsaero, smsc, smsru, telegram
from adapters.sms.smsaero import SmsAero
from adapters.sms.smsc import Smsc, client_id
from adapters.sms.smsru import SmsRu
from adapters.sms.telegram import Telegram
from gateway.core.messaging import (
    DuplicateSendError,
    OutgoingMessage,
    RetryableSendError,
    TerminalSendError,
)
from gateway.notify.cascade import Cascade, CascadeSettings, provider_stats
from gateway.notify.queue import enqueue
from gateway.outbound.relay import PermanentDeliveryError, Relay, RelaySettings
from gateway.store import migrate
from gateway.store.db import Database
from gateway.store.models import Notification, NotificationAttempt, OutboxMessage
from tests.support import FakeClock

PHONE = "+79123456789"
MESSAGE = OutgoingMessage(
    message_id="m-1", phone=PHONE, text="Код: 123456", kind="verification", code="123456", ttl_seconds=300
)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def test_smsru(mock: respx.MockRouter) -> None:
    route = mock.post(smsru.URL)
    provider = SmsRu("api-id")
    route.respond(
        json={
            "status": "OK",
            "status_code": 100,
            "balance": 10.5,
            "sms": {"79123456789": {"status": "OK", "status_code": 100, "sms_id": "000-1", "cost": "3.50"}},
        }
    )
    result = provider.send(MESSAGE)
    assert (result.provider_message_id, result.cost) == ("000-1", Decimal("3.50"))
    sent = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert (sent["to"], sent["json"], sent["api_id"]) == ("79123456789", "1", "api-id")
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"status": "ERROR", "status_code": 220, "status_text": "busy"}, RetryableSendError),
        ({"status": "ERROR", "status_code": 200, "status_text": "bad api_id"}, TerminalSendError),
        ({"status": "ERROR", "status_code": 201, "status_text": "no money"}, TerminalSendError),
        ({"status": "OK", "sms": {"79123456789": {"status": "ERROR", "status_code": 230}}}, TerminalSendError),
        ({"status": "OK", "sms": {"79123456789": {"status": "ERROR", "status_code": 231}}}, DuplicateSendError),
        ({"status": "OK", "sms": {"79123456789": {"status": "ERROR", "status_code": 233}}}, TerminalSendError),
        ({"status": "ERROR", "status_code": 301, "status_text": "auth"}, TerminalSendError),
    ]
    for body, error in cases:
        route.respond(json=body)
        with pytest.raises(error):
            provider.send(MESSAGE)
    route.respond(status_code=503)
    with pytest.raises(RetryableSendError):
        provider.send(MESSAGE)
    route.side_effect = httpx.ReadTimeout("slow")
    with pytest.raises(RetryableSendError, match="timeout"):
        provider.send(MESSAGE)


def test_smsc(mock: respx.MockRouter) -> None:
    route = mock.post(smsc.URL)
    provider = Smsc("login", "secret")
    route.respond(json={"id": 77, "cnt": 1, "cost": "2.10", "balance": "100"})
    assert provider.send(MESSAGE).cost == Decimal("2.10")
    sent = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert sent["id"] == str(client_id("m-1")) and sent["fmt"] == "3" and sent["phones"] == "79123456789"
    assert client_id("m-1") == client_id("m-1") and 1 <= client_id("m-1") < 2**31
    for code, error in (
        (9, DuplicateSendError),
        (4, RetryableSendError),
        (7, TerminalSendError),
        (3, TerminalSendError),
        (2, TerminalSendError),
    ):
        route.respond(json={"error": "x", "error_code": code})
        with pytest.raises(error):
            provider.send(MESSAGE)
    route.side_effect = httpx.ConnectError("refused")
    with pytest.raises(RetryableSendError):
        provider.send(MESSAGE)


def test_smsaero(mock: respx.MockRouter) -> None:
    route = mock.post(smsaero.URL)
    provider = SmsAero("shop@example.com", "key", "SHOP")
    route.respond(json={"success": True, "data": {"id": 5, "status": 8, "cost": 2.25}, "message": None})
    assert provider.send(MESSAGE).provider_message_id == "5"
    request = route.calls.last.request
    assert request.headers["authorization"].startswith("Basic ")
    route.respond(json={"success": False, "data": None, "message": "Validation error"})
    with pytest.raises(TerminalSendError, match="Validation"):
        provider.send(MESSAGE)
    route.respond(status_code=401, json={"success": False, "message": "Unauthorized"})
    with pytest.raises(TerminalSendError):
        provider.send(MESSAGE)
    route.respond(status_code=502)
    with pytest.raises(RetryableSendError):
        provider.send(MESSAGE)


def test_telegram(mock: respx.MockRouter) -> None:
    gateway_route = mock.post(f"{telegram.GATEWAY_URL}/sendVerificationMessage")
    bot_route = mock.post(f"{telegram.BOT_URL}/botBOT/sendMessage")
    provider = Telegram(gateway_token="GW", bot_token="BOT")
    gateway_route.respond(json={"ok": True, "result": {"request_id": "r-1", "request_cost": 0.01}})
    assert provider.send(MESSAGE).provider_message_id == "r-1"
    assert gateway_route.calls.last.request.headers["authorization"] == "Bearer GW"
    gateway_route.respond(json={"ok": False, "error": "PHONE_NUMBER_NOT_AVAILABLE"})
    with pytest.raises(TerminalSendError, match="NOT_AVAILABLE"):
        provider.send(MESSAGE)
    gateway_route.respond(status_code=429, json={"ok": False, "error": "FLOOD_WAIT"})
    with pytest.raises(RetryableSendError):
        provider.send(MESSAGE)
    chat = OutgoingMessage(message_id="m-2", phone=PHONE, text="Начислено 5", chat_id="42")
    bot_route.respond(json={"ok": True, "result": {"message_id": 9}})
    assert provider.send(chat).provider_message_id == "9"
    bot_route.respond(status_code=403, json={"ok": False, "error_code": 403, "description": "bot was blocked"})
    with pytest.raises(TerminalSendError):
        provider.send(chat)
    with pytest.raises(TerminalSendError, match="no Telegram route"):
        provider.send(OutgoingMessage(message_id="m-3", phone=PHONE, text="x"))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _queue(db: Database, clock: FakeClock, ident: str = "code:1") -> None:
    with db.write() as session:
        enqueue(
            session,
            Notification(
                id=ident,
                kind="verification",
                topic="verification",
                phone=PHONE,
                text="Код: 123456",
                code="123456",
                ttl_seconds=300,
                created_at=clock(),
            ),
            clock(),
        )


def _relay(db: Database, providers: dict[str, Any], chain: list[str], clock: FakeClock) -> Relay:
    cascade = Cascade(
        db,
        providers,
        {"verification": chain, "notification": chain},
        clock=clock,
        settings=CascadeSettings(quick_retries=2, wait_multiplier=0.01, wait_max=0.02),
    )
    return Relay(db, {"notify": cascade}, settings=RelaySettings(base_delay=timedelta(0)), clock=clock)


def test_cascade_telegram_fails_sms_delivers_exactly_once(db: Database, mock: respx.MockRouter) -> None:
    clock = FakeClock()
    gateway_route = mock.post(f"{telegram.GATEWAY_URL}/sendVerificationMessage").respond(status_code=500)
    sms_route = mock.post(smsru.URL).respond(
        json={
            "status": "OK",
            "sms": {"79123456789": {"status": "OK", "status_code": 100, "sms_id": "s-1", "cost": "3.5"}},
        }
    )
    relay = _relay(db, {"telegram": Telegram(gateway_token="GW"), "smsru": SmsRu("api")}, ["telegram", "smsru"], clock)
    _queue(db, clock)
    assert relay.run_once().delivered == 1
    assert gateway_route.call_count == 2  # retried (retryable), then given up for SMS
    assert sms_route.call_count == 1
    for _ in range(3):  # nothing is left to send: no second SMS
        relay.run_once()
    assert sms_route.call_count == 1
    with db.read() as session:
        notification = session.get(Notification, "code:1")
        assert notification is not None and (notification.status, notification.provider) == ("sent", "smsru")
    stats = {s.provider: s for s in provider_stats(db)}
    assert (stats["smsru"].sent, stats["smsru"].cost) == (1, Decimal("3.5"))
    assert stats["telegram"].failed_attempts == 1


def test_an_attempt_with_unknown_outcome_is_not_repeated_on_that_provider(db: Database, mock: respx.MockRouter) -> None:
    clock = FakeClock()
    smsru_route = mock.post(smsru.URL)
    smsc_route = mock.post(smsc.URL).respond(json={"id": 1, "cnt": 1})
    relay = _relay(db, {"smsru": SmsRu("api"), "smsc": Smsc("l", "p")}, ["smsru", "smsc"], clock)
    _queue(db, clock)
    with db.write() as session:  # a previous worker called SMS.ru and died before recording the answer
        session.add(NotificationAttempt(notification_id="code:1", provider="smsru", started_at=clock()))
    assert relay.run_once().delivered == 1
    assert smsru_route.call_count == 0 and smsc_route.call_count == 1


def test_every_provider_refusing_dead_letters_the_message(db: Database, mock: respx.MockRouter) -> None:
    clock = FakeClock()
    mock.post(smsru.URL).respond(json={"status": "ERROR", "status_code": 202, "status_text": "bad number"})
    relay = _relay(db, {"smsru": SmsRu("api")}, ["smsru"], clock)
    _queue(db, clock)
    assert relay.run_once().dead == 1
    with db.read() as session:
        notification = session.get(Notification, "code:1")
        assert (
            notification is not None
            and notification.status == "failed"
            and "bad number" in (notification.last_error or "")
        )
        assert session.exec(__import__("sqlmodel").select(OutboxMessage)).one().state == "dead"
    with pytest.raises(PermanentDeliveryError):
        Cascade(db, {}, {"verification": [], "notification": []})(
            OutboxMessage(
                destination="notify",
                kind="x",
                dedupe_key="x",
                payload_json='{"notification_id": "nope"}',
                next_attempt_at=clock(),
                created_at=clock(),
            )
        )

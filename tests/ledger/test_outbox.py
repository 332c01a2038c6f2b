"""The outbox: nothing lost, nothing delivered twice, failures dead-lettered and replayable."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlmodel import select

from gateway.config import WebhookConfig
from gateway.ledger.context import utc_now
from gateway.outbound.outbox import Event, Subscription, publish
from gateway.outbound.relay import Relay, RelaySettings, RetryableDeliveryError
from gateway.outbound.webhooks import sign
from gateway.store.db import Database
from gateway.store.models import OutboxMessage
from gateway.workers.stuck import StuckTransactions
from tests.conftest import Gateway
from tests.fake_receiver import FakeReceiver, running
from tests.support import SITE, key, wait_for

CARD = "2700000000014"
SECRET = "webhook-secret-0123456789"


def _with_webhook(demo_config: Any, url: str, **extra: Any) -> Any:
    hook = WebhookConfig(id="erp", url=url, secret=SECRET, timeout_seconds=0.5, **extra)
    return demo_config.model_copy(update={"webhooks": [hook]})


def _buy(gw: Gateway, receipt: str) -> None:
    response = gw.http.post(
        "/api/v1/receipts",
        headers={**SITE, **key()},
        json={
            "receipt_id": receipt,
            "card_number": CARD,
            "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}],
        },
    )
    assert response.status_code == 200, response.text


def _states(gw: Gateway) -> Counter[str]:
    with gw.service.db.read() as session:
        return Counter(m.state for m in session.exec(select(OutboxMessage)).all())


def test_events_reach_the_webhook_signed(start_gateway: Any, demo_config: Any) -> None:
    receiver = FakeReceiver()
    with running(receiver) as url:
        gw: Gateway = start_gateway(config=_with_webhook(demo_config, url, events=["receipt.*"]), workers=True)
        _buy(gw, "W-1")
        assert wait_for(lambda: len(receiver.processed) == 1)
    ((delivery, body),) = receiver.processed.items()
    headers = receiver.headers[delivery]
    assert body["event"] == "receipt.committed" and body["data"]["receipt_id"] == "W-1"
    assert body["data"]["points_accrued"] == 5 and body["data"]["client_id"] == "site"
    assert headers["x-gateway-event"] == "receipt.committed"
    raw = headers["x-gateway-timestamp"]
    import json

    expected = sign(SECRET, raw, json.dumps(body, ensure_ascii=False).encode())
    assert headers["x-gateway-signature"] == expected
    assert _states(gw) == Counter({"delivered": 1})  # holds/customers were not subscribed


def test_receiver_failing_and_hanging_loses_nothing_and_processes_once(start_gateway: Any, demo_config: Any) -> None:
    receiver = FakeReceiver(latency=0.005, capacity=2)
    receiver.fail_until = time.monotonic() + 1.5
    receiver.hang_until = time.monotonic() + 3.0
    receiver.hang_seconds = 1.0  # longer than the 0.5 s client timeout
    with running(receiver) as url:
        config = _with_webhook(demo_config, url, events=["receipt.committed"], max_attempts=50)
        gw: Gateway = start_gateway(config=config, workers=True)
        # make the relay's persistent backoff short so the test needs seconds, not hours
        runner_relay = gw.relay
        assert runner_relay is not None
        runner_relay.settings = RelaySettings(
            base_delay=timedelta(milliseconds=200), max_delay=timedelta(seconds=1), max_attempts=50, quick_retries=2
        )
        for i in range(30):
            _buy(gw, f"F-{i}")
        assert wait_for(lambda: len(receiver.processed) == 30, timeout=60), (len(receiver.processed), _states(gw))
        assert wait_for(lambda: _states(gw) == Counter({"delivered": 30}), timeout=10), _states(gw)
    assert receiver.duplicates == 0
    assert sum(receiver.received.values()) > 30  # it really failed and was retried
    assert sorted(b["data"]["receipt_id"] for b in receiver.processed.values()) == sorted(f"F-{i}" for i in range(30))
    assert StuckTransactions(gw.service).list() == []


def test_a_rejected_message_is_dead_lettered_and_replayed(start_gateway: Any, demo_config: Any) -> None:
    receiver = FakeReceiver()
    receiver.reject_status = 400
    with running(receiver) as url:
        gw: Gateway = start_gateway(config=_with_webhook(demo_config, url, events=["receipt.committed"]))
        assert gw.relay is not None
        _buy(gw, "D-1")
        gw.relay.run_once()
        assert _states(gw) == Counter({"dead": 1})
        stuck = StuckTransactions(gw.service, gw.relay)
        (item,) = stuck.list()
        assert item.kind == "outbox" and "dead-lettered" in item.detail and "HTTP 400" in item.detail
        receiver.reject_status = None  # the integrator fixed the receiver
        assert stuck.replay(item.id) == "delivered"
    assert len(receiver.processed) == 1
    assert stuck.list() == []


def _relay_race(url: str, messages: int) -> tuple[Counter[int], int]:
    db = Database(url)
    with db.write() as session:
        publish(
            session,
            [Subscription("test", frozenset({"*"}))],
            [Event("thing.happened", str(i), {"i": i}) for i in range(messages)],
            utc_now(),
        )
    delivered: Counter[int] = Counter()
    lock = threading.Lock()

    def deliver(message: OutboxMessage) -> None:
        time.sleep(0.002)
        if message.id is not None and message.id % 17 == 0 and delivered[message.id] == 0 and not message.last_error:
            raise RetryableDeliveryError("flaky")
        with lock:
            assert message.id is not None
            delivered[message.id] += 1

    def work(name: str) -> None:
        relay = Relay(
            Database(url),
            {"test": deliver},
            settings=RelaySettings(batch=10, quick_retries=1, base_delay=timedelta(0)),
            worker_id=name,
        )
        idle = 0
        while idle < 5:
            done = relay.run_once()
            idle = idle + 1 if done.claimed == 0 else 0
            time.sleep(0.01 if done.claimed == 0 else 0)

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with db.read() as session:
        undelivered = len(session.exec(select(OutboxMessage).where(OutboxMessage.state != "delivered")).all())
    db.dispose()
    return delivered, undelivered


def test_two_relays_never_deliver_the_same_message(any_database_url: str) -> None:
    delivered, undelivered = _relay_race(any_database_url, 300)
    assert undelivered == 0
    assert len(delivered) == 300
    assert set(delivered.values()) == {1}, [k for k, v in delivered.items() if v > 1]

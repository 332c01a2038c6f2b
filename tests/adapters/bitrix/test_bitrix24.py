"""Bitrix24: the REST client against a loopback portal that enforces Bitrix24's own limits, and
outbound webhooks received, verified, stored and processed through the outbox."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from adapters.bitrix.b24.bucket import LeakyBucket
from adapters.bitrix.b24.client import Bitrix24Client, Bitrix24Error, mask_webhook, php_query
from adapters.bitrix.config import Bitrix24Config, BitrixConfig, PortalConfig
from contracts.operations import LookupCustomerRequest
from gateway.config import GatewayConfig
from gateway.store.models import Customer, OutboxMessage
from gateway.store.models_bitrix import Bitrix24Event
from tests.conftest import Gateway, json_of
from tests.fake_bitrix24 import FakeBitrix24
from tests.support import live_server

MEMBER = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
APP_TOKEN = "app-token-9f8e7d6c5b4a3928"


@pytest.fixture
def portal() -> Iterator[tuple[FakeBitrix24, str]]:
    fake = FakeBitrix24()
    with live_server(fake.app()) as base:
        yield fake, base


def _client(fake: FakeBitrix24, base: str, **kwargs: Any) -> Bitrix24Client:
    return Bitrix24Client(fake.webhook_url(base), **kwargs)


# -- the leaky bucket -----------------------------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_allows_the_burst_then_exactly_the_rate() -> None:
    clock = ManualClock()
    bucket = LeakyBucket(2.0, 50, monotonic=clock.monotonic, sleep=clock.sleep)
    starts = []
    for _ in range(120):
        bucket.acquire()
        starts.append(clock.now - 1000.0)
    assert starts[:50] == [0.0] * 50
    assert starts[50:] == pytest.approx([0.5 * n for n in range(1, 71)])
    clock.now += 30  # idle: the bucket drains completely
    base = clock.now
    for _ in range(50):
        bucket.acquire()
    assert clock.now == base


def test_bucket_after_query_limit_exceeded_waits_one_interval() -> None:
    clock = ManualClock()
    bucket = LeakyBucket(2.0, 50, monotonic=clock.monotonic, sleep=clock.sleep)
    bucket.acquire()
    bucket.fill()
    assert bucket.acquire() == pytest.approx(0.5)
    assert bucket.acquire() == pytest.approx(0.5)


def _within_bucket(times: list[float], rate: float, burst: int, slack: int = 1) -> list[str]:
    """Every window [t_i, t_j] holds at most burst + rate * (t_j - t_i) requests (+ slack for the
    loopback transit between the client's clock and the server's)."""
    times = sorted(times)
    bad = []
    for i in range(len(times)):
        for j in range(i, len(times)):
            count = j - i + 1
            if count > burst + rate * (times[j] - times[i]) + slack:
                bad.append(f"{count} requests in {times[j] - times[i]:.3f}s")
    return bad


# -- the REST client ------------------------------------------------------------------------


def test_client_never_exceeds_the_bucket(portal: tuple[FakeBitrix24, str]) -> None:
    fake, base = portal
    # The portal enforces the client's limits, with one place more for the jitter of loopback
    # latency (at exactly equal limits a request arriving a millisecond early would be refused).
    fake.rate, fake.burst = 20.0, 11
    fake.add_contacts(3)
    client = _client(fake, base, rate_per_second=20.0, burst=10)
    for _ in range(50):
        assert client.call("crm.contact.get", {"id": "1"})["ID"] == "1"
    times = [a.at for a in fake.arrivals]
    assert len(times) == 50 and fake.answered(503) == 0
    assert _within_bucket(times, rate=20.0, burst=10) == []
    # ... and it is a rate, not a crawl: the 40 requests after the burst take about 40 / 20 s.
    assert 39 / 20 <= max(times) - min(times) < 60


def test_the_bucket_is_shared_by_threads(portal: tuple[FakeBitrix24, str]) -> None:
    fake, base = portal
    fake.rate, fake.burst = 20.0, 8  # the portal's bucket, with room for loopback jitter
    fake.add_contacts(3)
    client = _client(fake, base, rate_per_second=20.0, burst=5)

    def work(calls: int) -> None:
        for _ in range(calls):
            assert client.call("crm.contact.get", {"id": "1"})["ID"] == "1"

    def run(calls: int) -> None:
        threads = [threading.Thread(target=work, args=(calls,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    run(1)  # open the pool's four connections (a first connection's setup delays its request)
    client.bucket.acquire()
    fake.arrivals.clear()
    time.sleep(5 / 20)  # let the bucket drain
    run(10)
    times = [a.at for a in fake.arrivals]
    assert len(times) == 40 and fake.answered(503) == 0
    assert _within_bucket(times, rate=20.0, burst=5) == []
    assert max(times) - min(times) >= 34 / 20


def test_query_limit_exceeded_backs_off_and_succeeds(portal: tuple[FakeBitrix24, str]) -> None:
    fake, base = portal
    fake.rate, fake.burst = 10.0, 3  # the portal is stricter than this (misconfigured) client
    fake.add_contacts(1)
    client = _client(fake, base, rate_per_second=100.0, burst=30, max_attempts=12, max_backoff_seconds=0.5)
    for _ in range(15):
        assert client.call("crm.contact.get", {"id": "1"})["NAME"] == "Контакт 1"
    assert fake.answered(503) > 0
    assert fake.answered(200) == 15
    assert client.requests == 15 + fake.answered(503)


def test_server_errors_are_retried_client_errors_are_not(portal: tuple[FakeBitrix24, str]) -> None:
    fake, base = portal
    fake.add_contacts(1)
    client = _client(fake, base, max_attempts=4, max_backoff_seconds=0.05)
    fake.fail_next(2, status=500)
    assert client.call("crm.contact.get", {"id": "1"})["ID"] == "1"
    assert [a.status for a in fake.arrivals] == [500, 500, 200]

    with pytest.raises(Bitrix24Error) as missing:
        client.call("crm.contact.get", {"id": "404"})
    assert missing.value.not_found and not missing.value.retryable
    with pytest.raises(Bitrix24Error) as unknown:
        client.call("crm.nothing.here")
    assert unknown.value.code == "ERROR_METHOD_NOT_FOUND"
    assert len(fake.arrivals) == 5  # one request each: nothing retried

    wrong = Bitrix24Client(f"{base}/rest/1/not-the-secret/", max_attempts=4)
    with pytest.raises(Bitrix24Error) as denied:
        wrong.call("profile")
    assert denied.value.code == "INVALID_CREDENTIALS" and len(fake.arrivals) == 6


def test_batch_sends_50_commands_per_request(portal: tuple[FakeBitrix24, str]) -> None:
    fake, base = portal
    fake.add_contacts(120)
    client = _client(fake, base)
    commands = {f"c{n}": ("crm.contact.get", {"id": n}) for n in range(1, 121)}
    commands["missing"] = ("crm.contact.get", {"id": 999})
    result = client.batch(commands)
    assert result.requests == 3
    assert [a.commands for a in fake.arrivals] == [50, 50, 21]
    assert len(result.results) == 120 and result.results["c77"]["NAME"] == "Контакт 77"
    assert set(result.errors) == {"missing"}


def test_iterate_follows_next(portal: tuple[FakeBitrix24, str]) -> None:
    fake, base = portal
    fake.add_contacts(120)
    client = _client(fake, base)
    ids = [c["ID"] for c in client.iterate("crm.contact.list", {"select": ["ID", "NAME"]})]
    assert ids == [str(n) for n in range(1, 121)]
    assert len(fake.arrivals) == 3


def test_php_query_encoding() -> None:
    query = php_query({"id": 5, "filter": {">ID": 10, "ACTIVE": True}, "select": ["ID", "NAME"]})
    assert query == "id=5&filter%5B%3EID%5D=10&filter%5BACTIVE%5D=1&select%5B0%5D=ID&select%5B1%5D=NAME"


def test_webhook_secret_never_logged(portal: tuple[FakeBitrix24, str], caplog: pytest.LogCaptureFixture) -> None:
    fake, base = portal
    caplog.set_level(logging.DEBUG)
    client = _client(fake, base, max_attempts=2, max_backoff_seconds=0.01)
    fake.fail_next(1)
    client.call("profile")
    with pytest.raises(Bitrix24Error):
        client.call("crm.contact.get", {"id": "1"})
    messages = [r.getMessage() for r in caplog.records]
    assert any("/rest/1/***/" in m for m in messages), messages
    assert not [m for m in messages if fake.secret in m]
    assert mask_webhook(fake.webhook_url(base)) == f"{base}/rest/1/***/"


# -- outbound webhooks through the gateway --------------------------------------------------


def _config(demo_config: GatewayConfig, webhook_url: str, **portal: Any) -> GatewayConfig:
    section = Bitrix24Config(
        portals=[
            PortalConfig(
                member_id=MEMBER,
                domain="shop.bitrix24.ru",
                application_token=APP_TOKEN,
                webhook_url=webhook_url,
                card_field="UF_CRM_LOYALTY_CARD",
                **portal,
            )
        ]
    )
    bitrix = (demo_config.bitrix or BitrixConfig()).model_copy(update={"bitrix24": section})
    return demo_config.model_copy(update={"bitrix": bitrix})


def _form(
    event: str, entity: str, *, ts: str = "1716200000", token: str = APP_TOKEN, member: str = MEMBER
) -> dict[str, str]:
    return {
        "event": event,
        "event_handler_id": "17",
        "data[FIELDS][ID]": entity,
        "ts": ts,
        "auth[domain]": "shop.bitrix24.ru",
        "auth[client_endpoint]": "https://shop.bitrix24.ru/rest/",
        "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
        "auth[member_id]": member,
        "auth[application_token]": token,
    }


def _counts(gw: Gateway) -> tuple[int, int, int]:
    with gw.service.db.read() as session:
        events = session.exec(select(func.count()).select_from(Bitrix24Event)).one()
        outbox = session.exec(select(func.count()).select_from(OutboxMessage)).one()
        customers = session.exec(select(func.count()).select_from(Customer)).one()
    return int(events), int(outbox), int(customers)


def _event(gw: Gateway, entity: str) -> Bitrix24Event:
    with gw.service.db.read() as session:
        row = session.exec(
            select(Bitrix24Event).where(Bitrix24Event.entity_id == entity).order_by(Bitrix24Event.id)  # type: ignore[arg-type]
        ).first()
        assert row is not None
        return row


def test_contact_event_registers_the_customer(
    start_gateway: Any, demo_config: GatewayConfig, portal: tuple[FakeBitrix24, str]
) -> None:
    fake, base = portal
    fake.contacts["42"] = {
        "ID": "42",
        "NAME": "Дарья",
        "LAST_NAME": "Новикова",
        "BIRTHDATE": "1990-04-12T03:00:00+03:00",
        "PHONE": [{"ID": "1", "VALUE_TYPE": "WORK", "VALUE": "8 (912) 345-67-89"}],
        "EMAIL": [{"ID": "2", "VALUE_TYPE": "HOME", "VALUE": "Daria@Example.ru"}],
        "UF_CRM_LOYALTY_CARD": "2700000009990",
    }
    gw: Gateway = start_gateway(config=_config(demo_config, fake.webhook_url(base)))
    response = gw.http.post("/bitrix24/events", data=_form("ONCRMCONTACTADD", "42"))
    assert response.status_code == 200, response.text
    assert json_of(response) | {"id": 0} == {"status": "accepted", "id": 0, "action": "queued", "duplicate": False}
    # Acknowledged means stored and queued, before anything was fetched.
    assert _event(gw, "42").status == "queued" and fake.arrivals == []
    # A second call about the contact while the first waits joins it: one fetch will do for both.
    joined = gw.http.post("/bitrix24/events", data=_form("ONCRMCONTACTUPDATE", "42", ts="1716200001"))
    assert json_of(joined)["duplicate"] is True and _counts(gw)[:2] == (1, 1)

    assert gw.relay is not None
    assert gw.relay.run_once().delivered == 1
    customer = gw.service.lookup_customer("site", LookupCustomerRequest(phone="+79123456789"))
    assert (customer.name, customer.email, str(customer.birth_date)) == (
        "Дарья Новикова",
        "daria@example.ru",
        "1990-04-12",
    )
    assert [c.card_number for c in customer.cards] == ["2700000009990"]
    row = _event(gw, "42")
    assert row.status == "processed" and row.detail == f"registered: {customer.customer_id}"
    assert [a.method for a in fake.arrivals] == ["crm.contact.get"]

    # A later update of the same contact is fetched again, and finds the customer: nothing new.
    before = _counts(gw)
    later = gw.http.post("/bitrix24/events", data=_form("ONCRMCONTACTUPDATE", "42", ts="1716200100"))
    assert json_of(later)["duplicate"] is False
    assert gw.relay.run_once().delivered == 1
    assert _counts(gw)[2] == before[2]
    with gw.service.db.read() as session:
        rows = session.exec(select(Bitrix24Event).order_by(Bitrix24Event.id)).all()  # type: ignore[arg-type]
        assert [(r.status, (r.detail or "")[:18]) for r in rows] == [
            ("processed", "registered: " + customer.customer_id[:6]),
            ("processed", "already a customer"),
        ]
    gw.assert_invariants()


def test_forged_or_unknown_portal_is_refused_and_the_token_never_logged(
    start_gateway: Any, demo_config: GatewayConfig, portal: tuple[FakeBitrix24, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = portal
    caplog.set_level(logging.DEBUG)
    gw: Gateway = start_gateway(config=_config(demo_config, fake.webhook_url(base)))
    before = _counts(gw)
    forged = "forged-token-0000000000"
    for form in (
        _form("ONCRMCONTACTADD", "42", token=forged),
        _form("ONCRMCONTACTADD", "42", token=""),
        _form("ONCRMCONTACTADD", "42", member="someone-else"),
    ):
        response = gw.http.post("/bitrix24/events", data=form)
        assert response.status_code == 403, response.text
        assert json_of(response)["error"]["code"] == "webhook_token_invalid"
    assert _counts(gw) == before
    assert gw.relay is not None and gw.relay.run_once().claimed == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert forged not in logged and APP_TOKEN not in logged

    # A genuine call is stored without its token.
    assert gw.http.post("/bitrix24/events", data=_form("ONCRMCONTACTADD", "7")).status_code == 200
    assert APP_TOKEN not in _event(gw, "7").payload_json
    assert APP_TOKEN not in "\n".join(r.getMessage() for r in caplog.records)


def test_unsupported_events_are_acknowledged_and_recorded(
    start_gateway: Any, demo_config: GatewayConfig, portal: tuple[FakeBitrix24, str]
) -> None:
    fake, base = portal
    gw: Gateway = start_gateway(config=_config(demo_config, fake.webhook_url(base)))
    response = gw.http.post("/bitrix24/events", data=_form("ONCRMDEALADD", "15"))
    assert json_of(response)["action"] == "ignored"
    row = _event(gw, "15")
    assert (row.status, row.detail, row.event) == ("ignored", "unsupported event", "ONCRMDEALADD")
    assert _counts(gw)[1] == 0  # nothing queued


def test_a_portal_that_fails_is_retried_later_and_nothing_is_lost(
    start_gateway: Any, demo_config: GatewayConfig, portal: tuple[FakeBitrix24, str]
) -> None:
    fake, base = portal
    fake.contacts["8"] = {"ID": "8", "NAME": "Ева", "PHONE": [{"VALUE": "+79001112233"}], "EMAIL": []}
    gw: Gateway = start_gateway(config=_config(demo_config, fake.webhook_url(base), max_attempts=1))
    assert gw.http.post("/bitrix24/events", data=_form("ONCRMCONTACTADD", "8")).status_code == 200
    fake.fail_next(100)
    assert gw.relay is not None
    assert gw.relay.run_once().rescheduled == 1
    assert _event(gw, "8").status == "queued"
    fake.fail_next(0)
    gw.clock.advance(minutes=5)
    assert gw.relay.run_once().delivered == 1
    assert _event(gw, "8").status == "processed"
    assert gw.service.lookup_customer("site", LookupCustomerRequest(phone="+79001112233")).name == "Ева"


def test_a_deleted_contact_is_recorded_as_ignored(
    start_gateway: Any, demo_config: GatewayConfig, portal: tuple[FakeBitrix24, str]
) -> None:
    fake, base = portal
    gw: Gateway = start_gateway(config=_config(demo_config, fake.webhook_url(base)))
    gw.http.post("/bitrix24/events", data=_form("ONCRMCONTACTADD", "404"))
    assert gw.relay is not None and gw.relay.run_once().delivered == 1
    assert (_event(gw, "404").status, _event(gw, "404").detail) == ("ignored", "the contact no longer exists")


def test_no_portal_configured_answers_404(gateway: Gateway) -> None:
    response = gateway.http.post("/bitrix24/events", data=_form("ONCRMCONTACTADD", "1"))
    assert response.status_code == 404

"""Audiences, mailings with consent and a holdout, unsubscribe links (issue 20).

Uses the building-materials example program (zones of stores, segments, tiers, dates in Moscow
time) on a real database (SQLite or PostgreSQL); the clock is a ``FakeClock``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from contracts.accounts import CampaignRequest, PromoCheckRequest
from contracts.operations import BalanceRequest, CartLine, CommitRequest, RegisterCustomerRequest
from contracts.profiles import UpdateCustomerRequest
from gateway.audience import Audience, audience_size, customer_batches
from gateway.config import GatewayConfig, NotificationsConfig, ProviderConfig, QuietHours, Settings, load_config
from gateway.ledger.service import LoyaltyService
from gateway.mailings import planner, report, store
from gateway.mailings.config import MailingsConfig
from gateway.mailings.requests import MailingRequest
from gateway.outbound.relay import Relay
from gateway.store.models import Customer, LedgerEntry, Notification, OutboxMessage
from gateway.store.models_mailings import Mailing, MailingRecipient
from gateway.wiring import build_relay, build_service
from tests.conftest import Gateway
from tests.support import MARKETER, OPERATOR, TILL, FakeClock, key, noon

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"
DEMO = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "gateway.yaml"
PUBLIC = "https://loyalty.example"
START = date(2026, 3, 2)


def configured(tmp_path: Path, **mailings: object) -> GatewayConfig:
    """The building-materials program with the demo's clients, console messages and mailings."""
    base = load_config(DEMO)
    notifications = NotificationsConfig(
        providers={"console": ProviderConfig(type="console", path=str(tmp_path / "messages.jsonl"))}
    )
    settings = MailingsConfig(public_url=PUBLIC, prices={"sms": Decimal("3.50"), "email": Decimal("0.20")})
    return base.model_copy(
        update={
            "program": load_config(BUILDING).program,
            "notifications": notifications,
            "mailings": settings.model_copy(update=mailings),
            "demo": None,
        }
    )


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return configured(tmp_path)


@pytest.fixture
def service(database_url: str, config: GatewayConfig, clock: FakeClock) -> Iterator[LoyaltyService]:
    clock.set(noon(START))
    svc = build_service(Settings(database_url=database_url), config, clock)
    yield svc
    svc.db.dispose()


def register(
    service: LoyaltyService,
    card: str,
    *,
    email: str | None = None,
    birth: date | None = None,
    consent: bool | None = None,
) -> str:
    request = RegisterCustomerRequest(
        card_number=card, phone=f"+7998{card[-7:]}", name=f"Покупатель {card[-3:]}", email=email, birth_date=birth
    )
    customer_id = service.register_customer("site", uuid.uuid4().hex, request).customer_id
    if consent is not None:
        change = UpdateCustomerRequest(customer_id=customer_id, ad_consent=consent, ad_consent_channel="site")
        service.update_customer("site", uuid.uuid4().hex, change)
    return customer_id


def buy(service: LoyaltyService, card: str, roubles: int, store: str = "S01") -> None:
    request = CommitRequest(
        receipt_id=uuid.uuid4().hex,
        card_number=card,
        store=store,
        lines=[CartLine(line_id="1", item="TL-1001", quantity=Decimal(1), price=Decimal(roubles))],
    )
    service.commit("tills", uuid.uuid4().hex, request)


def advert(**fields: object) -> MailingRequest:
    values: dict[str, object] = {
        "name": "Весенние краски",
        "kind": "advertising",
        "channel": "sms",
        "template": "{name}, краски -15% до воскресенья!",
        "holdout_percent": 0,
    }
    values.update(fields)
    return MailingRequest.model_validate(values)


def send(service: LoyaltyService, config: GatewayConfig, request: MailingRequest) -> str:
    mailing = store.create(service, config, "operator", uuid.uuid4().hex, request)
    store.start(service, mailing.id)
    assert planner.plan(service, config, mailing.id).state == "queued"
    return mailing.id


def deliver(relay: Relay, clock: FakeClock, minutes: int = 0) -> int:
    """Move the clock past every send slot and let the relay send what is due."""
    clock.advance(minutes=minutes)
    sent = 0
    while (done := relay.run_once()).claimed:
        sent += done.delivered
    return sent


def console_messages(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "messages.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def recipients(service: LoyaltyService, mailing_id: str) -> dict[str, str]:
    """customer id -> cohort"""
    with service.db.read() as session:
        rows = session.exec(select(MailingRecipient).where(MailingRecipient.mailing_id == mailing_id)).all()
        return {r.customer_id: r.cohort for r in rows}


def card_of(customer_id: str, cards: dict[str, str]) -> str:
    return next(card for card, ident in cards.items() if ident == customer_id)


def size(service: LoyaltyService, **filters: object) -> int:
    with service.db.read() as session:
        return audience_size(session, service.program, Audience.model_validate(filters))


def test_an_audience_selects_by_segment_tier_zone_purchase_dates_birthday_and_lists(
    service: LoyaltyService, clock: FakeClock
) -> None:
    ids = {n: register(service, f"290000000000{n}", birth=date(1990, 5 if n < 3 else 7, 10)) for n in range(1, 7)}
    clock.set(noon(date(2026, 1, 10)))
    buy(service, "2900000000001", 1000, store="S06")  # spb, January only: lapsed since February
    clock.set(noon(date(2026, 2, 20)))
    buy(service, "2900000000002", 1000, store="S01")  # msk, in February
    buy(service, "2900000000003", 1000, store="S13")  # nsk
    clock.set(noon(date(2026, 3, 2)))
    service.update_customer(
        "operator", uuid.uuid4().hex, UpdateCustomerRequest(customer_id=ids[4], segment="wholesale")
    )
    with service.db.write() as session:
        customer = session.get(Customer, ids[5])
        assert customer is not None
        customer.tier = "gold"
        session.add(customer)
        merged = session.get(Customer, ids[6])
        assert merged is not None
        merged.merged_into = ids[5]
        session.add(merged)

    assert size(service) == 5  # the merged customer is never in an audience
    assert size(service, segments=["wholesale"]) == 1
    assert size(service, segments=["retail"]) == 4  # no segment set: the program's default
    assert size(service, tiers=["gold"]) == 1
    assert size(service, zones=["spb"]) == 1
    assert size(service, zones=["spb", "nsk"]) == 2
    assert size(service, stores=["s01"]) == 1  # store codes as typed in any case
    assert size(service, last_purchase_after=date(2026, 2, 1)) == 2
    assert size(service, last_purchase_before=date(2026, 2, 1)) == 1
    assert size(service, birthday_month=5) == 2
    assert size(service, birthday_month=7) == 3
    assert size(service, cards=["2900000000001", "2900000000004"], phones=["8 (998) 000-00-05"]) == 3
    assert size(service, cards=["2900000000006"]) == 0  # merged
    assert size(service, birthday_month=5, last_purchase_after=date(2026, 2, 1)) == 1

    with service.db.read() as session:
        pages = list(customer_batches(session, service.program, Audience(), batch=2))
    # windows of 2 customers by id; the merged customer's window yields 1
    assert sorted(len(page) for page in pages) == [1, 2, 2]
    assert sorted(i for page in pages for i in page) == sorted(v for k, v in ids.items() if k != 6)


def test_a_mailing_with_a_holdout_reports_its_uplift(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock, tmp_path: Path
) -> None:
    cards = {f"29100000000{n:02d}": register(service, f"29100000000{n:02d}", consent=True) for n in range(40)}
    register(service, "2910000000099", consent=False)  # refused advertising: neither group
    mailing_id = send(service, config, advert(holdout_percent=25))
    relay = build_relay(service, config)
    assert deliver(relay, clock) == len([c for c in recipients(service, mailing_id).values() if c == "recipient"])

    groups = recipients(service, mailing_id)
    sent_to = sorted(c for c, g in groups.items() if g == "recipient")
    held = sorted(c for c, g in groups.items() if g == "holdout")
    assert len(groups) == 40 and 4 <= len(held) <= 16  # a 25 % share by hash, every run the same
    assert len(console_messages(tmp_path)) == len(sent_to)
    # Within the 14 days: 6 recipients buy (one of them twice), 1 held-out customer buys.
    clock.advance(days=2)
    for customer_id in sent_to[:6]:
        buy(service, card_of(customer_id, cards), 1000)
    buy(service, card_of(sent_to[0], cards), 500)
    buy(service, card_of(held[0], cards), 800)
    clock.advance(days=13)  # after the window: not counted
    buy(service, card_of(sent_to[7], cards), 5000)
    buy(service, card_of(held[1], cards), 5000)

    found = report.report(service, mailing_id)
    r, h = len(sent_to), len(held)
    assert (found.queued, found.delivered, found.failed, found.opted_out) == (r, r, 0, 0)
    assert (found.recipients.customers, found.recipients.buyers, found.recipients.purchases) == (r, 6, 7)
    assert found.recipients.revenue == Decimal("6500.00")
    assert (found.holdout.customers, found.holdout.buyers, found.holdout.purchases) == (h, 1, 1)
    assert found.holdout.revenue == Decimal("800.00")
    conversion_r = (Decimal(600) / r).quantize(Decimal("0.01"))
    conversion_h = (Decimal(100) / h).quantize(Decimal("0.01"))
    assert found.recipients.conversion_percent == conversion_r
    assert found.holdout.conversion_percent == conversion_h
    assert found.uplift_points == conversion_r - conversion_h
    assert found.incremental_revenue == ((Decimal(6500) / r - Decimal(800) / h) * r).quantize(Decimal("0.01"))


def test_advertising_goes_only_to_customers_who_agreed_and_service_messages_to_everyone(
    service: LoyaltyService, config: GatewayConfig
) -> None:
    agreed = register(service, "2920000000001", consent=True)
    register(service, "2920000000002", consent=False)
    register(service, "2920000000003")  # never asked
    ad = store.read(service, send(service, config, advert(holdout_percent=0)))
    assert (ad.recipients, ad.skipped_consent, ad.holdout) == (1, 2, 0)
    assert set(recipients(service, ad.id)) == {agreed}
    notice = store.read(
        service, send(service, config, advert(kind="service", name="Часы работы", template="Мы открыты до 22:00"))
    )
    assert (notice.recipients, notice.skipped_consent) == (3, 0)


def test_the_preview_counts_audience_consent_holdout_and_cost_per_channel(
    service: LoyaltyService, config: GatewayConfig
) -> None:
    for n in range(10):
        register(service, f"293000000000{n}", consent=n < 6, email=f"c{n}@example.ru" if n < 4 else None)
    preview = store.preview(service, config, advert(holdout_percent=10, channel="sms"))
    assert (preview.audience, preview.advertising_allowed) == (10, 6)
    sms, email = preview.channels
    # 6 agreed and have a phone; 10 % of them held out (0 whole); the text with its unsubscribe
    # link is Cyrillic, over 70 characters: 2 SMS parts at 3.50 ₽.
    assert (sms.reachable, sms.allowed, sms.holdout, sms.messages, sms.parts_per_message) == (10, 6, 0, 6, 2)
    assert sms.cost == Decimal("42.00")
    assert (email.reachable, email.allowed, email.messages, email.cost) == (4, 4, 4, Decimal("0.80"))
    service_sms = store.preview(
        service, config, advert(kind="service", template="Мы открыты", holdout_percent=None)
    ).channels[0]
    # service: all 10 reachable and nobody held out (the default holdout is advertising's); one
    # short part each
    assert (service_sms.allowed, service_sms.holdout, service_sms.messages, service_sms.cost) == (
        10,
        0,
        10,
        Decimal("35.00"),
    )


def test_re_running_the_planner_queues_nothing_twice(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    small = config.model_copy(update={"mailings": config.mailings.model_copy(update={"batch": 4})})
    for n in range(15):
        register(service, f"294000000000{n:02d}"[-13:], consent=True)
    mailing = store.create(service, small, "operator", "spring-1", advert(holdout_percent=20))
    again = store.create(service, small, "operator", "spring-1", advert(holdout_percent=20))
    assert again.id == mailing.id  # the same key: the same mailing
    store.start(service, mailing.id)
    store.start(service, mailing.id)
    planner.plan(service, small, mailing.id, max_batches=2)
    # Two planners at once (two replicas' jobs), then the job again after it is done.
    threads = [threading.Thread(target=planner.plan, args=(service, small, mailing.id)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert planner.plan(service, small, mailing.id).queued == 0
    done = store.read(service, mailing.id)
    with service.db.read() as session:
        messages = session.exec(select(Notification).where(Notification.topic == "mailing")).all()
        outbox = session.exec(select(OutboxMessage).where(col(OutboxMessage.dedupe_key).startswith("notify|m:"))).all()
    assert done.state == "queued"
    assert done.recipients + done.holdout == 15 == len(recipients(service, mailing.id))
    assert len(messages) == len(outbox) == done.recipients
    assert len({m.phone for m in messages}) == done.recipients


def test_sending_keeps_the_pace_and_leaves_the_quiet_hours(
    service: LoyaltyService, config: GatewayConfig, clock: FakeClock
) -> None:
    quiet = config.notifications.model_copy(update={"quiet_hours": QuietHours(start="21:00", end="09:00")})
    paced = config.model_copy(update={"notifications": quiet})
    for n in range(5):
        register(service, f"295000000000{n}", consent=True)
    clock.set(datetime(2026, 3, 2, 17, 58, 30, tzinfo=UTC))  # 20:58:30 in Moscow
    mailing_id = send(service, paced, advert(holdout_percent=0, per_minute=2))
    with service.db.read() as session:
        slots = sorted(
            m.next_attempt_at
            for m in session.exec(select(OutboxMessage).where(OutboxMessage.kind == "notify.mailing")).all()
        )
    moscow = [s.astimezone(service.program.zone).strftime("%d %H:%M") for s in slots]
    # two at 20:58, two at 20:59, then 21:00 is quiet: the fifth waits for 09:00 the next day
    assert [m[:8] for m in moscow] == ["02 20:58", "02 20:58", "02 20:59", "02 20:59", "03 09:00"]
    assert store.read(service, mailing_id).recipients == 5


def test_opt_out_through_the_link_stops_advertising_but_not_service_messages(
    start_gateway: object, tmp_path: Path, clock: FakeClock
) -> None:
    gateway: Gateway = start_gateway(configured(tmp_path))  # type: ignore[operator]
    clock.set(noon(START))
    service = gateway.service
    config = configured(tmp_path)
    customer_id = register(service, "2960000000001", consent=True)
    ad = send(service, config, advert(holdout_percent=0))
    [text] = [m.text for m in _messages(service, ad)]
    link = re.search(r"https://loyalty\.example(/u/[A-Za-z0-9_-]+)", text)
    assert link is not None and text.startswith("Покупатель 001, краски -15% до воскресенья! Отписаться: ")
    page = gateway.http.get(link.group(1))
    assert page.status_code == 200 and "Отписаться от рекламных сообщений" in page.text
    assert service.customer_profile("test", customer_id).ad_consent is True  # opening the page changes nothing
    done = gateway.http.post(link.group(1))
    assert done.status_code == 200 and "Вы отписались" in done.text
    assert gateway.http.post(link.group(1)).status_code == 200  # the mail client's one-click POST after it
    profile = service.customer_profile("test", customer_id)
    assert (profile.ad_consent, profile.ad_consent_channel) == (False, "sms")
    forged = link.group(1)[:-2] + ("AA" if not link.group(1).endswith("AA") else "BB")
    assert gateway.http.get(forged).status_code == 404 and gateway.http.post(forged).status_code == 404

    assert report.report(service, ad).opted_out == 1
    second = store.read(service, send(service, config, advert(name="Ещё реклама", holdout_percent=0)))
    assert (second.recipients, second.skipped_consent) == (0, 1)
    service_msg = send(service, config, advert(kind="service", name="Бонусы", template="{name}, баланс: {balance}"))
    [notice] = _messages(service, service_msg)
    assert notice.text == "Покупатель 001, баланс: 200" and "Отписаться" not in notice.text


def _messages(service: LoyaltyService, mailing_id: str) -> list[Notification]:
    with service.db.read() as session:
        return list(session.exec(select(Notification).where(col(Notification.id).startswith(f"m:{mailing_id}:"))).all())


def test_personal_promo_codes_and_gift_points_go_to_recipients_not_to_the_holdout(
    service: LoyaltyService, config: GatewayConfig
) -> None:
    cards = {f"29700000000{n:02d}": register(service, f"29700000000{n:02d}", consent=True) for n in range(12)}
    campaign = service.campaign_create(
        "operator",
        "spring-campaign",
        CampaignRequest(name="Весна", description="Скидка 10 %", discount_percent=Decimal(10)),
    )
    mailing_id = send(
        service,
        config,
        advert(
            holdout_percent=25,
            promo_mode="personal",
            campaign_id=campaign.campaign_id,
            gift_points=300,
            template="{name}, ваш код {promo_code} и {gift_points} бонусов до {gift_expires}",
        ),
    )
    groups = recipients(service, mailing_id)
    texts = {m.id.rsplit(":", 1)[1]: m.text for m in _messages(service, mailing_id)}
    assert set(texts) == {c for c, g in groups.items() if g == "recipient"}
    codes = {c: re.search(r"код (\S+) ", t).group(1) for c, t in texts.items()}  # type: ignore[union-attr]
    assert len(set(codes.values())) == len(codes)
    for code in codes.values():
        assert service.promo_check("tills", PromoCheckRequest(code=code)).available
    for customer_id, cohort in groups.items():
        balance = service.balance("tills", BalanceRequest(card_number=card_of(customer_id, cards))).available
        assert balance == (300 if cohort == "recipient" else 0) + 200  # 200 welcome points each
    with service.db.read() as session:
        grants = session.exec(select(LedgerEntry).where(LedgerEntry.kind == "grant")).all()
    assert len(grants) == len(texts)
    assert "01.04.2026" in next(iter(texts.values()))  # 30 days from 2 March


def test_advertising_without_unsubscribe_links_configured_is_refused_by_name_and_creates_nothing(
    gateway: Gateway,
) -> None:
    """The demo configuration has no ``mailings.public_url``: an advertising mailing cannot carry
    its unsubscribe link, so it is refused with 409 naming the setting (found by schemathesis as
    a 500 before)."""
    body = {"name": "Акция", "kind": "advertising", "channel": "sms", "template": "Скидки!"}
    refused = gateway.http.post("/api/v1/mailings", json=body, headers={**MARKETER, **key()})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "not_configured"
    assert "mailings.public_url" in refused.json()["error"]["message"]
    with gateway.service.db.read() as session:
        assert session.exec(select(Mailing)).all() == []


def test_a_marketer_may_create_and_send_a_mailing_and_a_till_may_not(
    start_gateway: object, tmp_path: Path, clock: FakeClock
) -> None:
    gateway: Gateway = start_gateway(configured(tmp_path))  # type: ignore[operator]
    register(gateway.service, "2980000000001", consent=True)
    body = {"name": "Акция", "kind": "advertising", "channel": "sms", "template": "Скидки!", "holdout_percent": 0}
    refused = gateway.http.post("/api/v1/mailings", json=body, headers={**TILL, **key()})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert gateway.http.post("/api/v1/audiences/size", json={}, headers=TILL).status_code == 403
    headers = {**MARKETER, "Idempotency-Key": "spring"}
    created = gateway.http.post("/api/v1/mailings", json=body, headers=headers)
    assert created.status_code == 200, created.text
    mailing_id = created.json()["mailing_id"]
    assert gateway.http.post("/api/v1/mailings", json=body, headers=headers).json()["mailing_id"] == mailing_id
    conflict = gateway.http.post("/api/v1/mailings", json={**body, "name": "Другая"}, headers=headers)
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    preview = gateway.http.get(f"/api/v1/mailings/{mailing_id}/preview", headers=MARKETER).json()
    assert preview["audience"] == 1 and preview["channels"][0]["messages"] == 1
    assert (
        gateway.http.post("/api/v1/audiences/size", json={"segments": ["retail"]}, headers=OPERATOR).json()["size"] == 1
    )
    sent = gateway.http.post(f"/api/v1/mailings/{mailing_id}/send", headers=MARKETER).json()
    assert sent["state"] == "sending"
    planner.plan_due(gateway.service, configured(tmp_path))
    shown = gateway.http.get(f"/api/v1/mailings/{mailing_id}/report", headers=MARKETER).json()
    assert (shown["state"], shown["queued"]) == ("queued", 1)
    bad = gateway.http.post("/api/v1/mailings", json={**body, "template": "{bonus}"}, headers={**MARKETER, **key()})
    assert bad.status_code == 422


def test_an_email_mailing_arrives_through_smtp_with_its_unsubscribe_header(
    start_gateway: object, tmp_path: Path, clock: FakeClock
) -> None:
    from testing.mail import smtp_server

    with smtp_server() as server:
        base = configured(tmp_path, chains={"email": ["mail"]})
        providers = dict(base.notifications.providers)
        providers["mail"] = ProviderConfig(
            type="smtp", host=server.host, port=server.port, security="none", from_address="news@shop.example"
        )
        config = base.model_copy(
            update={"notifications": base.notifications.model_copy(update={"providers": providers})}
        )
        gateway: Gateway = start_gateway(config)  # type: ignore[operator]
        clock.set(noon(START))
        service = gateway.service
        customer_id = register(service, "2990000000001", consent=True, email="anna@example.ru")
        register(service, "2990000000002", consent=True)  # no e-mail address: skipped
        mailing_id = send(service, config, advert(channel="email", subject="Весна!", holdout_percent=0))
        assert store.read(service, mailing_id).skipped_contact == 1
        assert deliver(gateway.relay, clock) == 1  # type: ignore[arg-type]
        [mail] = server.mailbox.to("anna@example.ru")
    assert mail["Subject"] == "Весна!"
    assert "краски -15%" in mail.get_content()
    header = str(mail["List-Unsubscribe"]).strip()  # folded when long (RFC 5322 §2.2.3)
    assert header.startswith(f"<{PUBLIC}/u/") and header.endswith(">")
    path = header[len(PUBLIC) + 1 : -1]
    one_click = gateway.http.post(path, content="List-Unsubscribe=One-Click")
    assert one_click.status_code == 200
    profile = service.customer_profile("test", customer_id)
    assert (profile.ad_consent, profile.ad_consent_channel) == (False, "email")
    assert report.report(service, mailing_id).delivered == 1


def test_an_audience_is_refused_when_it_names_an_unknown_zone(service: LoyaltyService, config: GatewayConfig) -> None:
    from contracts.errors import LoyaltyError

    with pytest.raises(LoyaltyError) as refused:
        store.create(service, config, "operator", "k", advert(audience={"zones": ["atlantis"]}))
    assert refused.value.code.value == "validation_error"
    with pytest.raises(ValueError, match="not phone numbers"):
        Audience(phones=["+7 912 345-67-89", "call me"])


_ = (httpx, timedelta, Customer, audience_size, customer_batches)


def test_the_cli_creates_previews_sends_and_reports_a_mailing(database_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app as cli
    from gateway.config import DEMO_CONFIG

    service = build_service(Settings(database_url=database_url), load_config(DEMO_CONFIG))
    for n in range(3):
        register(service, f"296100000000{n}", consent=n < 2)
    service.db.dispose()
    request = tmp_path / "spring.yaml"
    request.write_text(
        "name: Весна\nkind: service\nchannel: sms\ntemplate: '{name}, мы открылись после ремонта'\n"
        "holdout_percent: 0\n",
        encoding="utf-8",
    )
    where = ["--config", str(DEMO_CONFIG), "--database-url", database_url]
    created = CliRunner().invoke(cli, ["mailing", "create", str(request), "--key", "spring", *where])
    assert created.exit_code == 0, created.output
    mailing_id = re.search(r"рассылка создана: (\w+)", created.output).group(1)  # type: ignore[union-attr]
    preview = CliRunner().invoke(cli, ["mailing", "preview", mailing_id, *where])
    assert preview.exit_code == 0 and "Аудитория: 3 (все покупатели)" in preview.output
    sent = CliRunner().invoke(cli, ["mailing", "send", mailing_id, *where])
    assert sent.exit_code == 0 and "поставлено в очередь сообщений: 3" in sent.output
    shown = CliRunner().invoke(cli, ["mailing", "report", mailing_id, *where])
    assert shown.exit_code == 0 and "Сообщений: 3; доставлено 0" in shown.output
    slump = tmp_path / "slump.yaml"
    slump.write_text("description: Бонусы в межсезонье\npoints: 100\naudience: {}\n", encoding="utf-8")
    granted = CliRunner().invoke(cli, ["grant", "create", str(slump), "--key", "slump", *where])
    assert granted.exit_code == 0 and "покупателей 3, баллов 300" in granted.output, granted.output
    again = CliRunner().invoke(cli, ["grant", "create", str(slump), "--key", "slump", *where])
    assert "покупателей 3, баллов 300" in again.output  # the same key: nothing more

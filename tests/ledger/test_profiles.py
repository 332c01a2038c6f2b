"""Profile upkeep over real HTTP: ``PATCH /api/v1/customers/{id}`` changes a registered customer
once per Idempotency-Key, keeps who changed what (personal values masked) at ``…/changes``, a new
segment prices the next receipt, a till may not change the segment, and bad input changes nothing.

The building-materials example program: retail earns tier cashback, partners earn none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlmodel import col, select

from adapters.bitrix.config import Bitrix24Config, BitrixConfig, PortalConfig
from adapters.onec.soap.wsdl import NS
from contracts.operations import LookupCustomerRequest
from gateway.config import GatewayConfig, load_config
from gateway.store.models_bitrix import Bitrix24Event
from gateway.store.models_program import StatusChange
from tests.conftest import Gateway, json_of
from tests.fake_bitrix24 import FakeBitrix24
from tests.support import OPERATOR, SITE, TILL, key, live_server

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"
CARD, OTHER = "2700000020011", "2700000020028"
WALLPAPER = [{"line_id": "1", "item": "WP-5001", "quantity": "2", "price": "1000.00"}]


@pytest.fixture
def gw(start_gateway: Any) -> Gateway:
    return start_gateway(config=load_config(BUILDING))  # type: ignore[no-any-return]


def call(
    gw: Gateway,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    who: dict[str, str],
    status: int = 200,
    idem: dict[str, str] | None = None,
) -> dict[str, Any]:
    headers = {**who, **(idem if idem is not None else key())}
    response = gw.http.request(method, path, json=body, headers=headers)
    assert response.status_code == status, response.text
    return json_of(response)


def register(gw: Gateway, card: str, phone: str, **extra: str) -> str:
    created = call(gw, "POST", "/api/v1/customers", {"card_number": card, "phone": phone, **extra}, SITE)
    return str(created["customer_id"])


def changes(gw: Gateway, customer_id: str) -> list[dict[str, Any]]:
    result = call(gw, "GET", f"/api/v1/customers/{customer_id}/changes", None, OPERATOR, idem={})
    return list(result["changes"])


def test_patch_changes_the_profile_once_per_key_and_keeps_a_masked_history(gw: Gateway) -> None:
    customer_id = register(gw, CARD, "+79990020011", name="Анна", email="anna@example.ru")
    body = {
        "name": "Анна Петрова",
        "email": "Anna.Petrova@Example.RU",
        "birth_date": "1990-05-17",
        "gender": "female",
        "ad_consent": True,
        "ad_consent_at": "2026-12-01T10:00:00+03:00",
        "ad_consent_channel": "site",
    }
    same_key = key()
    first = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", body, SITE, idem=same_key)
    assert first["customer"]["name"] == "Анна Петрова"
    assert first["customer"]["email"] == "anna.petrova@example.ru"
    assert first["customer"]["birth_date"] == "1990-05-17"
    assert (first["gender"], first["ad_consent"], first["ad_consent_channel"]) == ("female", True, "site")
    assert first["ad_consent_at"].startswith("2026-12-01T07:00:00")
    assert sorted(first["changed"]) == sorted(
        ["name", "email", "birth_date", "gender", "ad_consent", "ad_consent_at", "ad_consent_channel"]
    )
    before = changes(gw, customer_id)
    again = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", body, SITE, idem=same_key)
    assert again == first
    assert changes(gw, customer_id) == before  # the retry recorded nothing more
    # The same key with another body is refused, not applied.
    conflict = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", {"gender": "male"}, SITE, 422, idem=same_key)
    assert conflict["error"]["code"] == "idempotency_conflict"

    by_field = {c["field"]: c for c in before}
    assert by_field["name"]["old_value"] == "А***" and by_field["name"]["new_value"] == "А***"
    assert by_field["email"]["old_value"] == "a***@example.ru"
    assert by_field["email"]["new_value"] == "a***@example.ru"
    assert by_field["birth_date"]["new_value"] == "****-**-**"
    assert (by_field["gender"]["old_value"], by_field["gender"]["new_value"]) == (None, "female")
    assert {c["client_id"] for c in before} == {"site"}
    assert "Петрова" not in str(before) and "1990" not in str(before)

    profile = call(gw, "GET", f"/api/v1/customers/{customer_id}/profile", None, TILL, idem={})
    assert (profile["gender"], profile["ad_consent"]) == ("female", True)
    # Clearing and an unchanged value: only what differs is recorded.
    cleared = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", {"gender": "female", "clear": ["name"]}, SITE)
    assert cleared["changed"] == ["name"] and cleared["customer"]["name"] is None
    assert len(changes(gw, customer_id)) == len(before) + 1


def test_a_new_segment_prices_the_next_receipt_and_is_a_status_change(gw: Gateway) -> None:
    customer_id = register(gw, CARD, "+79990020011")
    cart = {"card_number": CARD, "store": "S04", "lines": WALLPAPER}
    retail = call(gw, "POST", "/api/v1/calculate", cart, TILL)
    assert (retail["points_to_accrue"], retail["total_discount"]) == (100, "0.00")  # 5 % tier cashback
    patched = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", {"segment": "partner"}, OPERATOR)
    assert patched["customer"]["segment"] == "partner" and patched["changed"] == ["segment"]
    partner = call(gw, "POST", "/api/v1/calculate", cart, TILL)
    # The partner discount: 5 %, half of it as a discount and half as points; no cashback.
    assert (partner["points_to_accrue"], partner["total_discount"]) == (50, "50.00")
    assert {e["rule"] for e in partner["explanation"]} >= {"discount:partner-base"}
    assert not any(e["rule"].startswith("tier:") for e in partner["explanation"])
    with gw.service.db.read() as session:
        rows = session.exec(select(StatusChange).where(StatusChange.customer_id == customer_id)).all()
    assert [(r.attribute, r.old_value, r.new_value, r.reason) for r in rows if r.reason == "profile"] == [
        ("segment", "retail", "partner", "profile")
    ]
    assert changes(gw, customer_id)[-1] | {"changed_at": None} == {
        "field": "segment",
        "old_value": "retail",
        "new_value": "partner",
        "client_id": "operator",
        "changed_at": None,
    }


def test_a_till_may_not_change_the_segment_or_the_referrer_but_may_change_contacts(gw: Gateway) -> None:
    customer_id = register(gw, CARD, "+79990020011")
    register(gw, OTHER, "+79990020028")
    before = gw.ledger_snapshot()
    for body in ({"segment": "partner"}, {"referrer_card": OTHER}, {"clear": ["segment"]}):
        refused = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", body, TILL, 403)
        assert refused["error"]["code"] == "forbidden"
    assert changes(gw, customer_id) == [] and gw.ledger_snapshot() == before
    ok = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", {"email": "c@example.ru"}, TILL)
    assert ok["customer"]["email"] == "c@example.ru"
    assert changes(gw, customer_id)[0]["client_id"] == "tills"
    linked = call(gw, "PATCH", f"/api/v1/customers/{customer_id}", {"referrer_card": OTHER}, SITE)
    assert linked["customer"]["referrer_id"] is not None and linked["changed"] == ["referrer_id"]


def test_bad_input_gets_a_stable_error_and_changes_nothing(gw: Gateway) -> None:
    customer_id = register(gw, CARD, "+79990020011", email="one@example.ru")
    register(gw, OTHER, "+79990020028", email="two@example.ru")
    path = f"/api/v1/customers/{customer_id}"
    before = gw.ledger_snapshot()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"segment": "vip"}, 422, "validation_error"),
        ({"email": "two@example.ru"}, 409, "customer_already_exists"),
        ({"referrer_card": "999"}, 404, "referrer_not_found"),
        ({"referrer_card": CARD}, 422, "validation_error"),  # oneself
        ({"gender": "other"}, 422, "validation_error"),
        ({"ad_consent": True}, 422, "validation_error"),  # the law wants the channel
        ({"name": "X", "clear": ["name"]}, 422, "validation_error"),
        ({"phone": "+79990000000"}, 422, "validation_error"),  # not a profile field here
    ]
    for body, status, code in cases:
        refused = call(gw, "PATCH", path, body, OPERATOR, status)
        assert refused["error"]["code"] == code, body
    missing = call(gw, "PATCH", "/api/v1/customers/nobody", {"name": "X"}, OPERATOR, 404)
    assert missing["error"]["code"] == "customer_not_found"
    no_key = call(gw, "PATCH", path, {"name": "X"}, OPERATOR, 400, idem={})
    assert no_key["error"]["code"] == "idempotency_key_required"
    assert changes(gw, customer_id) == [] and gw.ledger_snapshot() == before
    profile = call(gw, "GET", f"/api/v1/customers/{customer_id}/profile", None, OPERATOR, idem={})
    assert profile["customer"]["email"] == "one@example.ru" and profile["customer"]["segment"] == "retail"


# -- Bitrix24: a contact changed in the CRM changes the customer through the same operation ------

MEMBER = "b2c3d4e5f60718293a4b5c6d7e8f9001"
APP_TOKEN = "app-token-profile-20"


def _b24_config(demo_config: GatewayConfig, webhook_url: str) -> GatewayConfig:
    portal = PortalConfig(
        member_id=MEMBER,
        domain="shop.bitrix24.ru",
        application_token=APP_TOKEN,
        webhook_url=webhook_url,
        card_field="UF_CRM_LOYALTY_CARD",
    )
    bitrix = (demo_config.bitrix or BitrixConfig()).model_copy(update={"bitrix24": Bitrix24Config(portals=[portal])})
    return demo_config.model_copy(update={"bitrix": bitrix})


def _b24_event(gw: Gateway, event: str, contact_id: str, ts: str) -> None:
    """The form Bitrix24 posts to an outbound webhook (tests/adapters/bitrix/test_bitrix24.py has its source)."""
    form = {
        "event": event,
        "event_handler_id": "17",
        "data[FIELDS][ID]": contact_id,
        "ts": ts,
        "auth[domain]": "shop.bitrix24.ru",
        "auth[client_endpoint]": "https://shop.bitrix24.ru/rest/",
        "auth[server_endpoint]": "https://oauth.bitrix.info/rest/",
        "auth[member_id]": MEMBER,
        "auth[application_token]": APP_TOKEN,
    }
    response = gw.http.post("/bitrix24/events", data=form)
    assert response.status_code == 200, response.text
    assert gw.relay is not None
    assert gw.relay.run_once().delivered == 1


def test_a_bitrix24_contact_update_changes_the_customer_through_the_profile_operation(
    start_gateway: Any, demo_config: GatewayConfig
) -> None:
    fake = FakeBitrix24()
    with live_server(fake.app()) as base:
        fake.contacts["77"] = {
            "ID": "77",
            "NAME": "Ольга",
            "PHONE": [{"ID": "1", "VALUE_TYPE": "WORK", "VALUE": "+7 912 000-20-77"}],
        }
        gw: Gateway = start_gateway(config=_b24_config(demo_config, fake.webhook_url(base)))
        _b24_event(gw, "ONCRMCONTACTADD", "77", "1716200000")
        customer = gw.service.lookup_customer("site", LookupCustomerRequest(phone="+79120002077"))
        assert (customer.name, customer.email) == ("Ольга", None)

        fake.contacts["77"] |= {"LAST_NAME": "Смирнова", "EMAIL": [{"ID": "2", "VALUE": "Olga@Example.ru"}]}
        _b24_event(gw, "ONCRMCONTACTUPDATE", "77", "1716200100")
        changed = gw.service.lookup_customer("site", LookupCustomerRequest(phone="+79120002077"))
        assert (changed.customer_id, changed.name, changed.email) == (
            customer.customer_id,
            "Ольга Смирнова",
            "olga@example.ru",
        )
        history = changes(gw, customer.customer_id)
        assert [(c["field"], c["new_value"]) for c in history] == [("name", "О***"), ("email", "o***@example.ru")]
        # The same contact delivered again changes and records nothing more.
        _b24_event(gw, "ONCRMCONTACTUPDATE", "77", "1716200200")
        assert changes(gw, customer.customer_id) == history
        with gw.service.db.read() as session:
            details = [r.detail for r in session.exec(select(Bitrix24Event).order_by(col(Bitrix24Event.id))).all()]
        assert [d.split(":")[0] for d in details if d] == ["registered", "updated", "already a customer"]


# -- SOAP: ContactInfoUpdateRequest (ours; no public client sends it) for a known card --------


def _contact_update(card: str, first: str, last: str, email: str) -> bytes:
    body = (
        f'<tns:ProcessRequest xmlns:tns="{NS}"><tns:request><tns:ContactInfoUpdateRequest>'
        f"<tns:RequestID>cu-1</tns:RequestID><tns:DateTime>2026-11-23T12:00:00+03:00</tns:DateTime>"
        f"<tns:Card><tns:CardNumber>{card}</tns:CardNumber></tns:Card>"
        f"<tns:EmailAddress>{email}</tns:EmailAddress>"
        f"<tns:FirstName>{first}</tns:FirstName><tns:LastName>{last}</tns:LastName>"
        f"</tns:ContactInfoUpdateRequest></tns:request></tns:ProcessRequest>"
    )
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    return envelope.encode("utf-8")


def test_a_soap_contact_update_of_a_known_card_changes_the_customer(gateway: Gateway) -> None:
    """The message shape is the served WSDL's (``adapters/onec/soap/wsdl.py``), sent as raw bytes."""
    customer_id = register(gateway, CARD, "+79990020011", name="Иван")
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{NS}/ProcessRequest"',
        **TILL,
    }

    def send() -> etree._Element:
        response = gateway.http.post(
            "/soap/loyalty", content=_contact_update(CARD, "Иван", "Орлов", "io@example.ru"), headers=headers
        )
        assert response.status_code == 200, response.text
        return etree.fromstring(response.content)

    root = send()
    assert root.findtext(f".//{{{NS}}}ReturnCode") == "0"
    assert root.findtext(f".//{{{NS}}}ContactID") == customer_id
    found = gateway.service.lookup_customer("site", LookupCustomerRequest(card_number=CARD))
    assert (found.name, found.email) == ("Иван Орлов", "io@example.ru")
    history = changes(gateway, customer_id)
    assert [(c["field"], c["client_id"]) for c in history] == [("name", "tills"), ("email", "tills")]
    # The same message again (clients resend) changes and records nothing more.
    assert send().findtext(f".//{{{NS}}}ReturnCode") == "0"
    assert changes(gateway, customer_id) == history

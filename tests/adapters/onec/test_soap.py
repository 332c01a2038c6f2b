"""The SOAP service driven by zeep — a real SOAP client in strict mode — over both the SOAP 1.1
and the SOAP 1.2 binding of the served WSDL (Manzana's ``POSProcessing`` contract; the message
shapes of Manzana's own clients are in ``test_soap_manzana.py``).

The WSDL is parsed once per test session; each test points the parsed client at its own server.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree
from zeep import Client, Settings
from zeep.exceptions import Fault
from zeep.transports import Transport

from adapters.onec.soap import wsdl
from adapters.onec.soap.wsdl import NS
from tests.conftest import Gateway
from tests.support import OPERATOR, SITE, key

CARD = "2700000000014"  # 600 points; demo program: 5 % accrual, at most 30 % by points
BINDINGS = {"1.1": f"{{{NS}}}POSProcessingSoap", "1.2": f"{{{NS}}}POSProcessingSoap12"}
MOMENT = "2026-11-23T12:00:00+03:00"


def zeep_client(location: str, login: str = "касса", password: str = "demo-till") -> Client:
    session = requests.Session()
    session.auth = (login.encode(), password.encode())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zeep must read the WSDL without a single warning
        return Client(location, transport=Transport(session=session), settings=Settings(strict=True))


@pytest.fixture(scope="session")
def parsed_wsdl(tmp_path_factory: pytest.TempPathFactory) -> Client:
    """The WSDL the server serves (``test_the_served_wsdl`` holds them equal), parsed once."""
    path: Path = tmp_path_factory.mktemp("soap") / "loyalty.wsdl"
    path.write_text(wsdl.wsdl("http://127.0.0.1/soap/loyalty"), encoding="utf-8")
    return zeep_client(str(path))


@pytest.fixture(params=["1.1", "1.2"])
def service(request: pytest.FixtureRequest, gateway: Gateway, parsed_wsdl: Client) -> Iterator[Any]:
    yield parsed_wsdl.create_service(BINDINGS[str(request.param)], f"{gateway.url}/soap/loyalty")


def call(service: Any, *requests_: dict[str, Any], info: bool = False) -> list[Any]:
    """ProcessRequest (or ProcessRequestInfo) with these requests; the responses in order."""
    if info:
        result = service.ProcessRequestInfo(request={"Requests": {"_value_1": list(requests_)}}, orgName="ORG")
        result = result["_value_1"]  # zeep unwraps the single-child ProcessRequestInfoResult
    else:
        result = service.ProcessRequest(request={"_value_1": list(requests_)}, orgName="ORG")
    return [next(iter(entry.values())) for entry in result]


def one(service: Any, request: dict[str, Any]) -> Any:
    return call(service, request)[0]


def item(position: int, article: str, price: str, quantity: int = 1) -> dict[str, Any]:
    summ = Decimal(price) * quantity
    return {
        "PositionNumber": position,
        "Article": article,
        "Price": Decimal(price),
        "Quantity": Decimal(quantity),
        "Summ": summ,
        "Discount": Decimal(0),
        "SummDiscounted": summ,
    }


ITEMS = [item(1, "DRILL-01", "500.00", 2), item(2, "BITS-SET", "250.50")]


def cheque(
    number: str,
    cheque_type: str,
    *,
    operation: str = "Sale",
    paid: str = "0",
    reference: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    coupons: list[str] | None = None,
    request_id: str = "1",
) -> dict[str, Any]:
    lines = ITEMS if items is None else items
    body: dict[str, Any] = {
        "ChequeType": cheque_type,  # an attribute in the schema
        "RequestID": request_id,
        "Card": {"CardNumber": CARD},
        "DateTime": MOMENT,
        "Organization": "ORG",
        "BusinessUnit": "SHOP-1",
        "POS": "POS-3",
        "Number": number,
        "OperationType": operation,
        "Summ": sum((i["Summ"] for i in lines), Decimal(0)),
        "Discount": Decimal(0),
        "SummDiscounted": sum((i["SummDiscounted"] for i in lines), Decimal(0)),
        "PaidByBonus": Decimal(paid),
        "Item": lines,
    }
    if reference is not None:
        body["ChequeReference"] = reference
    if coupons:
        body["Coupons"] = {"Coupon": [{"Number": code} for code in coupons]}
    return {"ChequeRequest": body}


def balance_request(card: dict[str, str]) -> dict[str, Any]:
    return {"BalanceRequest": {"RequestID": "b", "Card": card, "DateTime": MOMENT}}


def test_full_purchase_soft_fiscal_balance_return(gateway: Gateway, service: Any) -> None:
    soft = one(service, cheque("101", "Soft", paid="300"))
    assert (soft.ReturnCode, soft.RequestID, soft.Message) == (0, "1", "Начислено: 47,00")
    assert (soft.WriteoffBonus, soft.ChargedBonus) == (Decimal("300.00"), Decimal("47.00"))  # 5 % of 950.50
    assert soft.AvailablePayment == Decimal("375.00")  # 30 % of 1250.50, the held points included
    assert (soft.CardBalance, soft.CardActiveBalance) == (Decimal("600.00"), Decimal("300.00"))
    assert [(i.PositionNumber, i.Price, i.Quantity, i.WriteoffBonus, i.ChargedBonus) for i in soft.Item] == [
        (1, Decimal("500.00"), Decimal("2.000"), Decimal("240.00"), Decimal("38.00")),
        (2, Decimal("250.50"), Decimal("1.000"), Decimal("60.00"), Decimal("9.00")),
    ]

    fiscal = one(service, cheque("101", "Fiscal", paid="300"))  # the same RequestID: not a duplicate
    assert fiscal.ReturnCode == 0 and isinstance(fiscal.TransactionID, int)
    assert (fiscal.WriteoffBonus, fiscal.ChargedBonus) == (Decimal("300.00"), Decimal("47.00"))
    assert (fiscal.CardBalance, fiscal.CardActiveBalance) == (Decimal("347.00"), Decimal("347.00"))

    balance = one(service, balance_request({"CardNumber": CARD}))
    assert (balance.ReturnCode, balance.CardActiveBalance) == (0, Decimal("347.00"))

    sale = {"Number": "101", "DateTime": "2026-11-24T09:00:00Z", "BusinessUnit": "SHOP-1", "POS": "POS-3"}
    returned = one(service, cheque("R-7", "Fiscal", operation="Return", reference=sale, items=[ITEMS[1]]))
    assert (returned.ReturnCode, returned.Message) == (0, "OK. Списано: 9,00")
    # the 60 points spent on the position come back, the 9 earned on it go
    assert (returned.ChargedBonus, returned.WriteoffBonus) == (Decimal("60.00"), Decimal("9.00"))
    assert returned.CardActiveBalance == Decimal("398.00")
    gateway.assert_invariants()


def test_a_retried_fiscal_cheque_accrues_once(gateway: Gateway, service: Any) -> None:
    first = one(service, cheque("202", "Fiscal", request_id="fx-1"))
    snapshot = gateway.ledger_snapshot()
    again = one(service, cheque("202", "Fiscal", request_id="fx-1"))
    assert again.TransactionID == first.TransactionID and again.ChargedBonus == Decimal("62.00")
    # a till that resends the same cheque under a new RequestID does not accrue it again either
    resent = one(service, cheque("202", "Fiscal", request_id="fx-2"))
    assert resent.TransactionID == first.TransactionID
    assert gateway.ledger_snapshot() == snapshot
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=SITE).json()["available"] == 662
    # the same number with other goods is another cheque (numbers restart every shift): booked apart
    other = one(service, cheque("202", "Fiscal", items=[ITEMS[0]]))
    assert other.ReturnCode == 0 and other.TransactionID != first.TransactionID
    assert other.ChargedBonus == Decimal("50.00")


def test_coupons_give_the_programs_discount_and_a_single_use_code_is_used_once(gateway: Gateway, service: Any) -> None:
    created = gateway.http.post(
        "/api/v1/campaigns",
        json={"name": "Осень", "description": "10% по купону", "discount_percent": "10"},
        headers={**OPERATOR, **key()},
    )
    assert created.status_code == 200, created.text
    campaign = created.json()["campaign_id"]
    batch = gateway.http.post(f"/api/v1/campaigns/{campaign}/batches", json={"count": 1}, headers={**OPERATOR, **key()})
    codes = gateway.http.get(f"/api/v1/campaigns/{campaign}/batches/{batch.json()['batch_id']}/codes", headers=OPERATOR)
    code = codes.text.splitlines()[1].split(",")[0]

    soft = one(service, cheque("301", "Soft", coupons=[code]))
    assert soft.ReturnCode == 0
    # Manzana's Discount is a percent; SummDiscounted carries the money
    assert (soft.Summ, soft.Discount, soft.SummDiscounted) == (
        Decimal("1250.50"),
        Decimal("10.000"),
        Decimal("1125.45"),
    )
    assert [(i.Discount, i.SummDiscounted) for i in soft.Item] == [
        (Decimal("10.000"), Decimal("900.00")),
        (Decimal("10.000"), Decimal("225.45")),
    ]
    assert soft.ChargedBonus == Decimal("56.00")  # 5 % of 1125.45, not of the full price
    assert [(c.Number, c.ApplicabilityCode) for c in soft.Coupons.Coupon] == [(code, "1")]

    fiscal = one(service, cheque("301", "Fiscal", coupons=[code]))
    assert (fiscal.ReturnCode, fiscal.SummDiscounted) == (0, Decimal("1125.45"))
    snapshot = gateway.ledger_snapshot()
    again = one(service, cheque("302", "Fiscal", coupons=[code]))
    assert (again.ReturnCode, again.Message) == (511, "Купон недоступен")
    assert one(service, cheque("303", "Soft", coupons=["NO-SUCH"])).ReturnCode == 510
    assert gateway.ledger_snapshot() == snapshot
    gateway.assert_invariants()


def test_bonus_request_and_rollback_release_the_soft_hold(gateway: Gateway, service: Any) -> None:
    soft = one(service, cheque("303", "Soft", paid="200"))
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=SITE).json()["held"] == 200
    bonus = {"RequestID": "s-2", "DateTime": MOMENT, "RequestReference": str(soft.TransactionID)}
    released = one(service, {"BonusRequest": bonus})
    assert (released.ReturnCode, released.CardActiveBalance) == (0, Decimal("600.00"))
    assert one(service, {"BonusRequest": bonus}).ReturnCode == 0  # already released: nothing more
    unknown = one(service, {"BonusRequest": {**bonus, "RequestReference": "nope"}})
    assert (unknown.ReturnCode, unknown.Message) == (310, "Транзакция не найдена")

    second = one(service, cheque("304", "Soft", paid="100"))
    rollback = {
        "ChequeType": "Soft",
        "DateTime": MOMENT,
        "OperationType": "Rollback",
        "TransactionReference": {"TransactionID": second.TransactionID},
        "Summ": Decimal(0),
        "Discount": Decimal(0),
        "SummDiscounted": Decimal(0),
    }
    undone = one(service, {"ChequeRequest": rollback})
    assert (undone.ReturnCode, undone.CardActiveBalance) == (0, Decimal("600.00"))
    gateway.assert_invariants()


def test_register_and_balance_by_phone(gateway: Gateway, service: Any) -> None:
    contact = {
        "RequestID": "c-1",
        "DateTime": MOMENT,
        "MobilePhone": "89120007788",
        "FirstName": "Пётр",
        "LastName": "Иванов",
        "BirthDate": "1985-02-03",
    }
    registered = one(service, {"ContactInfoUpdateRequest": contact})
    assert registered.ReturnCode == 0 and len(registered.CardNumber) == 13
    by_phone = one(service, balance_request({"MobilePhone": "+79120007788"}))
    assert (by_phone.CardNumber, by_phone.CardActiveBalance) == (registered.CardNumber, Decimal("100.00"))


def test_business_errors_come_back_as_return_codes(gateway: Gateway, service: Any) -> None:
    snapshot = gateway.ledger_snapshot()
    response = one(service, cheque("404", "Soft", paid="400"))  # 600 available, but at most 375 here
    assert (response.ReturnCode, response.Message) == (301, "Превышена сумма оплаты бонусами")
    assert response.CardActiveBalance == Decimal("600.00")  # Manzana gives balances with an error
    body = cheque("404", "Soft")
    body["ChequeRequest"]["Card"] = {"CardNumber": "0000"}
    response = one(service, body)
    assert (response.ReturnCode, response.Message) == (80241, "Карта не найдена")
    assert gateway.ledger_snapshot() == snapshot


def test_process_request_info_answers_every_request_in_order(gateway: Gateway, service: Any) -> None:
    answers = call(service, balance_request({"CardNumber": CARD}), cheque("501", "Fiscal"), info=True)
    assert [a.ReturnCode for a in answers] == [0, 0]
    assert (answers[0].CardActiveBalance, answers[1].CardActiveBalance) == (Decimal("600.00"), Decimal("662.00"))


def test_a_value_no_card_can_have_is_a_client_fault(gateway: Gateway, service: Any) -> None:
    body = cheque("601", "Fiscal")
    body["ChequeRequest"]["Card"] = {"CardNumber": "2700 0000 00014"}
    snapshot = gateway.ledger_snapshot()
    with pytest.raises(Fault) as caught:
        one(service, body)
    assert "validation_error" in str(caught.value.message)
    assert gateway.ledger_snapshot() == snapshot


def test_the_served_wsdl_is_manzanas_contract(gateway: Gateway) -> None:
    """Names and types as in Manzana's POSProcessing.asmx?WSDL (recorded in Jeiwan/manzana-client
    spec/fixtures/vcr_cassettes/*.yml, first interaction of each)."""
    url = f"{gateway.url}/soap/loyalty"
    served = gateway.http.get("/soap/loyalty?wsdl").text
    assert served == wsdl.wsdl(url)
    zeep_client(f"{url}?wsdl")  # the served document, read by zeep without a warning
    root = etree.fromstring(served.encode())
    xs = "{http://www.w3.org/2001/XMLSchema}"
    schema = root.find(f".//{xs}schema")
    assert schema is not None and schema.get("elementFormDefault") == "qualified"
    etree.XMLSchema(schema)  # compiles
    cheque_type = schema.find(f"{xs}complexType[@name='Cheque']")
    assert cheque_type is not None
    attribute = cheque_type.find(f".//{xs}attribute")
    assert attribute is not None and (attribute.get("name"), attribute.get("type")) == ("ChequeType", "tns:ChequeType")
    sequence = [e.get("name") for e in cheque_type.iter(f"{xs}element")]
    assert sequence == [
        "Number", "OperationType", "Payment", "Summ", "Discount", "SummDiscounted", "PaidByBonus", "Coupons",
        "ExtendedAttribute", "Item",
    ]  # fmt: skip
    base = schema.find(f"{xs}complexType[@name='ResponseBase']")
    assert base is not None
    first = next(base.iter(f"{xs}element"))
    assert (first.get("name"), first.get("type")) == ("TransactionID", "s:integer")
    ports = {p.get("name") for p in root.iter("{http://schemas.xmlsoap.org/wsdl/}port")}
    assert ports == {"POSProcessingSoap", "POSProcessingSoap12"}
    actions = {a.get("soapAction") for a in root.iter() if a.get("soapAction")}
    assert f"{NS}/ProcessRequest" in actions and all(a.isascii() for a in actions)


def test_status_bonuses_are_read_by_zeep_from_our_wsdl(
    start_gateway: Any, demo_config: Any, parsed_wsdl: Client
) -> None:
    """A till configured for the later Manzana's item fields still gets replies our WSDL describes."""
    clients = [
        c.model_copy(update={"soap_status_bonuses": True}) if c.kind == "till" else c for c in demo_config.clients
    ]
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"clients": clients}))
    service = parsed_wsdl.create_service(BINDINGS["1.1"], f"{gw.url}/soap/loyalty")
    soft = one(service, cheque("701", "Soft"))
    assert [(i.ActiveChargedBonus, i.ChargedStatusBonus, i.WriteoffStatusBonus) for i in soft.Item] == [
        (Decimal("50.00"), Decimal("0.00"), Decimal("0.00")),
        (Decimal("12.00"), Decimal("0.00"), Decimal("0.00")),
    ]


def test_zeep_writes_the_cheque_type_as_an_attribute_in_manzanas_order(parsed_wsdl: Client) -> None:
    """A client generated from the WSDL sends what Manzana's does: the ``ChequeType`` attribute,
    RequestBase's elements before the Cheque's."""
    binding = parsed_wsdl.bind("POSProcessing", "POSProcessingSoap")
    message = parsed_wsdl.create_message(binding, "ProcessRequest", request={"_value_1": [cheque("1", "Fiscal")]})
    sent = message.find(f".//{{{NS}}}ChequeRequest")
    assert sent is not None and sent.get("ChequeType") == "Fiscal"
    assert [etree.QName(c).localname for c in sent] == [
        "RequestID", "Card", "DateTime", "Organization", "BusinessUnit", "POS", "Number", "OperationType", "Summ",
        "Discount", "SummDiscounted", "PaidByBonus", "Item", "Item",
    ]  # fmt: skip


ENVELOPE_11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENVELOPE_12 = "http://www.w3.org/2003/05/soap-envelope"
BALANCE_BODY = (
    f'<tns:ProcessRequest xmlns:tns="{NS}"><tns:request><tns:BalanceRequest>'
    f"<tns:RequestId>raw-1</tns:RequestId><tns:Card><tns:CardNumber>{CARD}</tns:CardNumber></tns:Card>"
    f"</tns:BalanceRequest></tns:request></tns:ProcessRequest>"
)


def raw_post(
    gateway: Gateway, body: bytes, *, version: str = "1.1", auth: bool = True, content_type: str | None = None
) -> Any:
    headers = {
        "Content-Type": content_type
        or ("text/xml; charset=utf-8" if version == "1.1" else "application/soap+xml; charset=utf-8")
    }
    if version == "1.1":
        headers["SOAPAction"] = f'"{NS}/ProcessRequest"'
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode("касса:demo-till".encode()).decode()
    return gateway.http.post("/soap/loyalty", content=body, headers=headers)


def envelope(body: str, version: str = "1.1", declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    ns = ENVELOPE_11 if version == "1.1" else ENVELOPE_12
    return f'{declaration}<s:Envelope xmlns:s="{ns}"><s:Body>{body}</s:Body></s:Envelope>'


def fault_code(response: Any) -> str:
    root = etree.fromstring(response.content)
    code = root.find(f".//{{{NS}}}LoyaltyFault/{{{NS}}}Code")
    assert code is not None, response.text
    return str(code.text)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_client_variations_are_tolerated(gateway: Gateway, version: str) -> None:
    # RequestId spelt differently, windows-1251 declared; the reply in Manzana's default namespace
    body = envelope(BALANCE_BODY, version, '<?xml version="1.0" encoding="windows-1251"?>')
    response = raw_post(gateway, body.encode("cp1251"), version=version)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml" if version == "1.1" else "application/soap+xml")
    root = etree.fromstring(response.content)
    answer = root.find(f".//{{{NS}}}BalanceResponse")
    assert answer is not None and answer.prefix is None  # unprefixed, as ASP.NET writes it
    assert root.findtext(f".//{{{NS}}}CardActiveBalance") == "600.00"
    assert root.findtext(f".//{{{NS}}}RequestID") == "raw-1"
    # ChequeType as an element, a Cyrillic article, no namespace on children, cp1251 by HTTP only
    single = (
        f'<ProcessRequest xmlns="{NS}"><request><ChequeRequest>'
        f"<RequestID>raw-2</RequestID><Card><CardNumber>{CARD}</CardNumber></Card>"
        f"<Number>9</Number><OperationType>Sale</OperationType>"
        f"<ChequeType>Fiscal</ChequeType><Item><PositionNumber>1</PositionNumber>"
        f"<Article>Молоко</Article><Price>100</Price><Quantity>1</Quantity>"
        f"<Summ>100</Summ></Item></ChequeRequest></request></ProcessRequest>"
    )
    response = raw_post(
        gateway,
        envelope(single, version, "").encode("cp1251"),
        version=version,
        content_type=("text/xml" if version == "1.1" else "application/soap+xml") + "; charset=windows-1251",
    )
    assert response.status_code == 200, response.text
    assert etree.fromstring(response.content).findtext(f".//{{{NS}}}ChargedBonus") == "5.00"
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=SITE).json()["available"] == 605  # booked


XXE = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope(
    BALANCE_BODY.replace(CARD, "&x;"), declaration=""
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>"
    + envelope(BALANCE_BODY.replace(CARD, "&lol9;"), declaration="")
)
HOSTILE = {
    "xxe": XXE,
    "billion laughs": LAUGHS,
    "oversized": envelope(BALANCE_BODY.replace("raw-1", "x" * (1024 * 1024 + 10))),
    "malformed": envelope(BALANCE_BODY)[:-20],
    "wrong namespace": envelope(BALANCE_BODY.replace(NS, "http://evil.example/loyalty")),
    "not soap": "<Envelope><Body/></Envelope>",
    "too deep": envelope(f'<tns:ProcessRequest xmlns:tns="{NS}">' + "<a>" * 40 + "</a>" * 40 + "</tns:ProcessRequest>"),
    "unknown request": envelope(
        f'<tns:ProcessRequest xmlns:tns="{NS}"><tns:request><tns:Hack/></tns:request></tns:ProcessRequest>'
    ),
    "card with a space": envelope(BALANCE_BODY.replace(CARD, "2700 00000")),
    "bad number": envelope(
        f'<tns:ProcessRequest xmlns:tns="{NS}"><tns:request><tns:ChequeRequest ChequeType="Fiscal">'
        f"<tns:RequestID>h-1</tns:RequestID><tns:Card><tns:CardNumber>{CARD}</tns:CardNumber>"
        f"</tns:Card><tns:Number>1</tns:Number>"
        f"<tns:Item><tns:Price>abc</tns:Price></tns:Item></tns:ChequeRequest></tns:request>"
        f"</tns:ProcessRequest>"
    ),
    "no cheque number": envelope(
        f'<tns:ProcessRequest xmlns:tns="{NS}"><tns:request><tns:ChequeRequest ChequeType="Fiscal">'
        f"<tns:Card><tns:CardNumber>{CARD}</tns:CardNumber></tns:Card></tns:ChequeRequest></tns:request>"
        f"</tns:ProcessRequest>"
    ),
}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_input_is_refused_with_a_fault_and_changes_nothing(gateway: Gateway, case: str, version: str) -> None:
    snapshot = gateway.ledger_snapshot()
    body = HOSTILE[case]
    if version == "1.2":
        body = body.replace(ENVELOPE_11, ENVELOPE_12)
    response = raw_post(gateway, body.encode(), version=version)
    # SOAP's HTTP bindings: 500 for any SOAP 1.1 fault, 400 for a SOAP 1.2 Sender fault
    assert response.status_code == (500 if version == "1.1" else 400), response.text
    assert fault_code(response) == "validation_error"
    root = etree.fromstring(response.content)
    if version == "1.1":
        assert root.findtext(f".//{{{ENVELOPE_11}}}Fault/faultcode") == "soap:Client"
    else:
        value = root.findtext(f".//{{{ENVELOPE_12}}}Fault/{{{ENVELOPE_12}}}Code/{{{ENVELOPE_12}}}Value")
        assert value == "soap12:Sender"
    assert b"root:" not in response.content and b"lollollol" not in response.content
    assert gateway.ledger_snapshot() == snapshot


def test_wrong_credentials_get_401_with_a_fault(gateway: Gateway, parsed_wsdl: Client) -> None:
    response = raw_post(gateway, envelope(BALANCE_BODY).encode(), auth=False)
    assert response.status_code == 401 and fault_code(response) == "unauthorized"
    stranger = zeep_client(f"{gateway.url}/soap/loyalty?wsdl", password="wrong")
    with pytest.raises(Exception, match=r"unauthorized|401"):
        stranger.service.ProcessRequest(request={"_value_1": [balance_request({"CardNumber": CARD})]}, orgName="ORG")

"""The SOAP service, driven by zeep — a real SOAP client — from our own WSDL, over both the
SOAP 1.1 and the SOAP 1.2 binding."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from lxml import etree
from zeep import Client, Settings
from zeep.transports import Transport

from adapters.onec.soap.wsdl import NS
from tests.conftest import Gateway
from tests.support import OPERATOR, SITE, key

CARD = "2700000000014"  # 600 points; demo program: 5 % accrual, at most 30 % by points
PORTS = {"1.1": "LoyaltySoap", "1.2": "LoyaltySoap12"}


def soap_client(gateway: Gateway, version: str, login: str = "касса", password: str = "demo-till") -> Any:
    session = requests.Session()
    session.auth = (login.encode(), password.encode())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zeep must read our WSDL without a single warning
        client = Client(
            f"{gateway.url}/soap/loyalty?wsdl",
            transport=Transport(session=session),
            settings=Settings(strict=True, xml_huge_tree=False),
        )
    return client.bind("LoyaltyService", PORTS[version])


@pytest.fixture(params=["1.1", "1.2"])
def service(request: pytest.FixtureRequest, gateway: Gateway) -> Iterator[Any]:
    yield soap_client(gateway, str(request.param))


def cheque(
    request_id: str,
    number: str,
    cheque_type: str,
    *,
    operation: str = "Sale",
    paid: str = "0",
    reference: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    coupons: list[str] | None = None,
) -> dict[str, Any]:
    items = (
        items
        if items is not None
        else [
            {
                "PositionNumber": "1",
                "Article": "DRILL-01",
                "Price": Decimal("500.00"),
                "Quantity": Decimal(2),
                "Summ": Decimal("1000.00"),
                "Discount": Decimal(0),
                "SummDiscounted": Decimal("1000.00"),
            },
            {
                "PositionNumber": "2",
                "Article": "BITS-SET",
                "Price": Decimal("250.50"),
                "Quantity": Decimal(1),
                "Summ": Decimal("250.50"),
                "Discount": Decimal(0),
                "SummDiscounted": Decimal("250.50"),
            },
        ]
    )
    body: dict[str, Any] = {
        "RequestID": request_id,
        "DateTime": "2026-11-23T12:00:00+03:00",
        "Organization": "ORG",
        "BusinessUnit": "SHOP-1",
        "POS": "POS-3",
        "Card": {"CardNumber": CARD},
        "Number": number,
        "OperationType": operation,
        "ChequeType": cheque_type,
        "Summ": sum((i["Summ"] for i in items), Decimal(0)),
        "Discount": Decimal(0),
        "SummDiscounted": sum((i["SummDiscounted"] for i in items), Decimal(0)),
        "PaidByBonus": Decimal(paid),
        "Item": items,
    }
    if reference is not None:
        body["ChequeReference"] = reference
    if coupons:
        body["Coupons"] = {"Coupon": [{"Number": code} for code in coupons]}
    return {"ChequeRequest": body}


def test_full_purchase_soft_fiscal_balance_return(gateway: Gateway, service: Any) -> None:
    soft = service.ProcessRequest(request=cheque("rq-1", "101", "Soft", paid="300"), orgName="ORG")
    response = soft.ChequeResponse
    assert (response.ReturnCode, response.RequestID) == (0, "rq-1")
    assert response.WriteoffBonus == Decimal("300.00")
    assert response.ChargedBonus == Decimal("47.00")  # 5 % of 950.50
    assert response.AvailablePayment == Decimal("375.00")  # 30 % of 1250.50, the held points included
    assert (response.CardBalance, response.CardActiveBalance) == (Decimal("600.00"), Decimal("300.00"))
    assert [(i.PositionNumber, i.WriteoffBonus, i.ChargedBonus) for i in response.Item] == [
        ("1", Decimal("240.00"), Decimal("38.00")),
        ("2", Decimal("60.00"), Decimal("9.00")),
    ]

    fiscal = service.ProcessRequest(request=cheque("rq-2", "101", "Fiscal", paid="300"), orgName="ORG")
    response = fiscal.ChequeResponse
    assert response.ReturnCode == 0 and response.TransactionID
    assert (response.WriteoffBonus, response.ChargedBonus) == (Decimal("300.00"), Decimal("47.00"))
    assert (response.CardBalance, response.CardActiveBalance) == (Decimal("347.00"), Decimal("347.00"))

    balance = service.ProcessRequest(
        request={"BalanceRequest": {"RequestID": "rq-3", "Card": {"CardNumber": CARD}}}, orgName="ORG"
    ).BalanceResponse
    assert (balance.ReturnCode, balance.CardActiveBalance, balance.CardStatus) == (0, Decimal("347.00"), "active")

    sale = {"Number": "101", "DateTime": "2026-11-23T12:00:00+03:00", "BusinessUnit": "SHOP-1", "POS": "POS-3"}
    returned = service.ProcessRequest(
        request=cheque(
            "rq-4",
            "R-7",
            "Fiscal",
            operation="Return",
            reference=sale,
            items=[
                {
                    "PositionNumber": "2",
                    "Article": "BITS-SET",
                    "Price": Decimal("250.50"),
                    "Quantity": Decimal(1),
                    "Summ": Decimal("250.50"),
                    "Discount": Decimal(0),
                    "SummDiscounted": Decimal("250.50"),
                }
            ],
        ),
        orgName="ORG",
    ).ChequeResponse
    assert returned.ReturnCode == 0
    assert (returned.WriteoffBonus, returned.ChargedBonus) == (Decimal("-60.00"), Decimal("-9.00"))
    assert returned.AvailablePayment == Decimal("190.50")  # money back: 250.50 less the 60 points returned
    assert returned.CardActiveBalance == Decimal("398.00")
    gateway.assert_invariants()


def test_a_retried_fiscal_cheque_accrues_once(gateway: Gateway, service: Any) -> None:
    first = service.ProcessRequest(request=cheque("fx-1", "202", "Fiscal"), orgName="ORG").ChequeResponse
    snapshot = gateway.ledger_snapshot()
    again = service.ProcessRequest(request=cheque("fx-1", "202", "Fiscal"), orgName="ORG").ChequeResponse
    assert again.TransactionID == first.TransactionID and again.ChargedBonus == Decimal("62.00")
    # a till that resends the same cheque under a new RequestID does not accrue it again either
    resent = service.ProcessRequest(request=cheque("fx-2", "202", "Fiscal"), orgName="ORG").ChequeResponse
    assert resent.TransactionID == first.TransactionID
    assert gateway.ledger_snapshot() == snapshot
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=SITE).json()["available"] == 662


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

    soft = service.ProcessRequest(request=cheque("cp-1", "301", "Soft", coupons=[code]), orgName="ORG").ChequeResponse
    assert soft.ReturnCode == 0
    assert (soft.Summ, soft.Discount, soft.SummDiscounted) == (
        Decimal("1250.50"),
        Decimal("125.05"),
        Decimal("1125.45"),
    )
    assert [(i.Discount, i.SummDiscounted) for i in soft.Item] == [
        (Decimal("100.00"), Decimal("900.00")),
        (Decimal("25.05"), Decimal("225.45")),
    ]
    assert soft.ChargedBonus == Decimal("56.00")  # 5 % of 1125.45, not of the full price

    fiscal = service.ProcessRequest(request=cheque("cp-2", "301", "Fiscal", coupons=[code]), orgName="ORG")
    assert (fiscal.ChequeResponse.ReturnCode, fiscal.ChequeResponse.Discount) == (0, Decimal("125.05"))
    snapshot = gateway.ledger_snapshot()
    again = service.ProcessRequest(request=cheque("cp-3", "302", "Fiscal", coupons=[code]), orgName="ORG")
    assert (again.ChequeResponse.ReturnCode, again.ChequeResponse.ErrorCode) == (511, "promocode_unavailable")
    unknown = service.ProcessRequest(request=cheque("cp-4", "303", "Soft", coupons=["NO-SUCH"]), orgName="ORG")
    assert unknown.ChequeResponse.ReturnCode == 510
    assert gateway.ledger_snapshot() == snapshot
    gateway.assert_invariants()


def test_bonus_request_releases_the_soft_hold(gateway: Gateway, service: Any) -> None:
    service.ProcessRequest(request=cheque("s-1", "303", "Soft", paid="200"), orgName="ORG")
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=SITE).json()["held"] == 200
    released = service.ProcessRequest(
        request={"BonusRequest": {"RequestID": "s-2", "RequestReference": "s-1"}}, orgName="ORG"
    ).BonusResponse
    assert (released.ReturnCode, released.CardActiveBalance) == (0, Decimal("600.00"))
    again = service.ProcessRequest(
        request={"BonusRequest": {"RequestID": "s-3", "RequestReference": "s-1"}}, orgName="ORG"
    ).BonusResponse
    assert again.ReturnCode == 0  # already released: nothing more happens
    unknown = service.ProcessRequest(
        request={"BonusRequest": {"RequestID": "s-4", "RequestReference": "nope"}}, orgName="ORG"
    ).BonusResponse
    assert (unknown.ReturnCode, unknown.ErrorCode) == (310, "hold_not_found")


def test_register_and_balance_by_phone(gateway: Gateway, service: Any) -> None:
    registered = service.ProcessRequest(
        request={
            "ContactInfoUpdateRequest": {
                "RequestID": "c-1",
                "MobilePhone": "89120007788",
                "FirstName": "Пётр",
                "LastName": "Иванов",
                "BirthDate": "1985-02-03",
            }
        },
        orgName="ORG",
    ).ContactInfoUpdateResponse
    assert registered.ReturnCode == 0 and len(registered.CardNumber) == 13
    by_phone = service.ProcessRequest(
        request={"BalanceRequest": {"RequestID": "c-2", "MobilePhone": {"Number": "+79120007788"}}}, orgName="ORG"
    ).BalanceResponse
    assert (by_phone.CardNumber, by_phone.CardActiveBalance) == (registered.CardNumber, Decimal("100.00"))


def test_business_errors_come_back_as_return_codes(gateway: Gateway, service: Any) -> None:
    snapshot = gateway.ledger_snapshot()
    body = cheque("e-1", "404", "Soft", paid="400")  # 600 available, but at most 375 on this cheque
    response = service.ProcessRequest(request=body, orgName="ORG").ChequeResponse
    assert (response.ReturnCode, response.ErrorCode) == (301, "points_limit_exceeded")
    body = cheque("e-0", "404", "Soft", paid="1000")
    response = service.ProcessRequest(request=body, orgName="ORG").ChequeResponse
    assert (response.ReturnCode, response.ErrorCode) == (301, "points_limit_exceeded")
    body["ChequeRequest"]["Card"] = {"CardNumber": "0000"}
    response = service.ProcessRequest(request=body, orgName="ORG").ChequeResponse
    assert (response.ReturnCode, response.ErrorCode) == (200, "card_not_found")
    assert gateway.ledger_snapshot() == snapshot


def test_wsdl_is_valid_and_has_both_bindings(gateway: Gateway) -> None:
    text = gateway.http.get("/soap/loyalty?wsdl").content
    root = etree.fromstring(text)
    schema_element = root.find(".//{http://www.w3.org/2001/XMLSchema}schema")
    assert schema_element is not None and schema_element.get("elementFormDefault") == "qualified"
    schema = etree.XMLSchema(schema_element)  # compiles: the types are a valid XML Schema
    bindings = root.findall("{http://schemas.xmlsoap.org/wsdl/}binding")
    assert len(bindings) == 2
    actions = [a.get("soapAction") for a in root.iter() if a.get("soapAction")]
    assert actions and all(a.isascii() for a in actions)
    sample = etree.fromstring(
        f'<ProcessRequest xmlns="{NS}"><request><BalanceRequest><RequestID>x</RequestID></BalanceRequest>'
        f"</request><orgName>o</orgName></ProcessRequest>".encode()
    )
    assert schema.validate(sample), schema.error_log


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
        headers["Authorization"] = "Basic " + __import__("base64").b64encode("касса:demo-till".encode()).decode()
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
    # RequestId spelt differently, no namespace prefix needed on children, windows-1251 declared
    body = envelope(BALANCE_BODY, version, '<?xml version="1.0" encoding="windows-1251"?>')
    response = raw_post(gateway, body.encode("cp1251"), version=version)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml" if version == "1.1" else "application/soap+xml")
    root = etree.fromstring(response.content)
    assert root.findtext(f".//{{{NS}}}CardActiveBalance") == "600.00"
    assert root.findtext(f".//{{{NS}}}RequestID") == "raw-1"
    # a single Item sent as one element, Cyrillic article, cp1251 declared by HTTP only
    single = (
        f'<tns:ProcessRequest xmlns:tns="{NS}"><tns:request><tns:ChequeRequest>'
        f"<tns:RequestID>raw-2</tns:RequestID><tns:Card><tns:CardNumber>{CARD}</tns:CardNumber></tns:Card>"
        f"<tns:Number>9</tns:Number><tns:OperationType>Sale</tns:OperationType>"
        f"<tns:ChequeType>Soft</tns:ChequeType><tns:Item><tns:PositionNumber>1</tns:PositionNumber>"
        f"<tns:Article>Молоко</tns:Article><tns:Price>100</tns:Price><tns:Quantity>1</tns:Quantity>"
        f"<tns:Summ>100</tns:Summ></tns:Item></tns:ChequeRequest></tns:request></tns:ProcessRequest>"
    )
    response = raw_post(
        gateway,
        envelope(single, version, "").encode("cp1251"),
        version=version,
        content_type=("text/xml" if version == "1.1" else "application/soap+xml") + "; charset=windows-1251",
    )
    assert response.status_code == 200, response.text
    assert etree.fromstring(response.content).findtext(f".//{{{NS}}}ChargedBonus") == "5.00"


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
    "no RequestID": envelope(BALANCE_BODY.replace("<tns:RequestId>raw-1</tns:RequestId>", "")),
    "bad number": envelope(
        cheque_xml := f'<tns:ProcessRequest xmlns:tns="{NS}"><tns:request><tns:ChequeRequest>'
        f"<tns:RequestID>h-1</tns:RequestID><tns:Card><tns:CardNumber>{CARD}</tns:CardNumber>"
        f"</tns:Card><tns:Number>1</tns:Number><tns:ChequeType>Fiscal</tns:ChequeType>"
        f"<tns:Item><tns:Price>abc</tns:Price></tns:Item></tns:ChequeRequest></tns:request>"
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
    assert response.status_code == 500, response.text
    assert fault_code(response) == "validation_error"
    root = etree.fromstring(response.content)
    if version == "1.1":
        assert root.findtext(f".//{{{ENVELOPE_11}}}Fault/faultcode") == "soap:Client"
    else:
        assert root.findtext(f".//{{{ENVELOPE_12}}}Fault/{{{ENVELOPE_12}}}Code/{{{ENVELOPE_12}}}Value") == "soap:Sender"
    assert b"root:" not in response.content and b"lollollol" not in response.content
    assert gateway.ledger_snapshot() == snapshot


def test_wrong_credentials_get_401_with_a_fault(gateway: Gateway) -> None:
    response = raw_post(gateway, envelope(BALANCE_BODY).encode(), auth=False)
    assert response.status_code == 401 and fault_code(response) == "unauthorized"
    with pytest.raises(Exception, match=r"unauthorized|401"):
        soap_client(gateway, "1.1", password="wrong").ProcessRequest(
            request={"BalanceRequest": {"RequestID": "w-1", "Card": {"CardNumber": CARD}}}, orgName="ORG"
        )


def test_zeep_sees_a_fault_for_an_unreadable_cheque(gateway: Gateway) -> None:
    from zeep.exceptions import Fault

    service = soap_client(gateway, "1.2")
    with pytest.raises(Fault) as caught:
        service.ProcessRequest(request=cheque("z-1", "1", "Fiscal", paid="0.5"), orgName="ORG")
    assert "validation_error" in str(caught.value.message)

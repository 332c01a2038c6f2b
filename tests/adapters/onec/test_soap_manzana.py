"""Conformance: the SOAP service as Manzana Loyalty's real clients use it, byte for byte.

Each test sends a message shaped exactly as one public client writes it (element order, prefixes,
omitted fields, number and date formats) over a real server on loopback and reads the reply the
way that client reads it:

* Ruby, ``Jeiwan/manzana-client`` (Savon): requests as recorded against a real
  ``POSProcessing.asmx`` in ``spec/fixtures/vcr_cassettes/*.yml``; Savon/Nori reads replies as a
  namespace-less hash with snake_case keys (``lib/manzana/loyalty_service.rb`` ``parse_response``).
* TypeScript, ``darthven/xcom-backend`` (``server/src/utils/soapDefinitions.ts``, ``soapUtil.ts``):
  xml-js ``js2xml`` of ``ChequeSoapRequest``; replies read with ``xml2js(compact)`` by the literal
  keys ``'soap:Envelope'``/``'soap:Body'``/``ProcessRequestResponse`` — prefixes matter.
* PHP, ``JamesBondsky/4lapy`` (``src/External/ManzanaPosService.php``, ``Manzana/Dto/*``):
  ``ProcessRequestInfo`` through PHP's SoapClient (schema order, ``RequestId`` dropped as the
  schema spells it ``RequestID``, dates ``Y-m-d\\TH:i:s``); replies read by namespace.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from adapters.onec.soap.wsdl import NS
from tests.conftest import Gateway
from tests.support import SITE

CARD = "2700000000014"  # demo: 600 points, phone +79990000001; 5 % accrual, at most 30 % by points
PHONE = "+79990000001"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
AUTH = {"Authorization": "Basic " + __import__("base64").b64encode("касса:demo-till".encode()).decode()}


def post(gateway: Gateway, body: bytes, headers: dict[str, str]) -> Any:
    return gateway.http.post("/soap/loyalty", content=body, headers={**AUTH, **headers})


def available(gateway: Gateway, card: str = CARD) -> int:
    return int(gateway.http.get(f"/api/v1/cards/{card}/balance", headers=SITE).json()["available"])


# --- Ruby: Jeiwan/manzana-client (Savon) --------------------------------------------------------

SAVON_HEADERS = {"SOAPAction": f'"{NS}/ProcessRequest"', "Content-Type": "text/xml;charset=UTF-8"}


def t(name: str, *content: str) -> str:
    return f"<tns:{name}>{''.join(content)}</tns:{name}>"


def savon(request: str) -> bytes:
    """The envelope Savon writes (spec/fixtures/vcr_cassettes/sale/success_simple.yml)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' xmlns:tns="{NS}" xmlns:env="{SOAP11}"><env:Body><tns:ProcessRequest><tns:request>{request}'
        "</tns:request><tns:orgName>A5</tns:orgName></tns:ProcessRequest></env:Body></env:Envelope>"
    ).encode()


SAVON_ITEMS = (  # as the cassettes have them: Ruby floats ("100.0"), integer quantities
    t("Item", t("PositionNumber", "1"), t("Article", "123"), t("Price", "100.0"), t("Quantity", "2"),
      t("Summ", "200.0"), t("Discount", "0"), t("SummDiscounted", "200.0"))
    + t("Item", t("PositionNumber", "2"), t("Article", "456"), t("Price", "333.0"), t("Quantity", "4"),
        t("Summ", "1332.0"), t("Discount", "0"), t("SummDiscounted", "1332.0"))
)  # fmt: skip


def savon_tail(moment: str) -> str:
    """Savon's ``common_data`` comes after the cheque's own fields, RequestID always ``1234``."""
    return (
        t("RequestID", "1234")
        + t("Organization", "ilnepartner01")
        + t("DateTime", moment)
        + t("BusinessUnit", "ilneshop01")
        + t("POS", "ilnepos01")
    )


def savon_cheque(
    kind: str,
    number: str,
    *,
    operation: str = "Sale",
    card: str = t("CardNumber", CARD),
    items: str = SAVON_ITEMS,
    summ: str = "1532.0",
    reference: str = "",
    moment: str = "2026-11-23T07:21:55+03:00",
) -> bytes:
    return savon(
        f'<tns:ChequeRequest ChequeType="{kind}">{t("Card", card)}{t("Number", number)}'
        f"{t('OperationType', operation)}{t('Summ', summ)}{t('Discount', '0.0')}{t('SummDiscounted', summ)}"
        f"{t('PaidByBonus', '0.0')}{items}{reference}{savon_tail(moment)}</tns:ChequeRequest>"
    )


def snake(name: str) -> str:
    """Nori's snakecase (how Savon names reply keys): ``TransactionID`` -> ``transaction_id``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def nori(element: etree._Element) -> Any:
    """A reply as Nori parses it for Savon: prefixes stripped, repeated elements as lists."""
    if len(element) == 0:
        return element.text
    result: dict[str, Any] = {}
    for child in element:
        key = snake(etree.QName(child).localname)
        value = nori(child)
        if key in result:
            result[key] = [*result[key], value] if isinstance(result[key], list) else [result[key], value]
        else:
            result[key] = value
    return result


def savon_reply(response: Any, operation: str = "cheque_response") -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = nori(etree.fromstring(response.content))["body"]
    reply = body["process_request_response"]["process_request_result"][operation]
    assert isinstance(reply, dict)
    return reply


def test_ruby_soft_then_fiscal_sale_with_a_reused_request_id_books_once(gateway: Gateway) -> None:
    """sale/success_simple.yml: Soft then Fiscal of one cheque, both with RequestID 1234; the
    Fiscal one must book (it is not a duplicate of the Soft), its resend must not book again."""
    soft = savon_reply(post(gateway, savon_cheque("Soft", "7c2115f3-1"), SAVON_HEADERS))
    assert (soft["return_code"], soft["message"], soft["request_id"]) == ("0", "Начислено: 76,00", "1234")
    assert (soft["summ"], soft["discount"], soft["summ_discounted"]) == ("1532.00", "0.000", "1532.00")
    assert soft["charged_bonus"] == "76.00" and soft["card_active_balance"] == "600.00"
    assert [(i["price"], i["quantity"], i["summ"], i["discount"]) for i in soft["item"]] == [
        ("100.00", "2.000", "200.00", "0.000"),
        ("333.00", "4.000", "1332.00", "0.000"),
    ]
    assert available(gateway) == 600  # a Soft cheque books nothing

    fiscal = savon_reply(
        post(gateway, savon_cheque("Fiscal", "7c2115f3-1", moment="2026-11-23T07:21:58+03:00"), SAVON_HEADERS)
    )
    assert (fiscal["return_code"], fiscal["message"], fiscal["charged_bonus"]) == ("0", "Начислено: 76,00", "76.00")
    assert re.fullmatch(r"-?\d+", fiscal["transaction_id"])  # xs:integer, as Manzana's
    assert fiscal["card_balance"] == "676.00" and available(gateway) == 676
    snapshot = gateway.ledger_snapshot()
    again = savon_reply(post(gateway, savon_cheque("Fiscal", "7c2115f3-1"), SAVON_HEADERS))
    assert again["transaction_id"] == fiscal["transaction_id"] and again["charged_bonus"] == "76.00"
    assert gateway.ledger_snapshot() == snapshot
    other = savon_reply(post(gateway, savon_cheque("Fiscal", "7c2115f3-2"), SAVON_HEADERS))
    assert other["transaction_id"] != fiscal["transaction_id"] and available(gateway) == 752
    gateway.assert_invariants()


def test_ruby_return_finds_its_sale_whatever_the_reference_time(gateway: Gateway) -> None:
    """return/success_simple.yml: the ChequeReference carries ``DateTime.now`` in UTC, not the
    sale's time (here even another day); the sale is found by unit, POS and number."""
    savon_reply(post(gateway, savon_cheque("Fiscal", "3df6-sale", moment="2026-11-23T23:40:00+03:00"), SAVON_HEADERS))
    assert available(gateway) == 676
    reference = t(
        "ChequeReference",
        t("Number", "3df6-sale"),
        t("DateTime", "2026-11-24T09:26:26+00:00"),
        t("Organization", "ilnepartner01"),
        t("BusinessUnit", "ilneshop01"),
        t("POS", "ilnepos01"),
    )
    body = savon_cheque("Fiscal", "3df6-return", operation="Return", reference=reference)
    returned = savon_reply(post(gateway, body, SAVON_HEADERS))
    assert (returned["return_code"], returned["message"]) == ("0", "OK. Списано: 76,00")
    assert returned["writeoff_bonus"] == "76.00"
    assert returned["summ"] == "1532.00" and returned["card_active_balance"] == "600.00"
    snapshot = gateway.ledger_snapshot()
    assert savon_reply(post(gateway, body, SAVON_HEADERS))["return_code"] == "0"  # resent: nothing more
    assert gateway.ledger_snapshot() == snapshot and available(gateway) == 600
    gateway.assert_invariants()


def test_ruby_rollback_by_transaction_reference_undoes_the_fiscal_cheque(gateway: Gateway) -> None:
    """rollback/success_simple.yml: Soft, Fiscal, then Rollback naming the Fiscal reply's
    TransactionID; Manzana answers OK with all amounts zero."""
    savon_reply(post(gateway, savon_cheque("Soft", "4afd-1"), SAVON_HEADERS))
    fiscal = savon_reply(post(gateway, savon_cheque("Fiscal", "4afd-1"), SAVON_HEADERS))
    assert available(gateway) == 676
    rollback = savon(
        '<tns:ChequeRequest ChequeType="Fiscal">'
        + t("Card", t("CardNumber", CARD))
        + t("TransactionReference", t("TransactionID", fiscal["transaction_id"]))
        + t("OperationType", "Rollback")
        + savon_tail("2026-11-23T07:44:19+03:00")
        + "</tns:ChequeRequest>"
    )
    undone = savon_reply(post(gateway, rollback, SAVON_HEADERS))
    assert (undone["return_code"], undone["message"], undone["summ"], undone["charged_bonus"]) == (
        "0",
        "OK",
        "0.00",
        "0.00",
    )
    assert undone["card_active_balance"] == "600.00" and available(gateway) == 600
    snapshot = gateway.ledger_snapshot()
    assert savon_reply(post(gateway, rollback, SAVON_HEADERS))["return_code"] == "0"
    assert gateway.ledger_snapshot() == snapshot
    unknown = rollback.replace(fiscal["transaction_id"].encode(), b"12345")
    assert savon_reply(post(gateway, unknown, SAVON_HEADERS))["return_code"] != "0"
    gateway.assert_invariants()


def test_ruby_cheque_without_positions_is_answered_and_books_nothing(gateway: Gateway) -> None:
    """sale/no_positions.yml: Soft and Fiscal cheques with ``Summ`` 0 and no ``Item``."""
    snapshot = gateway.ledger_snapshot()
    for kind in ("Soft", "Fiscal"):
        reply = savon_reply(post(gateway, savon_cheque(kind, "7c21-empty", items="", summ="0"), SAVON_HEADERS))
        assert (reply["return_code"], reply["message"], reply["summ"]) == ("0", "OK", "0.00")
        assert reply["card_balance"] == "600.00" and "item" not in reply
    assert gateway.ledger_snapshot() == snapshot


def test_ruby_balance_by_card_by_phone_and_an_unknown_card(gateway: Gateway) -> None:
    """balance_request/{success,mobile_phone,wrong_card_number}.yml: ``Card/CardNumber``,
    ``Card/MobilePhone``; an unknown card is ReturnCode 80241 «Карта не найдена»."""

    def balance(card: str) -> dict[str, Any]:
        body = savon(
            "<tns:BalanceRequest>"
            + t("Card", card)
            + t("RequestID", "1234")
            + t("DateTime", "2026-11-23T11:40:59+03:00")
            + t("BusinessUnit", "ilneshop01")
            + t("POS", "ilnepos01")
            + t("Organization", "ilnepartner01")
            + "</tns:BalanceRequest>"
        )
        return savon_reply(post(gateway, body, SAVON_HEADERS), "balance_response")

    by_card = balance(t("CardNumber", CARD))
    assert (by_card["return_code"], by_card["card_number"], by_card["card_balance"]) == ("0", CARD, "600.00")
    by_phone = balance(t("MobilePhone", PHONE))
    assert (by_phone["card_number"], by_phone["card_active_balance"], by_phone["phone"]) == (CARD, "600.00", PHONE)
    unknown = balance(t("CardNumber", "31337"))
    assert (unknown["return_code"], unknown["message"]) == ("80241", "Карта не найдена")
    assert "card_balance" not in unknown


def test_a_cheque_by_phone_accrues_to_the_phones_card(gateway: Gateway) -> None:
    """Issue 19: ``Card/MobilePhone`` in a cheque (Manzana's Card choice) is that phone's card,
    not an anonymous cheque; a phone typed as the card number too."""
    reply = savon_reply(
        post(gateway, savon_cheque("Fiscal", "by-phone-1", card=t("MobilePhone", PHONE)), SAVON_HEADERS)
    )
    assert (reply["return_code"], reply["card_number"], reply["charged_bonus"]) == ("0", CARD, "76.00")
    typed = savon_reply(
        post(gateway, savon_cheque("Fiscal", "by-phone-2", card=t("CardNumber", "8 999 000-00-01")), SAVON_HEADERS)
    )
    assert (typed["card_number"], typed["charged_bonus"]) == (CARD, "76.00")
    assert available(gateway) == 752
    gateway.assert_invariants()


# --- TypeScript: darthven/xcom-backend (xml-js) ---------------------------------------------------


def xmljs_text(name: str, value: str) -> str:
    return f"<{name}>{value}</{name}>"


def xcom_cheque(card: str, items: list[tuple[str, int, str]], *, coupons: list[str] | None = None) -> bytes:
    """``js2xml(ChequeSoapRequest, {compact: true})`` after ``createSoftChequeRequest``: no XML
    declaration, ``soap:`` envelope, default namespace on ``ProcessRequest``, ``ChequeType`` as an
    attribute, RequestID a random number from 1000 to 1100, ``new Date().toISOString()``, Items
    appended after ``PaidByBonus`` in ``addItems``' key order, then ``Coupons``."""
    lines, total = "", Decimal(0)
    for index, (article, quantity, price) in enumerate(items, start=1):
        summ = Decimal(price) * quantity
        total += summ
        lines += (
            "<Item>"
            + xmljs_text("PositionNumber", str(index))
            + xmljs_text("Article", article)
            + xmljs_text("Quantity", str(quantity))
            + xmljs_text("Price", price)
            + xmljs_text("Discount", "0")
            + xmljs_text("Summ", str(summ))
            + xmljs_text("SummDiscounted", str(summ))
            + "</Item>"
        )
    coupon_xml = (
        "<Coupons>" + "".join(f"<Coupon>{xmljs_text('Number', c)}</Coupon>" for c in coupons) + "</Coupons>"
        if coupons
        else ""
    )
    return (
        '<soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Body><ProcessRequest xmlns="{NS}"><request><ChequeRequest ChequeType="Soft">'
        + xmljs_text("RequestID", "1042")
        + xmljs_text("DateTime", "2026-11-23T09:15:02.417Z")
        + xmljs_text("Organization", "1")
        + xmljs_text("BusinessUnit", "001")
        + xmljs_text("POS", "111")
        + f"<Card>{xmljs_text('CardNumber', card)}</Card>"
        + xmljs_text("Number", "Anse-1")
        + xmljs_text("OperationType", "Sale")
        + xmljs_text("Summ", str(total))
        + xmljs_text("Discount", "0")
        + xmljs_text("SummDiscounted", str(total))
        + xmljs_text("PaidByBonus", "0")
        + lines
        + coupon_xml
        + "</ChequeRequest></request>"
        + xmljs_text("orgName", "Ozerki")
        + "</ProcessRequest></soap:Body></soap:Envelope>"
    ).encode()


def xml2js_compact(element: etree._Element) -> Any:
    """xml-js ``xml2js(compact: true)``: keys are tag names *as written* (``soap:Envelope``),
    text under ``_text``, repeated elements as arrays."""
    result: dict[str, Any] = {}
    if element.text and element.text.strip():
        result["_text"] = element.text
    for child in element:
        prefix = child.prefix
        key = f"{prefix}:{etree.QName(child).localname}" if prefix else etree.QName(child).localname
        value = xml2js_compact(child)
        if key in result:
            result[key] = [*result[key], value] if isinstance(result[key], list) else [result[key], value]
        else:
            result[key] = value
    return result


def xcom_reply(response: Any) -> dict[str, Any]:
    """``soapUtil.ts`` ``sendRequest``: the path it walks and the ``_text`` fields it parses."""
    root = etree.fromstring(response.content)
    document = {f"{root.prefix}:{etree.QName(root).localname}": xml2js_compact(root)}
    data = document["soap:Envelope"]["soap:Body"]["ProcessRequestResponse"]["ProcessRequestResult"]["ChequeResponse"]
    assert isinstance(data, dict)
    return data


XCOM_HEADERS = {"Content-Type": "text/xml;charset=UTF-8"}  # httpntlm.post: no SOAPAction


def test_typescript_soft_cheque_read_as_xml_js_reads_it(gateway: Gateway) -> None:
    response = post(gateway, xcom_cheque(CARD, [("30111", 2, "149.5"), ("40222", 1, "99")]), XCOM_HEADERS)
    assert response.status_code == 200, response.text
    data = xcom_reply(response)
    assert data["Message"]["_text"] != "Карта не найдена"
    assert int(data["ReturnCode"]["_text"]) == 0
    # what sendRequest maps into ManzanaCheque
    assert float(data["ChargedBonus"]["_text"]) == 19.0  # 5 % of 398
    assert float(data["Summ"]["_text"]) == 398.0 and float(data["SummDiscounted"]["_text"]) == 398.0
    assert float(data["Discount"]["_text"]) == 0.0
    items = data["Item"] if isinstance(data["Item"], list) else [data["Item"]]
    assert [
        (
            int(i["Article"]["_text"]),
            int(i["Quantity"]["_text"].split(".")[0]),
            float(i["Price"]["_text"]),
            float(i["SummDiscounted"]["_text"]),
            float(i["Discount"]["_text"]),
            float(i["AvailablePayment"]["_text"]),
            float(i["WriteoffBonus"]["_text"]),
        )
        for i in items
    ] == [(30111, 2, 149.5, 299.0, 0.0, 89.0, 0.0), (40222, 1, 99.0, 99.0, 0.0, 30.0, 0.0)]
    assert float(data["AvailablePayment"]["_text"]) == 119.0  # 30 % of 398


def test_typescript_items_read_whole_when_the_till_client_gets_status_bonuses(
    start_gateway: Any, demo_config: Any
) -> None:
    """``sendRequest`` maps every Item with ``parseFloat(item.ChargedStatusBonus._text)`` and the
    other status fields unconditionally: a client configured with ``soap_status_bonuses`` gets them."""
    clients = [
        c.model_copy(update={"soap_status_bonuses": True}) if c.kind == "till" else c for c in demo_config.clients
    ]
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"clients": clients}))
    data = xcom_reply(post(gw, xcom_cheque(CARD, [("30111", 2, "149.5")]), XCOM_HEADERS))
    items = data["Item"] if isinstance(data["Item"], list) else [data["Item"]]
    basket = [
        {
            "goodsId": int(item["Article"]["_text"]),
            "amount": float(item["SummDiscounted"]["_text"]),
            "availablePayment": float(item["AvailablePayment"]["_text"]),
            "chargedStatusBonus": float(item["ChargedStatusBonus"]["_text"]),
            "writeoffBonus": float(item["WriteoffBonus"]["_text"]),
            "writeoffStatusBonus": float(item["WriteoffStatusBonus"]["_text"]),
            "activeChargedBonus": float(item["ActiveChargedBonus"]["_text"]),
            "activeChargedStatusBonus": float(item["ActiveChargedStatusBonus"]["_text"]),
        }
        for item in items
    ]
    assert basket == [
        {
            "goodsId": 30111,
            "amount": 299.0,
            "availablePayment": 89.0,
            "chargedStatusBonus": 0.0,
            "writeoffBonus": 0.0,
            "writeoffStatusBonus": 0.0,
            "activeChargedBonus": 14.0,
            "activeChargedStatusBonus": 0.0,
        }
    ]


def test_typescript_unknown_card_and_coupon_as_the_client_checks_them(gateway: Gateway) -> None:
    unknown = xcom_reply(post(gateway, xcom_cheque("9419410000516", [("30111", 1, "100")]), XCOM_HEADERS))
    assert unknown["Message"]["_text"] == "Карта не найдена"  # soapUtil.ts throws CardNotFound on this text
    assert int(unknown["ReturnCode"]["_text"]) == 80241
    snapshot = gateway.ledger_snapshot()
    bad = xcom_reply(post(gateway, xcom_cheque(CARD, [("30111", 1, "100")], coupons=["NO-SUCH"]), XCOM_HEADERS))
    coupons = bad["Coupons"]["Coupon"]
    coupons = coupons if isinstance(coupons, list) else [coupons]
    assert [c["ApplicabilityCode"]["_text"] for c in coupons] == ["0"]  # checkCoupons: '0' is invalid
    assert coupons[0]["ApplicabilityMessage"]["_text"] == "Купон не найден"
    assert gateway.ledger_snapshot() == snapshot


# --- PHP: JamesBondsky/4lapy (SoapClient, ProcessRequestInfo) ---------------------------------------


def php_cheque(card: str, number: str) -> bytes:
    """PHP's SoapClient serialising ``ProcessRequestInfo`` from the WSDL: ``SOAP-ENV``/``ns1``
    prefixes, schema order, no ``RequestID`` (the DTO's key is ``RequestId``), ``Y-m-d\\TH:i:s``
    dates, ``Discount`` a percent (``ArithmeticHelper::getPercent``), PHP float and int texts."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:ns1="{NS}"><SOAP-ENV:Body><ns1:ProcessRequestInfo><ns1:request><ns1:Requests>'
        '<ns1:ChequeRequest ChequeType="Soft">'
        f"<ns1:Card><ns1:CardNumber>{card}</ns1:CardNumber></ns1:Card>"
        "<ns1:DateTime>2026-11-23T12:30:45</ns1:DateTime><ns1:Organization>4paws</ns1:Organization>"
        "<ns1:BusinessUnit>UT01</ns1:BusinessUnit><ns1:POS>SITE</ns1:POS>"
        f"<ns1:Number>{number}</ns1:Number><ns1:OperationType>Sale</ns1:OperationType>"
        "<ns1:Summ>1000</ns1:Summ><ns1:Discount>10</ns1:Discount><ns1:SummDiscounted>900</ns1:SummDiscounted>"
        "<ns1:PaidByBonus>0</ns1:PaidByBonus>"
        "<ns1:Item><ns1:PositionNumber>1</ns1:PositionNumber><ns1:Article>1019383</ns1:Article>"
        "<ns1:Price>500</ns1:Price><ns1:Quantity>2</ns1:Quantity><ns1:Summ>1000</ns1:Summ>"
        "<ns1:Discount>10</ns1:Discount><ns1:SummDiscounted>900</ns1:SummDiscounted></ns1:Item>"
        "</ns1:ChequeRequest></ns1:Requests></ns1:request><ns1:orgName>4lapy</ns1:orgName>"
        "</ns1:ProcessRequestInfo></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    ).encode()


def test_php_process_request_info_read_by_namespace(gateway: Gateway) -> None:
    """``buildResponseFromRawResponse``: ``ProcessRequestInfoResult->Responses->ChequeResponse``,
    then ReturnCode, Message, balances, Summ/Discount/SummDiscounted and the ``Item`` list."""
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NS}/ProcessRequestInfo"'}
    response = post(gateway, php_cheque(CARD, "1733139045123"), headers)
    assert response.status_code == 200, response.text
    ns = {"m": NS}
    found = etree.fromstring(response.content).xpath(
        "//m:ProcessRequestInfoResponse/m:ProcessRequestInfoResult/m:Responses/m:ChequeResponse", namespaces=ns
    )
    assert len(found) == 1
    cheque = found[0]

    def value(path: str) -> str:
        return str(cheque.xpath(f"string(m:{path})", namespaces=ns))

    assert (value("ReturnCode"), value("Message")) == ("0", "Начислено: 45,00")
    assert "RequestID" not in [etree.QName(c).localname for c in cheque]  # none was sent
    assert (value("Summ"), value("Discount"), value("SummDiscounted")) == ("1000.00", "10.000", "900.00")
    assert (value("CardBalance"), value("CardActiveBalance"), value("ChargedBonus")) == ("600.00", "600.00", "45.00")
    items = cheque.xpath("m:Item", namespaces=ns)
    assert [(i.findtext(f"{{{NS}}}PositionNumber"), i.findtext(f"{{{NS}}}Discount")) for i in items] == [
        ("1", "10.000")
    ]


# --- Program parity, identity, hardening ------------------------------------------------------------


def test_business_unit_is_the_store_its_zone_discount_applies(start_gateway: Any, demo_config: Any) -> None:
    """Issue 16 parity: ``BusinessUnit`` is the store code the program's zones list."""
    program = demo_config.program.model_copy(
        update={
            "catalogue": demo_config.program.catalogue.model_validate(
                {"zones": [{"code": "spb", "stores": ["ilneshop-spb"]}]}
            ),
            "discounts": demo_config.program.discounts.model_validate(
                {
                    "rules": [
                        {"id": "spb-10", "description": "Петербург −10 %", "when": {"zones": ["spb"]}, "percent": 10}
                    ]
                }
            ),
        }
    )
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"program": program}))
    spb = savon_cheque("Soft", "z-1").replace(b"<tns:BusinessUnit>ilneshop01<", b"<tns:BusinessUnit>ilneshop-spb<")
    reply = savon_reply(post(gw, spb, SAVON_HEADERS))
    assert (reply["summ"], reply["discount"], reply["summ_discounted"]) == ("1532.00", "10.000", "1378.80")
    assert [(i["discount"], i["summ_discounted"]) for i in reply["item"]] == [
        ("10.000", "180.00"),
        ("10.000", "1198.80"),
    ]
    assert reply["charged_bonus"] == "68.00"  # 5 % of what is paid
    elsewhere = savon_reply(post(gw, savon_cheque("Soft", "z-2"), SAVON_HEADERS))
    assert (elsewhere["discount"], elsewhere["summ_discounted"]) == ("0.000", "1532.00")


def test_a_fault_means_nothing_of_the_message_was_booked(gateway: Gateway) -> None:
    """Issue 18: a message whose second request is unreadable is a Fault, and its first request
    (a fiscal cheque) is not booked either."""
    snapshot = gateway.ledger_snapshot()
    good = savon_cheque("Fiscal", "ff-1").decode()
    start, end = good.index("<tns:ChequeRequest"), good.index("</tns:request>")
    bad = good[start:end].replace(f"<tns:CardNumber>{CARD}<", "<tns:CardNumber>2700 0000 00014<")
    both = good.replace("</tns:request>", bad + "</tns:request>").encode()
    response = post(gateway, both, SAVON_HEADERS)
    assert response.status_code == 500
    root = etree.fromstring(response.content)
    assert root.findtext(f".//{{{SOAP11}}}Fault/faultcode") == "soap:Client"
    assert root.findtext(f".//{{{NS}}}LoyaltyFault/{{{NS}}}Code") == "validation_error"
    assert gateway.ledger_snapshot() == snapshot


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-7", "utf-8-sig"], ids=lambda e: e
)
def test_a_doctype_is_refused_in_any_encoding(gateway: Gateway, encoding: str) -> None:
    snapshot = gateway.ledger_snapshot()
    text = savon_cheque("Fiscal", "dtd-1").decode()
    declared = text.replace('encoding="UTF-8"', f'encoding="{encoding.replace("-sig", "")}"')
    hostile = declared.replace(
        "?><env:Envelope", '?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><env:Envelope'
    )
    hostile = hostile.replace("<tns:Number>dtd-1<", "<tns:Number>&x;<")
    response = post(gateway, hostile.encode(encoding), {**SAVON_HEADERS, "Content-Type": "text/xml"})
    assert response.status_code == 500 and b"validation_error" in response.content
    assert b"root:" not in response.content
    assert gateway.ledger_snapshot() == snapshot
    if encoding != "utf-7":  # the same message without the DTD is a message like any other
        plain = declared.encode(encoding)
        assert savon_reply(post(gateway, plain, {**SAVON_HEADERS, "Content-Type": "text/xml"}))["return_code"] == "0"


def test_contact_update_in_the_contact_id_and_attribute_shape(gateway: Gateway) -> None:
    body = savon(
        "<tns:ContactInfoUpdateRequest>"
        + t("RequestID", "1234")
        + t("DateTime", "2026-11-23T10:00:00+03:00")
        + t("Attribute", t("Key", "MobilePhone"), t("Value", "+79120007788"))
        + t("Attribute", t("Key", "FirstName"), t("Value", "Пётр"))
        + t("Attribute", t("Key", "EmailAddress"), t("Value", "petr@example.ru"))
        + "</tns:ContactInfoUpdateRequest>"
    )
    created = savon_reply(post(gateway, body, SAVON_HEADERS), "contact_info_update_response")
    assert created["return_code"] == "0" and created["contact_id"] and len(created["card_number"]) == 13
    again = savon_reply(post(gateway, body, SAVON_HEADERS), "contact_info_update_response")
    assert (again["contact_id"], again["card_number"]) == (created["contact_id"], created["card_number"])

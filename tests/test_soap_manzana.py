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
    reply = savon_reply(post(gateway, savon_cheque("Fiscal", "by-phone-1", card=t("MobilePhone", PHONE)), SAVON_HEADERS))
    assert (reply["return_code"], reply["card_number"], reply["charged_bonus"]) == ("0", CARD, "76.00")
    typed = savon_reply(post(gateway, savon_cheque("Fiscal", "by-phone-2", card=t("CardNumber", "8 999 000-00-01")), SAVON_HEADERS))
    assert (typed["card_number"], typed["charged_bonus"]) == (CARD, "76.00")
    assert available(gateway) == 752
    gateway.assert_invariants()

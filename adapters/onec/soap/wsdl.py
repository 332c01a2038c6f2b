"""The WSDL: Manzana Loyalty's ``POSProcessing`` contract (document/literal, SOAP 1.1 and 1.2).

The types are those of Manzana's own ``POSProcessing.asmx?WSDL`` (as recorded in
``Jeiwan/manzana-client`` ``spec/fixtures/vcr_cassettes``): the same names, sequences, choices,
the ``ChequeType`` attribute, integer ``TransactionID``. So a client generated from Manzana's WSDL
and one generated from ours send and read the same bytes. Our additions are only new choices
(``ContactInfoUpdateRequest``, ``BonusRequest`` and their responses) and the batched
``ProcessRequestInfo`` operation, which Manzana's clients never meet unless they use them.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

NS = "http://loyalty.manzanagroup.ru/loyalty.xsd"
ACTION = f"{NS}/ProcessRequest"
ACTION_INFO = f"{NS}/ProcessRequestInfo"
SERVICE = "POSProcessing"
PORT_11 = "POSProcessingSoap"
PORT_12 = "POSProcessingSoap12"


def _el(name: str, xs_type: str, *, required: bool = False, many: bool = False) -> str:
    low = "1" if required else "0"
    high = "unbounded" if many else "1"
    return f'<s:element minOccurs="{low}" maxOccurs="{high}" name="{name}" type="{xs_type}"/>'


def _seq(*fields: str) -> str:
    return f"<s:sequence>{''.join(fields)}</s:sequence>"


def _complex(name: str, *fields: str) -> str:
    return f'<s:complexType name="{name}">{_seq(*fields)}</s:complexType>'


def _extends(name: str, base: str, *fields: str, attributes: str = "") -> str:
    return (
        f'<s:complexType name="{name}"><s:complexContent mixed="false"><s:extension base="tns:{base}">'
        f"{_seq(*fields)}{attributes}</s:extension></s:complexContent></s:complexType>"
    )


def _enum(name: str, *values: str) -> str:
    options = "".join(f'<s:enumeration value="{v}"/>' for v in values)
    return f'<s:simpleType name="{name}"><s:restriction base="s:string">{options}</s:restriction></s:simpleType>'


def _choice(name: str, *alternatives: tuple[str, str]) -> str:
    options = "".join(_el(element, f"tns:{xs_type}") for element, xs_type in alternatives)
    choice = f'<s:choice minOccurs="0" maxOccurs="unbounded">{options}</s:choice>'
    return f'<s:complexType name="{name}"><s:sequence>{choice}</s:sequence></s:complexType>'


S, D, INT = "s:string", "s:decimal", "s:integer"
BALANCE_FIELDS = (
    ("CardNumber", S), ("CardBalance", D), ("CardActiveBalance", D), ("CardSumm", D), ("CardSummDiscounted", D),
    ("CardDiscount", D), ("LevelName", S), ("CardQuantity", INT), ("CashierMessage", S), ("CashierMessage2", S),
    ("ChequeMessage", S), ("ChequeMessage2", S), ("PersonalMessage", S), ("PersonalMessage2", S),
    ("FirstName", S), ("LastName", S), ("MiddleName", S), ("FullName", S), ("BirthDate", "s:date"), ("Age", INT),
    ("Phone", S), ("Email", S),
)  # fmt: skip
CHEQUE_FIELDS = (
    ("Summ", D), ("Discount", D), ("SummDiscounted", D), ("ChargedBonus", D), ("ActiveChargedBonus", D),
    ("AvailablePayment", D), ("WriteoffBonus", D), ("Coupons", "tns:Coupons"), ("InstantCoupons", "tns:InstantCoupons"),
)  # fmt: skip
ITEM_FIELDS = (
    ("PositionNumber", "s:nonNegativeInteger", False), ("Article", S, False), ("ArticleName", S, False),
    ("Price", D, True), ("Quantity", D, True), ("Summ", D, True), ("Discount", D, True), ("SummDiscounted", D, True),
    ("AvailablePayment", D, False), ("ChargedBonus", D, False), ("WriteoffBonus", D, False),
    ("ActiveChargedBonus", D, False),
    # ours, after Manzana's fields: a later Manzana's status bonuses, sent only to clients
    # configured for them (soap_status_bonuses), so clients of the recorded schema never meet them
    ("ChargedStatusBonus", D, False), ("ActiveChargedStatusBonus", D, False), ("WriteoffStatusBonus", D, False),
)  # fmt: skip
REQUESTS = (
    ("BalanceRequest", "RequestBase"),
    ("ChequeRequest", "Cheque"),
    ("OfferRequest", "Cheque"),
    ("ContactInfoUpdateRequest", "ContactInfoUpdate"),
    ("BonusRequest", "BonusRequest"),
)
RESPONSES = (
    ("OfferResponse", "OfferResponseBase"),
    ("BalanceResponse", "BalanceResponseBase"),
    ("ChequeResponse", "ChequeResponseBase"),
    ("ContactInfoUpdateResponse", "ContactInfoUpdateResponse"),
    ("BonusResponse", "BalanceResponseBase"),
)

TYPES = "".join(
    (
        _complex(
            "RequestBase",
            _el("RequestID", S),
            _el("Card", "tns:Card"),
            _el("DateTime", "s:dateTime", required=True),
            _el("Organization", S),
            _el("BusinessUnit", S),
            _el("POS", S),
            _el("ChequeReference", "tns:ChequeReference"),
            _el("TransactionReference", "tns:TransactionReference"),
        ),
        '<s:complexType name="Card"><s:sequence><s:choice minOccurs="1" maxOccurs="1">'
        + "".join(_el(n, S) for n in ("MobilePhone", "Track2", "Tracks", "CardNumber"))
        + "</s:choice></s:sequence></s:complexType>",
        _complex(
            "ChequeReference",
            _el("Organization", S),
            _el("BusinessUnit", S),
            _el("POS", S),
            _el("Number", S),
            _el("DateTime", "s:dateTime", required=True),
        ),
        _complex("TransactionReference", _el("TransactionID", INT)),
        _extends(
            "Cheque",
            "RequestBase",
            _el("Number", S),
            _el("OperationType", "tns:OperationType", required=True),
            _el("Payment", "tns:Payment", many=True),
            _el("Summ", D, required=True),
            _el("Discount", D, required=True),
            _el("SummDiscounted", D, required=True),
            _el("PaidByBonus", D),
            _el("Coupons", "tns:Coupons"),
            _el("ExtendedAttribute", "tns:ExtendedAttributes", many=True),
            _el("Item", "tns:ChequeItem", many=True),
            attributes='<s:attribute name="ChequeType" type="tns:ChequeType"/>',
        ),
        _enum("OperationType", "Sale", "Return", "Rollback"),
        _complex("Payment", _el("ID", S), _el("Value", D, required=True)),
        _complex("Coupons", _el("Coupon", "tns:Coupon", many=True)),
        _complex(
            "Coupon",
            *(_el(n, S) for n in ("Number", "EmissionID", "TypeID", "ApplicabilityMessage", "ApplicabilityCode")),
        ),
        _complex("ExtendedAttributes", _el("Key", S), _el("Value", S)),
        _complex(
            "ChequeItem",
            *(_el(n, t, required=r) for n, t, r in ITEM_FIELDS),
            _el("ExtendedAttribute", "tns:ExtendedAttributes", many=True),
        ),
        _enum("ChequeType", "Fiscal", "Soft"),
        _extends(
            "ContactInfoUpdate",
            "RequestBase",
            *(_el(n, S) for n in ("ContactID", "MobilePhone", "EmailAddress", "FirstName", "LastName", "MiddleName")),
            _el("BirthDate", "s:date"),
            _el("Attribute", "tns:ExtendedAttributes", many=True),
        ),
        _extends("BonusRequest", "RequestBase", _el("RequestReference", S)),
        _choice("RequestList", *REQUESTS),
        _complex(
            "ResponseBase",
            _el("TransactionID", INT),
            _el("RequestID", S),
            _el("Processed", "s:dateTime", required=True),
            _el("ReturnCode", INT),
            _el("Message", S),
        ),
        _extends("OfferResponseBase", "ResponseBase", _el("Offer", "tns:Offer", many=True)),
        _extends("BalanceResponseBase", "ResponseBase", *(_el(n, t) for n, t in BALANCE_FIELDS)),
        _extends(
            "ChequeResponseBase",
            "BalanceResponseBase",
            *(_el(n, t) for n, t in CHEQUE_FIELDS),
            _el("Item", "tns:ChequeItem", many=True),
            _el("Offer", "tns:Offer", many=True),
        ),
        _extends("ContactInfoUpdateResponse", "ResponseBase", _el("CardNumber", S), _el("ContactID", S)),
        _complex("InstantCoupons", _el("InstantCoupon", "tns:InstantCoupon", many=True)),
        _complex(
            "InstantCoupon",
            *(_el(n, S) for n in ("Number", "Type", "Message")),
            _el("EffectDate", "s:dateTime"),
            _el("ExpiryDate", "s:dateTime"),
        ),
        _complex("Offer", _el("OfferName", S), _el("OfferID", INT), _el("OfferElement", "tns:OfferElement", many=True)),
        _complex(
            "OfferElement",
            _el("OfferElementName", S),
            _el("OfferElementID", INT),
            *(_el(n, S) for n in ("Article", "ArticleGroup", "ArticleExtGroup", "Manufacturer")),
            _el("Quantity", D, required=True),
        ),
        _choice("ResponseList", *RESPONSES),
        _complex("LoyaltyFault", _el("Code", S), _el("Message", S)),
    )
)


def _wrapper(element: str, *fields: str) -> str:
    return f'<s:element name="{element}"><s:complexType>{_seq(*fields)}</s:complexType></s:element>'


ELEMENTS = "".join(
    (
        _wrapper("ProcessRequest", _el("request", "tns:RequestList"), _el("orgName", S)),
        _wrapper("ProcessRequestResponse", _el("ProcessRequestResult", "tns:ResponseList")),
        _complex("RequestInfo", _el("Requests", "tns:RequestList")),
        _complex("ResponseInfo", _el("Responses", "tns:ResponseList")),
        _wrapper("ProcessRequestInfo", _el("request", "tns:RequestInfo"), _el("orgName", S)),
        _wrapper("ProcessRequestInfoResponse", _el("ProcessRequestInfoResult", "tns:ResponseInfo")),
        '<s:element name="LoyaltyFault" type="tns:LoyaltyFault"/>',
    )
)

SCHEMA = (
    f'<s:schema xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}" elementFormDefault="qualified"'
    f' targetNamespace="{NS}">{ELEMENTS}{TYPES}</s:schema>'
)
OPERATIONS = (("ProcessRequest", ACTION), ("ProcessRequestInfo", ACTION_INFO))


def _binding(name: str, prefix: str) -> str:
    operations = "".join(
        f'<wsdl:operation name="{op}"><{prefix}:operation soapAction="{action}" style="document"/>'
        f'<wsdl:input><{prefix}:body use="literal"/></wsdl:input>'
        f'<wsdl:output><{prefix}:body use="literal"/></wsdl:output></wsdl:operation>'
        for op, action in OPERATIONS
    )
    return (
        f'<wsdl:binding name="{name}" type="tns:{PORT_11}">'
        f'<{prefix}:binding transport="http://schemas.xmlsoap.org/soap/http"/>{operations}</wsdl:binding>'
    )


def wsdl(location: str) -> str:
    address = quoteattr(location)
    messages = "".join(
        f'<wsdl:message name="{op}SoapIn"><wsdl:part name="parameters" element="tns:{op}"/></wsdl:message>'
        f'<wsdl:message name="{op}SoapOut"><wsdl:part name="parameters" element="tns:{op}Response"/></wsdl:message>'
        for op, _ in OPERATIONS
    )
    port_type = "".join(
        f'<wsdl:operation name="{op}"><wsdl:input message="tns:{op}SoapIn"/>'
        f'<wsdl:output message="tns:{op}SoapOut"/></wsdl:operation>'
        for op, _ in OPERATIONS
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<wsdl:definitions xmlns:s="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"'
        f' xmlns:tns="{NS}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" targetNamespace="{NS}">'
        f"<wsdl:types>{SCHEMA}</wsdl:types>{messages}"
        f'<wsdl:portType name="{PORT_11}">{port_type}</wsdl:portType>'
        f"{_binding(PORT_11, 'soap')}{_binding(PORT_12, 'soap12')}"
        f'<wsdl:service name="{SERVICE}">'
        f'<wsdl:port name="{PORT_11}" binding="tns:{PORT_11}"><soap:address location={address}/></wsdl:port>'
        f'<wsdl:port name="{PORT_12}" binding="tns:{PORT_12}"><soap12:address location={address}/></wsdl:port>'
        "</wsdl:service></wsdl:definitions>\n"
    )

"""The WSDL: document/literal, ``elementFormDefault="qualified"``, nillable elements (as 1C
publishes its own services), one port per SOAP version, ASCII soapActions (zeep breaks on
Cyrillic ones)."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

NS = "http://loyalty.manzanagroup.ru/loyalty.xsd"
ACTION = f"{NS}/ProcessRequest"
SERVICE = "LoyaltyService"
PORT_11 = "LoyaltySoap"
PORT_12 = "LoyaltySoap12"


def _el(name: str, xs_type: str, *, many: bool = False) -> str:
    occurs = ' maxOccurs="unbounded"' if many else ""
    return f'<xs:element name="{name}" type="{xs_type}" minOccurs="0"{occurs} nillable="true"/>'


def _complex(name: str, *fields: str) -> str:
    return f'<xs:complexType name="{name}"><xs:sequence>{"".join(fields)}</xs:sequence></xs:complexType>'


SCHEMA = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}" targetNamespace="{NS}"
 elementFormDefault="qualified" attributeFormDefault="unqualified">
{_complex("Card", _el("CardNumber", "xs:string"))}
{_complex("MobilePhone", _el("Number", "xs:string"), _el("SendCode", "xs:boolean"))}
{_complex("ExtendedAttribute", _el("Key", "xs:string"), _el("Value", "xs:string"))}
{_complex("Coupon", _el("Number", "xs:string"))}
{_complex("Coupons", _el("Coupon", "tns:Coupon", many=True))}
{
    _complex(
        "ChequeItem",
        _el("PositionNumber", "xs:string"),
        _el("Article", "xs:string"),
        _el("Price", "xs:decimal"),
        _el("Quantity", "xs:decimal"),
        _el("Summ", "xs:decimal"),
        _el("Discount", "xs:decimal"),
        _el("SummDiscounted", "xs:decimal"),
        _el("ExtendedAttribute", "tns:ExtendedAttribute", many=True),
    )
}
{
    _complex(
        "ChequeReference",
        _el("Number", "xs:string"),
        _el("DateTime", "xs:dateTime"),
        _el("Organization", "xs:string"),
        _el("BusinessUnit", "xs:string"),
        _el("POS", "xs:string"),
    )
}
{
    _complex(
        "ChequeRequest",
        _el("RequestID", "xs:string"),
        _el("DateTime", "xs:dateTime"),
        _el("Organization", "xs:string"),
        _el("BusinessUnit", "xs:string"),
        _el("POS", "xs:string"),
        _el("Card", "tns:Card"),
        _el("Number", "xs:string"),
        _el("OperationType", "xs:string"),
        _el("ChequeType", "xs:string"),
        _el("Summ", "xs:decimal"),
        _el("Discount", "xs:decimal"),
        _el("SummDiscounted", "xs:decimal"),
        _el("PaidByBonus", "xs:decimal"),
        _el("ChequeReference", "tns:ChequeReference"),
        _el("Item", "tns:ChequeItem", many=True),
        _el("Coupons", "tns:Coupons"),
    )
}
{
    _complex(
        "BalanceRequest",
        _el("RequestID", "xs:string"),
        _el("DateTime", "xs:dateTime"),
        _el("Organization", "xs:string"),
        _el("BusinessUnit", "xs:string"),
        _el("POS", "xs:string"),
        _el("Card", "tns:Card"),
        _el("MobilePhone", "tns:MobilePhone"),
    )
}
{
    _complex(
        "BonusRequest",
        _el("RequestID", "xs:string"),
        _el("DateTime", "xs:dateTime"),
        _el("Organization", "xs:string"),
        _el("BusinessUnit", "xs:string"),
        _el("POS", "xs:string"),
        _el("Card", "tns:Card"),
        _el("OperationType", "xs:string"),
        _el("RequestReference", "xs:string"),
    )
}
{
    _complex(
        "ContactInfoUpdateRequest",
        _el("RequestID", "xs:string"),
        _el("DateTime", "xs:dateTime"),
        _el("Organization", "xs:string"),
        _el("Card", "tns:Card"),
        _el("MobilePhone", "xs:string"),
        _el("EmailAddress", "xs:string"),
        _el("FirstName", "xs:string"),
        _el("LastName", "xs:string"),
        _el("BirthDate", "xs:date"),
    )
}
{
    _complex(
        "Request",
        _el("ChequeRequest", "tns:ChequeRequest"),
        _el("BalanceRequest", "tns:BalanceRequest"),
        _el("BonusRequest", "tns:BonusRequest"),
        _el("ContactInfoUpdateRequest", "tns:ContactInfoUpdateRequest"),
    )
}
{
    _complex(
        "ChequeItemResponse",
        _el("PositionNumber", "xs:string"),
        _el("Article", "xs:string"),
        _el("Summ", "xs:decimal"),
        _el("Discount", "xs:decimal"),
        _el("SummDiscounted", "xs:decimal"),
        _el("AvailablePayment", "xs:decimal"),
        _el("WriteoffBonus", "xs:decimal"),
        _el("ChargedBonus", "xs:decimal"),
    )
}
{
    _complex(
        "ChequeResponse",
        _el("TransactionID", "xs:string"),
        _el("RequestID", "xs:string"),
        _el("Processed", "xs:dateTime"),
        _el("ReturnCode", "xs:int"),
        _el("Message", "xs:string"),
        _el("ErrorCode", "xs:string"),
        _el("CardNumber", "xs:string"),
        _el("CardBalance", "xs:decimal"),
        _el("CardActiveBalance", "xs:decimal"),
        _el("Summ", "xs:decimal"),
        _el("Discount", "xs:decimal"),
        _el("SummDiscounted", "xs:decimal"),
        _el("ChargedBonus", "xs:decimal"),
        _el("AvailablePayment", "xs:decimal"),
        _el("WriteoffBonus", "xs:decimal"),
        _el("Item", "tns:ChequeItemResponse", many=True),
    )
}
{
    _complex(
        "BalanceResponse",
        _el("TransactionID", "xs:string"),
        _el("RequestID", "xs:string"),
        _el("Processed", "xs:dateTime"),
        _el("ReturnCode", "xs:int"),
        _el("Message", "xs:string"),
        _el("ErrorCode", "xs:string"),
        _el("CardNumber", "xs:string"),
        _el("CardBalance", "xs:decimal"),
        _el("CardActiveBalance", "xs:decimal"),
        _el("CardStatus", "xs:string"),
    )
}
{
    _complex(
        "BonusResponse",
        _el("TransactionID", "xs:string"),
        _el("RequestID", "xs:string"),
        _el("Processed", "xs:dateTime"),
        _el("ReturnCode", "xs:int"),
        _el("Message", "xs:string"),
        _el("ErrorCode", "xs:string"),
        _el("CardBalance", "xs:decimal"),
        _el("CardActiveBalance", "xs:decimal"),
    )
}
{
    _complex(
        "ContactInfoUpdateResponse",
        _el("TransactionID", "xs:string"),
        _el("RequestID", "xs:string"),
        _el("Processed", "xs:dateTime"),
        _el("ReturnCode", "xs:int"),
        _el("Message", "xs:string"),
        _el("ErrorCode", "xs:string"),
        _el("CardNumber", "xs:string"),
        _el("ContactID", "xs:string"),
    )
}
{
    _complex(
        "Response",
        _el("ChequeResponse", "tns:ChequeResponse"),
        _el("BalanceResponse", "tns:BalanceResponse"),
        _el("BonusResponse", "tns:BonusResponse"),
        _el("ContactInfoUpdateResponse", "tns:ContactInfoUpdateResponse"),
    )
}
{_complex("LoyaltyFault", _el("Code", "xs:string"), _el("Message", "xs:string"))}
<xs:element name="ProcessRequest"><xs:complexType><xs:sequence>
 {_el("request", "tns:Request")}{_el("orgName", "xs:string")}
</xs:sequence></xs:complexType></xs:element>
<xs:element name="ProcessRequestResponse"><xs:complexType><xs:sequence>
 {_el("ProcessRequestResult", "tns:Response")}
</xs:sequence></xs:complexType></xs:element>
<xs:element name="LoyaltyFault" type="tns:LoyaltyFault"/>
</xs:schema>"""


def wsdl(location: str) -> str:
    address = quoteattr(location)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
 xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:tns="{NS}" targetNamespace="{NS}" name="{SERVICE}">
<wsdl:types>
{SCHEMA}
</wsdl:types>
<wsdl:message name="ProcessRequestRequestMessage">
 <wsdl:part name="parameters" element="tns:ProcessRequest"/>
</wsdl:message>
<wsdl:message name="ProcessRequestResponseMessage">
 <wsdl:part name="parameters" element="tns:ProcessRequestResponse"/>
</wsdl:message>
<wsdl:portType name="{PORT_11}PortType">
 <wsdl:operation name="ProcessRequest">
  <wsdl:input message="tns:ProcessRequestRequestMessage"/>
  <wsdl:output message="tns:ProcessRequestResponseMessage"/>
 </wsdl:operation>
</wsdl:portType>
<wsdl:binding name="{PORT_11}Binding" type="tns:{PORT_11}PortType">
 <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
 <wsdl:operation name="ProcessRequest">
  <soap:operation soapAction="{ACTION}" style="document"/>
  <wsdl:input><soap:body use="literal"/></wsdl:input>
  <wsdl:output><soap:body use="literal"/></wsdl:output>
 </wsdl:operation>
</wsdl:binding>
<wsdl:binding name="{PORT_12}Binding" type="tns:{PORT_11}PortType">
 <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
 <wsdl:operation name="ProcessRequest">
  <soap12:operation soapAction="{ACTION}" style="document"/>
  <wsdl:input><soap12:body use="literal"/></wsdl:input>
  <wsdl:output><soap12:body use="literal"/></wsdl:output>
 </wsdl:operation>
</wsdl:binding>
<wsdl:service name="{SERVICE}">
 <wsdl:port name="{PORT_11}" binding="tns:{PORT_11}Binding"><soap:address location={address}/></wsdl:port>
 <wsdl:port name="{PORT_12}" binding="tns:{PORT_12}Binding"><soap12:address location={address}/></wsdl:port>
</wsdl:service>
</wsdl:definitions>
"""

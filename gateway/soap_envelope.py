"""What every SOAP endpoint of the gateway shares (Manzana's ``POSProcessing``, 1C's
«Дисконтный сервер»): the two envelope namespaces, their content types, the exception a SOAP
reply carries, and finding the operation element in a parsed envelope. How each writes its
replies and faults (ASP.NET's prefixes or 1C's) stays with its adapter."""

from __future__ import annotations

from typing import Literal

from lxml import etree

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
Version = Literal["1.1", "1.2"]
CONTENT_TYPE: dict[Version, str] = {
    "1.1": "text/xml; charset=utf-8",
    "1.2": "application/soap+xml; charset=utf-8",
}


class SoapFault(Exception):
    """Answered as a SOAP Fault: ``sender`` faults are the client's, others ours."""

    def __init__(self, code: str, message: str, *, sender: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sender = sender


def local(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def operation_of(root: etree._Element, *, not_envelope: str, no_body: str) -> tuple[Version, etree._Element]:
    """The SOAP version and the first element of the Body; the adapter's own texts for a
    document that is not an envelope and for an envelope without a body."""
    qname = etree.QName(root)
    if qname.localname != "Envelope" or qname.namespace not in (SOAP11, SOAP12):
        raise SoapFault("validation_error", not_envelope)
    body = root.find(f"{{{qname.namespace}}}Body")
    if body is None or len(body) == 0:
        raise SoapFault("validation_error", no_body)
    return ("1.1" if qname.namespace == SOAP11 else "1.2"), body[0]

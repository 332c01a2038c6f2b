"""SOAP 1.1 and 1.2 envelopes and faults, written as ASP.NET (Manzana's ``POSProcessing.asmx``)
writes them: ``soap:Envelope``/``soap:Body`` (``soap12:`` for 1.2), the payload in Manzana's
default namespace with unprefixed children."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from adapters.onec.soap.wsdl import NS
from gateway.soap_envelope import SOAP11, SOAP12, SoapFault, Version, local, operation_of

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
OPERATIONS = ("ProcessRequest", "ProcessRequestInfo")
# Manzana's namespace, unprefixed (lxml takes None for the default prefix; its stubs say str).
DEFAULT_NS: dict[str, str] = {None: NS}  # type: ignore[dict-item]


@dataclass(frozen=True)
class Incoming:
    version: Version
    operation: etree._Element  # the ProcessRequest or ProcessRequestInfo element

    @property
    def batched(self) -> bool:
        return local(self.operation) == "ProcessRequestInfo"


def open_envelope(root: etree._Element) -> Incoming:
    version, operation = operation_of(
        root, not_envelope="not a SOAP envelope (SOAP 1.1 or 1.2)", no_body="the envelope has no Body"
    )
    op_name = etree.QName(operation)
    if op_name.namespace != NS:
        raise SoapFault("validation_error", f"unknown namespace {op_name.namespace!r}; expected {NS}")
    if op_name.localname not in OPERATIONS:
        raise SoapFault("validation_error", f"unknown operation {op_name.localname!r}")
    return Incoming(version=version, operation=operation)


def _envelope(version: Version) -> tuple[etree._Element, etree._Element]:
    ns, prefix = (SOAP11, "soap") if version == "1.1" else (SOAP12, "soap12")
    envelope = etree.Element(f"{{{ns}}}Envelope", nsmap={prefix: ns, "xsi": XSI, "xsd": XSD})
    body = etree.SubElement(envelope, f"{{{ns}}}Body")
    return envelope, body


def reply(version: Version, payload: etree._Element) -> bytes:
    envelope, body = _envelope(version)
    body.append(payload)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def fault(version: Version, error: SoapFault) -> bytes:
    envelope, body = _envelope(version)
    ns = SOAP11 if version == "1.1" else SOAP12
    detail_payload = etree.Element(f"{{{NS}}}LoyaltyFault", nsmap=DEFAULT_NS)
    etree.SubElement(detail_payload, f"{{{NS}}}Code").text = error.code
    etree.SubElement(detail_payload, f"{{{NS}}}Message").text = error.message
    node = etree.SubElement(body, f"{{{ns}}}Fault")
    if version == "1.1":
        etree.SubElement(node, "faultcode").text = "soap:Client" if error.sender else "soap:Server"
        etree.SubElement(node, "faultstring").text = f"{error.code}: {error.message}"
        etree.SubElement(node, "detail").append(detail_payload)
    else:
        code = etree.SubElement(node, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = "soap12:Sender" if error.sender else "soap12:Receiver"
        reason = etree.SubElement(node, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "ru")
        text.text = f"{error.code}: {error.message}"
        etree.SubElement(node, f"{{{ns}}}Detail").append(detail_payload)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))

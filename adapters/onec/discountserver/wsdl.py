"""The WSDL, generated the way the 1C platform publishes a web service.

The shape follows WSDLs that 1C itself serves (e.g. its standard ``WebCommonInfoBases`` service,
as copied in ``korableg/V8I.Manager``): WSDL 1.1 in the default namespace, prefixes ``soapbind``
and ``soap12bind``, one ``xs:schema`` with ``elementFormDefault="qualified"``, a wrapper element
per operation and ``<operation>Response`` holding ``return``, messages
``<operation>RequestMessage``/``ResponseMessage`` with the part ``parameters``, the port type
``<service>PortType``, bindings ``<service>SoapBinding`` and ``<service>Soap12Binding`` (document,
literal, soapAction ``<namespace>#<service>:<operation>``) and the ports ``<service>Soap`` and
``<service>Soap12`` — the store's ``WSПрокси`` asks for ``ДисконтныйСерверSoap``.
"""

from __future__ import annotations

from functools import lru_cache

from lxml import etree

from adapters.onec.discountserver.schema import NS, OPERATIONS, SERVICE, TYPES, XS, Prop

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAPBIND = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12BIND = "http://schemas.xmlsoap.org/wsdl/soap12/"
HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
_MARK = "__LOCATION__"


def _qualified(type_name: str) -> str:
    return type_name if type_name.startswith("xs:") else f"tns:{type_name}"


def _element(parent: etree._Element, prop: Prop) -> None:
    node = etree.SubElement(parent, f"{{{XS}}}element", name=prop.name, type=_qualified(prop.type))
    if prop.many:
        node.set("minOccurs", "0")
        node.set("maxOccurs", "unbounded")
    if prop.nillable:
        node.set("nillable", "true")


def _schema(types: etree._Element) -> None:
    schema = etree.SubElement(
        types,
        f"{{{XS}}}schema",
        nsmap={"xs": XS, "tns": NS},
        targetNamespace=NS,
        attributeFormDefault="unqualified",
        elementFormDefault="qualified",
    )
    for name, props in TYPES.items():
        complex_type = etree.SubElement(schema, f"{{{XS}}}complexType", name=name)
        sequence = etree.SubElement(complex_type, f"{{{XS}}}sequence")
        for prop in props:
            _element(sequence, prop)
    for operation in OPERATIONS:
        for element_name, props in (
            (operation.name, operation.params),
            (f"{operation.name}Response", (Prop("return", operation.returns, nillable=operation.returns_nillable),)),
        ):
            element = etree.SubElement(schema, f"{{{XS}}}element", name=element_name)
            sequence = etree.SubElement(etree.SubElement(element, f"{{{XS}}}complexType"), f"{{{XS}}}sequence")
            for prop in props:
                _element(sequence, prop)


def _binding(root: etree._Element, suffix: str, ns: str) -> None:
    binding = etree.SubElement(
        root, f"{{{WSDL}}}binding", name=f"{SERVICE}{suffix}Binding", type=f"tns:{SERVICE}PortType"
    )
    etree.SubElement(binding, f"{{{ns}}}binding", style="document", transport=HTTP_TRANSPORT)
    for operation in OPERATIONS:
        node = etree.SubElement(binding, f"{{{WSDL}}}operation", name=operation.name)
        etree.SubElement(node, f"{{{ns}}}operation", style="document", soapAction=f"{NS}#{SERVICE}:{operation.name}")
        for direction in ("input", "output"):
            etree.SubElement(etree.SubElement(node, f"{{{WSDL}}}{direction}"), f"{{{ns}}}body", use="literal")


@lru_cache(maxsize=1)
def _template() -> str:
    root = etree.Element(
        f"{{{WSDL}}}definitions",
        nsmap={None: WSDL, "soap12bind": SOAP12BIND, "soapbind": SOAPBIND, "tns": NS, "xsd": XS, "xsd1": NS},  # type: ignore[dict-item]
        name=SERVICE,
        targetNamespace=NS,
    )
    _schema(etree.SubElement(root, f"{{{WSDL}}}types"))
    for operation in OPERATIONS:
        for kind, element in (("Request", operation.name), ("Response", f"{operation.name}Response")):
            message = etree.SubElement(root, f"{{{WSDL}}}message", name=f"{operation.name}{kind}Message")
            etree.SubElement(message, f"{{{WSDL}}}part", name="parameters", element=f"tns:{element}")
    port_type = etree.SubElement(root, f"{{{WSDL}}}portType", name=f"{SERVICE}PortType")
    for operation in OPERATIONS:
        node = etree.SubElement(port_type, f"{{{WSDL}}}operation", name=operation.name)
        etree.SubElement(node, f"{{{WSDL}}}input", message=f"tns:{operation.name}RequestMessage")
        etree.SubElement(node, f"{{{WSDL}}}output", message=f"tns:{operation.name}ResponseMessage")
    _binding(root, "Soap", SOAPBIND)
    _binding(root, "Soap12", SOAP12BIND)
    service = etree.SubElement(root, f"{{{WSDL}}}service", name=SERVICE)
    port = etree.SubElement(service, f"{{{WSDL}}}port", name=f"{SERVICE}Soap", binding=f"tns:{SERVICE}SoapBinding")
    documentation = etree.SubElement(port, f"{{{WSDL}}}documentation")
    claim_ns = "http://ws-i.org/schemas/conformanceClaim/"
    etree.SubElement(
        documentation, f"{{{claim_ns}}}Claim", nsmap={"wsi": claim_ns}, conformsTo="http://ws-i.org/profiles/basic/1.1"
    )
    etree.SubElement(port, f"{{{SOAPBIND}}}address", location=_MARK)
    port12 = etree.SubElement(
        service, f"{{{WSDL}}}port", name=f"{SERVICE}Soap12", binding=f"tns:{SERVICE}Soap12Binding"
    )
    etree.SubElement(port12, f"{{{SOAP12BIND}}}address", location=_MARK)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)).decode("utf-8")


def wsdl(location: str) -> bytes:
    """The service description with both ports at ``location`` (the URL the store called)."""
    escaped = location.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return _template().replace(_MARK, escaped).encode("utf-8")

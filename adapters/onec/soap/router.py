"""``/soap/loyalty``: the WSDL at ``?wsdl`` (GET); ``ProcessRequest`` and ``ProcessRequestInfo``
(POST, SOAP 1.1 or 1.2). Faults go out as SOAP's HTTP bindings say: 500 for SOAP 1.1, 400 for a
SOAP 1.2 ``Sender`` fault."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from adapters.onec.soap import envelope, handlers, wsdl
from contracts.errors import LoyaltyError
from gateway import xmlsafe
from gateway.soap_envelope import CONTENT_TYPE, SoapFault, Version

log = logging.getLogger("adapters.onec.soap")
PATH = "/soap/loyalty"


def _version_hint(request: Request) -> Version:
    content_type = request.headers.get("content-type", "")
    return "1.2" if "application/soap+xml" in content_type else "1.1"


def _fault(version: Version, error: SoapFault, status: int | None = None) -> Response:
    if status is None:
        status = 400 if version == "1.2" and error.sender else 500
    headers = {"WWW-Authenticate": 'Basic realm="loyalty-soap", charset="UTF-8"'} if status == 401 else None
    return Response(
        envelope.fault(version, error), status_code=status, media_type=CONTENT_TYPE[version], headers=headers
    )


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(PATH)
    async def service_description(request: Request) -> Response:
        if "wsdl" not in {k.lower() for k in request.query_params}:
            return Response("append ?wsdl for the service description", media_type="text/plain")
        location = str(request.url.replace(query=""))
        return Response(wsdl.wsdl(location), media_type="text/xml; charset=utf-8")

    @router.post(PATH)
    async def process(request: Request) -> Response:
        version = _version_hint(request)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > xmlsafe.MAX_BYTES:
            return _fault(version, SoapFault("validation_error", "message too large"))
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > xmlsafe.MAX_BYTES:
                return _fault(version, SoapFault("validation_error", "message too large"))
        try:
            authenticator = request.app.state.authenticator
            client = authenticator.from_header(request.headers.get("authorization"), capability="loyalty")
        except LoyaltyError as exc:
            return _fault(version, SoapFault(exc.code.value, exc.message), status=401)
        try:
            incoming = envelope.open_envelope(xmlsafe.parse(bytes(body), request.headers.get("content-type")))
        except xmlsafe.UnsafeXml as exc:
            return _fault(version, SoapFault("validation_error", str(exc)))
        except SoapFault as exc:
            return _fault(version, exc)
        service = request.app.state.service
        call = handlers.Call(service=service, client=client, now=service.clock())
        try:
            payload = await run_in_threadpool(handlers.process, call, incoming.operation)
        except SoapFault as exc:
            return _fault(incoming.version, exc)
        except LoyaltyError as exc:
            return _fault(incoming.version, SoapFault(exc.code.value, exc.message))
        except ValidationError as exc:  # a value no operation accepts is the client's error
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return _fault(incoming.version, SoapFault("validation_error", f"{where}: {first['msg']}"))
        except Exception:
            log.exception(
                "SOAP ProcessRequest by %s failed: %s", client.id, handlers.request_summary(incoming.operation)
            )
            return _fault(incoming.version, SoapFault("internal_error", "unexpected failure", sender=False))
        return Response(envelope.reply(incoming.version, payload), media_type=CONTENT_TYPE[incoming.version])

    return router

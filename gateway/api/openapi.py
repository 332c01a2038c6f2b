"""The OpenAPI description says what the service does (checked by schemathesis in the tests).

FastAPI derives most of it from the routes; this fills in what it cannot see:

- who may call: HTTP Basic or a Bearer token on every ``/api/v1`` operation but the error catalogue;
- the errors every authenticated operation can answer with, whatever its handler: 401 and 429
  (credentials, failed-login limit, answered before the body is read), 403 (role), 413 (body
  limit), 422 (validation) and 500, all as ``{"error": {code, message, details}}`` — FastAPI's own
  ``HTTPValidationError`` (a list) is never what the gateway sends;
- 400 where an ``Idempotency-Key`` is expected;
- the media types of the plain-text replies (the CommerceML exchange, the metrics, CSV exports);
- one operation id per method of a route that serves several methods.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from contracts.errors import ERROR_CATALOGUE

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
ALWAYS = {
    "401": "Missing or wrong credentials",
    "403": "The client's role does not allow this operation",
    "413": "The request body is larger than this endpoint accepts",
    "422": "The request is invalid",
    "429": "Too many failed logins or requests; see Retry-After",
    "500": "Unexpected failure; nothing was changed",
}
PUBLIC = frozenset({"/api/v1/errors"})
TEXT_REPLIES = {"/bitrix/admin/1c_exchange.php": "text/plain", "/metrics": "text/plain"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _document(spec: dict[str, Any]) -> dict[str, Any]:
    components = spec.setdefault("components", {})
    schemes = components.setdefault("securitySchemes", {})
    schemes["basic"] = {"type": "http", "scheme": "basic"}
    schemes["bearer"] = {"type": "http", "scheme": "bearer"}
    components.setdefault("schemas", {}).pop("HTTPValidationError", None)
    components["schemas"].pop("ValidationError", None)
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if len(operations) > 1 and "operationId" in operation:
                operation["operationId"] = f"{operation['operationId'].removesuffix('_' + method)}_{method}"
            if path in TEXT_REPLIES:
                for status, response in responses.items():
                    if status.startswith("2"):
                        response["content"] = {TEXT_REPLIES[path]: {"schema": {"type": "string"}}}
            for response in responses.values():
                content = response.get("content", {})
                if "text/csv" in content:
                    content.pop("application/json", None)
                json_body = content.get("application/json", {})
                if json_body.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                    json_body["schema"] = ERROR_REF
            if not path.startswith("/api/v1/") or path in PUBLIC:
                continue
            operation["security"] = [{"basic": []}, {"bearer": []}]
            for status, description in ALWAYS.items():
                responses.setdefault(status, _error_response(description))
            for spec_ in ERROR_CATALOGUE.values():  # a business error may come from any layer
                responses.setdefault(str(spec_.http_status), _error_response(spec_.description))
            if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
                responses.setdefault("400", _error_response("An Idempotency-Key is required"))
    return spec


def secure_openapi(app: FastAPI) -> None:
    """Serve the completed description at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _document(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

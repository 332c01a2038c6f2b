"""The operator page: stuck and dead-lettered transactions, their history, a replay button.

Server-rendered (Jinja2, autoescaped), behind HTTP Basic with operator credentials. Replay is a
POST form carrying a CSRF token bound to the operator and the item, so a page elsewhere cannot
make the operator's browser replay anything. The token's key is the installation's (kept in the
database), so a form rendered by one server process is accepted by every other. Pages may not be
framed and load nothing from elsewhere (``X-Frame-Options``, ``Content-Security-Policy``).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from contracts.errors import ErrorCode, LoyaltyError
from gateway.api.auth import require_operator
from gateway.config import ClientConfig
from gateway.ledger import journal
from gateway.notify.verification import shared_secret
from gateway.workers.stuck import StuckTransactions, UnknownItem

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
Operator = Annotated[ClientConfig, Depends(require_operator)]


CSRF_SECRET = "operator-csrf"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _csrf_key(request: Request) -> bytes:
    key: bytes | None = getattr(request.app.state, "csrf_key", None)
    if key is None:
        service = request.app.state.service
        with service.db.write() as session:
            key = shared_secret(session, CSRF_SECRET, service.clock())
        request.app.state.csrf_key = key
    return key


def _csrf(request: Request, operator: ClientConfig, item_id: str) -> str:
    return hmac.new(_csrf_key(request), f"{operator.id}|{item_id}".encode(), hashlib.sha256).hexdigest()


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _stuck(request: Request) -> StuckTransactions:
    return StuckTransactions(request.app.state.service, request.app.state.relay)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/operator", include_in_schema=False)

    @router.get("", response_class=HTMLResponse)
    def overview(request: Request, operator: Operator, flash: str | None = None) -> Response:
        stuck = _stuck(request)
        items = stuck.list()
        service = request.app.state.service
        report = service.check()
        with service.db.read() as session:
            recent = journal.query(session, limit=30)
        page = TEMPLATES.TemplateResponse(
            request,
            "operator.html",
            {
                "cml_failed": request.app.state.operator_notices(),
                "items": items,
                "tokens": {item.id: _csrf(request, operator, item.id) for item in items},
                "report": report,
                "recent": recent,
                "flash": flash,
                "operator": operator,
            },
        )
        return _secured(page)

    @router.get("/items/{item_id}", response_class=HTMLResponse)
    def item(request: Request, item_id: str, operator: Operator) -> Response:
        try:
            history = _stuck(request).show(item_id)
        except UnknownItem as exc:
            raise LoyaltyError(ErrorCode.NOT_FOUND, f"no transaction {item_id}") from exc
        page = TEMPLATES.TemplateResponse(
            request,
            "operator_item.html",
            {"item_id": item_id, "history": history, "token": _csrf(request, operator, item_id)},
        )
        return _secured(page)

    @router.post("/replay")
    def replay(
        request: Request,
        operator: Operator,
        item_id: Annotated[str, Form(max_length=80)],
        token: Annotated[str, Form(max_length=128)],
    ) -> Response:
        if not hmac.compare_digest(token, _csrf(request, operator, item_id)):
            raise LoyaltyError(ErrorCode.FORBIDDEN, "stale or forged form; reload the page")
        try:
            outcome = _stuck(request).replay(item_id)
        except UnknownItem:
            outcome = "no such transaction"
        except LoyaltyError as exc:
            outcome = f"failed: {exc.code.value}: {exc.message}"
        return _secured(RedirectResponse(f"/operator?flash={quote(f'{item_id}: {outcome}')}", status_code=303))

    return router

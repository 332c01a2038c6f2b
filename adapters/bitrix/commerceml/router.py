"""``/bitrix/admin/1c_exchange.php``: where 1C's "exchange with site" calls a 1C-Bitrix site.

GET or POST, parameters in the query string (``type``, ``mode``, ``filename``, ``sessid``,
``version``). ``checkauth`` takes HTTP Basic credentials of the configured client (Cyrillic
logins are decoded as UTF-8), or the cookie of a live session (a logged-in PHP session); every
other call is authenticated by the session cookie it returned — a missing, unknown or expired
cookie gets ``failure`` (``error`` for ``success``), as Bitrix answers. Replies are encoded in
``commerceml.encoding`` (windows-1251 by default, which is all Bitrix ever sends) and labelled
as Bitrix labels them: ``text/html`` for text, ``application/xml`` for ``query`` and ``info``.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from adapters.bitrix.commerceml import exchange, store
from adapters.bitrix.commerceml.exchange import Reply, text
from adapters.bitrix.common import BodyTooLarge, bitrix_section, read_body
from adapters.bitrix.config import CommerceMLConfig
from contracts.errors import LoyaltyError
from gateway.api.auth import Authenticator
from gateway.ledger.service import LoyaltyService

PATH = "/bitrix/admin/1c_exchange.php"


def _render(reply: Reply, cfg: CommerceMLConfig) -> Response:
    if reply.xml is not None:
        return Response(reply.xml, media_type=f"application/xml; charset={cfg.encoding}")
    response = Response(
        reply.text.encode(cfg.encoding, errors="replace"), media_type=f"text/html; charset={cfg.encoding}"
    )
    response.headers["Cache-Control"] = "no-store"
    if reply.cookie is not None:
        response.set_cookie(reply.cookie[0], reply.cookie[1], httponly=True, path="/")
    return response


def dispatch(
    service: LoyaltyService,
    cfg: CommerceMLConfig,
    authenticator: Authenticator,
    params: dict[str, str],
    authorization: str | None,
    cookie: str | None,
    body: bytes,
) -> Reply:
    kind = params.get("type", "").strip().lower()
    mode = params.get("mode", "").strip().lower()
    if kind != "sale":
        return text("failure", exchange.ONLY_SALE)
    ttl = timedelta(seconds=cfg.session_ttl_seconds)
    if mode == "checkauth":
        if authorization is None and store.find_session(service.db, cookie, ttl, service.clock()) is not None:
            return exchange.checkauth(service, cfg, cfg.client, cookie)
        try:
            client = authenticator.from_header(authorization, capability="loyalty")
        except LoyaltyError:
            return text("failure", exchange.AUTH_FAILED)
        if client.id != cfg.client:
            return text("failure", exchange.NO_RIGHTS)
        return exchange.checkauth(service, cfg, client.id, cookie)
    session = store.find_session(service.db, cookie, ttl, service.clock())
    if session is None:
        return text("error" if mode == "success" else "failure", exchange.AUTH_FAILED)
    sessid = params.get("sessid")
    if sessid and sessid.removeprefix("sessid=") != session.sessid:
        return text("failure", exchange.SESSID_MISMATCH)
    if mode == "init":
        return exchange.init(service, cfg, session, params.get("version"))
    if mode == "file":
        return exchange.upload(service, cfg, session, params.get("filename"), body)
    if mode == "import":
        return exchange.import_step(service, cfg, session, params.get("filename"))
    if mode == "query":
        return exchange.query(service, cfg)
    if mode == "info":
        return exchange.info(cfg)
    if mode == "success":
        return exchange.success(service, cfg)
    return text("failure", exchange.UNKNOWN_COMMAND)


def build_router() -> APIRouter:
    router = APIRouter(tags=["bitrix"])

    @router.api_route(PATH, methods=["GET", "POST"], summary="1C exchange with the site (CommerceML, type=sale)")
    async def exchange_1c(request: Request) -> Response:
        section = bitrix_section(request)
        if section is None or section.commerceml is None:
            return Response("failure\nexchange is not configured\n", status_code=404, media_type="text/plain")
        cfg = section.commerceml
        params = {k: v for k, v in request.query_params.items()}
        body = b""
        if params.get("mode", "").strip().lower() == "file":
            try:
                body = await read_body(request, cfg.file_limit)
            except BodyTooLarge:
                return _render(text("failure", f"Часть файла больше file_limit={cfg.file_limit} байт."), cfg)
        reply = await run_in_threadpool(
            dispatch,
            request.app.state.service,
            cfg,
            request.app.state.authenticator,
            params,
            request.headers.get("authorization"),
            request.cookies.get(cfg.cookie_name),
            body,
        )
        return _render(reply, cfg)

    return router

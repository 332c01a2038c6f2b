"""The FastAPI application: JSON API, health, error handling, background workers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.bitrix.router import build_router as build_bitrix_router
from adapters.onec.discountserver.router import build_router as build_discountserver_router
from adapters.onec.loyaltyservice.router import build_router as build_loyaltyservice_router
from adapters.onec.soap.router import build_router as build_soap_router
from adapters.telegram_bot import build_router as build_telegram_router
from adapters.vk import build_router as build_vk_router
from contracts.errors import ErrorCode, LoyaltyError
from gateway import __version__
from gateway.api import (
    accounts,
    campaigns,
    customers_profile,
    giftcards,
    mailings,
    operator,
    orders,
    program,
    registration,
    tier_progress,
    v1,
)
from gateway.api.auth import Authenticator
from gateway.api.limits import LimitsMiddleware
from gateway.api.mounting import mount
from gateway.api.openapi import secure_openapi
from gateway.api.reports import build_router as build_reports_router
from gateway.config import GatewayConfig, Settings, load_config
from gateway.core.messaging import MessageProvider
from gateway.ledger.context import Clock, utc_now
from gateway.notify.verification import PhoneVerification
from gateway.observability import RequestContextMiddleware, metrics
from gateway.seed import seed_demo
from gateway.store import migrate
from gateway.wiring import build_bots, build_erp, build_jobs, build_relay, build_service, operator_notices
from gateway.workers.runner import WorkerRunner

log = logging.getLogger("gateway.api")


def _error(
    status: int,
    code: ErrorCode | str,
    message: str,
    details: Any = None,
    extra_headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": str(code), "message": message}
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": 'Basic realm="loyalty-gateway", charset="UTF-8"'} if status == 401 else {}
    headers.update(extra_headers or {})
    if isinstance(details, dict) and "retry_after" in details:
        headers["Retry-After"] = str(details["retry_after"])
    return JSONResponse({"error": body}, status_code=status, headers=headers or None)


def _validation_details(errors: list[Any]) -> dict[str, Any]:
    # An object, as every other error's details (the OpenAPI ErrorBody): the problems under "errors".
    return {
        "errors": [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "message": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in errors
        ]
    }


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoyaltyError)
    async def _loyalty(_request: Request, exc: LoyaltyError) -> JSONResponse:
        return _error(exc.http_status, exc.code, exc.message, exc.details or None)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(
            422, ErrorCode.VALIDATION_ERROR, "the request is invalid", _validation_details(list(exc.errors()))
        )

    @app.exception_handler(ValidationError)
    async def _model_validation(_request: Request, exc: ValidationError) -> JSONResponse:
        return _error(
            422, ErrorCode.VALIDATION_ERROR, "the request is invalid", _validation_details(list(exc.errors()))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: ErrorCode.NOT_FOUND,
            401: ErrorCode.UNAUTHORIZED,
            403: ErrorCode.FORBIDDEN,
            405: ErrorCode.METHOD_NOT_ALLOWED,
            413: ErrorCode.PAYLOAD_TOO_LARGE,
        }.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
        return _error(exc.status_code, code, str(exc.detail), extra_headers=exc.headers)  # 405 keeps its Allow

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, ErrorCode.INTERNAL_ERROR, "unexpected failure; nothing was changed")


def create_app(
    settings: Settings | None = None,
    *,
    config: GatewayConfig | None = None,
    clock: Clock = utc_now,
    run_workers: bool | None = None,
    providers: dict[str, MessageProvider] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    config = config or load_config(settings.config)
    service = build_service(settings, config, clock)
    db = service.db
    erp = build_erp(service, config)  # one ERP throttle and connection pool for the relay and the sync
    relay = build_relay(service, config, providers, erp)
    workers = WorkerRunner(
        service, interval=settings.sweep_interval_seconds, relay=relay, jobs=build_jobs(service, config, erp)
    )
    start_workers = settings.workers if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            migrate.upgrade(settings.database_url)
        if config.demo is not None and settings.seed_demo:
            seed_demo(service, config)
        # Everything built at start-up (modules, models, routes, the configuration) lives as long
        # as the process: move it out of the garbage collector's sight. Otherwise each full
        # collection walks it again and stalls every request in flight (~150 ms every couple of
        # seconds under till load, measured: the p99 of calculate).
        gc.collect()
        gc.freeze()
        if start_workers:
            workers.start()
        try:
            yield
        finally:
            workers.stop()
            db.dispose()

    app = FastAPI(
        title="Loyalty gateway",
        version=__version__,
        summary="Loyalty integration gateway for 1C tills and ERP and 1C-Bitrix shops",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.config = config
    app.state.service = service
    app.state.relay = relay
    app.state.operator_notices = operator_notices(service)
    app.state.verification = PhoneVerification(service, config.notifications)
    app.state.authenticator = Authenticator(tuple(config.clients))
    install_error_handlers(app)
    mount(app, v1.router)
    mount(app, customers_profile.router)  # PATCH /api/v1/customers/{id}, …/changes
    mount(app, tier_progress.router)  # GET /api/v1/cards/{number}/tier
    mount(app, giftcards.router)
    mount(app, campaigns.router)
    mount(app, accounts.router)
    mount(app, orders.router)
    mount(app, program.router)
    mount(app, registration.router)
    mount(app, mailings.router)  # /api/v1/mailings, /api/v1/grants, /api/v1/audiences
    mount(app, mailings.public)  # /u/{token}: the customer's unsubscribe page
    mount(app, build_loyaltyservice_router())
    mount(app, build_soap_router())
    mount(app, build_discountserver_router())
    mount(app, build_bitrix_router())
    mount(app, operator.build_router())
    mount(app, build_reports_router())  # /api/v1/reports, /dashboard
    bots = build_bots(service, config)  # Telegram's webhook and VK's Callback API (bots: in the config)
    app.state.telegram_bot, app.state.vk_bot = bots.telegram, bots.vk
    telegram = config.bots.telegram if config.bots is not None else None
    if telegram is not None and telegram.webhook_secret:
        mount(app, build_telegram_router(telegram.webhook_path, telegram.webhook_secret))
    if config.bots is not None and config.bots.vk is not None:
        mount(app, build_vk_router(config.bots.vk))
    app.add_middleware(LimitsMiddleware, authenticator=app.state.authenticator)
    app.add_middleware(RequestContextMiddleware)  # outermost: every reply gets its request id and metrics
    secure_openapi(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        with db.read() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": db.dialect, "program": config.program.name}

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus_metrics() -> Response:
        """Prometheus exposition: request and ledger counters, database gauges (no personal data)."""
        body, content_type = metrics.render(db, clock)
        return Response(body, media_type=content_type)

    return app

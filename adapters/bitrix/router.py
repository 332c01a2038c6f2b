"""Every endpoint of the Bitrix adapter, for ``gateway.api.app`` to include with one line.

The endpoints always exist and answer 404 while their part of the ``bitrix:`` section is absent."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.bitrix.b24.router import build_router as build_bitrix24_router
from adapters.bitrix.commerceml.router import build_router as build_commerceml_router
from adapters.bitrix.site.router import build_router as build_site_router


def build_router() -> APIRouter:
    router = APIRouter()
    # The parts' routes as they were built (with their own prefixes): ``include_router`` would
    # wrap each part and build its routes again for every app that includes this router.
    for part in (build_site_router(), build_bitrix24_router(), build_commerceml_router()):
        router.routes.extend(part.routes)
    return router

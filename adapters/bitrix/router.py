"""Every endpoint of the Bitrix adapter, for ``gateway.api.app`` to include with one line.

The endpoints always exist and answer 404 while their part of the ``bitrix:`` section is absent."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.bitrix.b24.router import build_router as build_bitrix24_router
from adapters.bitrix.commerceml.router import build_router as build_commerceml_router
from adapters.bitrix.site.router import build_router as build_site_router


def build_router() -> APIRouter:
    router = APIRouter()
    router.include_router(build_site_router())
    router.include_router(build_bitrix24_router())
    router.include_router(build_commerceml_router())
    return router

"""Adding a router's endpoints to the app as they are already built.

FastAPI (0.165) builds every route of an ``APIRouter`` when the route is declared, and
``app.include_router`` then wraps the router and builds each route a second time for that app,
lazily, on its first request: about 0.4 s of CPU for this gateway's hundred-odd endpoints. A
process serves one app, so in production that is a start-up cost; the test suite builds an app
per test and paid it hundreds of times. The routers here take no include-time prefix, tags,
dependencies or lifespan, so the routes they built are the routes the app serves.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def mount(app: FastAPI, router: APIRouter) -> None:
    """Serve ``router``'s endpoints from ``app`` (same paths, dependencies and responses)."""
    if router.on_startup or router.on_shutdown:
        raise ValueError("a router with start-up or shut-down handlers needs app.include_router")
    app.router.routes.extend(router.routes)

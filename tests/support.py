"""Test helpers: a controllable clock, a real uvicorn server on loopback, database factories."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.api.http_protocol import TolerantHttpToolsProtocol

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_ADMIN_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL", "")
BACKEND = os.environ.get("GATEWAY_TEST_BACKEND", "sqlite")


@dataclass
class FakeClock:
    """Wall-clock time plus an offset the test can advance: the server sees the future.

    ``freeze()`` stops the clock at the current moment, for tests that compare replies carrying
    timestamps (two calls must not straddle a second boundary); ``advance`` still moves it."""

    offset: timedelta = field(default_factory=timedelta)
    frozen_at: datetime | None = None

    def __call__(self) -> datetime:
        if self.frozen_at is not None:
            return self.frozen_at + self.offset
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)

    def freeze(self) -> None:
        self.frozen_at = datetime.now(UTC)

    def set(self, moment: datetime) -> None:
        """Stop the clock at ``moment`` (``advance`` still moves it)."""
        self.freeze()
        assert self.frozen_at is not None
        self.offset = moment - self.frozen_at


def noon(day: date) -> datetime:
    """Noon in Moscow (09:00 UTC) of ``day``: far from any day boundary."""
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


REPOSITORY = Path(__file__).resolve().parent.parent
DEMO_PROGRAMS = REPOSITORY / "gateway" / "demo" / "programs"
BUILDING = DEMO_PROGRAMS / "building-materials.yaml"  # the demo program exercising every mechanic


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _QuickServer(uvicorn.Server):
    """uvicorn that notices ``should_exit`` within 10 ms instead of 100 ms: a test server is
    started and stopped hundreds of times a run. ``on_tick`` still runs every tenth of a second."""

    async def main_loop(self) -> None:
        ticks = 0
        while not self.should_exit:
            if ticks % 10 == 0 and await self.on_tick(ticks // 10):
                return
            ticks += 1
            await asyncio.sleep(0.01)


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a loopback port; yields its base URL.

    The socket is bound here and handed to uvicorn: a port only looked up free and bound later
    could be taken by another test process in between (seen on PostgreSQL runs: errno 98)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", http=TolerantHttpToolsProtocol
    )
    server = _QuickServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def basic(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


TILL = basic("касса", "demo-till")
SITE = basic("site", "demo-site")
OPERATOR = basic("operator", "demo-operator")
MARKETER = basic("marketer", "demo-marketer")


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


class PostgresFactory:
    """Fresh PostgreSQL databases cloned from one migrated template (fast: a file copy)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.prefix = f"gwtest_{uuid.uuid4().hex[:8]}"
        self.template: str | None = None
        self.created: list[str] = []

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> None:
        with self.engine.connect() as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        self.created.append(name)

    def new_database(self) -> str:
        from gateway.store import migrate

        if self.template is None:
            self.template = f"{self.prefix}_template"
            self._create(self.template)
            migrate.upgrade(self.url_for(self.template))
        name = f"{self.prefix}_{len(self.created)}"
        self._create(name, self.template)
        return self.url_for(name)

    def drop_all(self) -> None:
        with self.engine.connect() as conn:
            for name in reversed(self.created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30)


def card_with_points(service: Any, points: int, number: str | None = None) -> str:
    """Register a customer whose card has exactly ``points`` available (the welcome bonus plus a
    never-expiring adjustment for the rest); returns the card number."""
    import random

    from contracts.operations import RegisterCustomerRequest
    from gateway.ledger.accounts import add_lot
    from gateway.ledger.context import Ctx
    from gateway.store.models import Card

    number = number or "29" + "".join(random.choice("0123456789") for _ in range(11))
    customer = service.register_customer("test", f"reg-{number}", RegisterCustomerRequest(card_number=number))
    top_up = points - customer.welcome_points
    if top_up:
        with service.db.write() as session:
            card = session.get(Card, number)
            assert card is not None
            ctx = Ctx(service.db, session, service.program, service.clock(), "test")
            add_lot(
                ctx,
                card.account_id,
                "adjustment",
                top_up,
                entry_kind="adjustment",
                available_at=ctx.now,
                expires_at=None,
            )
    return number

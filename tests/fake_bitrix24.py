"""A fake Bitrix24 portal on loopback that behaves like the real REST API where it matters to us.

* Incoming-webhook URLs ``/rest/<user>/<secret>/<method>[.json]``; a wrong secret answers 401
  ``INVALID_CREDENTIALS``; an unknown method 404 ``ERROR_METHOD_NOT_FOUND``.
* The portal's own leaky bucket (``rate`` requests a second drained, ``burst`` capacity): a request
  that finds it full is refused with 503 ``QUERY_LIMIT_EXCEEDED`` and is not counted, as on
  Bitrix24.
* Latency (a few milliseconds, seeded) and a capacity of concurrent requests; windows of 500s
  on demand (``fail_next``).
* Methods: ``crm.contact.get`` (``Not found`` for an unknown id), ``crm.contact.list`` (50 per
  page, ``next``/``total``), ``batch`` (up to 50 commands in PHP query-string form, one bucket
  place), ``profile``.

Every request that reached it is recorded with its arrival time (monotonic) and its answer.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

PAGE = 50


@dataclass
class Arrival:
    at: float
    method: str
    status: int
    commands: int = 0


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``filter[ID]=5&select[0]=ID`` -> ``{"filter": {"ID": "5"}, "select": {"0": "ID"}}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head] + ([p.rstrip("]") for p in ("[" + rest).split("[")[1:]] if rest else [])
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


@dataclass
class FakeBitrix24:
    secret: str = "s3cr3t-webhook-code"
    user: str = "1"
    rate: float = 2.0
    burst: int = 50
    latency: tuple[float, float] = (0.001, 0.006)
    capacity: int = 8
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._level = 0.0
        self._at = time.monotonic()
        self._failures = 0
        self._failure_status = 500
        self._rng = random.Random(8)

    # -- test controls ----------------------------------------------------------------------

    def webhook_url(self, base: str) -> str:
        return f"{base}/rest/{self.user}/{self.secret}/"

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures = count
            self._failure_status = status

    def add_contacts(self, count: int) -> None:
        for number in range(1, count + 1):
            self.contacts[str(number)] = {"ID": str(number), "NAME": f"Контакт {number}", "PHONE": [], "EMAIL": []}

    def answered(self, status: int) -> int:
        return sum(1 for a in self.arrivals if a.status == status)

    # -- the portal -------------------------------------------------------------------------

    def _admit(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._level = max(0.0, self._level - (now - self._at) * self.rate)
            self._at = now
            if self._level + 1 > self.burst:
                return False
            self._level += 1
            return True

    def _run(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "profile":
            return 200, {"result": {"ID": self.user, "ADMIN": True}}
        if method == "crm.contact.get":
            contact = self.contacts.get(str(params.get("id") or params.get("ID") or ""))
            if contact is None:
                return 400, {"error": "", "error_description": "Not found"}
            return 200, {"result": contact}
        if method == "crm.contact.list":
            start = int(params.get("start") or 0)
            ordered = [self.contacts[k] for k in sorted(self.contacts, key=int)]
            page = ordered[start : start + PAGE]
            body: dict[str, Any] = {"result": page, "total": len(ordered)}
            if start + PAGE < len(ordered):
                body["next"] = start + PAGE
            return 200, body
        return 404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}

    def _batch(self, params: dict[str, Any]) -> tuple[int, dict[str, Any], int]:
        commands = params.get("cmd") or {}
        if len(commands) > 50:
            return 400, {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}, 0
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, command in commands.items():
            method, _, query = str(command).partition("?")
            status, body = self._run(method, _nest(parse_qsl(query)))
            if status == 200:
                results[name] = body["result"]
            else:
                errors[name] = body
        halt_result = {"result": results, "result_error": errors, "result_total": [], "result_next": []}
        return 200, {"result": halt_result}, len(commands)

    def app(self) -> FastAPI:
        app = FastAPI()
        slots = asyncio.Semaphore(self.capacity)

        @app.post("/rest/{user}/{secret}/{method}")
        async def rest(user: str, secret: str, method: str, request: Request) -> JSONResponse:
            arrived = time.monotonic()
            method = method.removesuffix(".json")
            params: dict[str, Any] = await request.json() if await request.body() else {}
            if user != self.user or secret != self.secret:
                status, body, commands = 401, {"error": "INVALID_CREDENTIALS", "error_description": "Invalid"}, 0
            elif not self._admit():
                status, body, commands = 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many"}, 0
            else:
                with self._lock:
                    failing = self._failures > 0
                    if failing:
                        self._failures -= 1
                if failing:
                    status, body, commands = self._failure_status, {"error": "INTERNAL_SERVER_ERROR"}, 0
                else:
                    async with slots:
                        await asyncio.sleep(self._rng.uniform(*self.latency))
                        if method == "batch":
                            status, body, commands = self._batch(params)
                        else:
                            (status, body), commands = self._run(method, params), 0
            with self._lock:
                self.arrivals.append(Arrival(arrived, method, status, commands))
            return JSONResponse(body, status_code=status)

        return app

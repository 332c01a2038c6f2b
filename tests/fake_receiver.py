"""A fake outbound endpoint (an ERP's or CRM's webhook receiver) on loopback that behaves like a
real, imperfect one: latency, a capacity limit, windows of 500s and of hanging requests.

It processes a delivery only when it answers 2xx, and dedupes on ``X-Gateway-Delivery`` the way
a receiver should, so ``processed`` counts what really took effect and ``received`` every
attempt that reached it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeReceiver:
    def __init__(self, latency: float = 0.01, capacity: int = 4) -> None:
        self.latency = latency
        self.capacity = threading.BoundedSemaphore(capacity)
        self.lock = threading.Lock()
        self.fail_until = 0.0  # monotonic time until which requests get 500
        self.hang_until = 0.0  # ... or hang past the client's timeout
        self.reject_status: int | None = None  # answer every request with this status
        self.hang_seconds = 2.0
        self.received: Counter[str] = Counter()
        self.processed: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.headers: dict[str, dict[str, str]] = {}

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        delivery = handler.headers.get("X-Gateway-Delivery", "")
        with self.lock:
            self.received[delivery] += 1
        if not self.capacity.acquire(blocking=False):
            self._answer(handler, 503, b"busy")
            return
        try:
            now = time.monotonic()
            if now < self.hang_until:
                time.sleep(self.hang_seconds)  # the client gives up first; nothing is processed
                self._answer(handler, 504, b"too late")
                return
            if now < self.fail_until:
                self._answer(handler, 500, b"internal error")
                return
            if self.reject_status is not None:
                self._answer(handler, self.reject_status, b"rejected")
                return
            time.sleep(self.latency)
            with self.lock:
                if delivery in self.processed:
                    self.duplicates += 1
                else:
                    self.processed[delivery] = json.loads(body)
                    self.headers[delivery] = {k.lower(): v for k, v in handler.headers.items()}
            self._answer(handler, 200, b"{}")
        finally:
            self.capacity.release()

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client hung up (timeout): exactly what a real server sees


@contextmanager
def running(receiver: FakeReceiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.handle(self)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/loyalty-events"
    finally:
        server.shutdown()
        server.server_close()

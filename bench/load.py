"""The load generator, run as a process of its own (never inside the server it measures).

asyncio with keep-alive connections and the ``httptools`` response parser (the one uvicorn
uses): a request costs the client a few tens of microseconds, so on a small machine the client
takes as little CPU from the server as possible. Its own CPU use is reported.

Two modes:

* ``--rate R``: an *open* schedule — request *i* is due at ``start + i / R`` whatever happened
  before, and its latency is counted **from when it was due**, so a server that stalls is
  charged for the requests that queued behind the stall (no coordinated omission). At most
  ``--connections`` requests are in flight; a due request waits for a free connection.
* otherwise, saturation: ``--connections`` connections each send the next request as soon as
  the previous answer is in; throughput is what the server sustains.

``--warmup`` seconds are sent first and not recorded. ``--url`` may be given several times (one
per replica): connections are spread over them in turn. With ``--server-pid`` (once per server
process) the servers' CPU time over the measured window is reported (``/proc/<pid>/stat``),
which gives CPU per request independent of how noisy the machine is. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
import uuid
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

from bench.scenarios import SCENARIOS, Request, Scenario


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from ``/proc``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Target:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.netloc = parts.netloc


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.body = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), bytes(self.body)))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.body.clear()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def encode(request: Request, host: str) -> bytes:
    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(request.body)}"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + request.body


class Load:
    def __init__(self, urls: list[str], scenario: Scenario, connections: int) -> None:
        self.targets = [Target(url) for url in urls]
        self.scenario = scenario
        self.connections = connections
        self.run_id = uuid.uuid4().hex[:8]
        self.counter = 0
        self.recording = False
        self.latencies: list[float] = []
        self.failures: dict[str, int] = {}
        self.pool: asyncio.Queue[Connection] = asyncio.Queue()

    async def open(self) -> None:
        for index in range(self.connections):
            self.pool.put_nowait(await self._fresh(self.targets[index % len(self.targets)]))

    async def _fresh(self, target: Target) -> Connection:
        _, protocol = await asyncio.get_running_loop().create_connection(
            lambda: Connection(target), target.host, target.port
        )
        return protocol

    def _next(self, target: Target) -> bytes:
        self.counter += 1
        return encode(self.scenario.build(self.counter, self.run_id), target.netloc)

    async def one(self, connection: Connection, due: float, clock: Callable[[], float]) -> Connection:
        """Send one request on ``connection``; returns the connection to use next."""
        raw = self._next(connection.target)
        try:
            status, body = await connection.send(raw)
            outcome = "ok" if self.scenario.ok(status, body) else f"http {status}"
        except ConnectionError:
            outcome = "connection lost"
        if self.recording:
            self.latencies.append(clock() - due)
            if outcome != "ok":
                self.failures[outcome] = self.failures.get(outcome, 0) + 1
        if connection.closed:
            connection = await self._fresh(connection.target)
        return connection

    async def saturate(self, until: float) -> None:
        clock = time.perf_counter

        async def worker() -> None:
            connection = await self.pool.get()
            while clock() < until:
                connection = await self.one(connection, clock(), clock)
            self.pool.put_nowait(connection)

        await asyncio.gather(*(worker() for _ in range(self.connections)))

    async def fixed_rate(self, rate: float, start: float, until: float) -> None:
        clock = time.perf_counter
        tasks: set[asyncio.Task[None]] = set()

        async def fire(due: float) -> None:
            connection = await self.pool.get()  # waiting here counts: latency runs from ``due``
            connection = await self.one(connection, due, clock)
            self.pool.put_nowait(connection)

        index = 0
        while True:
            due = start + index / rate
            if due >= until:
                break
            pause = due - clock()
            if pause > 0:
                await asyncio.sleep(pause)
            task = asyncio.create_task(fire(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if tasks:
            await asyncio.gather(*tasks)


async def run(args: argparse.Namespace) -> dict[str, object]:
    load = Load(args.url, SCENARIOS[args.scenario], args.connections)
    pids: list[int] = args.server_pid or []
    await load.open()
    clock = time.perf_counter
    warm_until = clock() + args.warmup
    if args.rate:
        await load.fixed_rate(args.rate, clock(), warm_until)
    else:
        await load.saturate(warm_until)
    load.recording = True
    server_cpu = sum(process_cpu_seconds(pid) for pid in pids) if pids else None
    own = resource.getrusage(resource.RUSAGE_SELF)
    started = clock()
    if args.rate:
        await load.fixed_rate(args.rate, started, started + args.seconds)
    else:
        await load.saturate(started + args.seconds)
    elapsed = clock() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    result: dict[str, object] = {
        "scenario": args.scenario,
        "mode": f"{args.rate:g} req/s" if args.rate else "saturation",
        "connections": args.connections,
        "seconds": elapsed,
        "count": len(load.latencies),
        "failures": load.failures,
        "client_cpu_seconds": (after.ru_utime + after.ru_stime) - (own.ru_utime + own.ru_stime),
        "latencies": load.latencies,
    }
    if server_cpu is not None:
        result["server_cpu_seconds"] = sum(process_cpu_seconds(pid) for pid in pids) - server_cpu
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, action="append", help="a server (repeat for several replicas)")
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=0.0, help="offered requests per second (0: saturation)")
    parser.add_argument("--server-pid", type=int, action="append", help="a server process (repeat)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Shared bench plumbing: server processes, temporary databases, statistics, result files, tables."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
POSTGRES_ENV = ("GATEWAY_BENCH_POSTGRES_URL", "GATEWAY_TEST_POSTGRES_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Server:
    url: str
    pid: int


@contextmanager
def server(command: Sequence[str], env: Mapping[str, str], workdir: Path, port: int) -> Iterator[Server]:
    """Run a server process (stdout/stderr to ``workdir/server-<port>.log``) until the block ends."""
    log = (workdir / f"server-{port}.log").open("wb")
    process = subprocess.Popen(list(command), cwd=workdir, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(f"{url}/health", process)
        yield Server(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


@contextmanager
def gateway_server(database_url: str, workdir: Path, extra_env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """``gateway serve`` as deployed on one machine: one process, workers inside, log level warning."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    with server([sys.executable, "-m", "gateway", "serve"], env, workdir, port) as running:
        yield running


@contextmanager
def echo_server(workdir: Path) -> Iterator[Server]:
    """The bare FastAPI echo baseline, served with the gateway's uvicorn settings."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench.echo_app", "--port", str(port), "--log-level", "warning"]
    with server(command, env, workdir, port) as running:
        yield running


def postgres_admin_url(option: str | None) -> str | None:
    """The PostgreSQL server to measure on: ``--postgres`` or the first of POSTGRES_ENV that is set."""
    if option:
        return option
    return next((os.environ[name] for name in POSTGRES_ENV if os.environ.get(name)), None)


@contextmanager
def temporary_postgres(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards; yields its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_url(admin_url).set(drivername="postgresql")
    plain = admin.render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, R type 7)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p90_ms": percentile(ordered, 0.90) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else float("nan"),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    load1, load5, load15 = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save(name: str, data: Mapping[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the machine's description if ``data`` has none)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    full = {"machine": machine(), **data}
    path.write_text(json.dumps(full, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(*header, title=title, caption=caption)
    for row in rows:
        out.add_row(*(fmt(v) for v in row))
    Console(width=max(120, int(os.environ.get("COLUMNS", "0") or 0))).print(out)

"""The CLI: the demo walk-through and `gateway serve` as a real process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli
from tests.support import TILL, free_port, wait_for


def test_demo_walks_a_purchase(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--database-url", f"sqlite:///{tmp_path / 'demo.db'}"])
    assert result.exit_code == 0, result.output
    assert "ledger check: ok" in result.output
    assert "points returned" in result.output


@pytest.mark.parametrize("processes", [1, 2])
def test_serve_runs_the_embedded_default(tmp_path: Path, processes: int) -> None:
    port = free_port()
    env = {**os.environ, "GATEWAY_PORT": str(port)}
    env.pop("GATEWAY_DATABASE_URL", None)
    env.pop("GATEWAY_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--processes", str(processes)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(healthy, timeout=30), "gateway serve did not become healthy"
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health == {"status": "ok", "version": health["version"], "database": "sqlite", "program": "demo"}
        balance = httpx.get(f"http://127.0.0.1:{port}/api/v1/cards/2700000000014/balance", headers=TILL).json()
        assert balance["available"] == 600
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "Loyalty gateway"
        assert (tmp_path / "gateway.db").exists()
        for _ in range(10):  # every server process answers (the port is shared)
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/cards/2700000000014/balance", headers=TILL).is_success
        with sqlite3.connect(tmp_path / "gateway.db") as db:  # seeded once, not once per process
            assert db.execute("SELECT count(*) FROM cards").fetchone() == (3,)
    finally:
        process.terminate()
        process.wait(timeout=20)

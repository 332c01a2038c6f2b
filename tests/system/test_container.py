"""The container: what this machine can test without building an image — the entrypoint (with a
stand-in ``gateway`` and with the real one: migrate, serve, the health check) and the compose
file's services and references (PyYAML; ``docker compose config`` too where it exists)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, inspect

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"
VENV_BIN = Path(sys.executable).parent


def entrypoint(*args: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env={"PATH": path, "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fake_gateway(tmp_path: Path) -> str:
    """A `gateway` that prints its arguments: what the entrypoint would run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "gateway"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


@pytest.mark.parametrize(
    ("args", "env", "runs"),
    [
        ((), {}, "serve --host 0.0.0.0 --port 8080 --processes 1"),
        (
            ("serve", "--no-workers"),
            {"GATEWAY_PORT": "9000", "GATEWAY_PROCESSES": "4"},
            "serve --host 0.0.0.0 --port 9000 --processes 4 --no-workers",
        ),
        (("worker",), {}, "worker"),
        (("migrate",), {}, "db upgrade"),
        (("tx", "stuck"), {}, "tx stuck"),
    ],
)
def test_the_entrypoint_runs_the_right_command(
    fake_gateway: str, args: tuple[str, ...], env: dict[str, str], runs: str
) -> None:
    done = entrypoint(*args, path=fake_gateway, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == runs


def test_migrate_then_serve_through_the_entrypoint_and_the_health_check(database_url: str) -> None:
    path = f"{VENV_BIN}:/usr/bin:/bin"
    migrated = entrypoint("migrate", path=path, GATEWAY_DATABASE_URL=database_url)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    engine = create_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"journal", "outbox", "holds", "alembic_version"} <= tables

    port = str(free_port())
    env = {
        "PATH": path,
        "HOME": "/tmp",
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": port,
        "GATEWAY_AUTO_MIGRATE": "false",
        "GATEWAY_WORKERS": "false",
    }
    server = subprocess.Popen(["/bin/sh", str(ENTRYPOINT)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            check = subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, timeout=30, check=False)
            if check.returncode == 0:
                break
            assert server.poll() is None and time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
    finally:
        server.send_signal(signal.SIGTERM)  # exec: the signal reaches the server itself
        assert server.wait(timeout=30) is not None
    unhealthy = subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, timeout=30, check=False)
    assert unhealthy.returncode == 1


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_migrations_once_then_the_api_and_a_worker_on_postgresql() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"db", "migrate", "gateway", "worker"}
    db = services["db"]
    assert db["image"].startswith("postgres:") and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("gateway", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["gateway"]["command"] == ["serve"] and services["worker"]["command"] == ["worker"]
    assert services["gateway"]["environment"]["GATEWAY_WORKERS"] == "false"
    for name in ("migrate", "gateway", "worker"):
        service = services[name]
        env = service["environment"]
        assert service["build"] == "." and env["GATEWAY_AUTO_MIGRATE"] == "false"
        url = env["GATEWAY_DATABASE_URL"]
        match = re.fullmatch(r"postgresql://(\w+):\$\{POSTGRES_PASSWORD[^}]*\}@(\w+):5432/(\w+)", url)
        assert match, url
        user, host, database = match.groups()
        assert host in services and (user, database) == (
            db["environment"]["POSTGRES_USER"],
            db["environment"]["POSTGRES_DB"],
        )
        config_mount = next(v for v in service["volumes"] if v.endswith(":/etc/gateway/gateway.yaml:ro"))
        assert env["GATEWAY_CONFIG"] == "/etc/gateway/gateway.yaml" and config_mount
    published = services["gateway"]["ports"][0]
    assert published.endswith(":8080") and "EXPOSE 8080" in (ROOT / "Dockerfile").read_text()
    for volume in db["volumes"]:
        assert volume.split(":")[0] in compose["volumes"]
    # Every ${VAR} the gateway's demo configuration uses is named in the example .env.
    example = (ROOT / "docker" / "env.example").read_text()
    demo = (ROOT / "gateway" / "demo" / "gateway.yaml").read_text()
    for var in set(re.findall(r"\$\{(GATEWAY_[A-Z_]+_PASSWORD|GATEWAY_BITRIX_SITE_SECRET)", demo)):
        assert f"{var}=" in example, var


def test_the_image_is_small_non_root_and_checks_its_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim AS build$", dockerfile, re.M)
    assert re.search(r"^USER gateway$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/usr/local/lib/gateway-healthcheck.py" in dockerfile
    for source, target in re.findall(r"^COPY (docker/\S+) (\S+)$", dockerfile, re.M):
        assert (ROOT / source).is_file(), source
        assert target in dockerfile.split("ENTRYPOINT")[1] or target.endswith("healthcheck.py")
    for source in re.findall(r"^COPY (\w+) \./", dockerfile, re.M):
        assert (ROOT / source).is_dir(), source
    assert os.access(ENTRYPOINT, os.X_OK)


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0,
    reason="docker compose is not installed here",
)
def test_docker_compose_accepts_the_file() -> None:
    done = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        env={**os.environ, "POSTGRES_PASSWORD": "x"},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr

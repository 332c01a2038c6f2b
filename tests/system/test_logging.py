"""Logs: a request id in every reply, log line, journal row and outbox message of the request;
personal data masked in every line, uvicorn's access log included (issue 18: the query strings
of 1C calls carried phones, e-mails and names at the default level).

The access-log tests run ``gateway serve`` as a real process and read its stderr, the way an
operator reads it; 1C's calls are sent as 1C writes them (values unencoded, Cyrillic raw — see
``tests/adapters/onec/test_onec_loyaltyservice.py`` for the sources: ``AlexanderYekat/unf``
``CommonModules/СерверЛояльностиПолучательДанных*``)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from gateway.config import WebhookConfig
from gateway.observability.logs import logging_config
from gateway.observability.masking import mask_text
from gateway.store.models import JournalEntry, OutboxMessage
from tests.conftest import Gateway
from tests.raw_http import basic_header
from tests.support import SITE, free_port, key

CARD = "2700000000014"
PHONE = "+79120000777"
EMAIL = "Ivan.Petrov@Example.com"
NAME = "Иван Петров"
ROOT = "/base/hs/loyaltyservice"


def _raw(port: int, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """One request written byte for byte as 1C writes it (target unencoded), read to the end."""
    head = [f"POST {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close", "Content-Length: 0"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("utf-8"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, *lines = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    return int(status_line.split()[1]), {n.strip().lower(): v.strip() for n, _, v in (x.partition(":") for x in lines)}


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Start ``gateway serve`` (a real process) with the given log format; yields (port, stderr)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(log_format: str = "plain", processes: int = 1) -> tuple[int, Path]:
        port = free_port()
        err = tmp_path / f"serve-{port}.log"
        env = {**os.environ, "GATEWAY_LOG_FORMAT": log_format, "GATEWAY_WORKERS": "false"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--database-url",
                database_url,
                "--port",
                str(port),
                "--processes",
                str(processes),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err.open("wb"),
            env=env,
        )
        procs.append(proc)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return port, err
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _issue_card(port: int, request_id: str) -> tuple[int, dict[str, str]]:
    query = f"Phone={PHONE}&Client={NAME}&Email={EMAIL}&DateOfBirth=1990-05-17T00:00:00&GenerateNumber=1"
    return _raw(
        port,
        f"{ROOT}/issueclientcard/?{query}",
        {"Authorization": basic_header("касса", "demo-till"), "X-Request-ID": request_id},
    )


def _assert_no_personal_data(log: str) -> None:
    digits = re.sub(r"\D", "", PHONE)
    for secret in (
        PHONE,
        digits,
        digits[1:],
        EMAIL,
        EMAIL.lower(),
        "Ivan.Petrov",
        "Иван",
        "Петров",
        "%D0%98%D0%B2%D0%B0%D0%BD",
    ):
        assert secret not in log, f"{secret!r} in the log:\n{log}"


def test_access_log_of_a_1c_call_masks_phone_email_and_name_and_names_the_request(serve: Any) -> None:
    port, err = serve("plain")
    status, headers = _issue_card(port, "till-7-req-0001")
    assert status == 200 and headers["x-request-id"] == "till-7-req-0001"
    time.sleep(0.3)  # the access line is written as the reply starts; let the handler flush
    log = err.read_text(encoding="utf-8")
    access = [line for line in log.splitlines() if "issueclientcard" in line]
    assert access, log
    assert all("[till-7-req-0001]" in line for line in access), access
    assert any("Phone=***0777" in line and "Client=***" in line for line in access), access
    _assert_no_personal_data(log)


def test_json_log_lines_carry_the_request_id_and_no_personal_data(serve: Any) -> None:
    port, err = serve("json")
    status, headers = _issue_card(port, "till-7-req-0002")
    assert status == 200 and headers["x-request-id"] == "till-7-req-0002"
    httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    time.sleep(0.3)
    log = err.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    served = [line for line in lines if "issueclientcard" in line["message"]]
    assert served and all(line["request_id"] == "till-7-req-0002" for line in served), lines
    health = [line for line in lines if "/health" in line["message"]]
    assert health and re.fullmatch(r"[0-9a-f]{32}", health[-1]["request_id"]), health  # made up when not sent
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    _assert_no_personal_data(log)


@pytest.mark.parametrize(
    ("line", "kept", "gone"),
    [
        (
            '127.0.0.1:5 - "GET /hs/loyaltyservice/findclientcard/?Phone=89120000777&ClientCardID= HTTP/1.1" 200',
            "Phone=***0777",
            "89120000777",
        ),
        ("customer +7 (912) 000-07-77 registered", "+7***77", "000-07-77"),
        ("mail to anna.demo@example.ru failed", "a***@example.ru", "anna.demo"),
        ("GET /x?Email=anna%40example.ru&Name=%D0%90%D0%BD%D0%BD%D0%B0", "Name=***", "anna%40"),
        ("card 2700000000014 receipt R-1 at 1716200000", "2700000000014", "***"),
        # httpx's line for an SMS.ru call: the api_id is our secret, the recipient a customer
        (
            'HTTP Request: GET https://sms.ru/sms/send?api_id=A1B2-C3D4&to=79120000777&json=1 "HTTP/1.1 200 OK"',
            "api_id=***&to=+7***77&json=1",
            "A1B2-C3D4",
        ),
        (
            'HTTP Request: POST https://api.telegram.org/bot123456:AAH-secret_Part/sendMessage "HTTP/1.1 200 OK"',
            "/bot***/sendMessage",
            "AAH-secret_Part",
        ),
    ],
)
def test_masking_leaves_ids_and_hides_people(line: str, kept: str, gone: str) -> None:
    masked = mask_text(line)
    assert kept in masked and gone not in masked, masked


def test_an_exception_in_a_log_line_is_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    import logging.config

    logging.config.dictConfig(logging_config("info", "plain"))
    try:
        try:
            raise ValueError(f"no customer with phone {PHONE}")
        except ValueError:
            logging.getLogger("gateway.test").exception("lookup failed for %s", EMAIL)
        err = capsys.readouterr().err
        assert "lookup failed for I***@Example.com" in err and "+7***77" in err, err
        _assert_no_personal_data(err)
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "root": {"handlers": []}})


def test_the_request_id_is_echoed_taken_or_made_up(gateway: Gateway) -> None:
    mine = gateway.http.get("/health", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    made_up = gateway.http.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made_up.headers["x-request-id"])
    # an id that could forge a log line or a header is replaced, not echoed
    forged = gateway.http.get("/health", headers={"X-Request-ID": "x" * 200})
    assert forged.headers["x-request-id"] != "x" * 200
    refused = gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers={"X-Request-ID": "no-auth-1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "no-auth-1"


def test_journal_row_and_outbox_messages_carry_the_request_id(start_gateway: Any, demo_config: Any) -> None:
    hook = WebhookConfig(id="erp", url="http://127.0.0.1:9/none", secret="webhook-secret-0123456789")
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"webhooks": [hook]}))
    body = {
        "receipt_id": "RID-1",
        "card_number": CARD,
        "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}],
    }
    reply = gw.http.post("/api/v1/receipts", headers={**SITE, **key(), "X-Request-ID": "site-order-77"}, json=body)
    assert reply.status_code == 200 and reply.headers["x-request-id"] == "site-order-77", reply.text
    with gw.service.db.read() as session:
        entries = session.exec(select(JournalEntry).where(JournalEntry.receipt_id == "RID-1")).all()
        messages = session.exec(select(OutboxMessage)).all()
    assert [(e.state, e.request_id) for e in entries] == [("committed", "site-order-77")]
    assert messages and {m.request_id for m in messages} == {"site-order-77"}


def test_a_failed_request_journals_its_id_too(gateway: Gateway) -> None:
    body = {"card_number": CARD, "points": 10**6}
    reply = gateway.http.post("/api/v1/holds", headers={**SITE, **key(), "X-Request-ID": "hold-too-big"}, json=body)
    assert reply.status_code >= 400 and reply.headers["x-request-id"] == "hold-too-big"
    with gateway.service.db.read() as session:
        entry = session.exec(select(JournalEntry).where(JournalEntry.request_id == "hold-too-big")).one()
    assert entry.state == "failed" and entry.error_code == reply.json()["error"]["code"]

"""``/metrics``: Prometheus exposition of what requests and the ledger did and of what waits in
the database, read back the way Prometheus reads it (``prometheus_client.parser``); and the
counters of several server processes (``gateway serve --processes 2``) add up on any of them."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import WebhookConfig
from gateway.ledger import journal
from gateway.store.models import Notification
from gateway.store.models_erp import ErpThrottle
from tests.conftest import Gateway
from tests.raw_http import basic_header, raw_request
from tests.support import SITE, key
from tests.system.test_logging import serve  # noqa: F401  (the fixture: a real `gateway serve` process)

CARD = "2700000000014"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str) -> Samples:
    reply = httpx.get(f"{base_url}/metrics", timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain"), reply.text
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_and_timed_per_protocol_and_operation(gateway: Gateway) -> None:
    before = scrape(gateway.url)
    cart = {"card_number": CARD, "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}]}
    for _ in range(3):
        assert gateway.http.post("/api/v1/calculate", headers=SITE, json=cart).status_code == 200
    assert gateway.http.get(f"/api/v1/cards/{CARD}/balance").status_code == 401
    # A 1C till's call as 1C writes it (see tests/adapters/onec/test_onec_loyaltyservice.py for the sources).
    till = raw_request(
        gateway.url,
        "GET",
        f"/base/hs/loyaltyservice/getclientbonuses/?ClientCardID={CARD}",
        auth=basic_header("касса", "demo-till"),
    )
    assert till.status == 200
    assert httpx.get(f"{gateway.url}/no/such/page").status_code == 404
    after = scrape(gateway.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    calc = {"protocol": "json", "operation": "POST /api/v1/calculate"}
    assert delta("gateway_requests_total", **calc, status="200") == 3
    assert delta("gateway_request_duration_seconds_count", **calc) == 3
    assert delta("gateway_request_duration_seconds_sum", **calc) > 0
    # Refused before routing (credentials are checked before the body is read): still counted.
    assert delta("gateway_requests_total", protocol="json", operation="unrouted", status="401") == 1
    till_call = {"protocol": "1c_loyaltyservice", "operation": "getclientbonuses", "status": "200"}
    assert delta("gateway_requests_total", **till_call) == 1
    # An unknown path is one series, whatever the path: a scanner cannot make new ones.
    assert delta("gateway_requests_total", protocol="other", operation="unmatched", status="404") == 1
    assert not any("no/such" in str(labels) for _, labels in after)


def test_ledger_outcomes_and_open_holds(gateway: Gateway) -> None:
    before = scrape(gateway.url)
    assert value(before, "gateway_open_holds") == 0
    held = gateway.http.post("/api/v1/holds", headers={**SITE, **key()}, json={"card_number": CARD, "points": 50})
    assert held.status_code == 200, held.text
    too_much = gateway.http.post(
        "/api/v1/holds", headers={**SITE, **key()}, json={"card_number": CARD, "points": 10**6}
    )
    assert too_much.status_code >= 400
    code = too_much.json()["error"]["code"]
    after = scrape(gateway.url)
    assert value(after, "gateway_open_holds") == 1
    ok = {"operation": "hold", "outcome": "held", "code": ""}
    assert (
        value(after, "gateway_ledger_operations_total", **ok) - value(before, "gateway_ledger_operations_total", **ok)
        == 1
    )
    failed = {"operation": "hold", "outcome": "failed", "code": code}
    assert (
        value(after, "gateway_ledger_operations_total", **failed)
        - value(before, "gateway_ledger_operations_total", **failed)
        == 1
    )


def test_stuck_requests_outbox_backlog_and_dead_letters(start_gateway: Any, demo_config: Any) -> None:
    hook = WebhookConfig(
        id="erp",
        url="http://127.0.0.1:9/closed",
        secret="webhook-secret-0123456789",
        timeout_seconds=0.5,
        max_attempts=1,
    )
    gw: Gateway = start_gateway(config=demo_config.model_copy(update={"webhooks": [hook]}))
    body = {
        "receipt_id": "M-1",
        "card_number": CARD,
        "lines": [{"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}],
    }
    assert gw.http.post("/api/v1/receipts", headers={**SITE, **key()}, json=body).status_code == 200
    pending = scrape(gw.url)
    assert value(pending, "gateway_outbox_messages", state="pending") >= 1
    assert value(pending, "gateway_outbox_messages", state="dead") == 0

    # A request whose process died after it was received (the journal row the ledger writes first).
    with gw.service.db.write() as session:
        journal.received(
            session, client_id="site", operation="commit", key="died-1", request=body_model(), now=gw.clock()
        )
    assert value(scrape(gw.url), "gateway_stuck_requests") == 0  # not stuck yet: maybe still running
    gw.clock.advance(seconds=120)
    assert gw.relay is not None
    for _ in range(3):
        gw.relay.run_once()
    later = scrape(gw.url)
    assert value(later, "gateway_stuck_requests") == 1
    assert value(later, "gateway_outbox_messages", state="dead") >= 1
    assert value(later, "gateway_outbox_messages", state="pending") == 0


def body_model() -> Any:
    from contracts.operations import HoldRequest

    return HoldRequest(card_number=CARD, points=1)


def test_erp_throttle_and_notifications_from_the_database(gateway: Gateway) -> None:
    now = gateway.clock()
    with gateway.service.db.write() as session:
        session.add(ErpThrottle(erp="main", factor=0.5, latency_ewma_ms=250.0, calls=7, failures=2, updated_at=now))
        for n, (status, cost) in enumerate([("sent", "1.23"), ("sent", "2.50"), ("failed", None)]):
            session.add(
                Notification(
                    id=f"n-{n}",
                    kind="notification",
                    topic="points_accrued",
                    phone="+79990000001",
                    text="…",
                    status=status,
                    provider="smsru",
                    cost=cost,
                    created_at=now,
                )
            )
        session.add(
            Notification(
                id="n-old",
                kind="notification",
                topic="birthday",
                phone="+79990000001",
                text="…",
                status="sent",
                provider="smsru",
                cost="9.00",
                created_at=now - timedelta(days=3),
            )
        )
    samples = scrape(gateway.url)
    assert value(samples, "gateway_erp_throttle_factor", erp="main") == 0.5
    assert value(samples, "gateway_erp_latency_ewma_seconds", erp="main") == 0.25
    assert value(samples, "gateway_erp_calls_total", erp="main") == 7
    assert value(samples, "gateway_erp_call_failures_total", erp="main") == 2
    assert value(samples, "gateway_notifications_recent", status="sent", provider="smsru") == 2
    assert value(samples, "gateway_notifications_recent", status="failed", provider="smsru") == 1
    assert value(samples, "gateway_notification_cost_recent_rub", provider="smsru") == pytest.approx(3.73)


def test_several_server_processes_count_together(serve: Any) -> None:  # noqa: F811
    port, _ = serve("plain", processes=2)
    base = f"http://127.0.0.1:{port}"
    for _ in range(20):
        with httpx.Client() as fresh:  # a new connection each time: the kernel spreads them
            assert fresh.get(f"{base}/health").status_code == 200
    time.sleep(0.2)
    health = {"protocol": "internal", "operation": "GET /health", "status": "200"}
    seen = {value(scrape(base), "gateway_requests_total", **health) for _ in range(6)}
    # Whichever process answers the scrape, it reports all 20 (and the startup probes of the fixture).
    assert len(seen) == 1 and seen.pop() >= 20


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(gateway_[a-z_]+)", expr))


def test_alert_rules_and_the_dashboard_use_only_metrics_the_gateway_exposes(gateway: Gateway) -> None:
    """docs/monitoring/: every metric an alert or a panel queries is in the exposition."""
    with gateway.service.db.write() as session:  # so that the per-ERP series exist
        session.add(ErpThrottle(erp="main", factor=1.0, calls=1, failures=0, updated_at=gateway.clock()))
    gateway.http.get("/health")
    gateway.http.post("/api/v1/holds", headers={**SITE, **key()}, json={"card_number": CARD, "points": 1})
    text = httpx.get(f"{gateway.url}/metrics").text
    families = list(text_string_to_metric_families(text))
    exposed = {f.name for f in families} | {s.name for f in families for s in f.samples}
    rules = yaml.safe_load((DOCS / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = set().union(*(_metric_names(e) for e in exprs))
    assert len(used) >= 12 and used <= exposed, used - exposed

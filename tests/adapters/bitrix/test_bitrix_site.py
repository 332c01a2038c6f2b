"""The 1C-Bitrix site module's events over real HTTP, signed as the module signs them.

Demo program: 5 % accrual on the money paid, at most 30 % of an order payable by points, orders
earn points pending until shipment. Card 2700000000014 opens with 500 + 100 welcome = 600 points.
The order: A = 2 x 500.00 (DRILL-01), B = 1 x 250.50 (BITS-SET), 300 points paid. Priced as a
receipt would be: A pays 240 points and earns 38, B pays 60 and earns 9.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx
import pytest

from adapters.bitrix.site.signing import signature
from tests.conftest import Gateway, json_of

SECRET = "demo-bitrix-site-secret"
CARD = "2700000000014"
CUSTOMER = {"user_id": "15", "card_number": CARD}
LINES = [
    {"line_id": "A", "product_id": "DRILL-01", "name": "Дрель", "quantity": "2", "price": "500.00"},
    {"line_id": "B", "product_id": "BITS-SET", "name": "Набор бит", "quantity": "1", "price": "250.50"},
]


def send(
    gw: Gateway,
    event: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    secret: str = SECRET,
    skew: int = 0,
    body: bytes | None = None,
) -> httpx.Response:
    raw = body or json.dumps({"event_id": event_id or str(uuid.uuid4()), "event": event, "data": data}).encode()
    timestamp = str(int(gw.clock().timestamp()) + skew)
    headers = {
        "Content-Type": "application/json",
        "X-Bitrix-Timestamp": timestamp,
        "X-Bitrix-Signature": signature(secret, timestamp, raw),
    }
    return gw.http.post("/bitrix/site/events", content=raw, headers=headers)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result = json_of(response)["result"]
    assert isinstance(result, dict)
    return result


def order(version: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "order_id": "1042",
        "version": version,
        "customer": CUSTOMER,
        "lines": LINES,
        "points_to_spend": 300,
        "placed_at": "2024-05-20T12:00:00+03:00",
    }
    data.update(changes)
    return data


SHIP_1 = {"shipment_id": "S1", "shipped": True, "lines": [{"line_id": "A", "quantity": "1"}]}
SHIP_2 = {
    "shipment_id": "S2",
    "shipped": True,
    "lines": [{"line_id": "A", "quantity": "1"}, {"line_id": "B", "quantity": "1"}],
}
RETURN_B = {"return_id": "R1", "lines": [{"line_id": "B", "quantity": "1"}]}


def balance(gw: Gateway) -> tuple[int, int, int]:
    result = gw.service.balance("site", _balance_request())
    return result.available, result.held, result.pending


def _balance_request() -> Any:
    from contracts.operations import BalanceRequest

    return BalanceRequest(card_number=CARD)


def test_a_whole_site_order(gateway: Gateway) -> None:
    gw = gateway
    assert balance(gw) == (600, 0, 0)

    # Cart: what 300 points buy, what the order will earn.
    calc = ok(send(gw, "OnBeforeSaleOrderFinalAction", {"customer": CUSTOMER, "lines": LINES, "points_to_spend": 300}))
    assert (calc["total_amount"], calc["max_points_payable"], calc["points_to_accrue"]) == ("1250.50", 375, 47)
    assert calc["amount_payable"] == "950.50" and calc["balance"]["available"] == 600

    # Checkout: the points are held for the order.
    held = ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "1042", "customer": CUSTOMER, "points_to_spend": 300}))
    assert held["hold"]["points"] == 300 and held["hold"]["status"] == "open"
    assert balance(gw) == (300, 300, 0)

    # Saved: the hold pays the order; the order's points wait for the goods to ship.
    saved = ok(send(gw, "OnSaleOrderSaved", order(1)))
    assert (saved["status"], saved["points_spent"], saved["points_pending"], saved["points_available"]) == (
        "placed",
        300,
        47,
        0,
    )
    assert balance(gw) == (300, 0, 47)

    paid = ok(send(gw, "OnSaleOrderPaid", order(2, paid=True)))
    assert (paid["status"], paid["points_pending"]) == ("paid", 47)
    assert balance(gw) == (300, 0, 47)

    # Shipped in two parts: each unlocks the points of what it shipped.
    first = ok(send(gw, "OnShipmentDeducted", order(3, paid=True, shipments=[SHIP_1])))
    assert (first["status"], first["points_pending"], first["points_available"]) == ("partially_shipped", 28, 19)
    assert balance(gw) == (319, 0, 28)
    second = ok(send(gw, "OnShipmentDeducted", order(4, paid=True, shipments=[SHIP_1, SHIP_2])))
    assert (second["status"], second["points_pending"], second["points_available"]) == ("shipped", 0, 47)
    assert balance(gw) == (347, 0, 0)

    # B comes back: its 9 earned points go, its 60 paid points return.
    returned = ok(send(gw, "OrderReturned", order(5, paid=True, shipments=[SHIP_1, SHIP_2], returns=[RETURN_B])))
    assert (returned["points_spent"], returned["points_available"], returned["points_pending"]) == (240, 38, 0)
    assert balance(gw) == (398, 0, 0)
    gw.assert_invariants()


def test_out_of_order_and_repeated_events_change_nothing(gateway: Gateway) -> None:
    gw = gateway
    ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "1042", "customer": CUSTOMER, "points_to_spend": 300}))
    ok(send(gw, "OnSaleOrderSaved", order(1)))
    # The shipment's event overtakes the payment's.
    shipped = ok(send(gw, "OnShipmentDeducted", order(3, paid=True, shipments=[SHIP_1])))
    assert shipped["points_available"] == 19
    after = gw.ledger_snapshot()
    late = ok(send(gw, "OnSaleOrderPaid", order(2, paid=True)))
    assert late["applied"] is False and late["version"] == 3000 and late["points_available"] == 19
    stale = ok(send(gw, "OnSaleOrderSaved", order(1)))
    assert stale["applied"] is False
    assert gw.ledger_snapshot() == after

    # The same event twice: the first answer, nothing re-applied.
    event_id = str(uuid.uuid4())
    first = send(gw, "OnShipmentDeducted", order(4, paid=True, shipments=[SHIP_1, SHIP_2]), event_id=event_id)
    state = gw.ledger_snapshot()
    again = send(gw, "OnShipmentDeducted", order(4, paid=True, shipments=[SHIP_1, SHIP_2]), event_id=event_id)
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    # The same snapshot under a new event id (the module retried): applied once all the same.
    retried = ok(send(gw, "OnShipmentDeducted", order(4, paid=True, shipments=[SHIP_1, SHIP_2])))
    assert retried["applied"] is False and retried["points_available"] == 47
    assert gw.ledger_snapshot() == state
    assert balance(gw) == (347, 0, 0)

    # The same version with other content is refused; nothing moves.
    conflict = send(gw, "OnSaleOrderCanceled", order(4, paid=True, cancelled=True))
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "order_version_conflict"
    assert gw.ledger_snapshot() == state
    gw.assert_invariants()


def test_forged_stale_and_replayed_events_are_refused(gateway: Gateway) -> None:
    gw = gateway
    before = gw.ledger_snapshot()
    data = {"order_id": "77", "customer": CUSTOMER, "points_to_spend": 100}

    wrong_secret = send(gw, "OnSaleOrderBeforeSaved", data, secret="not-the-shared-secret")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"]["code"] == "signature_invalid"

    raw = json.dumps({"event_id": "e-1", "event": "OnSaleOrderBeforeSaved", "data": data}).encode()
    timestamp = str(int(gw.clock().timestamp()))
    tampered = raw.replace(b"100", b"180")
    response = gw.http.post(
        "/bitrix/site/events",
        content=tampered,
        headers={"X-Bitrix-Timestamp": timestamp, "X-Bitrix-Signature": signature(SECRET, timestamp, raw)},
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "signature_invalid"
    unsigned = gw.http.post("/bitrix/site/events", content=raw, headers={"X-Bitrix-Timestamp": timestamp})
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "signature_invalid"

    for skew in (-301, 301, -86400):
        stale = send(gw, "OnSaleOrderBeforeSaved", data, skew=skew)
        assert stale.status_code == 401 and stale.json()["error"]["code"] == "request_expired", skew
    no_time = gw.http.post("/bitrix/site/events", content=raw, headers={"X-Bitrix-Signature": "sha256=00"})
    assert no_time.status_code == 401 and no_time.json()["error"]["code"] == "request_expired"
    assert gw.ledger_snapshot() == before

    # A captured genuine request: replayed inside the window it gets the first answer ...
    first = send(gw, "OnSaleOrderBeforeSaved", data, event_id="e-2")
    assert first.status_code == 200
    state = gw.ledger_snapshot()
    signed_at = str(int(gw.clock().timestamp()))
    body = json.dumps({"event_id": "e-2", "event": "OnSaleOrderBeforeSaved", "data": data}).encode()
    headers = {"X-Bitrix-Timestamp": signed_at, "X-Bitrix-Signature": signature(SECRET, signed_at, body)}
    replayed = gw.http.post("/bitrix/site/events", content=body, headers=headers)
    assert replayed.json() == first.json() and replayed.headers["Idempotent-Replayed"] == "true"
    # ... and once the window has passed, nothing at all.
    gw.clock.advance(minutes=6)
    late = gw.http.post("/bitrix/site/events", content=body, headers=headers)
    assert late.status_code == 401 and late.json()["error"]["code"] == "request_expired"
    # An event id used again for another event is refused.
    reused = send(gw, "OnSaleOrderBeforeSaved", {**data, "points_to_spend": 50}, event_id="e-2")
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_conflict"
    assert gw.ledger_snapshot() == state


def test_checkout_hold_follows_the_points_and_a_cancelled_order_frees_them(gateway: Gateway) -> None:
    gw = gateway
    first = ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "88", "customer": CUSTOMER, "points_to_spend": 200}))
    same = ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "88", "customer": CUSTOMER, "points_to_spend": 200}))
    assert same["hold"]["hold_id"] == first["hold"]["hold_id"]
    changed = ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "88", "customer": CUSTOMER, "points_to_spend": 150}))
    assert changed["hold"]["hold_id"] != first["hold"]["hold_id"]
    assert balance(gw) == (450, 150, 0)
    ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "88", "customer": CUSTOMER, "points_to_spend": 0}))
    assert balance(gw) == (600, 0, 0)

    ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "89", "customer": CUSTOMER, "points_to_spend": 100}))
    assert balance(gw) == (500, 100, 0)
    cancelled = ok(send(gw, "OnSaleOrderCanceled", order(1, order_id="89", points_to_spend=100, cancelled=True)))
    assert (cancelled["status"], cancelled["points_spent"], cancelled["points_pending"]) == ("cancelled", 0, 0)
    assert balance(gw) == (600, 0, 0)
    # Once the order exists, checkout does not hold again: its snapshots settle the difference.
    known = ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "89", "customer": CUSTOMER, "points_to_spend": 100}))
    assert known == {"order_id": "89", "hold": None, "order_known": True}
    gw.assert_invariants()


def test_customer_by_phone_and_user_registration(gateway: Gateway) -> None:
    gw = gateway
    by_phone = {"user_id": "16", "phone": "8 999 000-00-02"}
    calc = ok(send(gw, "OnBeforeSaleOrderFinalAction", {"customer": by_phone, "lines": LINES}))
    assert calc["card_number"] == "2700000000021" and calc["balance"]["available"] == 1300
    anonymous = ok(send(gw, "OnBeforeSaleOrderFinalAction", {"customer": {"user_id": "17"}, "lines": LINES}))
    assert anonymous["card_number"] is None and anonymous["total_amount"] == "1250.50"

    new = ok(send(gw, "OnAfterUserRegister", {"user_id": "501", "phone": "+7 912 555-44-33", "name": "Глеб"}))
    assert new["created"] is True and new["welcome_points"] == 100 and new["phone"] == "+79125554433"
    existing = ok(send(gw, "OnAfterUserRegister", {"user_id": "502", "phone": "+79990000001", "email": "a@b.ru"}))
    assert existing["created"] is False and existing["cards"][0]["card_number"] == CARD
    missing = send(gw, "OnSaleOrderSaved", order(1, customer={"phone": "+79000000000"}))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "customer_not_found"


@pytest.mark.parametrize(
    ("event", "data", "where"),
    [
        ("OnSaleOrderSaved", {"order_id": "1", "version": 1, "customer": CUSTOMER, "lines": []}, "lines"),
        ("OnSaleOrderSaved", {**order(1), "colour": "red"}, "colour"),
        ("OnSaleOrderSaved", order(1, lines=[{**LINES[0], "price": "10.005"}]), "price"),
        (
            "OnSaleOrderSaved",
            order(1, shipments=[{"shipment_id": "X", "shipped": True, "lines": [{"line_id": "A", "quantity": "3"}]}]),
            "",
        ),
        ("OnSaleBasketSaved", {}, ""),
    ],
)
def test_bad_events_are_refused_with_a_stable_code(
    gateway: Gateway, event: str, data: dict[str, Any], where: str
) -> None:
    before = gateway.ledger_snapshot()
    response = send(gateway, event, data)
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert where in json.dumps(body)
    assert gateway.ledger_snapshot() == before


def test_the_same_order_event_sent_at_once_from_many_workers_posts_once(gateway: Gateway) -> None:
    gw = gateway
    ok(send(gw, "OnSaleOrderBeforeSaved", {"order_id": "1042", "customer": CUSTOMER, "points_to_spend": 300}))
    same_id = str(uuid.uuid4())
    replies: list[httpx.Response] = []

    def fire(index: int) -> None:
        event_id = same_id if index % 2 else str(uuid.uuid4())
        with httpx.Client(base_url=gw.url, timeout=30) as http:
            raw = json.dumps({"event_id": event_id, "event": "OnSaleOrderSaved", "data": order(1)}).encode()
            timestamp = str(int(gw.clock().timestamp()))
            headers = {"X-Bitrix-Timestamp": timestamp, "X-Bitrix-Signature": signature(SECRET, timestamp, raw)}
            replies.append(http.post("/bitrix/site/events", content=raw, headers=headers))

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(replies) == 8 and all(r.status_code == 200 for r in replies), [r.text for r in replies]
    by_event: dict[str, list[dict[str, Any]]] = {}
    for reply in replies:
        by_event.setdefault(reply.json()["event_id"], []).append(reply.json())
    assert len(by_event) == 5 and all(len({json.dumps(r) for r in same}) == 1 for same in by_event.values())
    assert sum(1 for same in by_event.values() if same[0]["result"]["applied"]) == 1  # one event applied it
    assert balance(gw) == (300, 0, 47)
    gw.assert_invariants()


def test_limits_and_configuration(gateway: Gateway, demo_config: Any) -> None:
    # refused by its declared size before a byte is read (gateway/api/limits.py)
    too_big = send(gateway, "OnSaleOrderSaved", {"pad": "x" * (1024 * 1024)})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"

    from adapters.bitrix.config import SiteConfig
    from gateway.api.app import create_app
    from gateway.config import ConfigError, Settings

    bitrix = demo_config.bitrix.model_copy(update={"site": SiteConfig(client="shop", secret=SECRET)})
    with pytest.raises(ConfigError, match=r"bitrix.site.client: no client 'shop'"):
        create_app(Settings(database_url="sqlite://"), config=demo_config.model_copy(update={"bitrix": bitrix}))


def test_old_event_ids_are_purged_by_the_cleanup_job(gateway: Gateway, demo_config: Any) -> None:
    from adapters.bitrix.wiring import build_jobs

    ok(send(gateway, "OnSaleOrderBeforeSaved", {"order_id": "5", "customer": CUSTOMER, "points_to_spend": 10}))
    (job,) = build_jobs(gateway.service, demo_config)
    assert job.run()["site_events_purged"] == 0
    gateway.clock.advance(minutes=11)  # twice the replay window and a minute
    assert job.run()["site_events_purged"] == 1


def test_cli_signs_like_the_module_and_shows_the_status(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app as cli

    body = tmp_path / "event.json"
    body.write_bytes(json.dumps({"event_id": "e", "event": "OnSaleOrderSaved", "data": {}}).encode())
    signed = CliRunner().invoke(cli, ["bitrix", "sign", str(body), "--timestamp", "1716200000"])
    assert signed.exit_code == 0, signed.output
    assert signed.output.splitlines() == [
        "X-Bitrix-Timestamp: 1716200000",
        f"X-Bitrix-Signature: {signature(SECRET, '1716200000', body.read_bytes())}",
    ]
    shown = CliRunner().invoke(cli, ["bitrix", "status", "--database-url", f"sqlite:///{tmp_path / 'g.db'}"])
    assert shown.exit_code == 0, shown.output
    assert "exchange sessions: 0" in shown.output and "Bitrix24 events: none" in shown.output

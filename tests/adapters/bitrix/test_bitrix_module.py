"""The 1C-Bitrix module (``integrations/bitrix-module/loyaltygateway.loyalty``) against a running
gateway: PHP scripts load a stand-in of the Bitrix kernel classes the module touches
(``integrations/bitrix-module/tests/stubs/``, written from Bitrix's public API as mirrored in
``avshatalov48/bitrix-core-business``: ``modules/main/lib/eventmanager.php``,
``modules/main/lib/config/option.php``, ``modules/main/lib/web/httpclient.php``,
``modules/sale/lib/order.php``, ``modules/sale/lib/basketitembase.php``,
``modules/sale/lib/shipment.php`` …), install the module as Bitrix does (``install/index.php``,
``DoInstall``), run a shop's day through the real sale events, and the test reads the ledger
back through the gateway's own API.

The wire contract the module must meet is the gateway's (``docs/bitrix.md``): HMAC-SHA256 of
``<timestamp>.<body>``, the envelope, money as two-place strings, the whole order with VERSION."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.support import SITE, free_port

MODULE = Path(__file__).resolve().parents[3] / "integrations" / "bitrix-module"
SCENARIOS = MODULE / "tests" / "scenarios"
SECRET = "demo-bitrix-site-secret"  # the demo configuration's bitrix.site.secret
PHP = shutil.which("php")

pytestmark = pytest.mark.skipif(PHP is None, reason="php-cli is not installed (Debian: apt-get install php-cli)")


def run_php(script: str, gw_url: str, queue: Path, *, secret: str = SECRET, **env: str) -> dict[str, Any]:
    """Run a scenario; returns its checkpoints (``report()`` lines) by name."""
    options = {
        "gateway_url": gw_url,
        "secret": secret,
        "api_login": "site",
        "api_password": "demo-site",
        "queue_dir": str(queue),
        "timeout": "5",
    }
    done = subprocess.run(
        [str(PHP), "-d", "error_reporting=E_ALL", str(SCENARIOS / script)],
        env={**os.environ, "LOYALTY_OPTIONS": json.dumps(options), "LOYALTY_DOCUMENT_ROOT": str(queue.parent), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    assert not done.stderr.strip(), done.stderr
    reports: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        item = json.loads(line)
        reports[item["name"]] = item["value"]
    return reports


def balance(gw: Gateway, card: str) -> dict[str, Any]:
    reply = gw.http.get(f"/api/v1/cards/{card}/balance", headers=SITE)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def applied_order(gw: Gateway, order_id: str) -> dict[str, Any] | None:
    reply = gw.http.get(f"/api/v1/orders/{order_id}", headers=SITE)
    if reply.status_code == 404:
        return None
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def test_a_web_order_with_points_walks_through_the_ledger(gateway: Gateway, tmp_path: Path) -> None:
    card = "2700000000014"  # the demo's Анна: 500 points
    before = balance(gateway, card)["available"]
    out = run_php("checkout.php", gateway.url, tmp_path / "queue")

    # The cart: 1 250.50 roubles, 300 points chosen (at most 30 % = 375 may be paid); the
    # gateway's numbers are kept on the order: 300 roubles paid with points, 5 % of 950.50 earned.
    cart = out["cart"]
    assert (cart["LOYALTY_POINTS"], cart["LOYALTY_DISCOUNT"], cart["LOYALTY_ACCRUE"]) == ("300", "300.00", "47")
    assert out["saved"]["ok"] is True
    order_id = str(out["saved"]["id"])
    (placed,) = out["placed"].values()
    assert placed["outcome"] == "accepted" and placed["result"]["points_spent"] == 300
    assert placed["result"]["version"] == 1000  # the site's VERSION 1, as docs/bitrix.md scales it

    # Paid, one drill of two shipped, then returned: the ledger holds exactly that.
    (shipped,) = out["shipped"].values()
    assert shipped["result"]["status"] == "partially_shipped" and shipped["result"]["points_available"] > 0
    assert out["returned"]["outcome"] == "accepted"
    record = applied_order(gateway, order_id)
    assert record is not None
    snapshot, result = record["snapshot"], record["result"]
    assert snapshot["version"] == 4000 and snapshot["paid"] is True and snapshot["points_to_spend"] == 300
    assert [(s["shipment_id"], s["lines"][0]["quantity"]) for s in snapshot["shipments"]] == [
        (snapshot["shipments"][0]["shipment_id"], "1")
    ]
    assert [r["return_id"] for r in snapshot["returns"]] == ["R-1"]
    drill = next(line for line in result["lines"] if line["quantity"] == "2")
    assert (drill["shipped"], drill["returned"]) == ("1", "1")
    assert result["points_spent"] < 300  # the returned drill gave back the points that paid for it
    after = balance(gateway, card)
    assert after["held"] == 0
    assert after["available"] == before - result["points_spent"] + result["points_available"]

    # The personal account shows what the gateway says.
    html = out["balance_html"]
    assert f'data-points="available">{after["available"]}<' in html and "Доступно баллов" in html
    assert out["queue"] == {"pending": 0, "failed": 0}
    gateway.assert_invariants()


def test_points_above_what_the_order_may_pay_are_trimmed_to_the_limit(gateway: Gateway, tmp_path: Path) -> None:
    card = "2700000000014"
    before = balance(gateway, card)
    out = run_php("checkout.php", gateway.url, tmp_path / "queue", LOYALTY_TEST_POINTS="450")
    # The cart trims the choice to 375 (30 % of 1 250.50); the order is saved with 375.
    assert out["cart"]["LOYALTY_POINTS"] == "375" and out["cart"]["LOYALTY_DISCOUNT"] == "375.00"
    assert out["saved"]["ok"] is True
    (placed,) = out["placed"].values()
    assert placed["result"]["points_spent"] == 375
    record = applied_order(gateway, str(out["saved"]["id"]))
    assert record is not None and record["snapshot"]["points_to_spend"] == 375
    assert before["available"] >= 450  # so it was the order's limit that trimmed, not the balance


def test_new_users_become_customers_and_keep_their_card(gateway: Gateway, tmp_path: Path) -> None:
    out = run_php("register.php", gateway.url, tmp_path / "queue")
    assert out["known_card"] == "2700000000014"  # the phone of a till customer: linked, not duplicated
    new_card = out["new_card"]
    assert new_card and new_card != "2700000000014"
    found = gateway.http.get("/api/v1/customers", params={"phone": "+79125554433"}, headers=SITE)
    assert found.status_code == 200, found.text
    customer = found.json()
    assert [c["card_number"] for c in customer["cards"]] == [new_card]
    assert (customer["email"], customer["name"]) == ("gleb@example.ru", "Глеб Орлов")


@pytest.mark.parametrize("trouble", ["gateway down", "wrong secret"])
def test_nothing_is_lost_while_the_gateway_cannot_take_events(gateway: Gateway, tmp_path: Path, trouble: str) -> None:
    queue = tmp_path / "queue"
    url, secret = (f"http://127.0.0.1:{free_port()}", SECRET) if trouble == "gateway down" else (gateway.url, "x" * 24)
    card = "2700000000038"
    before = gateway.ledger_snapshot()
    out = run_php("offline.php", url, queue, secret=secret)
    assert out["saved"]["ok"] is True
    order_id = str(out["saved"]["id"])
    assert [r["outcome"] for r in out["sent"].values()] == ["retry"]
    # An order paid with points cannot be checked now: stopped, with the customer's message.
    assert out["with_points"]["ok"] is False
    assert "сервис бонусов недоступен" in out["with_points"]["errors"][0]
    assert out["queue"] == {"pending": 2, "failed": 0}  # the order's snapshot and the new user
    assert "Require all denied" in (queue / ".htaccess").read_text()  # they name customers: not served
    assert gateway.ledger_snapshot() == before and applied_order(gateway, order_id) is None

    # The agent, as Bitrix runs it, waits out the back-off (the first retry is a minute later)…
    early = run_php("agent.php", gateway.url, queue)
    assert early["agents"] == ["\\Loyaltygateway\\Loyalty\\Agent::run();"]
    assert early["queue"] == {"pending": 2, "failed": 0}
    # …and once due (here: "Send now" on the options page), everything reaches the gateway once.
    later = run_php("agent.php", gateway.url, queue, LOYALTY_FORCE="1")
    assert later["processed"][:2] == [2, 0] and later["queue"] == {"pending": 0, "failed": 0}
    record = applied_order(gateway, order_id)
    assert record is not None and record["snapshot"]["paid"] is True and record["snapshot"]["version"] == 2000
    assert record["result"]["card_number"] == card
    found = gateway.http.get("/api/v1/customers", params={"phone": "+79125550011"}, headers=SITE)
    assert found.status_code == 200 and len(found.json()["cards"]) == 1  # registered once, with a card
    snapshot = gateway.ledger_snapshot()
    again = run_php("agent.php", gateway.url, queue, LOYALTY_FORCE="1")
    assert again["processed"][:2] == [0, 0] and gateway.ledger_snapshot() == snapshot
    gateway.assert_invariants()


def test_the_module_installs_as_bitrix_expects() -> None:
    """The layout Bitrix's module installer and autoloader read (bitrix/modules/<id>/…)."""
    root = MODULE / "loyaltygateway.loyalty"
    for path in (
        "include.php",
        "options.php",
        "install/index.php",
        "install/version.php",
        "lang/ru/install/index.php",
        "lang/en/install/index.php",
        "install/components/loyaltygateway/loyalty.balance/component.php",
    ):
        assert (root / path).is_file(), path
    for php in root.rglob("*.php"):
        lint = subprocess.run([str(PHP), "-l", str(php)], capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    index = (root / "install/index.php").read_text(encoding="utf-8")
    assert "class loyaltygateway_loyalty extends CModule" in index


def test_a_cancelled_order_gives_its_points_back(gateway: Gateway, tmp_path: Path) -> None:
    card = "2700000000021"  # the demo's Борис
    before = balance(gateway, card)
    out = run_php("cancel.php", gateway.url, tmp_path / "queue")
    (placed,) = out["placed"].values()
    assert placed["result"]["points_spent"] == 200 and placed["result"]["status"] == "placed"
    assert placed["result"]["balance"]["available"] == before["available"] - 200
    (cancelled,) = out["cancelled"].values()
    assert cancelled["result"]["status"] == "cancelled" and cancelled["result"]["points_spent"] == 0
    after = balance(gateway, card)
    assert (after["available"], after["held"], after["pending"]) == (before["available"], 0, before["pending"])
    assert out["queue"] == {"pending": 0, "failed": 0}
    gateway.assert_invariants()

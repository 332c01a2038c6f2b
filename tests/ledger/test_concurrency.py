"""50 parallel redemptions against one account never overspend, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import Gateway
from tests.support import TILL, key

CARD = "2700000000014"  # 600 points
PARALLEL = 50
SPEND = 30


def _no_accrual(demo_config: Any) -> Any:
    program = demo_config.program.model_copy(
        update={"accrual": demo_config.program.accrual.model_copy(update={"percent": 0})}
    )
    return demo_config.model_copy(update={"program": program})


def _redeem(base: str, index: int, barrier: threading.Barrier) -> str:
    lines = [{"line_id": "1", "item": "X", "quantity": 1, "price": "100.00"}]
    with httpx.Client(base_url=base, timeout=60) as http:
        barrier.wait()
        if index % 2:
            response = http.post(
                "/api/v1/receipts",
                headers={**TILL, **key()},
                json={"receipt_id": f"C-{index}", "card_number": CARD, "lines": lines, "points_to_spend": SPEND},
            )
        else:
            response = http.post(
                "/api/v1/holds", headers={**TILL, **key()}, json={"card_number": CARD, "points": SPEND}
            )
            if response.status_code == 200:
                response = http.post(
                    "/api/v1/receipts",
                    headers={**TILL, **key()},
                    json={
                        "receipt_id": f"C-{index}",
                        "card_number": CARD,
                        "lines": lines,
                        "hold_id": response.json()["hold_id"],
                    },
                )
        if response.status_code == 200:
            return "spent"
        return str(response.json()["error"]["code"])


def test_parallel_redemptions_never_overspend(start_gateway: Any, any_database_url: str, demo_config: Any) -> None:
    gw: Gateway = start_gateway(config=_no_accrual(demo_config), url=any_database_url)
    barrier = threading.Barrier(PARALLEL)
    with ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(lambda i: _redeem(gw.url, i, barrier), range(PARALLEL)))
    assert set(outcomes) <= {"spent", "insufficient_points"}, outcomes
    assert outcomes.count("spent") == 600 // SPEND
    balance = gw.http.get(f"/api/v1/cards/{CARD}/balance", headers=TILL).json()
    assert (balance["available"], balance["held"], balance["balance"]) == (0, 0, 0)
    gw.assert_invariants()

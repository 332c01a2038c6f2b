"""The operator page in a real headless Chromium: it lists a stuck transaction and the replay
button resolves it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway
from tests.support import OPERATOR, TILL, key

CARD = "2700000000014"


def test_replay_button_resolves_a_stuck_hold(gateway: Gateway, browser: Any) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    hold = gateway.http.post(
        "/api/v1/holds", json={"card_number": CARD, "points": 120, "ttl_seconds": 60}, headers={**TILL, **key()}
    ).json()
    gateway.clock.advance(seconds=61)
    item_id = f"hold:{hold['hold_id']}"
    base = gateway.url.replace("http://", "http://operator:demo-operator@")
    browser.get(f"{base}/operator")
    assert "Loyalty gateway — operator" in browser.title
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-item="{item_id}"]')
    assert "past its deadline" in row.text and CARD in row.text
    assert browser.find_element(By.ID, "ledger-status").text.startswith("Ledger consistent")

    row.find_element(By.TAG_NAME, "button").click()

    def left_the_page(_driver: Any) -> bool:
        # click() returns once the form is submitted, not when the next page has loaded. The old
        # row is gone once touching it fails: StaleElementReference, or Chromium's "node does
        # not belong to the document" (a plain WebDriverException) when the page swaps mid-check.
        try:
            row.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(browser, 20).until(left_the_page)
    flash = WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.ID, "flash"))).text
    assert flash == f"{item_id}: voided, points released"
    assert browser.find_elements(By.CSS_SELECTOR, f'tr[data-item="{item_id}"]') == []
    assert browser.find_element(By.ID, "nothing-stuck")
    balance = gateway.http.get(f"/api/v1/cards/{CARD}/balance", headers=TILL).json()
    assert (balance["available"], balance["held"]) == (600, 0)

    browser.get(f"{base}/operator/items/{item_id}")
    assert "held" in browser.page_source and "voided" in browser.page_source


def test_operator_page_needs_operator_credentials_and_a_valid_token(gateway: Gateway) -> None:
    assert gateway.http.get("/operator").status_code == 401
    assert gateway.http.get("/operator", headers=TILL).status_code == 403
    assert gateway.http.get("/operator", headers=OPERATOR).status_code == 200
    forged = gateway.http.post("/operator/replay", headers=OPERATOR, data={"item_id": "hold:x", "token": "0" * 64})
    assert forged.status_code == 403

"""The dashboard in a real headless Chromium: the numbers of the period, charts actually drawn
(their pixels are in the screenshot where the bars are), filters that narrow, export links that
download the widget's report."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from gateway.config import DEMO_CONFIG, load_config
from gateway.core.program import Program
from tests.conftest import Gateway
from tests.ledger.test_reports import PROGRAM
from tests.support import OPERATOR, TILL, key

CARD = "2700000000014"  # seeded by the demo configuration
BAR_BLUE = (0x2F, 0x6F, 0xB3)  # the first colour of gateway/reports/charts.py


@pytest.fixture
def shop(start_gateway: Callable[..., Gateway]) -> Gateway:
    """The demo gateway running the reports test program (zones msk/spb, segments, a paint
    discount in Petersburg), with three receipts of today."""
    config = load_config(DEMO_CONFIG).model_copy(update={"program": Program.model_validate(PROGRAM)})
    gateway = start_gateway(config)
    for receipt_id, store, item, price in (("D-1", "S01", "CEMENT", "1000.00"), ("D-2", "S06", "PN-WHITE", "500.00")):
        body = {
            "receipt_id": receipt_id,
            "card_number": CARD,
            "store": store,
            "lines": [
                {"line_id": "1", "item": item, "quantity": "1", "price": price},
                {"line_id": "2", "item": "BRUSH", "quantity": "1", "price": "100.00"},
            ],
        }
        reply = gateway.http.post("/api/v1/receipts", json=body, headers={**TILL, **key()})
        assert reply.status_code == 200, reply.text
    return gateway


def pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) into rows of bytes."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, chunk = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + length
    raw = zlib.decompress(data)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind_of_filter, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind_of_filter == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind_of_filter == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind_of_filter == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind_of_filter == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(b for j, b in enumerate(line) if j % 4 != 3))
        previous = line
    return width, height, rows


def rgb_at(rows: list[bytes], x: int, y: int) -> tuple[int, int, int]:
    r, g, b = rows[y][3 * x : 3 * x + 3]
    return r, g, b


def test_the_dashboard_shows_the_period_with_charts_drawn(shop: Gateway, browser: Any, tmp_path: Any) -> None:
    from selenium.webdriver.common.by import By

    base = shop.url.replace("http://", "http://operator:demo-operator@")
    browser.get(f"{base}/dashboard")
    assert browser.title == "Программа лояльности — панель"
    kpi = {
        e.get_attribute("data-metric"): e.find_element(By.CLASS_NAME, "value").text
        for e in browser.find_elements(By.CSS_SELECTOR, ".kpi")
    }
    assert kpi["receipts_with_card"] == "2"
    assert kpi["turnover"].startswith("1\u202f650,00")  # 1000 + 100 + 500 − 50 (paint in Petersburg) + 100

    stores = {
        e.get_attribute("data-label"): e.get_attribute("data-value")
        for e in browser.find_elements(By.CSS_SELECTOR, "#chart-stores rect.bar")
    }
    assert stores == {"S01": "1100.00", "S06": "550.00"}
    day_bars = browser.find_elements(By.CSS_SELECTOR, "#chart-turnover rect.bar")
    assert [b.get_attribute("data-value") for b in day_bars] == ["1650.00"]

    png = browser.get_screenshot_as_png()
    (tmp_path / "dashboard.png").write_bytes(png)
    width, height, rows = pixels(png)
    assert width >= 1000 and height >= 1000
    colours = {rows[y][x : x + 3] for y in range(0, height, 7) for x in range(0, 3 * width - 3, 21)}
    assert len(colours) > 20, "the screenshot is blank"
    # The day's bar is drawn: its middle has the bar colour in the screenshot.
    browser.execute_script("window.scrollTo(0, 0)")
    box = browser.execute_script(
        "const r = document.querySelector('#chart-turnover rect.bar').getBoundingClientRect();"
        "return [r.left + r.width / 2, r.top + r.height / 2, window.scrollY];"
    )
    x, y = int(box[0]), int(box[1])
    assert 0 <= y < height, "the daily chart is below the fold of the screenshot"
    assert rgb_at(rows, x, y) == BAR_BLUE

    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#widget-stores a.export")}
    assert set(links) == {"XLSX", "CSV", "JSON"}
    assert "/api/v1/reports/stores?" in links["CSV"] and links["CSV"].endswith("format=csv")
    exported = shop.http.get(links["CSV"].split("@", 1)[-1].split(shop.url.split("//")[1], 1)[-1], headers=OPERATOR)
    assert exported.status_code == 200 and "S06;tills;1;1;550,00" in exported.content.decode("utf-8-sig")


def test_the_filters_narrow_every_widget(shop: Gateway, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base = shop.url.replace("http://", "http://operator:demo-operator@")
    browser.get(f"{base}/dashboard")
    Select(browser.find_element(By.NAME, "zone")).select_by_value("spb")
    browser.find_element(By.CSS_SELECTOR, "#filters button").click()
    # click() returns once the form is sent, not when the filtered page has loaded
    WebDriverWait(browser, 20).until(
        lambda driver: (
            "zone=spb" in driver.current_url and driver.execute_script("return document.readyState") == "complete"
        )
    )
    kpi = browser.find_element(By.CSS_SELECTOR, '.kpi[data-metric="turnover"] .value')
    assert kpi.text.startswith("550,00")
    assert "zone=spb" in browser.current_url
    labels = [e.get_attribute("data-label") for e in browser.find_elements(By.CSS_SELECTOR, "#chart-stores rect.bar")]
    assert labels == ["S06"]
    assert all("zone=spb" in a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a.export"))
    # Nothing of the page comes from elsewhere: no scripts, no external resources.
    assert browser.find_elements(By.TAG_NAME, "script") == []
    external = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin))"
    )
    assert external == []


def test_the_dashboard_needs_operator_credentials(shop: Gateway) -> None:
    assert shop.http.get("/dashboard").status_code == 401
    assert shop.http.get("/dashboard", headers=TILL).status_code == 403
    assert shop.http.get("/dashboard?zone=nowhere", headers=OPERATOR).status_code == 422

"""The bench's own tools measure what they claim: percentiles, the open schedule of the fixed-rate
mode, and what counts as a success for each protocol."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import percentile
from bench.echo_app import app as echo_app
from bench.scenarios import SCENARIOS
from tests.support import live_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_percentiles_interpolate_like_the_standard_library(size: int) -> None:
    values = [random.Random(size).uniform(0, 50) for _ in range(size)]
    if size == 1:
        assert percentile(values, 0.99) == values[0]
        return
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    assert percentile(values, 0.50) == pytest.approx(cuts[49])
    assert percentile(values, 0.99) == pytest.approx(cuts[98])
    assert percentile(values, 0.0) == min(values) and percentile(values, 1.0) == max(values)


def _load(url: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", "--url", url, "--scenario", "echo", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_load_generator_against_a_real_server() -> None:
    with live_server(echo_app) as url:
        saturated = _load(url, "--seconds", "0.5", "--warmup", "0.2", "--connections", "4")
        # an open schedule: exactly rate × seconds requests are due in the window, however fast
        # the server answers, and every one of them is recorded
        fixed = _load(url, "--seconds", "1", "--warmup", "0.2", "--connections", "4", "--rate", "40")
    assert saturated["failures"] == {} and isinstance(saturated["count"], int) and saturated["count"] > 0
    assert isinstance(saturated["latencies"], list) and len(saturated["latencies"]) == saturated["count"]
    assert fixed["count"] == 40 and fixed["failures"] == {} and fixed["mode"] == "40 req/s"


def test_a_reply_counts_as_a_success_only_if_the_protocol_says_so() -> None:
    onec, soap, http = SCENARIOS["onec_calculate"].ok, SCENARIOS["soap_soft"].ok, SCENARIOS["calculate"].ok
    assert onec(200, b'{"Goods":[],"Error":false,"ErrorMessage":""}')
    assert not onec(200, b'{"Error":true,"ErrorMessage":"card"}')
    assert soap(200, b"<ChequeResponse><ReturnCode>0</ReturnCode></ChequeResponse>")
    assert not soap(200, b"<ChequeResponse><ReturnCode>300</ReturnCode></ChequeResponse>")
    assert http(200, b"{}") and not http(409, b"{}")

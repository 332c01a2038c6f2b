"""Benchmarks (1) and (2): POS calls over HTTP under concurrent load from a separate process —
calculate and commit on the JSON API, calculatediscounts on the 1C loyaltyservice adapter, a Soft
cheque on the SOAP adapter — each reported against a bare FastAPI echo endpoint measured in the
same run on the same machine (throughput ratio; latencies p50/p99).

    python -m bench.pos [--seconds 10] [--concurrency 8] [--rate 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import free_port, gateway_process, percentile, save, table, wait_healthy

SCENARIOS = ["calculate", "commit", "onec_calculate", "soap_soft"]


def load(url: str, scenario: str, seconds: float, concurrency: int, rate: float) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        url,
        "--scenario",
        scenario,
        "--seconds",
        str(seconds),
        "--concurrency",
        str(concurrency),
        "--rate",
        str(rate),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    data = json.loads(done.stdout)
    latencies = data.pop("latencies")
    return {
        **data,
        "throughput": data["count"] / data["seconds"],
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0, help="fixed total rate (0 = as fast as possible)")
    args = parser.parse_args()
    results: dict[str, Any] = {"seconds": args.seconds, "concurrency": args.concurrency, "rate": args.rate}
    root = Path(__file__).parent.parent
    port = free_port()
    echo = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.echo_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health")
        results["echo"] = load(f"http://127.0.0.1:{port}", "echo", args.seconds, args.concurrency, args.rate)
    finally:
        echo.terminate()
        echo.wait(timeout=30)
    with (
        tempfile.TemporaryDirectory() as tmp,
        gateway_process(f"sqlite:///{tmp}/bench.db", Path(tmp), {"GATEWAY_WORKERS": "true"}) as url,
    ):
        for scenario in SCENARIOS:
            results[scenario] = load(url, scenario, args.seconds, args.concurrency, args.rate)
    base = results["echo"]["throughput"]
    rows = []
    for name in ["echo", *SCENARIOS]:
        r = results[name]
        r["ratio_to_echo"] = r["throughput"] / base
        rows.append([name, r["count"], r["errors"], r["throughput"], r["p50_ms"], r["p99_ms"], r["ratio_to_echo"]])
    table(
        f"POS over HTTP, {args.concurrency} clients, {args.seconds:.0f} s each"
        + (f", {args.rate:.0f} req/s offered" if args.rate else ""),
        ["scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "× echo"],
        rows,
    )
    print(f"results: {save('pos' + (f'_rate{int(args.rate)}' if args.rate else ''), results)}")


if __name__ == "__main__":
    main()

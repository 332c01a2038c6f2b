"""A load generator run as its own process: N threads with keep-alive connections send one kind
of request for a fixed time and report latencies and throughput as JSON on stdout."""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import threading
import time
from typing import Any

import httpx

TILL = "Basic " + base64.b64encode("касса:demo-till".encode()).decode()
CARDS = ["2700000000014", "2700000000021"]
LINES = [
    {"line_id": "1", "item": "MILK-1L", "quantity": "2", "price": "89.90"},
    {"line_id": "2", "item": "BREAD", "quantity": "1", "price": "55.00"},
    {"line_id": "3", "item": "CHEESE", "quantity": "0.350", "price": "899.00", "amount": "314.65"},
]
ONEC_CART = {
    "ObjectTime": "2026-11-23T12:00:00",
    "LoyaltyCardsList": [CARDS[0]],
    "RetailStore": {"Ref": "store-1"},
    "Goods": [
        {"LineUID": str(i), "Count": 1, "Item": {"Ref": f"item-{i}", "Name": "Товар"}, "Price": 100, "TotalAmount": 100}
        for i in range(3)
    ],
}
SOAP_SOFT = (
    '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
    '<ProcessRequest xmlns="http://loyalty.manzanagroup.ru/loyalty.xsd"><request><ChequeRequest>'
    "<RequestID>{rid}</RequestID><Card><CardNumber>2700000000014</CardNumber></Card><Number>{rid}</Number>"
    "<OperationType>Sale</OperationType><ChequeType>Soft</ChequeType>"
    "<Item><PositionNumber>1</PositionNumber><Article>A</Article><Price>100</Price><Quantity>1</Quantity>"
    "<Summ>100</Summ></Item></ChequeRequest></request></ProcessRequest></s:Body></s:Envelope>"
)


def build(scenario: str, n: int) -> tuple[str, str, dict[str, str], Any]:
    """(method, path, headers, body) of request number ``n`` of a scenario."""
    json_headers = {"Authorization": TILL}
    if scenario == "echo":
        return "POST", "/echo", {}, {"card_number": CARDS[n % 2], "lines": LINES}
    if scenario == "calculate":
        return "POST", "/api/v1/calculate", json_headers, {"card_number": CARDS[n % 2], "lines": LINES}
    if scenario == "commit":
        headers = {**json_headers, "Idempotency-Key": f"bench-{n}-{time.time_ns()}"}
        body = {"receipt_id": f"bench-{n}-{time.time_ns()}", "card_number": CARDS[n % 2], "lines": LINES}
        return "POST", "/api/v1/receipts", headers, body
    if scenario == "onec_calculate":
        return "POST", "/hs/loyaltyservice/calculatediscounts", json_headers, ONEC_CART
    if scenario == "soap_soft":
        headers = {
            **json_headers,
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": '"http://loyalty.manzanagroup.ru/loyalty.xsd/ProcessRequest"',
        }
        return "POST", "/soap/loyalty", headers, SOAP_SOFT.format(rid=f"b{n}-{time.time_ns()}")
    raise SystemExit(f"unknown scenario {scenario}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0, help="total requests per second (0: as fast as possible)")
    args = parser.parse_args()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = itertools.count()
    deadline = time.perf_counter() + args.seconds
    interval = args.concurrency / args.rate if args.rate else 0.0

    def worker(index: int) -> None:
        nonlocal errors
        local: list[float] = []
        failed = 0
        next_at = time.perf_counter() + (interval * index / args.concurrency if interval else 0)
        with httpx.Client(base_url=args.url, timeout=30) as http:
            while True:
                if interval:
                    pause = next_at - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    next_at += interval
                if time.perf_counter() >= deadline:
                    break
                method, path, headers, body = build(args.scenario, next(counter))
                start = time.perf_counter()
                if isinstance(body, str):
                    response = http.request(method, path, headers=headers, content=body.encode())
                else:
                    response = http.request(method, path, headers=headers, json=body)
                local.append(time.perf_counter() - start)
                if response.status_code != 200:
                    failed += 1
        with lock:
            latencies.extend(local)
            errors += failed

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(json.dumps({"count": len(latencies), "errors": errors, "seconds": elapsed, "latencies": latencies}))


if __name__ == "__main__":
    main()

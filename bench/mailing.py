"""Benchmark: a mailing to a large base planned and queued, then sent, while tills commit receipts.

    python -m bench.mailing                                  # 500,000 customers, SQLite
    python -m bench.mailing --customers 100000 --send-seconds 30

The base is ``bench.jobs``'s (bulk inserts: customer, account, card, welcome lot; one in five
with a receipt this quarter); nine customers in ten agreed to advertising. An advertising SMS
mailing to everyone with a 10 % holdout is created and approved, then:

* **plan and queue**: the planner walks the audience in batches (one short write transaction
  each: the recipients' rows, their messages and outbox rows) — wall time, and the tills' p50/p99
  and the longest wait for the SQLite write lock meanwhile (``bench.jobs``'s till load and probe);
* **send**: the outbox relay delivers the due messages through the cascade (console provider)
  for ``--send-seconds`` — messages per second, and the tills meanwhile.

The till load alone is measured first (the baseline). Target (issue 20): 500,000 customers
planned and queued in minutes, the tills' p99 unchanged while it sends.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import save, table
from bench.jobs import measure, populate

CONSENT_SQL = (
    "UPDATE customers SET ad_consent = :yes, ad_consent_at = :at, ad_consent_channel = 'bench'"
    " WHERE substr(id, length(id), 1) <> '0'"
)


def _config(workdir: Path, per_minute: int) -> Any:
    from bench.jobs import PROGRAM
    from gateway.config import NotificationsConfig, ProviderConfig, load_config
    from gateway.mailings.config import MailingsConfig

    config = load_config(PROGRAM)
    notifications = NotificationsConfig(
        providers={"console": ProviderConfig(type="console", path=str(workdir / "messages.jsonl"))}
    )
    mailings = MailingsConfig(public_url="https://loyalty.example", per_minute=per_minute)
    return config.model_copy(update={"notifications": notifications, "mailings": mailings})


def _send_for(relay: Any, seconds: float) -> dict[str, int]:
    """The relay's loop, as a worker runs it, for ``seconds``."""
    sent = passes = 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        done = relay.run_once()
        passes += 1
        sent += done.delivered
        if not done.claimed:
            time.sleep(0.05)
    return {"sent": sent, "passes": passes}


class WriteTimer:
    """Times the statements of the planner's write transactions (``planner._write_batch``: from
    the first statement, which waits for SQLite's write lock, to the last; the commit is not in)."""

    def __init__(self) -> None:
        from gateway.mailings import planner

        self.planner = planner
        self.original = planner._write_batch
        self.seconds: list[float] = []

    def __enter__(self) -> WriteTimer:
        original = self.original

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - began)

        self.planner._write_batch = timed
        return self

    def __exit__(self, *_: object) -> None:
        self.planner._write_batch = self.original


def bench_sqlite(path: Path, customers: int, rate: float, per_minute: int, send_seconds: float) -> dict[str, Any]:
    from sqlalchemy import text

    from contracts.operations import RegisterCustomerRequest
    from gateway.config import Settings
    from gateway.mailings import planner, store
    from gateway.mailings.requests import MailingRequest
    from gateway.store import migrate
    from gateway.wiring import build_relay, build_service

    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    config = _config(path.parent, per_minute)
    service = build_service(Settings(database_url=url), config)
    try:
        began = time.perf_counter()
        with service.db.read() as session:
            present = int(session.execute(text("SELECT count(*) FROM customers")).scalar_one())
        if present < customers:  # a file kept from an earlier run (--sqlite-file) is used as it is
            populate(service, customers, service.clock())
            with service.db.write() as session:
                session.execute(text(CONSENT_SQL), {"yes": True, "at": service.clock()})
        populated = time.perf_counter() - began
        cards = []
        for n in range(50):
            number = f"27{n:011d}"
            service.register_customer("site", f"till-card-{n}", RegisterCustomerRequest(card_number=number))
            cards.append(number)
        request = MailingRequest(
            name="Весенняя распродажа",
            kind="advertising",
            channel="sms",
            template="{name}, весенняя распродажа: скидки до 30% на краски и обои!",
            holdout_percent=10,
        )
        mailing = store.create(service, config, "operator", f"bench-{time.time_ns()}", request)
        preview_began = time.perf_counter()
        preview = store.preview(service, config, request)
        preview_seconds = time.perf_counter() - preview_began
        store.start(service, mailing.id)
        baseline = measure(service, str(path), cards, rate, None, idle=10)
        with WriteTimer() as writes:
            planned = measure(service, str(path), cards, rate, lambda: planner.plan(service, config, mailing.id), 0)
        relay = build_relay(service, config)
        sending = measure(service, str(path), cards, rate, lambda: _send_for(relay, send_seconds), 0)
        done = store.read(service, mailing.id)
        return {
            "customers": customers,
            "populate_seconds": populated,
            "preview_seconds": preview_seconds,
            "preview_messages": preview.channels[0].messages,
            "recipients": done.recipients,
            "holdout": done.holdout,
            "skipped_consent": done.skipped_consent,
            "batch": config.mailings.batch,
            "per_minute": per_minute,
            "baseline": baseline,
            "plan": {**planned, "result": {"queued": planned["result"].queued}},
            "plan_write_ms": {
                "batches": len(writes.seconds),
                "median": sorted(writes.seconds)[len(writes.seconds) // 2] * 1000 if writes.seconds else 0.0,
                "max": max(writes.seconds, default=0.0) * 1000,
            },
            "send": sending,
        }
    finally:
        service.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--till-rate", type=float, default=50.0, help="till receipts per second meanwhile")
    parser.add_argument("--per-minute", type=int, default=3000, help="the mailing's pace, messages per minute")
    parser.add_argument("--send-seconds", type=float, default=60.0, help="how long the relay sends")
    parser.add_argument("--sqlite-file", type=Path, help="keep the base in this file (and reuse it next time)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-mailing-") as tmp:
        path = args.sqlite_file or Path(tmp) / "mailing.db"
        cell = bench_sqlite(path, args.customers, args.till_rate, args.per_minute, args.send_seconds)
    base_p99 = cell["baseline"]["p99_ms"]
    rows = []
    for name in ("baseline", "plan", "send"):
        run = cell[name]
        rows.append(
            [
                name,
                run["seconds"],
                run["till_receipts"],
                run["till_errors"],
                run["p50_ms"],
                run["p99_ms"],
                run["p99_ms"] / base_p99 if base_p99 else float("nan"),
                run.get("longest_lock_wait_ms", float("nan")),
            ]
        )
    sent = cell["send"]["result"]["sent"]
    table(
        f"A mailing to {args.customers:,} customers (SQLite): {cell['recipients']:,} messages queued, "
        f"{cell['holdout']:,} held out; tills at {args.till_rate:g} receipts/s",
        [
            "phase",
            "seconds",
            "receipts",
            "errors",
            "till p50 ms",
            "till p99 ms",
            "p99 / baseline",
            "longest lock wait ms",
        ],
        rows,
        caption=(
            f"planned and queued in {cell['plan']['seconds'] / 60:.1f} min; sent {sent:,} messages in "
            f"{cell['send']['seconds']:.0f} s ({sent / cell['send']['seconds']:.0f}/s, pace {args.per_minute}/min); "
            f"preview {cell['preview_seconds']:.2f} s; planner write transactions: "
            f"{cell['plan_write_ms']['batches']:,}, median {cell['plan_write_ms']['median']:.0f} ms, "
            f"max {cell['plan_write_ms']['max']:.0f} ms"
        ),
    )
    print(f"results: {save('mailing', {'till_rate': args.till_rate, 'sqlite': cell})}")


if __name__ == "__main__":
    main()

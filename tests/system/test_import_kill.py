"""An import process killed with SIGKILL in the middle of its file, then run again to the end:
every row is in the database exactly once and the reconciliation balances — for each format."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.config import DEMO_CONFIG, load_config
from gateway.importer.cards import CardImporter
from gateway.ledger.service import LoyaltyService
from gateway.store.db import Database
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
ROWS = 60
BATCH = 10
PROGRAM = load_config(DEMO_CONFIG).program

# Runs an import whose progress callback, after the first committed batch, announces it and then
# hangs — so the test kills the process at a known point, with the rest of the file not written.
DRIVER = """
import sys, time
from pathlib import Path
from gateway.config import DEMO_CONFIG, load_config
from gateway.store.db import Database
from gateway.importer.balances import BalanceImporter
from gateway.importer.cards import CardImporter
from gateway.importer.history import HistoryImporter
from gateway.importer.lots import LotImporter

kind, path, url, marker, batch = sys.argv[1:6]
db = Database(url)
options = {"batch_size": int(batch)}
importer = {
    "cards": lambda: CardImporter(db, **options),
    "balances": lambda: BalanceImporter(db, load_config(DEMO_CONFIG).program, **options),
    "lots": lambda: LotImporter(db, **options),
    "history": lambda: HistoryImporter(db, **options),
}[kind]()

def hang(rows):
    Path(marker).write_text(str(rows))
    time.sleep(600)

importer.run(Path(path), progress=hang)
"""


def card(i: int) -> str:
    return f"{4_000_000_000_000 + i}"


def make_file(kind: str, path: Path) -> int:
    """Write ROWS rows of ``kind``; returns the points (or kopecks) they carry."""
    lines: list[str]
    if kind == "cards":
        lines = ["card_number;phone;balance"] + [f"{card(i)};+7925{i:07d};{i + 1}" for i in range(ROWS)]
        total = sum(i + 1 for i in range(ROWS))
    elif kind == "balances":
        lines = ["card_number;delta"] + [f"{card(i)};{i + 1}" for i in range(ROWS)]
        total = sum(i + 1 for i in range(ROWS))
    elif kind == "lots":
        lines = ["id;card_number;points;accrued_at;expires_at"] + [
            f"lot-{i};{card(i)};{i + 1};2025-01-01;2099-01-01" for i in range(ROWS)
        ]
        total = sum(i + 1 for i in range(ROWS))
    else:
        lines = ["id;card_number;occurred_at;kind;amount"] + [
            f"op-{i};{card(i)};2025-01-01;purchase;{i + 1}.50" for i in range(ROWS)
        ]
        total = sum((i + 1) * 100 + 50 for i in range(ROWS))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return total


def written(db: Database, kind: str) -> tuple[int, int]:
    """(rows, points or kopecks) this kind of import wrote."""
    queries = {
        "cards": "SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries WHERE client_id LIKE 'import:cards:%'",
        "balances": "SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries WHERE kind = 'adjustment'"
        " AND client_id LIKE 'import:balances:%'",
        "lots": "SELECT count(*), coalesce(sum(points), 0) FROM ledger_entries WHERE client_id LIKE 'import:lots:%'",
        "history": "SELECT count(*), coalesce(sum(amount_kopecks), 0) FROM import_history",
    }
    with db.read() as session:
        count, total = session.execute(text(queries[kind])).one()
    return int(count), int(total)


@pytest.mark.parametrize("kind", ["cards", "balances", "lots", "history"])
def test_killed_import_resumes_without_doubling(database_url: str, tmp_path: Path, kind: str) -> None:
    db = Database(database_url)
    if kind != "cards":  # the other formats work on cards imported before (without balances)
        base = tmp_path / "base.csv"
        base.write_text("card_number\n" + "\n".join(card(i) for i in range(ROWS)) + "\n", encoding="utf-8")
        assert CardImporter(db).run(base).imported == ROWS
    path = tmp_path / f"{kind}.csv"
    total = make_file(kind, path)
    marker = tmp_path / "first-batch-committed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, kind, str(path), database_url, str(marker), str(BATCH)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(lambda: marker.exists() or process.poll() is not None, timeout=120)
        assert marker.exists(), process.stderr.read().decode() if process.stderr else ""
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert written(db, kind)[0] == BATCH  # killed after exactly one batch
    resumed = subprocess.run(
        [sys.executable, "-m", "gateway", "import", kind, str(path), "--database-url", database_url],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "reconciled: points in = points out" in resumed.stdout
    assert written(db, kind) == (ROWS, total)
    again = subprocess.run(
        [sys.executable, "-m", "gateway", "import", kind, str(path), "--database-url", database_url],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0 and "reconciled" in again.stdout, again.stdout + again.stderr
    assert written(db, kind) == (ROWS, total)
    report = LoyaltyService(db, PROGRAM).check()
    assert report.ok, report.violations
    db.dispose()

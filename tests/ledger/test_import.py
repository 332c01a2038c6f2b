"""Importing cards from an old system: exact, resumable, idempotent, reconciled."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.operations import BalanceRequest
from gateway.cli import app as cli
from gateway.config import DEMO_CONFIG, load_config
from gateway.importer.cards import CardImporter, OrderedIds
from gateway.importer.common import compact_key
from gateway.ledger.service import LoyaltyService
from gateway.seed import seed_demo
from gateway.store.db import Database

CSV = """card_number;phone;email;name;birth_date;balance;expires_at
1000000000001;+79160000001;a@example.com;Анна;1990-01-02;150;
1000000000002;89160000002;;Борис;02.03.1985;0;
1000000000003;;b@example.com;;;75;2030-12-31
bad card!;+79160000004;;;;10;
1000000000005;+79160000005;;;;-5;
1000000000006;+79160000006;;;;12.5;
1000000000007;+79160000007;;;1990-13-45;7;
1000000000008;+79160000001;;;;8;
1000000000009;+79990000001;;;;9;
2700000000014;+79160000010;;;;500;
1000000000011;+79160000011;;;;30;
"""


@pytest.fixture
def db(database_url: str) -> Database:
    database = Database(database_url)
    seed_demo(LoyaltyService(database, load_config(DEMO_CONFIG).program), load_config(DEMO_CONFIG))
    return database


def write(tmp_path: Path, text: str = CSV) -> Path:
    path = tmp_path / "cards.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_reports_rejects_and_reconciles(db: Database, tmp_path: Path) -> None:
    report = CardImporter(db, batch_size=3).run(write(tmp_path), tmp_path / "rejects.csv")
    assert (report.rows, report.imported, report.skipped_existing, report.rejected) == (11, 4, 1, 6)
    points = report.tallies["points"]
    assert points.in_file == 150 + 75 + 10 + 7 + 8 + 9 + 500 + 30  # unreadable balances count as 0
    assert (points.imported, points.existing, points.rejected) == (255, 500, 10 + 7 + 8 + 9)
    assert report.reconciled and points.recounted == 255
    reasons = (tmp_path / "rejects.csv").read_text(encoding="utf-8")
    for expected in (
        "bad_card_number",
        "negative balance",
        "not a whole number",
        "bad birth date",
        "repeated in the file",
        "contact_taken",
        "belongs to another customer",
    ):
        assert expected in reasons
    service = LoyaltyService(db, load_config(DEMO_CONFIG).program)
    assert service.balance("t", BalanceRequest(card_number="1000000000001")).available == 150
    assert service.balance("t", BalanceRequest(card_number="1000000000003")).expiring[0].points == 75
    assert service.check().ok


def test_running_twice_or_after_an_interruption_imports_each_card_once(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path)

    def stop_after_first_batch(rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        CardImporter(db, batch_size=2).run(path, progress=stop_after_first_batch)
    resumed = CardImporter(db, batch_size=2).run(path)
    assert resumed.reconciled and resumed.skipped_existing == 1 + 2  # the demo card and the first batch
    assert resumed.tallies["points"].from_earlier_runs == 150  # the first batch: 1000000000001 and …002
    again = CardImporter(db, batch_size=2).run(path)
    assert (again.imported, again.skipped_existing) == (0, 5)
    assert again.reconciled and again.tallies["points"].existing == 255 + 500
    assert again.tallies["points"].recounted == 255
    service = LoyaltyService(db, load_config(DEMO_CONFIG).program)
    assert service.check().ok and service.check().accounts == 3 + 4


def test_import_command(db: Database, tmp_path: Path) -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["import", "cards", str(write(tmp_path)), "--database-url", db.url]
    )
    assert result.exit_code == 0, result.output
    assert "reconciled: points in = points out" in result.output
    assert (tmp_path / "cards.rejected.csv").exists()


def test_a_file_without_the_required_column_is_refused(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "number;balance\n1;2\n")
    result = CliRunner().invoke(cli, ["import", "cards", str(path), "--database-url", db.url])
    assert result.exit_code == 2 and "card_number" in result.output


def test_ordered_ids_are_uuids_that_grow() -> None:
    from datetime import UTC, datetime

    ids = OrderedIds(datetime.now(UTC))
    made = [ids.next() for _ in range(1000)]
    assert made == sorted(made) and len(set(made)) == 1000
    assert all(uuid.UUID(value).version == 7 for value in made)
    later = OrderedIds(datetime(2100, 1, 1, tzinfo=UTC)).next()
    assert later > made[-1]


def test_compact_keys_are_exact() -> None:
    assert compact_key("+79160000001") != compact_key("79160000001")
    assert compact_key("0012") == "0012"  # leading zeros stay text: 12 and 0012 are different cards
    assert compact_key("2700000000014") == 2700000000014
    assert compact_key("a@example.com") == "a@example.com"

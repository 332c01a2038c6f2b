"""The other migration formats — balances, lots with expiry, history: each rejects bad rows with a
reason, reconciles exactly, resumes after an interruption and changes nothing when run twice."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import col, select
from typer.testing import CliRunner

from contracts.operations import BalanceRequest, HoldRequest, IssueCardRequest, LookupCustomerRequest
from gateway.cli import app as cli
from gateway.config import DEMO_CONFIG, load_config
from gateway.importer.balances import BalanceImporter
from gateway.importer.cards import CardImporter
from gateway.importer.common import ImportReport
from gateway.importer.history import HistoryImporter, turnover
from gateway.importer.lots import LotImporter
from gateway.ledger.service import LoyaltyService
from gateway.seed import seed_demo
from gateway.store.db import Database
from gateway.store.models import Card, Lot
from gateway.store.models_import import ImportedLot

PROGRAM = load_config(DEMO_CONFIG).program
DEMO = "2700000000014"  # 500 points + the 100 welcome bonus from the demo seed

CARDS = """card_number;phone;balance;expires_at
3000000000001;+79260000001;100;
3000000000002;+79260000002;0;
3000000000003;+79260000003;50;2030-01-01
3000000000004;+79260000004;0;
3000000000005;+79260000005;0;
3000000000006;+79260000006;0;
"""

BALANCES = """card_number;balance;delta;expires_at
3000000000001;250;;
3000000000002;;40;2031-01-01
3000000000003;;-20;
3000000000001;10;;
3000000000004;;-5;
3999999999999;5;;
3000000000005;5;5;
3000000000006;;;
3000000000005;abc;;
2700000000014;0;;
3000000000006;;+7;2020-01-01
"""

LOTS = """id;card_number;points;accrued_at;available_at;expires_at
L1;3000000000002;30;2025-01-10;;2030-06-01
L2;3000000000002;20;2025-02-10 14:30;;2029-06-01
L3;3000000000004;15;01.03.2025;2099-01-01;
L4;3000000000001;10;2025-01-01;;
L5;3000000000002;10;2020-01-01;;2021-01-01
L1;3000000000002;30;2025-01-10;;2030-06-01
L6;3999999999999;10;2025-01-01;;
L7;3000000000002;0;2025-01-01;;
L8;3000000000002;5;2025-13-01;;
L9;3000000000002;5;2025-03-01;;2025-02-01
"""

HISTORY = """id;card_number;occurred_at;kind;amount;points_accrued;points_spent;receipt;store;note
H1;3000000000001;2025-05-01 10:00;purchase;1250,50;62;0;R-1;S1;
H2;3000000000001;2025-05-03;return;250.00;0;0;R-1;S1;
H3;3000000000002;2025-06-01T12:00:00+03:00;purchase;100;5;10;R-2;S2;
H4;3000000000002;2025-06-02;accrual;;50;0;;;birthday
H5;3000000000001;2025-05-05;purchase;;0;0;;;
H6;3000000000001;2025-05-05;gift;1;0;0;;;
H7;3999999999999;2025-05-05;purchase;1;3;0;;;
H1;3000000000001;2025-05-01 10:00;purchase;1250,50;62;0;R-1;S1;
H8;3000000000001;2025-05-05;purchase;12.345;4;0;;;
"""


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Database:
    database = Database(database_url)
    seed_demo(LoyaltyService(database, PROGRAM), load_config(DEMO_CONFIG))
    cards = tmp_path / "base.csv"
    cards.write_text(CARDS, encoding="utf-8")
    assert CardImporter(database).run(cards).imported == 6
    return database


def service_of(db: Database) -> LoyaltyService:
    return LoyaltyService(db, PROGRAM)


def available(db: Database, card: str) -> tuple[int, int, int]:
    balance = service_of(db).balance("t", BalanceRequest(card_number=card))
    return balance.balance, balance.available, balance.pending


def codes(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as handle:
        return {f"{row['line']}": row["code"] for row in csv.DictReader(handle)}


def ledger_snapshot(db: Database) -> tuple[int, ...]:
    with db.read() as session:
        row = session.execute(
            text(
                "SELECT (SELECT count(*) FROM ledger_entries), (SELECT coalesce(sum(points), 0) FROM ledger_entries),"
                " (SELECT count(*) FROM lots), (SELECT coalesce(sum(remaining), 0) FROM lots),"
                " (SELECT count(*) FROM allocations)"
            )
        ).one()
    return tuple(int(v) for v in row)


def imported_rows(db: Database) -> tuple[int, ...]:
    with db.read() as session:
        row = session.execute(
            text(
                "SELECT (SELECT count(*) FROM import_balances), (SELECT count(*) FROM import_lots),"
                " (SELECT count(*) FROM import_history)"
            )
        ).one()
    return tuple(int(v) for v in row)


def interrupted_then_resumed(make: Callable[[], object], path: Path) -> ImportReport:
    """Run an import that stops after its first batch, then run it again to the end."""

    def stop(_rows: int) -> None:
        raise KeyboardInterrupt

    importer = make()
    with pytest.raises(KeyboardInterrupt):
        importer.run(path, progress=stop)  # type: ignore[attr-defined]
    report = make().run(path)  # type: ignore[attr-defined]
    assert isinstance(report, ImportReport)
    return report


# -- balances -------------------------------------------------------------------------------------


def balance_file(tmp_path: Path, content: str = BALANCES) -> Path:
    path = tmp_path / "balances.csv"
    path.write_text(content, encoding="utf-8")
    return path


def assert_balances_applied(db: Database) -> None:
    assert available(db, "3000000000001") == (250, 250, 0)  # set 100 -> 250
    assert available(db, "3000000000002") == (40, 40, 0)  # +40
    assert available(db, "3000000000003") == (30, 30, 0)  # 50 - 20
    assert available(db, "3000000000004") == (0, 0, 0)  # -5 refused
    assert available(db, DEMO) == (0, 0, 0)  # set to 0: 600 removed
    expiring = service_of(db).balance("t", BalanceRequest(card_number="3000000000002")).expiring
    assert [(e.points, e.expires_at.year) for e in expiring] == [(40, 2030)]  # 2031-01-01 Moscow = 2030-12-31 UTC
    report = service_of(db).check()
    assert report.ok, report.violations


def test_balances_set_and_adjust_with_rejects_and_reconciliation(db: Database, tmp_path: Path) -> None:
    rejects = tmp_path / "balances.rejected.csv"
    report = BalanceImporter(db, PROGRAM, batch_size=3).run(balance_file(tmp_path), rejects)
    assert (report.rows, report.imported, report.skipped_existing, report.rejected) == (11, 4, 0, 7)
    assert codes(rejects) == {
        "5": "repeated_in_file",
        "6": "not_enough_points",
        "7": "card_not_found",
        "8": "ambiguous_row",
        "9": "missing_value",
        "10": "bad_points",
        "12": "already_expired",
    }
    targets, adjustments, posted = (report.tallies[k] for k in ("targets", "adjustments", "posted"))
    assert (targets.in_file, targets.imported, targets.rejected) == (250 + 10 + 5 + 0, 250 + 0, 10 + 5)
    assert (adjustments.in_file, adjustments.imported, adjustments.rejected) == (40 - 20 - 5 + 7, 40 - 20, -5 + 7)
    assert (posted.imported, posted.recounted) == (150 + 40 - 20 - 600, 150 + 40 - 20 - 600)
    assert report.reconciled
    assert_balances_applied(db)


def test_balances_resume_after_interruption_and_run_twice_without_doubling(db: Database, tmp_path: Path) -> None:
    path = balance_file(tmp_path)
    resumed = interrupted_then_resumed(lambda: BalanceImporter(db, PROGRAM, batch_size=2), path)
    assert resumed.reconciled and resumed.skipped_existing == 2  # the first batch: 3000000000001 and …002
    assert resumed.tallies["posted"].from_earlier_runs == 150 + 40
    assert_balances_applied(db)
    # a till uses the card, then the same batch runs again: nothing is set a second time
    service_of(db).hold("tills", "h-1", HoldRequest(card_number="3000000000001", points=50))
    again = BalanceImporter(db, PROGRAM).run(path)
    assert (again.imported, again.skipped_existing) == (0, 4) and again.reconciled
    assert again.tallies["posted"].recounted == 150 + 40 - 20 - 600
    assert available(db, "3000000000001") == (250, 200, 0)  # 50 held by the till, untouched by the import
    # a file with a bad row, run under a batch name, then fixed and run again under the same name:
    # the row applied by the first run stays as it was, the fixed row applies
    edited = balance_file(tmp_path, "card_number;balance\n3000000000001;999\n3000000000004;abc\n")
    named = BalanceImporter(db, PROGRAM, batch="cutover").run(edited)
    assert (named.imported, named.rejected) == (1, 1)
    fixed = balance_file(tmp_path, "card_number;balance\n3000000000001;5\n3000000000004;12\n")
    rerun = BalanceImporter(db, PROGRAM, batch="cutover").run(fixed)
    assert (rerun.imported, rerun.skipped_existing, rerun.rejected) == (1, 1, 0) and rerun.reconciled
    assert available(db, "3000000000001") == (999, 949, 0)  # set once (50 still held), not set to 5
    assert available(db, "3000000000004") == (12, 12, 0)
    assert service_of(db).check().ok


def test_two_cards_of_one_account_are_set_once(db: Database, tmp_path: Path) -> None:
    customer = service_of(db).lookup_customer("t", LookupCustomerRequest(card_number="3000000000001"))
    request = IssueCardRequest(customer_id=customer.customer_id, card_number="3000000000099")
    service_of(db).issue_card("tills", "issue-1", request)
    path = balance_file(tmp_path, "card_number;balance\n3000000000001;300\n3000000000099;400\n")
    report = BalanceImporter(db, PROGRAM).run(path, tmp_path / "r.csv")
    assert (report.imported, report.rejected) == (1, 1) and report.reconciled
    assert codes(tmp_path / "r.csv") == {"3": "repeated_in_file"}
    assert available(db, "3000000000099") == (300, 300, 0)


# -- lots -----------------------------------------------------------------------------------------


def lot_file(tmp_path: Path, content: str = LOTS) -> Path:
    path = tmp_path / "lots.csv"
    path.write_text(content, encoding="utf-8")
    return path


def assert_lots_applied(db: Database) -> None:
    assert available(db, "3000000000002") == (50, 50, 0)
    assert available(db, "3000000000004") == (15, 0, 15)  # pending until 2099
    assert available(db, "3000000000001") == (100, 100, 0)  # its opening balance only
    expiring = service_of(db).balance("t", BalanceRequest(card_number="3000000000002")).expiring
    assert [(e.points, e.expires_at.year) for e in expiring] == [(20, 2029), (30, 2030)]
    report = service_of(db).check()
    assert report.ok, report.violations


def test_lots_keep_their_own_dates_and_expire_in_order(db: Database, tmp_path: Path) -> None:
    rejects = tmp_path / "lots.rejected.csv"
    report = LotImporter(db, batch_size=4).run(lot_file(tmp_path), rejects)
    assert (report.rows, report.imported, report.rejected) == (10, 3, 7)
    assert codes(rejects) == {
        "5": "opening_balance_exists",
        "6": "already_expired",
        "7": "repeated_in_file",
        "8": "card_not_found",
        "9": "bad_points",
        "10": "bad_date",
        "11": "bad_date",
    }
    points = report.tallies["points"]
    assert (points.in_file, points.imported, points.rejected) == (30 + 20 + 15 + 10 + 10 + 30 + 10 + 0 + 5 + 5, 65, 70)
    assert points.recounted == 65 and report.reconciled
    assert_lots_applied(db)
    # spending takes the soonest-expiring lot first: 20 of L2 (2029), then 5 of L1 (2030)
    service_of(db).hold("tills", "h-lots", HoldRequest(card_number="3000000000002", points=25))
    with db.read() as session:
        card = session.get(Card, "3000000000002")
        assert card is not None
        left = session.exec(
            select(Lot.points, Lot.remaining).where(Lot.account_id == card.account_id).order_by(col(Lot.expires_at))
        ).all()
    assert [tuple(r) for r in left] == [(20, 0), (30, 25)]
    with db.read() as session:
        tracked = session.get(ImportedLot, "L2")
        assert tracked is not None
    assert tracked.accrued_at == datetime(2025, 2, 10, 11, 30, tzinfo=UTC)  # 14:30 Moscow time


def test_lots_resume_after_interruption_and_run_twice_without_doubling(db: Database, tmp_path: Path) -> None:
    path = lot_file(tmp_path)
    resumed = interrupted_then_resumed(lambda: LotImporter(db, batch_size=2), path)
    assert resumed.reconciled and resumed.skipped_existing == 2 and resumed.tallies["points"].from_earlier_runs == 50
    assert_lots_applied(db)
    again = LotImporter(db).run(path)
    assert (again.imported, again.skipped_existing) == (0, 3) and again.tallies["points"].recounted == 65
    assert again.reconciled
    # the same lot ids in another file: the same data is "already present", other data is refused
    other = lot_file(
        tmp_path,
        "id;card_number;points;accrued_at;expires_at\nL1;3000000000002;30;2025-01-10;2030-06-01\n"
        "L2;3000000000002;99;2025-02-10 14:30;2029-06-01\n",
    )
    elsewhere = LotImporter(db).run(other, tmp_path / "r.csv")
    assert (elsewhere.imported, elsewhere.skipped_existing, elsewhere.rejected) == (0, 1, 1)
    assert elsewhere.tallies["points"].from_earlier_runs == 0 and elsewhere.reconciled
    assert codes(tmp_path / "r.csv") == {"3": "id_used_for_other_data"}
    assert_lots_applied(db)


# -- history --------------------------------------------------------------------------------------


def history_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(HISTORY, encoding="utf-8")
    return path


def assert_history_applied(db: Database) -> None:
    with db.read() as session:
        accounts = {
            number: account for number, account in session.execute(text("SELECT number, account_id FROM cards")).all()
        }
        since, until = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        totals = turnover(session, [accounts["3000000000001"], accounts["3000000000002"]], since, until)
        assert totals == {accounts["3000000000001"]: 125050 - 25000, accounts["3000000000002"]: 10000}
        # the window is half-open and in UTC: H3 happened 2025-06-01 09:00 UTC
        june = turnover(session, [accounts["3000000000002"]], datetime(2025, 6, 1, 9, tzinfo=UTC), until)
        assert june == {accounts["3000000000002"]: 10000}
        assert turnover(session, [accounts["3000000000002"]], since, datetime(2025, 6, 1, 9, tzinfo=UTC)) == {}


def test_history_is_kept_for_the_record_and_the_ledger_is_untouched(db: Database, tmp_path: Path) -> None:
    before = ledger_snapshot(db)
    rejects = tmp_path / "history.rejected.csv"
    report = HistoryImporter(db, batch_size=3).run(history_file(tmp_path), rejects)
    assert (report.rows, report.imported, report.rejected) == (9, 4, 5)
    assert codes(rejects) == {
        "6": "missing_value",
        "7": "bad_kind",
        "8": "card_not_found",
        "9": "repeated_in_file",
        "10": "bad_amount",
    }
    amount, accrued, spent = (report.tallies[k] for k in ("amount", "accrued", "spent"))
    assert (amount.in_file, amount.imported, amount.recounted) == (
        125050 * 2 + 25000 + 10000 + 100 + 100,
        160050,
        160050,
    )
    assert (accrued.in_file, accrued.imported, accrued.rejected) == (62 + 5 + 50 + 3 + 62 + 4, 117, 3 + 62 + 4)
    assert (spent.imported, spent.recounted) == (10, 10) and report.reconciled
    assert ledger_snapshot(db) == before
    assert_history_applied(db)


def test_history_resumes_after_interruption_and_runs_twice_without_doubling(db: Database, tmp_path: Path) -> None:
    path = history_file(tmp_path)
    resumed = interrupted_then_resumed(lambda: HistoryImporter(db, batch_size=2), path)
    assert resumed.reconciled and resumed.skipped_existing == 2
    assert resumed.tallies["amount"].from_earlier_runs == 125050 + 25000
    again = HistoryImporter(db).run(path)
    assert (again.imported, again.skipped_existing) == (0, 4) and again.reconciled
    assert again.tallies["amount"].recounted == 160050
    assert_history_applied(db)


# -- the commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "content"), [("balances", BALANCES), ("lots", LOTS), ("history", HISTORY)])
def test_import_commands(db: Database, tmp_path: Path, command: str, content: str) -> None:
    path = tmp_path / f"{command}.csv"
    path.write_text(content, encoding="utf-8")
    runner = CliRunner(env={"COLUMNS": "200"})
    first = runner.invoke(cli, ["import", command, str(path), "--database-url", db.url])
    assert first.exit_code == 0, first.output
    assert "reconciled: points in = points out" in first.output
    assert (tmp_path / f"{command}.rejected.csv").exists()
    written = (ledger_snapshot(db), imported_rows(db))
    second = runner.invoke(cli, ["import", command, str(path), "--database-url", db.url, "--batch-size", "2"])
    assert second.exit_code == 0 and "reconciled: points in = points out" in second.output, second.output
    assert (ledger_snapshot(db), imported_rows(db)) == written


def test_dates_without_an_offset_are_local_time(db: Database, tmp_path: Path) -> None:
    path = lot_file(tmp_path, "id;card_number;points;accrued_at;expires_at\nX1;3000000000002;1;2025-01-01;2030-01-01\n")
    LotImporter(db, timezone="Asia/Yekaterinburg").run(path)
    with db.read() as session:
        tracked = session.get(ImportedLot, "X1")
        assert tracked is not None
    assert tracked.expires_at == datetime(2030, 1, 1, tzinfo=UTC) - timedelta(hours=5)


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--timezone", "Mars/Olympus"], "unknown time zone"), (["--batch", "not a name!"], "batch name")],
)
def test_bad_options_are_refused_before_anything_is_written(
    db: Database, tmp_path: Path, option: list[str], message: str
) -> None:
    before = (ledger_snapshot(db), imported_rows(db))
    result = CliRunner().invoke(cli, ["import", "lots", str(lot_file(tmp_path)), "--database-url", db.url, *option])
    assert result.exit_code == 2 and message in result.output, result.output
    assert (ledger_snapshot(db), imported_rows(db)) == before


def test_one_batch_name_over_several_files_reconciles_each_file(db: Database, tmp_path: Path) -> None:
    def csv_file(name: str, content: str) -> Path:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return path

    lots = "id;card_number;points;accrued_at\n"
    first_lots = csv_file("l1.csv", lots + "A1;3000000000002;5;2025-01-01\n")
    assert LotImporter(db, batch="migration").run(first_lots).reconciled
    second_lots = LotImporter(db, batch="migration").run(csv_file("l2.csv", lots + "A2;3000000000002;7;2025-01-01\n"))
    assert second_lots.reconciled and second_lots.tallies["points"].recounted == 7
    deltas = "card_number;delta\n"
    assert BalanceImporter(db, PROGRAM, batch="cut").run(csv_file("b1.csv", deltas + "3000000000002;3\n")).reconciled
    second_deltas = BalanceImporter(db, PROGRAM, batch="cut").run(csv_file("b2.csv", deltas + "3000000000004;4\n"))
    assert second_deltas.reconciled and second_deltas.tallies["posted"].recounted == 4
    ops = "id;card_number;occurred_at;kind;amount\n"
    first_ops = csv_file("h1.csv", ops + "O1;3000000000002;2025-01-01;purchase;10\n")
    assert HistoryImporter(db, batch="past").run(first_ops).reconciled
    second_file = csv_file("h2.csv", ops + "O2;3000000000002;2025-01-02;purchase;20\n")
    second_ops = HistoryImporter(db, batch="past").run(second_file)
    assert second_ops.reconciled and second_ops.tallies["amount"].recounted == 2000
    assert available(db, "3000000000002") == (15, 15, 0)  # lots 5 + 7, delta 3

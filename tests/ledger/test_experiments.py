"""Experiment mode of accrual rules: the control group (by a hash of the customer and the rule)
does not get the rule from ``since`` and the receipt's explanation says «контрольная группа»;
the ``experiment`` report compares the groups with numbers worked out by hand; ``check-config``
rejects an experiment that ends before it starts."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts.operations import CommitRequest, RegisterCustomerRequest
from gateway.cli import app as cli
from gateway.core.program import Program
from gateway.core.rules.experiments import Experiment, bucket, held_out, in_control
from gateway.ledger.service import LoyaltyService
from gateway.reports import make_filters, run_report
from gateway.store.db import Database
from tests.ledger.test_reports import DAY0, NOON, PROGRAM, line
from tests.support import FakeClock

RULE = "plus-five"


def program_with(salt: str, control_percent: int = 50) -> Program:
    spec: dict[str, Any] = copy.deepcopy(PROGRAM)
    spec["welcome_bonus"] = {"points": 0}
    spec["accrual"]["rules"] = [
        {
            "id": RULE,
            "description": "Ещё 5% за покупку",
            "combine": "add",
            "percent": 5,
            "experiment": {"control_percent": control_percent, "since": DAY0.isoformat(), "salt": salt},
        }
    ]
    return Program.model_validate(spec)


def test_the_groups_are_dealt_by_the_hash_in_the_declared_share() -> None:
    trial = Experiment(control_percent=10, since=DAY0, salt="2026-12")
    ids = [f"customer-{n}" for n in range(20_000)]
    control = sum(in_control(trial, RULE, i) for i in ids)
    assert 1_800 < control < 2_200  # 10 % of 20,000, give or take the hash
    assert [in_control(trial, RULE, i) for i in ids[:50]] == [in_control(trial, RULE, i) for i in ids[:50]]
    # another rule or another salt deals other groups
    assert sum(in_control(trial, "other", i) != in_control(trial, RULE, i) for i in ids) > 2_000
    assert bucket("a", RULE, "c1") != bucket("b", RULE, "c1") or bucket("a", RULE, "c2") != bucket("b", RULE, "c2")
    # not before it starts, not after it ends, never without a customer
    ended = Experiment(control_percent=50, since=DAY0, until=DAY0 + timedelta(days=9), salt="x")
    always = next(i for i in ids if in_control(ended, RULE, i))
    assert held_out(RULE, ended, always, DAY0) and held_out(RULE, ended, always, DAY0 + timedelta(days=9))
    assert not held_out(RULE, ended, always, DAY0 - timedelta(days=1))
    assert not held_out(RULE, ended, always, DAY0 + timedelta(days=10))
    assert not held_out(RULE, ended, None, DAY0)


class Trial:
    """Four customers: C1 and C2 in the control group, T1 and T2 in the test group (a salt is
    searched for that deals them so); the service runs the program with that experiment."""

    def __init__(self, url: str) -> None:
        self.clock = FakeClock(frozen_at=NOON)
        self.db = Database(url)
        plain = LoyaltyService(self.db, program_with("none", 1), self.clock)
        self.cards = {name: f"29120000000{n}" for n, name in enumerate(("C1", "C2", "T1", "T2"), start=1)}
        self.ids = {
            name: plain.register_customer(
                "tills", uuid.uuid4().hex, RegisterCustomerRequest(card_number=card)
            ).customer_id
            for name, card in self.cards.items()
        }
        salt = next(s for s in (f"salt-{n}" for n in range(10_000)) if self._deals(s))
        self.program = program_with(salt)
        self.service = LoyaltyService(self.db, self.program, self.clock)

    def _deals(self, salt: str) -> bool:
        trial = Experiment(control_percent=50, since=DAY0, salt=salt)
        return all(in_control(trial, RULE, self.ids[name]) == name.startswith("C") for name in self.ids)

    def buy(self, who: str, rubles: str) -> Any:
        request = CommitRequest(
            receipt_id=f"R-{uuid.uuid4().hex[:10]}",
            card_number=self.cards[who],
            store="S01",
            lines=[line("1", "CEMENT", rubles)],
        )
        return self.service.commit("tills", uuid.uuid4().hex, request)


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    trial = Trial(database_url)
    yield trial
    trial.db.dispose()


def steps(result: Any) -> dict[str, tuple[str, int]]:
    return {step.rule: (step.description, step.points) for step in result.explanation}


def test_the_control_group_does_not_get_the_rule_and_the_explanation_says_so(trial: Trial) -> None:
    trial.clock.advance(days=-1)  # the day before the experiment: everyone gets the rule
    before = trial.buy("C1", "1000.00")
    assert before.points_accrued == 100 and f"accrual:{RULE}" in steps(before)
    trial.clock.advance(days=1)
    held = trial.buy("C1", "1000.00")
    assert held.points_accrued == 50  # the program's 5 % only
    description, points = steps(held)[f"experiment:{RULE}"]
    assert "контрольная группа" in description and points == 0
    assert f"accrual:{RULE}" not in steps(held)
    tested = trial.buy("T1", "1000.00")
    assert tested.points_accrued == 100 and f"experiment:{RULE}" not in steps(tested)


def test_the_experiment_report_compares_the_groups_as_worked_out_by_hand(trial: Trial) -> None:
    trial.clock.advance(days=-1)
    trial.buy("C1", "5000.00")  # before the experiment: not counted
    trial.clock.advance(days=1)
    for who, rubles in (("C1", "1000.00"), ("C2", "1000.00"), ("T1", "1000.00"), ("T2", "3000.00")):
        trial.buy(who, rubles)
    report = run_report(
        trial.db,
        trial.program,
        "experiment",
        make_filters(trial.program, DAY0 - timedelta(days=5), DAY0, now=trial.clock()),
    )
    keys = [c.key for c in report.columns]
    rows = {row[1]: dict(zip(keys, row, strict=True)) for row in report.rows}
    control, test, difference = rows["control"], rows["test"], rows["difference"]
    assert (control["customers"], control["buyers"], control["receipts"]) == (2, 2, 2)
    assert (control["revenue"], control["average"], control["per_customer"]) == (200000, 100000, 100000)
    assert control["points_cost"] == 10000  # 50 + 50 points of 1 rouble: the program's 5 % only
    assert (test["customers"], test["receipts"], test["revenue"], test["average"]) == (2, 2, 400000, 200000)
    assert test["points_cost"] == 40000  # 100 + 300 points: 5 % + 5 %
    assert difference["per_customer"] == 100000  # 2000 − 1000 roubles per customer
    # test revenues 1000 and 3000: sample variance 2,000,000 rub², /2 → standard error 1000;
    # the control group's is 0: 1000 ± 1.96 × 1000
    assert (difference["low"], difference["high"]) == (-96000, 296000)
    presented = dict(zip(keys, report.presented()[2], strict=True))
    assert (presented["low"], presented["high"]) == (Decimal("-960.00"), Decimal("2960.00"))


def test_check_config_shows_the_experiment_and_rejects_one_that_ends_before_it_starts(tmp_path: Path) -> None:
    from tests.unit.test_program_config import BUILDING, TEXT, mutate

    runner = CliRunner()
    anchor = "        combine: replace\n        percent: 0\n        priority: 100\n"
    trial = anchor + "        experiment: {control_percent: 10, since: 2026-12-01, salt: dec}\n"
    good = tmp_path / "good.yaml"
    good.write_text(mutate(anchor, trial, TEXT), "utf-8")
    shown = runner.invoke(cli, ["check-config", str(good)])
    assert shown.exit_code == 0, shown.output
    assert "эксперимент: контроль 10% с 2026-12-01" in " ".join(shown.output.split())

    bad = tmp_path / "bad.yaml"
    ended = anchor + "        experiment: {control_percent: 10, since: 2026-12-01, until: 2026-11-01}\n"
    bad.write_text(mutate(anchor, ended, TEXT), "utf-8")
    result = runner.invoke(cli, ["check-config", str(bad)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "accrual.rules.0.experiment.until" in output and "ends before it starts" in output
    too_many = anchor + "        experiment: {control_percent: 60, since: 2026-12-01}\n"
    bad.write_text(mutate(anchor, too_many, TEXT), "utf-8")
    assert runner.invoke(cli, ["check-config", str(bad)]).exit_code == 1
    assert BUILDING.exists()

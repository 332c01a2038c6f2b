"""The program file: the example programs are valid, and every kind of mistake an integrator can
make is rejected by ``gateway check-config`` with the problem, the key and the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import DEMO_CONFIG, ConfigError, parse_config

PROGRAMS = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs"
BUILDING = PROGRAMS / "building-materials.yaml"
TEXT = BUILDING.read_text(encoding="utf-8")


def line_of(text: str, at: str) -> int:
    """1-based line number of the first line containing ``at``; ``"anchor >> fragment"``: the
    first line containing ``fragment`` from the line containing ``anchor`` on."""
    anchor, _, fragment = at.rpartition(" >> ")
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if anchor in line) if anchor else 0
    return next(n for n, line in enumerate(lines[start:], start + 1) if fragment in line)


def rejected(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "program.yaml")
    return str(caught.value)


def mutate(old: str, new: str, text: str = TEXT) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def test_the_example_programs_are_valid() -> None:
    building = parse_config(TEXT).program
    assert len(building.catalogue.price_types) == 6
    assert len(building.catalogue.zones) == 8
    assert [s.code for s in building.segments] == ["retail", "partner", "wholesale", "new_home"]
    assert building.tiers is not None
    assert [int(t.cashback_percent) for t in building.tiers.ordered()] == [5, 10, 15, 20]
    assert len(building.discounts.rules) == 6 and len(building.accrual.rules) == 5
    demo = parse_config(DEMO_CONFIG.read_text(encoding="utf-8")).program
    assert (demo.catalogue.price_types, demo.segments, demo.tiers, demo.discounts.rules) == ([], [], None, [])


@pytest.mark.parametrize(
    ("old", "new", "key", "problem", "at"),
    [
        (
            "{code: gold, name: Золотой, from_turnover: 300000,",
            "{code: gold, name: Золотой, from_turnover: 250000,",
            "program.tiers.levels.2.from_turnover",
            "tier 'gold' overlaps tier 'silver' [100 000.00, 300 000.00)",
            "code: gold",
        ),
        (
            "{code: gold, name: Золотой, from_turnover: 300000,",
            "{code: gold, name: Золотой, from_turnover: 350000,",
            "program.tiers.levels.1.to_turnover",
            "gap between tiers 'silver' and 'gold': no tier for turnover 300 000.00 to 350 000.00",
            "code: silver",
        ),
        (
            "{code: base, name: Базовый, from_turnover: 0,",
            "{code: base, name: Базовый, from_turnover: 1000,",
            "program.tiers.levels.0.from_turnover",
            "no tier for turnover below 1 000.00",
            "code: base",
        ),
        (
            "when: {zones: [spb], kinds: [paint], price_types: [retail, internet]}",
            "when: {zones: [spb], kinds: [paint], price_types: [retail, opt]}",
            "program.discounts.rules.4.when.price_types.1",
            "unknown price type 'opt'; known: internet, partner, promo, retail, small_wholesale, wholesale",
            "price_types: [retail, opt]",
        ),
        (
            "when: {zones: [nsk, krd], kinds: [cement]}",
            "when: {zones: [nsk, vladivostok], kinds: [cement]}",
            "program.discounts.rules.5.when.zones.1",
            "unknown zone 'vladivostok'",
            "vladivostok",
        ),
        (
            "when: {segments: [wholesale]}",
            "when: {segments: [wholesalers]}",
            "program.accrual.rules.1.when.segments.0",
            "unknown segment 'wholesalers'",
            "wholesalers",
        ),
        (
            "members: [partner-base, partner-300k, partner-1m]",
            "members: [partner-base, partner-300k, partner-1m, spb-paint]",
            "program.discounts.groups.2.members.0",
            "'spb-paint' is already a member of group 'partner'",
            "members: [spb-paint",
        ),
        (
            "members: [spb-paint, east-cement]",
            "members: [spb-paint, east-cement, north-cement]",
            "program.discounts.groups.2.members.2",
            "unknown discount rule or group 'north-cement'",
            "north-cement",
        ),
        (
            "        priority: 10\n      - id: spb-paint",
            "        priority: 20\n      - id: spb-paint",
            "program.discounts.groups.0.members.1",
            "'new-home-finishing' and 'partner' have the same priority 20 in exclusive group 'segment-discounts'",
            "members: [partner, new-home-finishing]",
        ),
        (
            "        percent: 0\n        priority: 90",
            "        percent: 0\n        priority: 100",
            "program.accrual.rules.1.priority",
            "'wholesale-no-points' and 'services-no-points' have the same priority 100 in replace accrual rules",
            "id: wholesale-no-points >> priority:",
        ),
        (
            "      - id: east-cement",
            "      - id: spb-paint",
            "program.discounts.rules.5",
            "duplicate discount id 'spb-paint'",
            "description: Paint in Saint Petersburg >> id: spb-paint",
        ),
        (
            "{code: tiles, name: Плитка, parent: finishing,",
            "{code: tiles, name: Плитка, parent: ceramics,",
            "program.catalogue.kinds.1.parent",
            "unknown kind 'ceramics'",
            "code: tiles",
        ),
        (
            "{code: finishing, name: Отделочные материалы}",
            "{code: finishing, name: Отделочные материалы, parent: paint}",
            "program.catalogue.kinds.0.parent",
            "cycle in kind parents: finishing → paint → finishing",
            "code: finishing",
        ),
        (
            "{code: retail, name: Розница, default: true}",
            "{code: retail, name: Розница, default: true, becomes: new_home, after_months: 1}",
            "program.segments.0.becomes",
            "cycle in segment transitions: retail → new_home → retail",
            "code: retail, name: Розница",
        ),
        (
            "{code: mo, name: Московская область, stores: [S04, S05]}",
            "{code: mo, name: Московская область, stores: [S04, S01]}",
            "program.catalogue.zones.1.stores.1",
            "store 'S01' is already in zone 'msk'",
            "code: mo",
        ),
        (
            '{code: drywall, name: Гипсокартон, parent: building, prefixes: ["GK-"]}',
            '{code: drywall, name: Гипсокартон, parent: building, prefixes: ["CM-"]}',
            "program.catalogue.kinds.6.prefixes.0",
            "prefix 'CM-' already belongs to kind 'cement'",
            "code: drywall",
        ),
        (
            'refs: ["8f1b6a10-2c1e-11ee-9a5b-00155d000102"]',
            'refs: ["8F1B6A10-2C1E-11EE-9A5B-00155D000101"]',
            "program.catalogue.price_types.1.refs.0",
            "ref '8F1B6A10-2C1E-11EE-9A5B-00155D000101' already names price type 'retail'",
            "code: internet",
        ),
        (
            "        points_share_percent: 50\n      - id: partner-300k",
            "\n      - id: partner-300k",
            "program.discounts.rules.0",
            "points_share_percent is required with take_as: split",
            "id: partner-base",
        ),
        (
            "    referrer_segments: [partner]",
            "    referrer_segments: [foremen]",
            "program.bonuses.referral.0.referrer_segments.0",
            "unknown segment 'foremen'",
            "referrer_segments",
        ),
        (
            "  timezone: Europe/Moscow",
            "  timezone: Europe/Mockba",
            "program.timezone",
            "unknown time zone 'Europe/Mockba'",
            "timezone",
        ),
        (
            "    window: {kind: quarter}",
            "    window: {kind: rolling}",
            "program.tiers.window",
            "`days` is required for a rolling window",
            "window:",
        ),
        (
            "      - id: tools-weekend",
            "      - id: tools-weekend\n        pecent: 3",
            "program.accrual.rules.4.pecent",
            "Extra inputs are not permitted",
            "pecent",
        ),
    ],
)
def test_a_misconfigured_program_names_the_problem_key_and_line(
    old: str, new: str, key: str, problem: str, at: str
) -> None:
    text = mutate(old, new)
    message = rejected(text)
    line = line_of(text, at)
    pattern = rf"program\.yaml:{line}: {re.escape(key)}[.\w]*: .*{re.escape(problem)}"
    assert re.search(pattern, message), f"expected line {line}, {key}: {problem}\ngot:\n{message}"


CYCLE = mutate(
    "members: [spb-paint, east-cement]",
    "members: [spb-paint, east-cement, segment-discounts]",
    mutate("members: [partner, new-home-finishing]", "members: [partner, new-home-finishing, zone-discounts]"),
)


def test_a_cycle_of_discount_groups_is_rejected_at_its_group() -> None:
    message = rejected(CYCLE)
    line = line_of(CYCLE, "id: segment-discounts >> members:")
    assert (
        f"program.yaml:{line}: program.discounts.groups.0.members: "
        "cycle in discount groups: segment-discounts → zone-discounts → segment-discounts"
    ) in message
    assert message.count("cycle in discount groups") == 1  # one cycle, reported once


def test_every_problem_is_reported_at_once() -> None:
    text = mutate("when: {zones: [nsk, krd], kinds: [cement]}", "when: {zones: [nsk, sochi], kinds: [bricks]}")
    text = mutate(
        "{code: gold, name: Золотой, from_turnover: 300000,", "{code: gold, name: Золотой, from_turnover: 1,", text
    )
    message = rejected(text)
    assert "unknown zone 'sochi'" in message
    assert "unknown kind 'bricks'" in message
    assert "overlaps tier" in message


def test_check_config_prints_the_program_and_rejects_mistakes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["check-config", str(BUILDING)])
    assert ok.exit_code == 0, ok.output
    printed = " ".join(ok.output.split())
    for shown in (
        "ok",
        "price types",
        "Мелкий опт",
        "zones: msk (4 stores)",
        "new_home → retail after 12 months",
        "tiers by turnover over the quarter",
        "Платиновый",
        "[segment-discounts] exclusive",
        "partner-300k: 8%, as split (50% points)",
        "accrual rules",
        "referral foreman: 3% to partner",
    ):
        assert shown in printed, shown

    bad = tmp_path / "bad.yaml"
    bad.write_text(CYCLE, "utf-8")
    result = runner.invoke(cli, ["check-config", str(bad)])
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "cycle in discount groups: segment-discounts → zone-discounts → segment-discounts" in output
    assert f"bad.yaml:{line_of(CYCLE, 'id: segment-discounts >> members:')}:" in output

    overlapping = tmp_path / "overlap.yaml"
    overlapping.write_text(mutate("from_turnover: 300000,", "from_turnover: 299999,"), "utf-8")
    result = runner.invoke(cli, ["check-config", str(overlapping)])
    assert result.exit_code == 1
    assert "tier 'gold' overlaps tier 'silver'" in " ".join(result.output.split())

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(mutate("price_types: [retail, internet]", "price_types: [retail, web]"), "utf-8")
    result = runner.invoke(cli, ["check-config", str(unknown)])
    assert result.exit_code == 1
    assert "unknown price type 'web'" in " ".join(result.output.split())

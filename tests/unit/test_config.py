"""The configuration file: the demo validates; mistakes are reported with line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import DEMO_CONFIG, ConfigError, load_config, parse_config

GOOD = DEMO_CONFIG.read_text(encoding="utf-8")


def test_demo_config_is_valid() -> None:
    cfg = load_config(DEMO_CONFIG)
    assert cfg.program.accrual.percent == 5
    assert {c.kind for c in cfg.clients} == {"till", "site", "erp", "operator", "marketer"}


def test_a_misspelt_key_is_reported_with_its_line() -> None:
    text = GOOD.replace("    max_share_percent: 30", "    max_share_percnt: 30")
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "gw.yaml")
    line = 1 + GOOD.splitlines().index(
        "    max_share_percent: 30      # at most 30 % of a receipt may be paid with points"
    )
    message = str(exc.value)
    assert f"gw.yaml:{line}: program.redemption.max_share_percnt" in message
    assert "program.redemption.max_share_percent: Field required" in message


def test_out_of_range_value_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"program\.accrual\.percent: .*less than or equal to 100"):
        parse_config(GOOD.replace("percent: 5 ", "percent: 500 "), "gw.yaml")


def test_missing_secret_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GW_NOPE", raising=False)
    with pytest.raises(ConfigError, match="GW_NOPE is not set"):
        parse_config(GOOD.replace('"${GATEWAY_SITE_PASSWORD:-demo-site}"', '"${GW_NOPE}"'))


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SITE_PASSWORD", "s3cret")
    cfg = parse_config(GOOD)
    assert next(c for c in cfg.clients if c.id == "site").password == "s3cret"


def test_check_config_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["check-config", str(DEMO_CONFIG)])
    assert ok.exit_code == 0 and "ok" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("kind: erp", "kind: robot"), encoding="utf-8")
    result = runner.invoke(cli, ["check-config", str(bad)])
    assert result.exit_code == 1
    assert "clients.2.kind" in result.output

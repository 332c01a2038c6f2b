"""Layering rules from DESIGN.md, checked on the import graph of the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"contracts", "gateway", "adapters"}


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_contracts_import_nothing_of_ours() -> None:
    for path, names in _imports("contracts").items():
        bad = {n for n in names if n.split(".")[0] in OURS - {"contracts"}}
        assert not bad, f"{path} imports {bad}"


def test_core_depends_only_on_contracts() -> None:
    for path, names in _imports("gateway.core").items():
        bad = {n for n in names if n.split(".")[0] in OURS and not n.startswith(("contracts", "gateway.core"))}
        assert not bad, f"{path} imports {bad}"
        assert not {n for n in names if n.split(".")[0] in {"sqlalchemy", "sqlmodel", "fastapi", "httpx"}}, path


def test_adapters_do_not_import_each_other() -> None:
    for adapter in ("onec", "bitrix", "sms", "telegram_bot", "vk"):
        for path, names in _imports(f"adapters.{adapter}").items():
            bad = {n for n in names if n.startswith("adapters.") and not n.startswith(f"adapters.{adapter}")}
            assert not bad, f"{path} imports {bad}"


def _packages(family: str) -> set[str]:
    return {p.name for p in (ROOT / "adapters" / family).iterdir() if (p / "__init__.py").exists()}


def test_adapter_packages_do_not_import_their_siblings() -> None:
    """adapters/onec/loyaltyservice, soap, discountserver and erp are four integrations: each
    stands alone (what they share lives in the ledger, e.g. gateway/ledger/till.py)."""
    for family in ("onec", "bitrix"):
        siblings = _packages(family)
        for package in sorted(siblings):
            for path, names in _imports(f"adapters.{family}.{package}").items():
                bad = {
                    n for n in names if n.startswith(f"adapters.{family}.") and n.split(".")[2] in siblings - {package}
                }
                assert not bad, f"{path} imports {bad}"


# Modules of gateway/ that import adapters. The composition root builds them all; the FastAPI app
# mounts their routers and configuration sections; an integration's CLI commands still live under
# gateway/cli. This list may only shrink (move a CLI command into its adapter, registered by wiring).
KNOWS_ADAPTERS = {
    "gateway/wiring.py",
    "gateway/api/app.py",
    "gateway/config.py",
    "gateway/cli/bitrix.py",
    "gateway/cli/discountserver.py",
    "gateway/cli/erp_sync.py",
    "gateway/workers/stuck.py",
}


def test_only_the_composition_root_and_named_entry_points_know_adapters() -> None:
    knowing = {path for path, names in _imports("gateway").items() if any(n.startswith("adapters") for n in names)}
    assert knowing <= KNOWS_ADAPTERS, f"new modules of gateway/ import adapters: {knowing - KNOWS_ADAPTERS}"
    assert "gateway/wiring.py" in knowing


def test_bench_and_fakes_import_no_tests() -> None:
    for package in ("bench", "testing"):
        for path, names in _imports(package).items():
            bad = {n for n in names if n == "tests" or n.startswith("tests.")}
            assert not bad, f"{path} imports {bad}"


def test_migrations_import_no_ledger_code() -> None:
    """A migration is frozen in time; ledger code moves on."""
    for path, names in _imports("gateway.store.migrations").items():
        bad = {n for n in names if n.startswith(("gateway.ledger", "adapters", "gateway.api", "gateway.workers"))}
        assert not bad, f"{path} imports {bad}"

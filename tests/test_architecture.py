"""Layering rules from DESIGN.md, checked on the import graph of the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    for adapter in ("onec", "bitrix", "sms"):
        for path, names in _imports(f"adapters.{adapter}").items():
            bad = {n for n in names if n.startswith("adapters.") and not n.startswith(f"adapters.{adapter}")}
            assert not bad, f"{path} imports {bad}"

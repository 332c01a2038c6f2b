"""The ``gateway`` command. Each area keeps its subcommands in a module of its own and is
registered here."""

from __future__ import annotations

from gateway.cli.core import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app(prog_name="gateway")

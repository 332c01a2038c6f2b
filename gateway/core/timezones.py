"""Time zone names in configuration: 1C, the ERP and the program's calendar all count local time."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def time_zone(name: str) -> ZoneInfo:
    """The zone called ``name``; a ValueError naming it if there is none (a typo in a config)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _known(name: str) -> str:
    time_zone(name)
    return name


TimeZoneName = Annotated[str, AfterValidator(_known)]

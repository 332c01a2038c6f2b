"""Building blocks shared by every section of the program file: strict sections, codes,
percentages and rouble amounts (exact decimals, never float)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]
Factor = Annotated[Decimal, Field(ge=0, le=10, max_digits=6, decimal_places=4)]
Roubles = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2)]
Code = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-zА-Яа-яЁё_.\-]+$", description="An id used in this file"),
]
Ref = Annotated[
    str,
    Field(
        min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$", description="An outside reference: code or 1C GUID"
    ),
]
Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000, description="Larger wins")]


class Section(BaseModel):
    """A section of the program file: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def roubles_to_kopecks(value: Decimal) -> int:
    return int(value * 100)


def kopecks_text(kopecks: int) -> str:
    """``123456`` → ``1 234.56`` (how amounts are shown in explanations)."""
    sign = "-" if kopecks < 0 else ""
    whole, part = divmod(abs(kopecks), 100)
    return f"{sign}{whole:,}.{part:02d}".replace(",", " ")


def percent_text(value: Decimal) -> str:
    """``Decimal("7.5000")`` → ``7.5``."""
    text = format(value.normalize(), "f")
    return text

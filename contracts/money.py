"""Money, quantities and points: exact types, never float.

Money travels as a decimal with at most two fractional digits (roubles and kopecks) and is
converted to integer kopecks at the edge of the core. Points are whole integers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field


def _no_float(value: object) -> object:
    # JSON numbers reach us as Decimal (exact) when parsed by pydantic from JSON text.  A Python
    # float can only come from code that already lost precision; accept it only when its repr
    # round-trips to at most the allowed digits, which the Decimal constraints then check.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(ge=0, max_digits=15, decimal_places=2, description="Amount in roubles, at most 2 decimals"),
]
SignedMoney = Annotated[Decimal, BeforeValidator(_no_float), Field(max_digits=15, decimal_places=2)]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(gt=0, max_digits=12, decimal_places=3, description="Quantity, at most 3 decimals"),
]
Points = Annotated[int, Field(ge=0, le=10**12, description="Whole bonus points")]

_KOPECK = Decimal("0.01")


def money_to_kopecks(value: Decimal) -> int:
    """Exact conversion; a value with more than two decimals is a caller bug, not rounding."""
    quantized = value.quantize(_KOPECK)
    if quantized != value:
        raise ValueError(f"{value} has more than two decimal places")
    return int(quantized * 100)


def kopecks_to_money(kopecks: int) -> Decimal:
    return (Decimal(kopecks) / 100).quantize(_KOPECK, rounding=ROUND_HALF_UP)

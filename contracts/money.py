"""Money, quantities and points: exact types, never float.

Money travels as a decimal with at most two fractional digits (roubles and kopecks) and is
converted to integer kopecks at the edge of the core. Points are whole integers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema


def _no_float(value: object) -> object:
    # JSON numbers reach us as Decimal (exact) when parsed by pydantic from JSON text.  A Python
    # float can only come from code that already lost precision; accept it only when its repr
    # round-trips to at most the allowed digits, which the Decimal constraints then check.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    return value


def _decimal_schema(minimum: str, digits: int, places: int, description: str) -> WithJsonSchema:
    """A JSON number or a decimal string, in standard JSON Schema words: pydantic would write its
    own ``ge``/``max_digits`` keys for a number-or-string, which no OpenAPI tool understands."""
    bound = float("9" * (digits - places) + "." + "9" * places)
    number: dict[str, object] = {"type": "number", "maximum": bound}
    if minimum == ">0":
        number["exclusiveMinimum"] = 0
    elif minimum == ">=0":
        number["minimum"] = 0
    else:
        number["minimum"] = -bound
    sign = "-?" if minimum == "any" else ""
    pattern = rf"^{sign}[0-9]{{1,{digits - places}}}(\.[0-9]{{1,{places}}})?$"
    return WithJsonSchema(
        {"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description}, mode="validation"
    )


Money = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(ge=0, max_digits=15, decimal_places=2, description="Amount in roubles, at most 2 decimals"),
    _decimal_schema(">=0", 15, 2, "Amount in roubles, at most 2 decimals"),
]
SignedMoney = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(max_digits=15, decimal_places=2),
    _decimal_schema("any", 15, 2, "Amount in roubles (negative: returned), at most 2 decimals"),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(gt=0, max_digits=12, decimal_places=3, description="Quantity, at most 3 decimals"),
    _decimal_schema(">0", 12, 3, "Quantity, at most 3 decimals"),
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

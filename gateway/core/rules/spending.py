"""Spreading points paid over the lines of a receipt, within each line's limit."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from gateway.core.allocation import split_proportionally


def split_points(points: int, weights: Sequence[Fraction], bounds: Sequence[int], fallback: Sequence[int]) -> list[int]:
    """Split ``points`` over lines in proportion to ``weights`` (the value each line may be paid
    with points), never giving a line more than its bound (the whole points its amount holds).

    What a saturated line cannot take goes to the others, still in proportion. Only when the
    bounds together hold fewer points than asked — a write-off a till already took that exceeds
    the lines' whole points — the rest is spread by ``fallback`` (the lines' amounts) without
    bounds. With bounds that never bind this is exactly ``split_proportionally(points, weights)``.
    """
    count = len(weights)
    if not (len(bounds) == len(fallback) == count):
        raise ValueError("weights, bounds and fallback must have one entry per line")
    parts = [0] * count
    left = points
    active = [i for i in range(count) if weights[i] > 0 and bounds[i] > 0]
    while left and active:
        shares = split_proportionally(left, [weights[i] for i in active])
        overflow = 0
        still: list[int] = []
        for i, share in zip(active, shares, strict=True):
            take = min(share, bounds[i] - parts[i])
            parts[i] += take
            overflow += share - take
            if parts[i] < bounds[i]:
                still.append(i)
        left = overflow
        active = still
    if left:
        rooms = [max(bounds[i] - parts[i], 0) for i in range(count)]
        fits = min(left, sum(rooms))
        if fits:
            for i, extra in enumerate(split_proportionally(fits, rooms)):
                parts[i] += extra
            left -= fits
    if left:
        for i, extra in enumerate(split_proportionally(left, list(fallback))):
            parts[i] += extra
    return parts

"""Exact integer arithmetic used by the ledger: proportional splits and cumulative shares.

Points and kopecks are integers. Whenever a total must be spread over parts (points spent
over receipt lines, a refund amount over lines) we use the largest-remainder method, so the
parts always add up to the total. Whenever a quantity is taken back in several steps (partial
refunds) we compute the *cumulative* share and subtract what was already taken, so the steps
always add up to the whole once everything is returned - no drift, no lost point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction


def split_proportionally(total: int, weights: Sequence[int | Fraction]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Ties go to the earlier part, so the result is deterministic. With all-zero weights the
    total goes to the first part (there is nothing to be proportional to).
    """
    if total < 0:
        raise ValueError("total must not be negative")
    if not weights:
        if total:
            raise ValueError("cannot split a non-zero total over no parts")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(Fraction(w) for w in weights)
    if weight_sum == 0:
        return [total] + [0] * (len(weights) - 1)
    exact = [Fraction(total) * Fraction(w) / weight_sum for w in weights]
    parts = [int(x) for x in exact]  # floor: all values are non-negative
    short = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:short]:
        parts[i] += 1
    return parts


def cumulative_share(total: int, done: Fraction, whole: Fraction) -> int:
    """Integer part of ``total`` that corresponds to ``done`` out of ``whole``, rounded down.

    ``cumulative_share(total, whole, whole) == total`` always, so taking back a quantity in
    several steps as ``share(after) - share(before)`` returns exactly ``total`` in the end.
    """
    if whole <= 0:
        return total if done > 0 else 0
    if done >= whole:
        return total
    if done <= 0:
        return 0
    return int(Fraction(total) * done / whole)


@dataclass(frozen=True, slots=True)
class LotView:
    """What spending needs to know about an accrual lot."""

    lot_id: int
    remaining: int
    expires_at: datetime | None


def spend_order(lots: Sequence[LotView]) -> list[LotView]:
    """Soonest-expiring first; lots that never expire last; then oldest lot first."""
    return sorted(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or datetime.max, lot.lot_id),
    )


def draw_from_lots(lots: Sequence[LotView], points: int) -> list[tuple[int, int]]:
    """Take ``points`` from ``lots`` in spend order; returns ``(lot_id, points)`` pairs.

    Raises ValueError when the lots hold fewer points than asked: callers check availability
    first and report ``insufficient_points``; reaching this error is a bug.
    """
    if points < 0:
        raise ValueError("points must not be negative")
    taken: list[tuple[int, int]] = []
    left = points
    for lot in spend_order(lots):
        if left == 0:
            break
        if lot.remaining <= 0:
            continue
        take = min(lot.remaining, left)
        taken.append((lot.lot_id, take))
        left -= take
    if left:
        raise ValueError(f"lots hold {points - left} points, {points} requested")
    return taken

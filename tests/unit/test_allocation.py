"""Exact arithmetic of the ledger: splits add up, cumulative shares never drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.allocation import LotView, cumulative_share, draw_from_lots, split_proportionally


def test_split_examples() -> None:
    assert split_proportionally(300, [100000, 25050]) == [240, 60]
    assert split_proportionally(10, [1, 1, 1]) == [4, 3, 3]
    assert split_proportionally(5, [0, 0]) == [5, 0]
    assert split_proportionally(0, [3, 4]) == [0, 0]


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=30))
def test_split_adds_up_and_stays_proportional(total: int, weights: list[int]) -> None:
    parts = split_proportionally(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    if sum(weights):
        for part, weight in zip(parts, weights, strict=True):
            exact = Fraction(total * weight, sum(weights))
            assert abs(part - exact) < 1


@given(st.integers(0, 10**6), st.lists(st.integers(1, 1000), min_size=1, max_size=20))
def test_cumulative_steps_return_exactly_the_total(total: int, steps: list[int]) -> None:
    whole = Fraction(sum(steps))
    done = Fraction(0)
    taken = 0
    for step in steps:
        before = cumulative_share(total, done, whole)
        done += step
        after = cumulative_share(total, done, whole)
        assert after >= before
        taken += after - before
    assert taken == total


def test_draw_takes_soonest_expiring_first() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    lots = [
        LotView(1, 100, None),
        LotView(2, 50, now + timedelta(days=300)),
        LotView(3, 30, now + timedelta(days=10)),
    ]
    assert draw_from_lots(lots, 100) == [(3, 30), (2, 50), (1, 20)]
    with pytest.raises(ValueError):
        draw_from_lots(lots, 181)

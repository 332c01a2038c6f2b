"""``discounts:`` — the discount tree: rules, groups, priorities and how they combine.

A **rule** gives a percentage of a line's amount when its ``when`` holds. A **group** combines
its ``members`` (rules or other groups):

* ``best_of`` — the member giving the largest discount (a tie goes to the higher priority,
  then to the member listed first);
* ``sum`` — all applicable members add up (never above the line's amount);
* ``exclusive`` — only the applicable member with the highest ``priority``, whatever it gives
  (members of an exclusive group must have distinct priorities).

Rules and groups that are no group's member form the root, combined by ``discounts.combine``.
A rule's value is taken as a discount off the price (``take_as: discount``), as points
(``points``: one point per ``point_value`` of discount) or split between both (``split``,
``points_share_percent`` of it as points) — the way a partner discount is often granted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pydantic import Field, model_validator

from gateway.core.rules.base import Code, Percent, Priority, Section
from gateway.core.rules.conditions import When
from gateway.core.rules.context import LineFacts, ReceiptFacts

Combine = Literal["best_of", "sum", "exclusive"]
TakeAs = Literal["discount", "points", "split"]


class DiscountRule(Section):
    id: Code
    description: str = Field(min_length=1, max_length=256)
    when: When = When()
    percent: Percent = Field(description="Percent of the line's amount")
    take_as: TakeAs = "discount"
    points_share_percent: Percent | None = Field(default=None, description="split: the share taken as points")
    priority: Priority = 0

    @model_validator(mode="after")
    def _split(self) -> DiscountRule:
        if (self.take_as == "split") != (self.points_share_percent is not None):
            raise ValueError("points_share_percent is required with take_as: split, and only with it")
        return self

    def points_share(self) -> Fraction:
        if self.take_as == "points":
            return Fraction(1)
        if self.take_as == "split" and self.points_share_percent is not None:
            return Fraction(self.points_share_percent) / 100
        return Fraction(0)


class DiscountGroup(Section):
    id: Code
    description: str | None = Field(default=None, max_length=256)
    combine: Combine
    members: list[Code] = Field(min_length=1, description="Ids of rules and groups")
    priority: Priority = 0


class DiscountPolicy(Section):
    combine: Combine = Field(default="best_of", description="How the rules and groups at the root combine")
    rules: list[DiscountRule] = Field(default_factory=list)
    groups: list[DiscountGroup] = Field(default_factory=list)

    def node_ids(self) -> list[str]:
        return [r.id for r in self.rules] + [g.id for g in self.groups]

    def roots(self) -> list[str]:
        members = {m for g in self.groups for m in g.members}
        return [node for node in self.node_ids() if node not in members]

    def rule(self, rule_id: str) -> DiscountRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def group(self, group_id: str) -> DiscountGroup | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def evaluate(self, receipt: ReceiptFacts, line: LineFacts, amount_kopecks: int) -> dict[str, Fraction]:
        """The value (exact kopecks) each rule contributes to this line; the values add up to at
        most the line's amount."""
        if amount_kopecks <= 0 or not self.rules:
            return {}
        evaluator = _Evaluator(self, receipt, line, amount_kopecks)
        result = evaluator.combine(self.combine, self.roots())
        return dict(result.parts) if result is not None else {}

    def tree(self) -> Iterator[tuple[int, str]]:
        """(depth, text) of every node, root first: what ``check-config`` prints."""
        yield 0, f"discounts ({self.combine})"
        yield from self._tree(self.roots(), 1, set())

    def _tree(self, ids: list[str], depth: int, seen: set[str]) -> Iterator[tuple[int, str]]:
        for node in ids:
            if node in seen:  # pragma: no cover - validation rejects cycles
                continue
            rule = self.rule(node)
            if rule is not None:
                take = "" if rule.take_as == "discount" else f", as {rule.take_as}"
                if rule.take_as == "split":
                    take += f" ({rule.points_share_percent}% points)"
                yield depth, f"{rule.id}: {rule.percent}%{take}, priority {rule.priority} — {rule.description}"
                continue
            group = self.group(node)
            if group is not None:
                yield depth, f"[{group.id}] {group.combine}, priority {group.priority}"
                yield from self._tree(group.members, depth + 1, seen | {node})


@dataclass(frozen=True, slots=True)
class _Result:
    value: Fraction
    priority: int
    parts: tuple[tuple[str, Fraction], ...]


class _Evaluator:
    def __init__(self, policy: DiscountPolicy, receipt: ReceiptFacts, line: LineFacts, amount: int) -> None:
        self.policy = policy
        self.receipt = receipt
        self.line = line
        self.amount = Fraction(amount)

    def node(self, node_id: str, depth: int = 0) -> _Result | None:
        if depth > 64:  # pragma: no cover - validation rejects cycles
            raise ValueError("discount groups nest too deep")
        rule = self.policy.rule(node_id)
        if rule is not None:
            if not rule.when.matches(self.receipt, self.line):
                return None
            value = self.amount * Fraction(rule.percent) / 100
            return _Result(value, rule.priority, ((rule.id, value),))
        group = self.policy.group(node_id)
        if group is None:  # pragma: no cover - validation rejects unknown members
            return None
        combined = self.combine(group.combine, group.members, depth + 1)
        if combined is None:
            return None
        return _Result(combined.value, group.priority, combined.parts)

    def combine(self, how: Combine, members: list[str], depth: int = 0) -> _Result | None:
        found = [(index, r) for index, m in enumerate(members) if (r := self.node(m, depth)) is not None]
        if not found:
            return None
        if how == "best_of":
            _, best = max(found, key=lambda pair: (pair[1].value, pair[1].priority, -pair[0]))
            return best
        if how == "exclusive":
            _, first = max(found, key=lambda pair: (pair[1].priority, -pair[0]))
            return first
        total = sum((r.value for _, r in found), Fraction(0))
        scale = min(Fraction(1), self.amount / total) if total else Fraction(1)
        merged: dict[str, Fraction] = {}
        for _, result in found:
            for rule_id, value in result.parts:
                merged[rule_id] = merged.get(rule_id, Fraction(0)) + value * scale
        return _Result(min(total, self.amount), 0, tuple(merged.items()))

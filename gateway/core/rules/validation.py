"""Checks across sections of the program file: every reference names something that exists,
ids are unique, tiers tile the turnover, discount groups form a tree, priorities decide.

Each problem is reported at the key that causes it (``discounts.rules.3.when.zones.0``), so the
configuration loader can point at the line of the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from gateway.core.rules.base import kopecks_text, roubles_to_kopecks
from gateway.core.rules.conditions import When
from gateway.core.rules.goods import check_goods, goods_warnings
from gateway.core.rules.tiers import TierLadder

if TYPE_CHECKING:
    from gateway.core.program import Program

Loc = tuple[str | int, ...]


@dataclass
class Problems:
    found: list[tuple[Loc, str, Any]] = field(default_factory=list)

    def add(self, loc: Loc, message: str, value: Any = None) -> None:
        self.found.append((loc, message, value))

    def raise_if_any(self, title: str) -> None:
        if not self.found:
            return
        details = [
            InitErrorDetails(
                type=PydanticCustomError("program_invalid", "{problem}", {"problem": message}),
                loc=loc,
                input=value,
            )
            for loc, message, value in self.found
        ]
        raise ValidationError.from_exception_data(title, details)


def _duplicates(problems: Problems, where: Loc, ids: Sequence[str], what: str) -> None:
    counts = Counter(ids)
    for index, value in enumerate(ids):
        if counts[value] > 1 and ids.index(value) != index:
            problems.add((*where, index), f"duplicate {what} {value!r}", value)


def validate_program(program: Program) -> None:
    """Raise a ``ValidationError`` listing every problem, each at its own key."""
    problems = Problems()
    _catalogue(program, problems)
    _segments(program, problems)
    _tiers(program, problems)
    _discounts(program, problems)
    _accrual(program, problems)
    _bonuses(program, problems)
    check_goods(program, problems.add)
    problems.raise_if_any("Program")


# -- catalogue ----------------------------------------------------------------------------


def _catalogue(program: Program, problems: Problems) -> None:
    cat = program.catalogue
    base: Loc = ("catalogue",)
    _duplicates(problems, (*base, "price_types"), [p.code for p in cat.price_types], "price type")
    _duplicates(problems, (*base, "kinds"), [k.code for k in cat.kinds], "kind")
    _duplicates(problems, (*base, "zones"), [z.code for z in cat.zones], "zone")
    price_codes = {p.code for p in cat.price_types}
    kind_codes = {k.code for k in cat.kinds}
    zone_codes = {z.code for z in cat.zones}
    for key, value, known, what in (
        ("default_price_type", cat.default_price_type, price_codes, "price type"),
        ("default_kind", cat.default_kind, kind_codes, "kind"),
        ("default_zone", cat.default_zone, zone_codes, "zone"),
    ):
        if value is not None and value not in known:
            problems.add((*base, key), f"unknown {what} {value!r}", value)

    refs: dict[str, str] = {code.lower(): code for code in price_codes}
    for i, price_type in enumerate(cat.price_types):
        for j, ref in enumerate(price_type.refs):
            owner = refs.get(ref.lower())
            if owner is not None and owner != price_type.code:
                problems.add(
                    (*base, "price_types", i, "refs", j), f"ref {ref!r} already names price type {owner!r}", ref
                )
            refs.setdefault(ref.lower(), price_type.code)

    items: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for i, kind in enumerate(cat.kinds):
        if kind.parent is not None and kind.parent not in kind_codes:
            problems.add((*base, "kinds", i, "parent"), f"unknown kind {kind.parent!r}", kind.parent)
        for j, item in enumerate(kind.items):
            if item in items and items[item] != kind.code:
                problems.add((*base, "kinds", i, "items", j), f"item {item!r} is already of kind {items[item]!r}", item)
            items.setdefault(item, kind.code)
        for j, prefix in enumerate(kind.prefixes):
            if prefix in prefixes and prefixes[prefix] != kind.code:
                problems.add(
                    (*base, "kinds", i, "prefixes", j),
                    f"prefix {prefix!r} already belongs to kind {prefixes[prefix]!r}",
                    prefix,
                )
            prefixes.setdefault(prefix, kind.code)
    parents = {k.code: k.parent for k in cat.kinds}
    for i, kind in enumerate(cat.kinds):
        chain = [kind.code]
        while (parent := parents.get(chain[-1])) is not None:
            if parent in chain:
                if parent == kind.code:
                    loop = " → ".join([*chain, parent])
                    problems.add((*base, "kinds", i, "parent"), f"cycle in kind parents: {loop}", kind.parent)
                break
            chain.append(parent)

    stores: dict[str, str] = {}
    for i, zone in enumerate(cat.zones):
        for j, store in enumerate(zone.stores):
            owner = stores.get(store.lower())
            if owner is not None and owner != zone.code:
                problems.add((*base, "zones", i, "stores", j), f"store {store!r} is already in zone {owner!r}", store)
            stores.setdefault(store.lower(), zone.code)


# -- segments and tiers -------------------------------------------------------------------


def _segments(program: Program, problems: Problems) -> None:
    segments = program.segments
    _duplicates(problems, ("segments",), [s.code for s in segments], "segment")
    codes = {s.code for s in segments}
    defaults = [i for i, s in enumerate(segments) if s.default]
    if segments and len(defaults) != 1:
        where: Loc = ("segments", defaults[1], "default") if len(defaults) > 1 else ("segments",)
        problems.add(where, f"exactly one segment must be `default: true` (found {len(defaults)})")
    becomes = {s.code: s.becomes for s in segments}
    for i, segment in enumerate(segments):
        if segment.becomes is None:
            continue
        if segment.becomes not in codes:
            problems.add(("segments", i, "becomes"), f"unknown segment {segment.becomes!r}", segment.becomes)
            continue
        chain = [segment.code]
        while (nxt := becomes.get(chain[-1])) is not None:
            if nxt in chain:
                if nxt == segment.code:
                    loop = " → ".join([*chain, nxt])
                    problems.add(("segments", i, "becomes"), f"cycle in segment transitions: {loop}", segment.becomes)
                break
            chain.append(nxt)


def _tiers(program: Program, problems: Problems) -> None:
    if program.tiers is not None:
        _ladder(program, problems, ("tiers",), program.tiers)
    _duplicates(problems, ("ladders",), [ladder.code for ladder in program.ladders], "ladder")
    # A level code names its ladder too (a customer stores one tier; rules condition on it).
    owners: dict[str, str] = {level.code: "tiers" for level in program.tiers.levels} if program.tiers else {}
    placed: dict[str, str] = {code: "tiers" for code in program.tiers.segments} if program.tiers else {}
    for i, ladder in enumerate(program.ladders):
        _ladder(program, problems, ("ladders", i), ladder)
        for j, level in enumerate(ladder.levels):
            if owners.get(level.code, ladder.code) != ladder.code:
                problems.add(
                    ("ladders", i, "levels", j, "code"),
                    f"tier {level.code!r} is already a level of {owners[level.code]!r}: "
                    "level codes are unique across ladders",
                    level.code,
                )
            owners.setdefault(level.code, ladder.code)
        for j, code in enumerate(ladder.segments):
            if placed.get(code, ladder.code) != ladder.code:
                problems.add(
                    ("ladders", i, "segments", j),
                    f"segment {code!r} is already on {placed[code]!r}: a customer is on one ladder",
                    code,
                )
            placed.setdefault(code, ladder.code)


def _ladder(program: Program, problems: Problems, where: Loc, tiers: TierLadder) -> None:
    _duplicates(problems, (*where, "levels"), [t.code for t in tiers.levels], "tier")
    _known(problems, (*where, "segments"), tiers.segments, {s.code for s in program.segments}, "segment")
    order = sorted(range(len(tiers.levels)), key=lambda i: tiers.levels[i].from_turnover)
    first = tiers.levels[order[0]]
    if first.from_turnover != 0:
        problems.add(
            (*where, "levels", order[0], "from_turnover"),
            f"no tier for turnover below {kopecks_text(roubles_to_kopecks(first.from_turnover))}: "
            "the lowest tier must start at 0",
            first.from_turnover,
        )
    for previous_index, index in pairwise(order):
        previous, level = tiers.levels[previous_index], tiers.levels[index]
        end = previous.to_turnover
        start = roubles_to_kopecks(level.from_turnover)
        if level.from_turnover == previous.from_turnover or (end is not None and level.from_turnover < end):
            upper = "…" if end is None else kopecks_text(roubles_to_kopecks(end))
            problems.add(
                (*where, "levels", index, "from_turnover"),
                f"tier {level.code!r} overlaps tier {previous.code!r} "
                f"[{kopecks_text(roubles_to_kopecks(previous.from_turnover))}, {upper})",
                level.from_turnover,
            )
        elif end is not None and level.from_turnover > end:
            problems.add(
                (*where, "levels", previous_index, "to_turnover"),
                f"gap between tiers {previous.code!r} and {level.code!r}: no tier for turnover "
                f"{kopecks_text(roubles_to_kopecks(end))} to {kopecks_text(start)}",
                end,
            )
    last = tiers.levels[order[-1]]
    if last.to_turnover is not None:
        problems.add(
            (*where, "levels", order[-1], "to_turnover"),
            f"no tier for turnover from {kopecks_text(roubles_to_kopecks(last.to_turnover))}: "
            "the highest tier must have no to_turnover",
            last.to_turnover,
        )


# -- rules --------------------------------------------------------------------------------


def _known(problems: Problems, where: Loc, values: Iterable[str], known: set[str], what: str) -> None:
    for i, value in enumerate(values):
        if value not in known:
            hint = f"; known: {', '.join(sorted(known))}" if known else f"; the program defines no {what}s"
            problems.add((*where, i), f"unknown {what} {value!r}{hint}", value)


def _when(program: Program, problems: Problems, where: Loc, when: When) -> None:
    cat = program.catalogue
    _known(problems, (*where, "segments"), when.segments, {s.code for s in program.segments}, "segment")
    tiers = {t.code for ladder in program.all_ladders() for t in ladder.levels}
    _known(problems, (*where, "tiers"), when.tiers, tiers, "tier")
    _known(problems, (*where, "zones"), when.zones, {z.code for z in cat.zones}, "zone")
    _known(problems, (*where, "kinds"), when.kinds, {k.code for k in cat.kinds}, "kind")
    _known(problems, (*where, "price_types"), when.price_types, {p.code for p in cat.price_types}, "price type")
    low, high = when.receipt_from, when.receipt_below
    if low is not None and high is not None and low >= high:
        # Reported at receipt_below so the loader points at the line of the step's upper bound;
        # overlapping steps of a scale are fine (a best_of group picks the best).
        problems.add(
            (*where, "receipt_below"),
            f"receipt_below {high} must be above receipt_from {low}: no receipt can meet both",
            high,
        )


def _distinct_priorities(problems: Problems, entries: Sequence[tuple[Loc, str, int]], scope: str) -> None:
    seen: dict[int, str] = {}
    for loc, node_id, priority in entries:
        if priority in seen:
            problems.add(
                loc,
                f"{node_id!r} and {seen[priority]!r} have the same priority {priority} in {scope}: "
                "give them distinct priorities",
                priority,
            )
        else:
            seen[priority] = node_id


def _discounts(program: Program, problems: Problems) -> None:
    policy = program.discounts
    ids = policy.node_ids()
    _duplicates(problems, ("discounts", "rules"), [r.id for r in policy.rules], "discount id")
    rule_ids = {r.id for r in policy.rules}
    for i, group in enumerate(policy.groups):
        if group.id in rule_ids or [g.id for g in policy.groups].index(group.id) != i:
            problems.add(("discounts", "groups", i, "id"), f"duplicate discount id {group.id!r}", group.id)
    for i, rule in enumerate(policy.rules):
        _when(program, problems, ("discounts", "rules", i, "when"), rule.when)

    known = set(ids)
    owner: dict[str, str] = {}
    for i, group in enumerate(policy.groups):
        for j, member in enumerate(group.members):
            loc: Loc = ("discounts", "groups", i, "members", j)
            if member not in known:
                problems.add(loc, f"unknown discount rule or group {member!r}", member)
            elif member == group.id:
                problems.add(loc, f"group {group.id!r} cannot contain itself", member)
            elif member in owner and owner[member] != group.id:
                problems.add(loc, f"{member!r} is already a member of group {owner[member]!r}", member)
            else:
                owner.setdefault(member, group.id)

    children = {g.id: [m for m in g.members if m in known] for g in policy.groups}
    reported: set[frozenset[str]] = set()
    for i, group in enumerate(policy.groups):
        path = _cycle_from(group.id, children)
        if path and frozenset(path) not in reported:
            reported.add(frozenset(path))
            problems.add(
                ("discounts", "groups", i, "members"),
                f"cycle in discount groups: {' → '.join([*path, path[0]])}",
                group.members,
            )

    def priority_of(node: str) -> int:
        rule = policy.rule(node)
        if rule is not None:
            return rule.priority
        group = policy.group(node)
        return group.priority if group is not None else 0

    for i, group in enumerate(policy.groups):
        if group.combine == "exclusive":
            entries: list[tuple[Loc, str, int]] = [
                (("discounts", "groups", i, "members", j), m, priority_of(m))
                for j, m in enumerate(group.members)
                if m in known
            ]
            _distinct_priorities(problems, entries, f"exclusive group {group.id!r}")
    if policy.combine == "exclusive":
        roots: list[tuple[Loc, str, int]] = []
        for node in policy.roots():
            root_rule = policy.rule(node)
            if root_rule is not None:
                index = policy.rules.index(root_rule)
                roots.append((("discounts", "rules", index, "priority"), node, root_rule.priority))
            else:
                root_group = policy.group(node)
                assert root_group is not None
                index = policy.groups.index(root_group)
                roots.append((("discounts", "groups", index, "priority"), node, root_group.priority))
        _distinct_priorities(problems, roots, "the exclusive root of discounts")


def _cycle_from(start: str, children: dict[str, list[str]]) -> list[str] | None:
    """A cycle of groups through ``start`` (as the list of its nodes), if any."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for child in children.get(node, []):
            if child == start:
                return path
            if child not in path and child in children:
                stack.append((child, [*path, child]))
    return None


def _accrual(program: Program, problems: Problems) -> None:
    rules = program.accrual.rules
    _duplicates(problems, ("accrual", "rules"), [r.id for r in rules], "accrual rule id")
    for i, rule in enumerate(rules):
        _when(program, problems, ("accrual", "rules", i, "when"), rule.when)
    replace = [
        (("accrual", "rules", i, "priority"), r.id, r.priority) for i, r in enumerate(rules) if r.combine == "replace"
    ]
    _distinct_priorities(problems, replace, "replace accrual rules")
    for i, rule in enumerate(rules):
        experiment = rule.experiment
        if experiment is not None and experiment.until is not None and experiment.until < experiment.since:
            where: Loc = ("accrual", "rules", i, "experiment", "until")
            ends = f"the experiment of {rule.id!r} ends before it starts ({experiment.since})"
            problems.add(where, ends, experiment.until)


def _bonuses(program: Program, problems: Problems) -> None:
    bonuses = program.bonuses
    segments = {s.code for s in program.segments}
    if bonuses.birthday is not None:
        _known(problems, ("bonuses", "birthday", "segments"), bonuses.birthday.segments, segments, "segment")
    _duplicates(problems, ("bonuses", "referral"), [r.id for r in bonuses.referral], "referral rule id")
    for i, rule in enumerate(bonuses.referral):
        _known(problems, ("bonuses", "referral", i, "referrer_segments"), rule.referrer_segments, segments, "segment")
        _when(program, problems, ("bonuses", "referral", i, "when"), rule.when)
    entries = [(("bonuses", "referral", i, "priority"), r.id, r.priority) for i, r in enumerate(bonuses.referral)]
    _distinct_priorities(problems, entries, "referral rules")


# -- warnings: settings that are valid but can never take effect ------------------------------


def program_warnings(program: Program) -> list[tuple[Loc, str]]:
    """Limits that can never apply, each at its key (a warning: the program still works).

    The share of a line payable by points is the *strictest* of every limit that applies to it
    (``rules/evaluate.py`` ``line_share``), so a higher limit below a stricter one does nothing —
    a tier's 50 % under the program's 30 % silently pays 30 %."""
    found: list[tuple[Loc, str]] = goods_warnings(program)
    ceiling = program.redemption.max_share_percent

    def above_program(loc: Loc, what: str, percent: Any) -> None:
        if percent is not None and percent > ceiling:
            found.append(
                (
                    loc,
                    f"{what} allows {percent}% payable by points, but the program's "
                    f"redemption.max_share_percent ({ceiling}%) is stricter and always wins: "
                    f"this limit never applies",
                )
            )

    cat = program.catalogue
    for i, price_type in enumerate(cat.price_types):
        above_program(
            ("catalogue", "price_types", i, "max_share_percent"),
            f"price type {price_type.code!r}",
            price_type.max_share_percent,
        )
    for i, kind in enumerate(cat.kinds):
        above_program(("catalogue", "kinds", i, "max_share_percent"), f"kind {kind.code!r}", kind.max_share_percent)
    for i, segment in enumerate(program.segments):
        above_program(("segments", i, "max_share_percent"), f"segment {segment.code!r}", segment.max_share_percent)
    ladders: list[tuple[Loc, TierLadder]] = [(("tiers",), program.tiers)] if program.tiers is not None else []
    ladders += [(("ladders", i), ladder) for i, ladder in enumerate(program.ladders)]
    for where, tiers in ladders:
        for i, level in enumerate(tiers.levels):
            loc: Loc = (*where, "levels", i, "max_share_percent")
            percent = level.max_share_percent
            if percent is None:
                continue
            if percent > ceiling:
                above_program(loc, f"tier {level.code!r}", percent)
                continue
            # Every segment that has tiers caps the share lower: the tier's limit is never the strictest.
            caps = [program.segment(code) for code in tiers.segments]
            limits = [s.max_share_percent for s in caps if s is not None]
            stricter = all(limit is not None and limit < percent for limit in limits)
            if tiers.segments and len(limits) == len(tiers.segments) and stricter:
                found.append(
                    (
                        loc,
                        f"tier {level.code!r} allows {percent}% payable by points, but every segment with "
                        f"tiers ({', '.join(tiers.segments)}) is stricter and always wins: this limit never applies",
                    )
                )
    return found

"""Rule lint: what loading cannot see — conflicting charges, dead rules, versions and days left uncharged or
unpriced (gaps between rate cards or market maps).

Loading (`load_rulebook`) already refuses bad schema, unknown facts and mistyped values. The
checks here reason over a finite domain of fact values (`fact_domain.domain`) with the compiled
conditions the engine runs. Deny against allow is not a conflict: deny overrides by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..core.errors import RulebookError
from ..core.fact_domain import (
    DAY_FACT,
    OTHER,
    describe,
    domain,
    every,
    find,
    negation,
    some,
    tests,
    truth,
)
from ..core.facts import NONE, day_number, from_day_number
from ..core.rates import gaps
from ..core.rulebook import PolicyVersion, Rule, Rulebook, compile_condition, load_rulebook

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Finding:
    """One problem in the rule files, located by file and rule (or version) id."""

    file: str
    rule: str | None
    message: str

    def __str__(self) -> str:
        return ":".join(part for part in (self.file, self.rule) if part) + f": {self.message}"


def lint(directory: str | Path) -> list[Finding]:
    """Load the rule files and, when they load, run every consistency check on them."""
    try:
        rulebook = load_rulebook(directory)
    except RulebookError as error:
        return [Finding(error.file or str(directory), error.rule, error.detail)]
    files = {version.id: version.file for version in rulebook.versions}
    return [
        *never_holds(rulebook),
        *charge_conflicts(rulebook),
        *version_nesting(rulebook, files),
        *outside_versions(rulebook),
        *charge_gaps(rulebook, files),
        *rate_gaps(rulebook),
    ]


def rate_gaps(rulebook: Rulebook) -> Iterator[Finding]:
    """Days between two rate cards of one currency or two market maps, and card days no market map covers."""
    for file, entry, message in gaps(rulebook.rates):
        yield Finding(file, entry, message)


def never_holds(rulebook: Rulebook) -> Iterator[Finding]:
    """Rules whose tests (with their effective dates) contradict each other, so they can never apply."""
    for rule in rulebook.rules:
        expression = compile_condition(rule)
        if find(domain([rule]), lambda facts, e=expression: truth(e, facts)) is None:
            yield Finding(rule.file, rule.id, "its condition can never hold, so the rule never applies")


def charge_conflicts(rulebook: Rulebook) -> Iterator[Finding]:
    """Pairs of charge rules with the same priority and different charges that can apply to the same send."""
    charging = [r for r in rulebook.rules if r.charge is not None]
    kinds = [kind for _, kind in send_kinds(domain(rulebook.rules))]
    for index, first in enumerate(charging):
        for second in charging[index + 1:]:
            if first.priority != second.priority or first.charge == second.charge:
                continue
            both = (compile_condition(first), compile_condition(second))
            space = domain([first, second])

            def together(facts: dict[str, Any], both: tuple[dict[str, Any], ...] = both) -> bool | None:
                return every(truth(c, facts) for c in both)

            witness = next(filter(None, (find(space, together, kind) for kind in kinds)), None)
            if witness is not None:
                yield Finding(second.file, second.id, (
                    f"conflicts with {first.id} ({first.file}): both have priority {first.priority} and charge "
                    f"differently, and both apply on {from_day_number(witness[DAY_FACT])} when {describe(witness)}"))


def version_nesting(rulebook: Rulebook, files: dict[str, str]) -> Iterator[Finding]:
    """Sub-versions outside their parent, and top-level versions that overlap or leave days between them."""
    for version in rulebook.versions:
        parent = _parent(version, rulebook.versions)
        if parent is not None and not _within(version, parent):
            yield Finding(files.get(version.id, ""), version.id,
                          f"sub-version runs {_span(version.effective_from, version.effective_until)}, outside its "
                          f"parent {parent.id} ({_span(parent.effective_from, parent.effective_until)})")
    tops = top_versions(rulebook)
    for before, after in pairwise(tops):
        end = before.effective_until
        if end is None or end >= after.effective_from:
            yield Finding(files.get(after.id, ""), after.id, f"overlaps {before.id}, which runs "
                          f"{_span(before.effective_from, end)}; a later version must start after it ends")
        elif end + ONE_DAY < after.effective_from:
            missing = _span(end + ONE_DAY, after.effective_from - ONE_DAY)
            yield Finding(files.get(after.id, ""), after.id,
                          f"no policy version is in force {missing} (between {before.id} and {after.id})")


def outside_versions(rulebook: Rulebook) -> Iterator[Finding]:
    """Rules in force on days no policy version covers (before the first, or after the last ends)."""
    first, last = rulebook.versions[0], top_versions(rulebook)[-1]
    for rule in rulebook.rules:
        if rule.effective_from < first.effective_from:
            yield Finding(rule.file, rule.id, f"takes effect on {rule.effective_from}, before the first policy "
                          f"version ({first.id}, {first.effective_from})")
        if last.effective_until is not None and (rule.effective_until or date.max) > last.effective_until:
            yield Finding(rule.file, rule.id, f"stays in force after the last policy version ends "
                          f"({last.id}, {last.effective_until})")


def charge_gaps(rulebook: Rulebook, files: dict[str, str]) -> Iterator[Finding]:
    """Days of a version on which some kind of send (free-form, or a template of a category) has no charge rule."""
    charging = [r for r in rulebook.rules if r.charge is not None]
    space = domain(rulebook.rules)
    cuts = sorted({from_day_number(n) for n in space.get(DAY_FACT, ())})
    for version in top_versions(rulebook):
        for label, kind in send_kinds(space):
            gaps = []
            for start, end in _segments(version, cuts):
                witness = _uncharged(charging, space, kind, start)
                if witness is not None:
                    gaps.append((start, end, witness))
            for start, end, witness in _merged(gaps):
                shown = {k: v for k, v in witness.items() if k not in kind}
                yield Finding(files.get(version.id, ""), version.id,
                              f"{label}: no charge rule applies {_span(start, end)} when {describe(shown)}")


def send_kinds(space: dict[str, tuple[Any, ...]]) -> list[tuple[str, dict[str, Any]]]:
    """Each kind of send a charge rule must cover: free-form, and a template of each category rules name."""
    # A free-form send has no template category, so the two facts are fixed together.
    categories = [c for c in space.get("template_category", ()) if c not in (OTHER, NONE)]
    kinds = [("free-form sends", {"send_is_template": False, "template_category": NONE})]
    kinds += [(f"{c} templates", {"send_is_template": True, "template_category": c}) for c in categories]
    return kinds


def top_versions(rulebook: Rulebook) -> list[PolicyVersion]:
    """The policy versions that refine no other (V1, V2, ...), in date order."""
    return [v for v in rulebook.versions if _parent(v, rulebook.versions) is None]


def _uncharged(charging: list[Rule], space: dict[str, tuple[Any, ...]], kind: dict[str, Any],
               day: date) -> dict[str, Any] | None:
    in_force = [r for r in charging if r.in_force(day)]
    conditions = [compile_condition(r) for r in in_force]
    read = {name for expression in conditions for name, _ in tests(expression)}
    fixed = {**kind, DAY_FACT: day_number(day)}
    return find({name: space[name] for name in read}, lambda facts: negation(some(truth(c, facts) for c in conditions)),
                fixed)


def _segments(version: PolicyVersion, cuts: list[date]) -> list[tuple[date, date | None]]:
    # Between two consecutive cuts no rule starts or ends and no date test changes, so one day stands for all.
    end = version.effective_until
    starts = [version.effective_from] + [c for c in cuts if version.effective_from < c and (end is None or c <= end)]
    ends: list[date | None] = [s - ONE_DAY for s in starts[1:]] + [end]
    return list(zip(starts, ends, strict=True))


def _merged(gaps: list[tuple[date, date | None, dict[str, Any]]]) -> list[tuple[date, date | None, dict[str, Any]]]:
    merged: list[tuple[date, date | None, dict[str, Any]]] = []
    for start, end, witness in gaps:
        previous = merged[-1] if merged else None
        if previous and previous[1] is not None and previous[1] + ONE_DAY == start:
            merged[-1] = (previous[0], end, previous[2])
        else:
            merged.append((start, end, witness))
    return merged


def _parent(version: PolicyVersion, versions: tuple[PolicyVersion, ...]) -> PolicyVersion | None:
    prefixes = [v for v in versions if v.id != version.id and version.id.startswith(v.id)]
    return max(prefixes, key=lambda v: len(v.id)) if prefixes else None


def _within(inner: PolicyVersion, outer: PolicyVersion) -> bool:
    inner_end, outer_end = inner.effective_until or date.max, outer.effective_until or date.max
    return outer.effective_from <= inner.effective_from and inner_end <= outer_end


def _span(start: date, end: date | None) -> str:
    if end is None:
        return f"from {start} on"
    return f"on {start}" if start == end else f"from {start} to {end}"

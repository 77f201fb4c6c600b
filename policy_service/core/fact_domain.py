"""Reason about rule conditions without the engine: evaluate them and search finite fact domains.

The conditions evaluated here are the compiled durable_rules expressions the engine runs
(`rulebook.compile_condition`), so a lint finding and a decision read the same `when` data.
A fact left unassigned makes a test unknown (None), and unknowns combine by Kleene's
three-valued logic, which lets a search stop as soon as the answer no longer depends on
the facts it has not yet chosen.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from .facts import FACT_TYPES, day_number, from_day_number
from .rulebook import Rule, compile_condition

# A text value no rule mentions: stands for every other value a fact may take.
OTHER = "(other)"
DAY_FACT = "waba_date"

Verdict = Callable[[Mapping[str, Any]], "bool | None"]

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$neq": operator.ne, "$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge,
}


def truth(expression: Mapping[str, Any], facts: Mapping[str, Any]) -> bool | None:
    """Whether a compiled condition holds for the facts; None when it depends on an unassigned fact."""
    ((key, operand),) = expression.items()
    if key == "$and":
        return every(truth(term, facts) for term in operand)
    if key == "$or":
        return some(truth(term, facts) for term in operand)
    if key in _COMPARISONS:
        ((name, value),) = operand.items()
        return _COMPARISONS[key](facts[name], value) if name in facts else None
    return facts[key] == operand if key in facts else None


def every(values: Iterable[bool | None]) -> bool | None:
    """Three-valued and: False if any is False, True if all are True, else unknown."""
    seen = list(values)
    return False if False in seen else (True if all(seen) else None)


def some(values: Iterable[bool | None]) -> bool | None:
    """Three-valued or: True if any is True, False if all are False, else unknown."""
    seen = list(values)
    return True if True in seen else (False if all(v is False for v in seen) else None)


def negation(value: bool | None) -> bool | None:
    """Three-valued not."""
    return None if value is None else not value


def tests(expression: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """Every (fact, value) pair a compiled condition compares."""
    ((key, operand),) = expression.items()
    if key in ("$and", "$or"):
        for term in operand:
            yield from tests(term)
    elif key in _COMPARISONS:
        yield from operand.items()
    else:
        yield key, operand


def domain(rules: Iterable[Rule]) -> dict[str, tuple[Any, ...]]:
    """For each fact the rules test, values that tell apart every test: both booleans, each
    text value mentioned plus OTHER, and each numeric threshold with its neighbours."""
    mentioned: dict[str, set[Any]] = {}
    for rule in rules:
        for name, value in tests(compile_condition(rule)):
            mentioned.setdefault(name, set()).add(value)
    values: dict[str, tuple[Any, ...]] = {}
    for name, seen in mentioned.items():
        kind = FACT_TYPES[name]
        if kind is bool:
            values[name] = (True, False)
        elif kind is str:
            values[name] = (*sorted(seen), OTHER)
        elif name == DAY_FACT:
            days = {day_number(from_day_number(n) + timedelta(days=step)) for n in seen for step in (-1, 0, 1)}
            values[name] = tuple(sorted(days))
        else:
            values[name] = tuple(sorted({n + step for n in seen for step in (-1, 0, 1)}))
    return values


def find(space: Mapping[str, Sequence[Any]], verdict: Verdict,
         fixed: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Facts (extending `fixed`, drawn from `space`) for which the verdict is True, or None if none exist.

    Facts the verdict does not need are left out, so a witness names only what matters.
    """
    names = sorted(set(space) - set(fixed or {}))

    def search(assignment: dict[str, Any], remaining: list[str]) -> dict[str, Any] | None:
        settled = verdict(assignment)
        if settled is not None or not remaining:
            return assignment if settled else None
        name, rest = remaining[0], remaining[1:]
        for value in space[name]:
            found = search({**assignment, name: value}, rest)
            if found is not None:
                return found
        return None

    witness = search(dict(fixed or {}), names)
    if witness is None:
        return None
    for name in names:
        shorter = {k: v for k, v in witness.items() if k != name}
        if name in witness and verdict(shorter):
            witness = shorter
    return witness


def describe(facts: Mapping[str, Any]) -> str:
    """Facts as `name=value` pairs, the day as a date, for a message."""
    shown = []
    for name, value in sorted(facts.items()):
        if name == DAY_FACT:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        shown.append(f"{name}={text}")
    return ", ".join(shown) or "any facts"

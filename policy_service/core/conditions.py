"""Evaluate a rule's `when` block in Python, condition by condition, to explain why a rule did not apply.

The engine decides; this reads the same `when` data to say which test failed and with what value.
A test (tests/test_conditions.py) checks on every fixture that both agree rule for rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .rulebook import Rule

_TESTS = {
    "eq": lambda actual, wanted: actual == wanted,
    "ne": lambda actual, wanted: actual != wanted,
    "lt": lambda actual, wanted: actual < wanted,
    "lte": lambda actual, wanted: actual <= wanted,
    "gt": lambda actual, wanted: actual > wanted,
    "gte": lambda actual, wanted: actual >= wanted,
    "in": lambda actual, wanted: actual in wanted,
    "not_in": lambda actual, wanted: actual not in wanted,
}


@dataclass(frozen=True)
class Condition:
    """One test of a rule against the facts: what it wanted, what the fact was, and whether it held."""

    fact: str
    test: str
    wanted: Any
    actual: Any
    held: bool


def holds(when: dict[str, Any], facts: dict[str, Any]) -> bool:
    """True when every test of a `when` block holds for the facts."""
    return all(c.held for c in check(when, facts))


def check(when: dict[str, Any], facts: dict[str, Any]) -> list[Condition]:
    """Every top-level test of a `when` block, evaluated against the facts (an any_of counts as one)."""
    results = []
    for name, test in when.items():
        if name == "any_of":
            held = any(holds(alternative, facts) for alternative in test)
            results.append(Condition("any_of", "any_of", test, None, held))
            continue
        operator, wanted = next(iter(test.items())) if isinstance(test, dict) else ("eq", test)
        actual = facts[name]
        results.append(Condition(name, operator, wanted, actual, _TESTS[operator](actual, wanted)))
    return results


@dataclass(frozen=True)
class NotApplied:
    """A rule in force at the send that did not apply, and the tests that failed."""

    rule: str
    title: str
    confidence: str
    failed: tuple[Condition, ...]


def why_not(rules: tuple[Rule, ...], fired: set[str], facts: dict[str, Any], day) -> tuple[NotApplied, ...]:
    """For every rule in force on the day that did not fire, the conditions that did not hold."""
    return tuple(
        NotApplied(rule.id, rule.title, rule.confidence, tuple(c for c in check(rule.when, facts) if not c.held))
        for rule in rules
        if rule.id not in fired and rule.in_force(day)
    )


def in_force_and_holds(rule: Rule, facts: dict[str, Any], day) -> bool:
    """True when the rule is in force on the day and its conditions hold: what the engine computes."""
    return rule.in_force(day) and holds(rule.when, facts)

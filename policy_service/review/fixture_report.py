"""Fixture results for people (a line each, a diff on failure) and for machines (JSON)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

from ..core.explanation import trace_lines
from .coverage import RuleCoverage
from .fixtures import FixtureResult, expected, observed


def headline(result: FixtureResult) -> str:
    """PASS or FAIL, the fixture's name, and the decision with the rules that determined it."""
    decision = result.decision
    rules = ", ".join(decision.determining_rules) or "no rule"
    return f"{'PASS' if result.passed else 'FAIL'} {result.fixture.name}: {decision.decision} determined by {rules}"


def failure(result: FixtureResult) -> list[str]:
    """Expected against actual as a unified diff, then every rule that fired with its reason."""
    wanted = _lines(expected(result.fixture.expect))
    seen = _lines(observed(result.fixture.expect, result.decision))
    # An invalid request or an evaluation error fails a fixture that expects nothing about it.
    unexpected = [m for m in result.mismatches if m.field.split(".")[0] not in result.fixture.expect]
    wanted += [_line(m.field, m.expected) for m in unexpected]
    seen += [_line(m.field, m.actual) for m in unexpected]
    diff = difflib.unified_diff(wanted, seen, "expected", "actual", n=max(len(wanted), len(seen)), lineterm="")
    lines = [f"    {line}" for line in diff if not line.startswith("@@")]
    lines.append("    rules that fired (* determining):")
    lines.extend(f"  {line}" for reason in result.decision.trace for line in trace_lines(reason))
    if not result.decision.trace:
        lines.append("      none")
    return lines


def text(results: Sequence[FixtureResult], coverage: RuleCoverage | None, *, per_rule: bool) -> list[str]:
    """The whole report: a headline per fixture, failures in detail, coverage (per rule if asked), a summary."""
    lines = []
    for result in results:
        lines.append(headline(result))
        if not result.passed:
            lines.extend(failure(result))
    if coverage is not None:
        lines.extend(coverage_lines(coverage) if per_rule else coverage_summary(coverage))
    lines.append(summary(results))
    return lines


def summary(results: Sequence[FixtureResult]) -> str:
    """How many fixtures ran, passed and failed."""
    failed = sum(not r.passed for r in results)
    return f"{len(results)} fixtures: {len(results) - failed} passed, {failed} failed"


def coverage_lines(coverage: RuleCoverage) -> list[str]:
    """Each rule with the fixtures that cover it, the rules never exercised, and the percentage; then each
    rate card with the fixtures it priced (cards are reported apart, outside the rule percentage)."""
    width = max((len(key) for key in (*coverage.covering, *coverage.cards)), default=0)
    lines = ["rule coverage (rule: fixtures in which it fired):"]
    lines.extend(_covering_lines(coverage.covering, width, "NEVER FIRED"))
    if coverage.cards:
        lines.append("rate cards (card: fixtures it priced; not counted in the rule coverage):")
        lines.extend(_covering_lines(coverage.cards, width, "PRICED NO FIXTURE"))
    return [*lines, *coverage_summary(coverage)]


def coverage_summary(coverage: RuleCoverage) -> list[str]:
    """The rule percentage over the rulebook's rules, then (if any) the rate cards no fixture priced."""
    lines = [f"rule coverage: {len(coverage.covered)}/{len(coverage.covering)} rules "
             f"({coverage.percent:.1f}%); never fired: {', '.join(coverage.uncovered) or 'none'}"]
    if coverage.cards:
        used = len(coverage.cards) - len(coverage.unused_cards)
        lines.append(f"rate cards: {used}/{len(coverage.cards)} priced a fixture; unused (reported, not counted "
                     f"in the rule coverage or --fail-under): {', '.join(coverage.unused_cards) or 'none'}")
    return lines


def _covering_lines(covering: dict[str, tuple[str, ...]], width: int, none: str) -> list[str]:
    return [f"  {key:<{width}}  {len(names)}: {', '.join(names)}" if names else f"  {key:<{width}}  {none}"
            for key, names in covering.items()]


def as_json(results: Sequence[FixtureResult], coverage: RuleCoverage | None) -> dict[str, Any]:
    """Every result (and the coverage, when measured) as one JSON-ready document."""
    failed = sum(not r.passed for r in results)
    document: dict[str, Any] = {
        "summary": {"total": len(results), "passed": len(results) - failed, "failed": failed},
        "rulebook_version": results[0].decision.rulebook_version if results else None,
        "fixtures": [
            {
                "name": r.fixture.name,
                "path": str(r.fixture.path),
                "passed": r.passed,
                "decision": r.decision.decision,
                "status": r.decision.status,
                "determining_rules": list(r.decision.determining_rules),
                "fired": list(r.fired),
                "mismatches": [{"field": m.field, "expected": m.expected, "actual": m.actual}
                               for m in r.mismatches],
            }
            for r in results
        ],
    }
    if coverage is not None:
        document["coverage"] = {
            "percent": round(coverage.percent, 2),
            "rules": {rule: list(names) for rule, names in coverage.covering.items()},
            "uncovered": list(coverage.uncovered),
            "rate_cards": {card: list(names) for card, names in coverage.cards.items()},
            "unused_rate_cards": list(coverage.unused_cards),
        }
    return document


def _lines(values: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in values.items():
        if isinstance(value, dict):
            lines.extend(_line(f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, list) and value:
            lines.extend(_line(key, item) for item in value)
        else:
            lines.append(_line(key, value))
    return lines


def _line(key: str, value: Any) -> str:
    return f"{key}: {json.dumps(value, default=str)}"

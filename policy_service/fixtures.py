"""Fixture histories with expected decisions: load them, replay them, compare outcomes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from .decision import Decision
from .engine import RulesEngine
from .evaluate import evaluate
from .rulebook import Rulebook
from .schemas import ChargeSchema, DecisionRequestSchema

FIXTURE_KEYS = {"description", "scenario", "request", "expect"}
EXPECT_KEYS = {
    "decision", "status", "required_message_type", "charge", "policy_version", "rules", "determining_rules",
    "error_codes", "not_rules",
}


class FixtureError(ValueError):
    """A fixture file is malformed; the message names the file."""


@dataclass(frozen=True)
class Fixture:
    """One history with the outcome a reviewer expects."""

    path: Path
    description: str
    request: dict[str, Any]
    expect: dict[str, Any]
    scenario: str | None = None

    @property
    def name(self) -> str:
        """The file name without .json, which reads as a sentence."""
        return self.path.stem


@dataclass(frozen=True)
class Mismatch:
    """One expected value the decision did not match."""

    field: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class FixtureResult:
    """The outcome of replaying one fixture."""

    fixture: Fixture
    decision: Decision
    mismatches: tuple[Mismatch, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.mismatches

    @property
    def fired(self) -> tuple[str, ...]:
        """Ids of every rule in the decision's trace."""
        return tuple(r.rule for r in self.decision.trace)


def load_fixture(path: str | Path) -> Fixture:
    """Read one fixture file, refusing unknown keys."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise FixtureError(f"{path}: cannot read fixture: {error}") from None
    if not isinstance(data, dict):
        raise FixtureError(f"{path}: a fixture is a JSON object")
    unknown = set(data) - FIXTURE_KEYS
    missing = {"description", "request", "expect"} - set(data)
    if unknown or missing:
        raise FixtureError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    expect_unknown = set(data["expect"]) - EXPECT_KEYS
    if expect_unknown:
        raise FixtureError(f"{path}: unknown expect keys {sorted(expect_unknown)}")
    return Fixture(path, data["description"], data["request"], data["expect"], data.get("scenario"))


def discover(paths: list[str | Path]) -> list[Fixture]:
    """Every fixture in the given files and folders (folders searched recursively), sorted by path."""
    files: set[Path] = set()
    for given in paths:
        given = Path(given)
        files |= set(given.rglob("*.json")) if given.is_dir() else {given}
    return [load_fixture(p) for p in sorted(files)]


def run_fixture(fixture: Fixture, *, rulebook: Rulebook, engine: RulesEngine) -> FixtureResult:
    """Replay a fixture's request and compare the decision with what it expects."""
    try:
        request = DecisionRequestSchema().load(fixture.request)
    except ValidationError as error:
        raise FixtureError(f"{fixture.path}: request is invalid: {error.messages}") from None
    decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"fixture:{fixture.name}")
    return FixtureResult(fixture, decision, tuple(compare(fixture.expect, decision)))


def compare(expect: dict[str, Any], decision: Decision) -> list[Mismatch]:
    """Every way the decision differs from what is expected (rule lists: expected ⊆ actual)."""
    mismatches = []
    for key in ("decision", "status", "required_message_type", "policy_version"):
        if key in expect and expect[key] != getattr(decision, key):
            mismatches.append(Mismatch(key, expect[key], getattr(decision, key)))
    if "charge" in expect:
        actual = ChargeSchema().dump(decision.charge) if decision.charge else None
        wanted = expect["charge"]
        if wanted is None or actual is None:
            if wanted != actual:
                mismatches.append(Mismatch("charge", wanted, actual))
        else:
            for key, value in wanted.items():
                if actual.get(key) != value:
                    mismatches.append(Mismatch(f"charge.{key}", value, actual.get(key)))
    fired = {r.rule for r in decision.trace}
    if "rules" in expect and not set(expect["rules"]) <= fired:
        mismatches.append(Mismatch("rules", sorted(expect["rules"]), sorted(fired)))
    if "not_rules" in expect and set(expect["not_rules"]) & fired:
        mismatches.append(Mismatch("not_rules", sorted(expect["not_rules"]), sorted(fired)))
    determining = set(decision.determining_rules)
    if "determining_rules" in expect and not set(expect["determining_rules"]) <= determining:
        mismatches.append(Mismatch("determining_rules", sorted(expect["determining_rules"]), sorted(determining)))
    if "error_codes" in expect and sorted(expect["error_codes"]) != sorted(decision.error_codes):
        mismatches.append(Mismatch("error_codes", sorted(expect["error_codes"]), sorted(decision.error_codes)))
    return mismatches

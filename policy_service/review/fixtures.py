"""Fixture histories with expected decisions: load them, replay them, compare outcomes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..contract.parsing import flatten_errors
from ..contract.schemas import CHARGE, DECISION_STATUSES, DECISIONS, REQUEST
from ..core.decision import Decision, fail_closed
from ..core.engine import RulesEngine
from ..core.evaluate import evaluate
from ..core.rulebook import Rulebook

SCALARS = ("decision", "status", "required_message_type", "policy_version")
RULE_LISTS = ("rules", "not_rules", "determining_rules")


class FixtureError(ValueError):
    """A fixture file is malformed; the message names the file."""


class ExpectSchema(Schema):
    """What a fixture expects of its decision: any of these keys, at least one (unknown keys refused)."""

    decision = fields.String(validate=validate.OneOf(DECISIONS))
    status = fields.String(validate=validate.OneOf(DECISION_STATUSES))
    required_message_type = fields.String(allow_none=True)
    charge = fields.Dict(allow_none=True, metadata={"description": "the charge's fields to compare (a subset)"})
    policy_version = fields.String(allow_none=True)
    rules = fields.List(fields.String(), metadata={"description": "rules that must fire"})
    not_rules = fields.List(fields.String(), metadata={"description": "rules that must not fire"})
    determining_rules = fields.List(fields.String())
    error_codes = fields.List(fields.Integer(strict=True))

    @validates_schema
    def names_something(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError(f"names nothing to check: give any of {', '.join(self.fields)}")


class FixtureSchema(Schema):
    """A fixture file: {description, scenario?, request, expect} (unknown keys refused)."""

    description = fields.String(required=True)
    scenario = fields.String(allow_none=True)
    request = fields.Dict(required=True, metadata={"description": "a POST /v1/decisions body"})
    expect = fields.Raw(required=True, metadata={"description": "ExpectSchema"})


# Checked with validate(), not load(): only the errors are wanted (a Fixture keeps the file's own JSON), and no
# marshmallow load runs while the pages read the fixtures (tests/web/test_hostile_input.py proves a hostile body
# reaches no load).
FIXTURE, EXPECT = FixtureSchema(), ExpectSchema()


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
    """Read one fixture file (FixtureSchema). Raises FixtureError naming the file and each wrong key's path."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: JSONDecodeError and UnicodeDecodeError
        raise FixtureError(f"{path}: cannot read fixture: {error}") from None
    if not isinstance(data, dict):
        raise FixtureError(f"{path}: a fixture is a JSON object")
    errors = FIXTURE.validate(data)
    if "expect" in data:
        expect = data["expect"]
        errors |= {"expect": EXPECT.validate(expect)} if isinstance(expect, dict) else \
            {"expect": ["must be a JSON object"]}
        if not errors["expect"]:
            del errors["expect"]
    if errors:
        raise FixtureError(f"{path}: {_worded(ValidationError(errors))}")
    return Fixture(path, data["description"], data["request"], data["expect"], data.get("scenario"))


def _worded(error: ValidationError, prefix: str = "") -> str:
    # flatten_errors already names a nested object's own error (marshmallow's "_schema") by the object's path
    # ("expect: must be a JSON object"): every key is shown as it names the field.
    return "; ".join(f"{prefix}{key}: {' '.join(messages)}" for key, messages in flatten_errors(error.messages).items())


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
        request = REQUEST.load(fixture.request)
    except ValidationError as error:
        raise FixtureError(f"{fixture.path}: the request is invalid: {_worded(error, 'request.')}") from None
    decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"fixture:{fixture.name}")
    mismatches = compare(fixture.expect, decision) + undefined(fixture.expect, rulebook)
    return FixtureResult(fixture, decision, tuple(mismatches))


def undefined(expect: dict[str, Any], rulebook: Rulebook) -> list[Mismatch]:
    """Rule ids the expectations name that no rule file defines (a misspelt id in not_rules would always hold)."""
    named = {rule_id for key in RULE_LISTS for rule_id in expect.get(key, ())}
    missing = sorted(named - set(rulebook.by_id))
    return [Mismatch("undefined_rule_ids", [], missing)] if missing else []


def run_fixtures(fixtures: Iterable[Fixture], *, rulebook: Rulebook, engine: RulesEngine) -> Iterator[FixtureResult]:
    """Replay fixtures in turn; one whose request is invalid fails (as a deny) instead of stopping the run."""
    for fixture in fixtures:
        try:
            yield run_fixture(fixture, rulebook=rulebook, engine=engine)
        except FixtureError as error:
            invalid = Mismatch("request", "a valid request", str(error))
            yield FixtureResult(fixture, fail_closed(error, rulebook.version), (invalid,))


def observed(expect: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """The decision seen through a fixture's expectations: for each expected key, what it would have to say."""
    fired = {r.rule for r in decision.trace}
    determining = set(decision.determining_rules)
    view: dict[str, Any] = {}
    for key, wanted in expect.items():
        if key in SCALARS:
            view[key] = getattr(decision, key)
        elif key == "charge":
            actual = CHARGE.dump(decision.charge) if decision.charge else None
            partial = wanted is not None and actual is not None
            view[key] = _narrow(actual, wanted) if partial else actual
        elif key == "rules":
            view[key] = [r for r in wanted if r in fired]
        elif key == "determining_rules":
            view[key] = [r for r in wanted if r in determining]
        elif key == "not_rules":
            view[key] = [r for r in wanted if r not in fired]
        elif key == "error_codes":
            view[key] = sorted(decision.error_codes)
    return view


def _narrow(actual: Any, wanted: Any) -> Any:
    # A subset check at every depth: `charge.price` may name only the amount and the tier number.
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return {k: _narrow(actual.get(k), v) for k, v in wanted.items()}
    return actual


def expected(expect: dict[str, Any]) -> dict[str, Any]:
    """A fixture's expectations in the same shape as `observed` (error codes in order)."""
    return {k: sorted(v) if k == "error_codes" else v for k, v in expect.items()}


def compare(expect: dict[str, Any], decision: Decision) -> list[Mismatch]:
    """Every way the decision differs from what is expected (rule lists: expected ⊆ actual)."""
    wanted, seen = expected(expect), observed(expect, decision)
    mismatches = []
    if "status" not in expect and decision.status == "error":
        # An evaluation error is never what a fixture means, even when it expects a deny.
        mismatches.append(Mismatch("status", "decided or not_applicable", decision.error or "error"))
    for key, value in wanted.items():
        actual = seen[key]
        if key == "charge" and isinstance(value, dict) and isinstance(actual, dict):
            mismatches.extend(Mismatch(f"charge.{k}", v, actual[k]) for k, v in value.items() if actual[k] != v)
        elif value != actual:
            mismatches.append(Mismatch(key, value, actual))
    return mismatches

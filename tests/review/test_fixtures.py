"""Every fixture history in fixtures/ replays to the decision it expects."""

import json

import pytest

from policy_service.core.decision import fail_closed
from policy_service.review.fixtures import (
    FixtureError,
    Mismatch,
    compare,
    discover,
    load_fixture,
    observed,
    run_fixture,
    run_fixtures,
)

from ..conftest import DATA_DIR, FIXTURES_DIR

FIXTURES = discover([FIXTURES_DIR])


def test_fixture_set_is_not_empty():
    """A run that finds no fixture must fail, not pass vacuously."""
    assert len(FIXTURES) >= 15


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_fixture(fixture, rulebook, engine):
    """The fixture's expected decision, type, charge and rule ids all hold."""
    result = run_fixture(fixture, rulebook=rulebook, engine=engine)
    assert result.decision.status != "error", result.decision.error
    assert result.passed, "\n".join(
        [f"{m.field}: expected {m.expected!r}, got {m.actual!r}" for m in result.mismatches]
        + [f"rules that fired: {', '.join(result.fired)}"]
    )


def test_observed_shows_the_decision_in_the_expectations_shape(rulebook, engine):
    """Rule lists keep only the expected ids that hold; a charge keeps only the expected keys."""
    wrong = load_fixture(DATA_DIR / "fixtures" / "freeform_at_exactly_24_hours_wrongly_expected_allowed.json")
    decision = run_fixture(wrong, rulebook=rulebook, engine=engine).decision
    assert observed(wrong.expect, decision) == {
        "decision": "deny", "required_message_type": "template", "charge": {"billable": False},
        "rules": ["CSW-2.closed"], "determining_rules": [],
    }


def test_compare_counts_an_evaluation_error_as_a_failure(rulebook):
    """A fixture expecting a deny still fails when the decision is an evaluation error."""
    errored = fail_closed(RuntimeError("boom"), rulebook.version)
    assert compare({"decision": "deny"}, errored) == [Mismatch("status", "decided or not_applicable", "boom")]


def test_run_fixtures_turns_an_invalid_request_into_a_failed_result(rulebook, engine, tmp_path):
    """An invalid request fails its fixture with the validation message instead of stopping the run."""
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"description": "broken", "request": {"send": {}}, "expect": {"decision": "deny"}}))
    (result,) = run_fixtures([load_fixture(path)], rulebook=rulebook, engine=engine)
    assert not result.passed
    assert result.mismatches[0].field == "request" and "Missing data" in result.mismatches[0].actual


def test_an_expected_rule_id_no_rule_file_defines_fails_the_fixture(rulebook, engine):
    """A misspelt id would make not_rules hold vacuously, so naming an undefined rule is a failure."""
    wrong = load_fixture(DATA_DIR / "fixtures" / "freeform_at_exactly_24_hours_wrongly_expected_allowed.json")
    result = run_fixture(wrong, rulebook=rulebook, engine=engine)
    assert Mismatch("undefined_rule_ids", [], ["NO-SUCH-RULE"]) in result.mismatches


@pytest.mark.parametrize("change, named", [
    ({"expect": 5}, "expect: must be a JSON object"),
    ({"expect": {}}, "expect: names nothing to check"),
    ({"expect": {"rules": "CSW-2.open"}}, "expect.rules: Not a valid list."),
    ({"expect": {"decision": "maybe"}}, "expect.decision: Must be one of: allow, deny."),
    ({"expect": {"error_codes": ["131047"]}}, "expect.error_codes.0: Not a valid integer."),
    ({"request": []}, "request: Not a valid mapping type."),
    ({"surprise": 1}, "surprise: Unknown field."),
])
def test_a_malformed_fixture_is_refused_naming_the_file_and_the_key(tmp_path, change, named):
    """`"expect": 5` was a TypeError traceback from `policy-service test`, and `"expect": {}` a fixture that
    checked nothing and passed: each wrong shape is a FixtureError naming the file and the key's path."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"description": "d", "request": {"send": {}}, "expect": {"decision": "deny"},
                                **change}))
    with pytest.raises(FixtureError) as refused:
        load_fixture(path)
    assert str(refused.value).startswith(f"{path}: ") and named in str(refused.value), str(refused.value)


def test_a_key_is_named_as_written_even_ending_in_schema(tmp_path, rulebook, engine):
    """An error is named by its key's path as flatten_errors gives it (an object's own error already by the object's
    path: "expect: must be a JSON object", above): a key written "surprise._schema" is named so, where a leftover
    removesuffix('._schema') named it "surprise", a key the fixture does not have; in the request too."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"description": "d", "request": {"send": {}}, "expect": {"decision": "deny"},
                                "surprise._schema": 1}))
    with pytest.raises(FixtureError) as refused:
        load_fixture(path)
    assert str(refused.value) == f"{path}: surprise._schema: Unknown field.", str(refused.value)
    path.write_text(json.dumps({"description": "d", "request": {"send": {}, "extra._schema": 1},
                                "expect": {"decision": "deny"}}))
    (result,) = run_fixtures([load_fixture(path)], rulebook=rulebook, engine=engine)
    assert "request.extra._schema: Unknown field." in result.mismatches[0].actual, result.mismatches[0].actual


def test_a_fixture_that_is_not_utf8_is_refused_naming_it(tmp_path):
    """A file that is not UTF-8 is a FixtureError naming it (the CLI said "an input file is not UTF-8")."""
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"description": "caf\xe9"}'.replace(b"\\xe9", b"\xe9"))
    with pytest.raises(FixtureError, match=f"^{path}: cannot read fixture"):
        load_fixture(path)

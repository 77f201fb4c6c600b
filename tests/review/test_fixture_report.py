"""Fixture results as headline lines, failure diffs, coverage lines and JSON."""

from policy_service.review import fixture_report
from policy_service.review.coverage import measure
from policy_service.review.fixtures import discover, run_fixtures

from ..conftest import DATA_DIR


def _results(rulebook, engine):
    return list(run_fixtures(discover([DATA_DIR / "fixtures"]), rulebook=rulebook, engine=engine))


def test_headline_reads_like_cedars_determined_by_line(rulebook, engine):
    """A headline names the outcome, the fixture, the decision and its determining rules (on a deny, no
    charge rule: the send is not delivered)."""
    passing, _ = _results(rulebook, engine)
    assert fixture_report.headline(passing) == (
        "PASS freeform_at_exactly_24_hours_is_denied: deny determined by CSW-2.closed, CSW-2.freeform-closed")


def test_failure_keeps_matching_lines_as_context(rulebook, engine):
    """The diff shows expectations that held unmarked and the ones that failed as -/+ pairs."""
    _, failing = _results(rulebook, engine)
    lines = fixture_report.failure(failing)
    assert lines[:2] == ["    --- expected", "    +++ actual"]
    assert '     rules: "CSW-2.closed"' in lines
    assert '    -required_message_type: "any"' in lines and '    +required_message_type: "template"' in lines


def test_coverage_lines_end_with_the_percentage(rulebook, engine):
    """The coverage report ends with covered/total, the percentage and the rules never fired."""
    coverage = measure(rulebook, _results(rulebook, engine))
    lines = fixture_report.coverage_lines(coverage)
    assert lines[-2].startswith(f"rule coverage: 3/{len(rulebook.rules)} rules (")
    assert ["TPL-1.approved", "NEVER", "FIRED"] in [line.split() for line in lines]
    # Rate cards follow on their own lines, every card of the rulebook, and are said to be outside the percentage.
    card = rulebook.rates.cards[0].id
    assert [card, "PRICED", "NO", "FIXTURE"] in [line.split() for line in lines]
    assert lines[-1].startswith(f"rate cards: 0/{len(rulebook.rates.cards)} priced a fixture; unused (reported, "
                                "not counted in the rule coverage or --fail-under): ")


def test_text_shows_per_rule_coverage_only_when_asked(rulebook, engine):
    """Without per_rule the report keeps only the coverage total before the summary line."""
    results = _results(rulebook, engine)
    coverage = measure(rulebook, results)
    short = fixture_report.text(results, coverage, per_rule=False)
    full = fixture_report.text(results, coverage, per_rule=True)
    assert short[-3].startswith("rule coverage: 3/") and short[-2].startswith("rate cards: 0/")
    assert short[-1] == "2 fixtures: 1 passed, 1 failed"
    assert len(full) == len(short) + len(rulebook.rules) + 1 + len(rulebook.rates.cards) + 1

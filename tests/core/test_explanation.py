"""A decision as text: outcome, charge, and each rule with confidence, reason and defaults."""

from policy_service.core.explanation import explain
from policy_service.review.fixtures import load_fixture, run_fixture

from ..conftest import FIXTURES_DIR


def _decide(name, rulebook, engine):
    return run_fixture(load_fixture(FIXTURES_DIR / "scenarios" / name), rulebook=rulebook, engine=engine).decision


def test_explain_marks_secondary_rules_and_determining_ones(rulebook, engine):
    """A secondary-source rule is shown as [S: secondary], and determining rules carry a star."""
    text = explain(_decide("20a_v4_freeform_beyond_the_free_allowance_is_charged.json", rulebook, engine))
    assert "decision:      allow (decided)" in text
    assert "  * PMP26-1.charged [S: secondary] charge: " in text
    assert "policy:        V4 " in text


def test_explain_shows_times_one_way_and_a_denied_send_as_not_charged(rulebook, engine):
    """Trace sentences print times as `2024-03-06 10:00` (the zone named once), and a deny is not charged."""
    text = explain(_decide("02_freeform_at_exactly_24_hours_is_denied.json", rulebook, engine))
    assert "charge:        not sent, not charged" in text
    assert "2024-03-06 10:00" in text and "T10:00" not in text
    assert "times:         in UTC+00:00, the send's offset" in text

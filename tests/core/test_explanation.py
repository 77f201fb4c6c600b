"""A decision as text: outcome, charge, and each rule with confidence, reason and defaults."""

from policy_service.core.explanation import describe_charge, explain
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


def test_describe_charge_names_the_conversation_a_charge_opens(rulebook, engine):
    """A charge that opens a conversation says until when, and names its rule."""
    decision = _decide("07_utility_template_beside_a_service_conversation_opens_utility.json", rulebook, engine)
    phrase = describe_charge(decision.charge)
    assert phrase.startswith("billable, CBP, utility, regular, opens a conversation until ")
    assert phrase.endswith("(rule CBP-3.opens)")
    assert describe_charge(None) == "none"

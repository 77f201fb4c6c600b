"""Rule coverage: every rule in rules/ fires in some fixture, and fixtures name only real rules."""

import pytest

from policy_service.review.coverage import measure
from policy_service.review.fixtures import discover, run_fixtures

from ..conftest import DATA_DIR, FIXTURES_DIR


@pytest.fixture(scope="module")
def suite_coverage(rulebook, engine):
    return measure(rulebook, run_fixtures(discover([FIXTURES_DIR]), rulebook=rulebook, engine=engine))


def test_measure_lists_covering_fixtures(rulebook, engine):
    """Each rule maps to the fixtures it fired in, in order; a rule that fired nowhere is uncovered."""
    results = list(run_fixtures(discover([DATA_DIR / "fixtures"]), rulebook=rulebook, engine=engine))
    coverage = measure(rulebook, results)
    names = tuple(r.fixture.name for r in results)
    assert coverage.covering["CSW-2.freeform-closed"] == names
    assert coverage.covering["TPL-1.approved"] == ()
    assert "TPL-1.approved" in coverage.uncovered and "CSW-2.closed" in coverage.covered
    assert coverage.percent == pytest.approx(100 * 3 / len(rulebook.rules))


def test_every_rule_is_exercised_by_a_fixture(suite_coverage):
    """No rule in rules/ goes without a fixture in which it fires (add one to fixtures/)."""
    assert not suite_coverage.uncovered, f"rules no fixture exercises: {', '.join(suite_coverage.uncovered)}"



def test_the_denominator_is_the_rulebooks_rules_and_every_card_has_a_line(rulebook, suite_coverage):
    """Only the rulebook's rules count (a rate card or the PRICE entry firing adds no rule, so the
    denominator never depends on the fixtures); every rate card of the rulebook is listed, priced or not."""
    assert list(suite_coverage.covering) == [rule.id for rule in rulebook.rules]
    assert list(suite_coverage.cards) == [card.id for card in rulebook.rates.cards]
    assert "PRICE" not in suite_coverage.covering and "PRICE" not in suite_coverage.cards
    used = {card for card, names in suite_coverage.cards.items() if names}
    assert used and set(suite_coverage.unused_cards) == set(suite_coverage.cards) - used

"""The Python reading of rule conditions agrees with the engine, rule for rule, on every fixture."""

from datetime import UTC, datetime

import pytest

from policy_service.contract.schemas import DecisionRequestSchema
from policy_service.core.conditions import check, holds, in_force_and_holds
from policy_service.core.evaluate import replay
from policy_service.core.facts import derive_facts
from policy_service.review.fixtures import discover

from ..conftest import FIXTURES_DIR

FIXTURES = discover([FIXTURES_DIR])


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_python_conditions_agree_with_the_engine(fixture, rulebook, engine):
    """For each fixture's send, the rules the engine fires are exactly those whose conditions hold in Python."""
    request = DecisionRequestSchema().load(fixture.request)
    facts = derive_facts(request.send, replay(request, rulebook, engine), request.context, rulebook)
    fired = set(engine.match(facts.engine))
    expected = {r.id for r in rulebook.rules if in_force_and_holds(r, facts.engine, facts.day)}
    assert fired == expected


def test_failed_conditions_name_the_fact_and_its_value():
    """A failing test reports the fact, the wanted value and the actual one."""
    (failed,) = [c for c in check({"csw_open": True, "seconds_until_csw_close": {"lt": 1800}},
                                  {"csw_open": True, "seconds_until_csw_close": 7200}) if not c.held]
    assert (failed.fact, failed.test, failed.wanted, failed.actual) == ("seconds_until_csw_close", "lt", 1800, 7200)


def test_any_of_holds_when_one_alternative_holds():
    """An any_of block holds when at least one of its alternatives holds."""
    when = {"any_of": [{"recipient_region": "IN"}, {"recipient_region": "EG", "waba_date": {"gte": 20250201}}]}
    assert holds(when, {"recipient_region": "EG", "waba_date": 20250301})
    assert not holds(when, {"recipient_region": "EG", "waba_date": 20250101})


def test_not_in_force_never_holds(rulebook):
    """A rule outside its effective dates does not apply whatever the facts."""
    rule = rulebook.rule("AUTH-2")
    facts = {"template_category": "authentication", "recipient_region": "IN"}
    assert in_force_and_holds(rule, facts, datetime(2024, 6, 30, tzinfo=UTC).date())
    assert not in_force_and_holds(rule, facts, datetime(2024, 7, 1, tzinfo=UTC).date())

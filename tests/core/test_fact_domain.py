"""Conditions evaluated in Python agree with the engine, and the domain search finds short witnesses."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policy_service.core.fact_domain import OTHER, domain, find, truth
from policy_service.core.facts import FACT_TYPES, from_day_number
from policy_service.core.rulebook import compile_condition, load_rulebook

from ..conftest import RULES_DIR

RULEBOOK = load_rulebook(RULES_DIR)
SPACE = domain(RULEBOOK.rules)
# Facts no rule tests still need a value for the engine; one of the right type stands for all.
FILLER = {bool: (False,), str: (OTHER,), int: (0,)}
ALL_FACTS = st.fixed_dictionaries(
    {name: st.sampled_from(SPACE.get(name) or FILLER[kind]) for name, kind in FACT_TYPES.items()}
)


@settings(max_examples=150, deadline=None)
@given(facts=ALL_FACTS)
def test_truth_agrees_with_the_engine(facts, engine):
    """For any facts drawn from the lint domain, the rules that hold in Python are the rules the engine fires."""
    in_python = {rule.id for rule in RULEBOOK.rules if truth(compile_condition(rule), facts)}
    # Facts no rule matches (days before 2022) are an engine edge case (durable_rules 2.0.28 crashes
    # deleting an unhandled state), outside what this test compares.
    assume(in_python)
    assert in_python == set(engine.match(facts)) & set(RULEBOOK.by_id)


def test_truth_is_unknown_only_while_it_depends_on_a_missing_fact():
    """An and-condition is False as soon as one test fails, and unknown while a needed fact is missing."""
    expression = {"$and": [{"csw_open": True}, {"$lt": {"seconds_until_csw_close": 1800}}]}
    assert truth(expression, {"csw_open": False}) is False
    assert truth(expression, {"csw_open": True}) is None
    assert truth(expression, {"csw_open": True, "seconds_until_csw_close": 1799}) is True


def test_domain_separates_every_test():
    """Booleans take both values, text adds an unmentioned value, thresholds get neighbours, days stay real."""
    assert SPACE["csw_open"] == (True, False)
    assert SPACE["template_status"][-1] == OTHER and "PAUSED" in SPACE["template_status"]
    assert {999, 1000, 1001} <= set(SPACE["service_messages_this_month"])
    assert all(from_day_number(day) for day in SPACE["waba_date"])


def test_find_returns_a_witness_with_only_the_facts_that_matter():
    """A witness names only the facts the verdict needs; an impossible verdict finds nothing."""
    rule = RULEBOOK.rule("CSW-2.freeform-closed")
    expression = compile_condition(rule)
    witness = find(domain([rule]), lambda facts: truth(expression, facts))
    # direct_send too: the rule excludes a Direct Send (DS-1) from 2026-07-31.
    assert set(witness) == {"csw_open", "send_is_template", "waba_date", "direct_send"}
    assert witness["csw_open"] is False and witness["send_is_template"] is False
    assert find({"csw_open": (True, False)}, lambda facts: truth({"$and": [
        {"csw_open": True}, {"$neq": {"csw_open": True}}]}, facts)) is None

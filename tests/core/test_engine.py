"""The durable_rules seam: every matching rule fires, states never leak, failures surface, and the direct
drain of fired actions agrees with durable's own Python host."""

import itertools
import threading
from datetime import UTC, date

import pytest
from durable import engine as durable
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.core.engine import RulesEngine
from policy_service.core.errors import EngineError
from policy_service.core.facts import FACT_TYPES, day_number


def facts(rulebook, **overrides):
    """A complete fact set for a free-form send inside the window on 2025-08-12."""
    from datetime import datetime

    from policy_service.core.facts import derive_facts, new_state
    from policy_service.core.messages import Message, Send

    at = datetime(2025, 8, 12, 12, tzinfo=UTC)
    state = new_state(rulebook)
    state.receive(Message("inbound", datetime(2025, 8, 12, 9, tzinfo=UTC), "text"))
    engine_facts = dict(derive_facts(Send(at, "+5511987654321", "text"), state, {}, rulebook).engine)
    engine_facts.update(overrides)
    return engine_facts


def test_facts_fire_every_matching_rule(rulebook, engine):
    """Asserting one fact fires every rule whose conditions hold, not only the first (events would)."""
    fired = engine.match(facts(rulebook))
    assert {"CSW-2.open", "PMP-4"} <= set(fired)


def test_no_match_is_an_empty_result_and_leaks_no_state(rulebook, engine):
    """Facts no rule matches (a date before any version) give no ids, 2,000 times: no crash, no state leak.

    Unhandled facts would leave states that segfault on delete; the engine's sentinel rule prevents it.
    """
    fact = facts(rulebook, waba_date=20200101)
    for _ in range(2000):
        assert engine.match(fact) == ()


def test_five_thousand_evaluations_outlive_the_1024_state_limit(rulebook, engine):
    """Each evaluation deletes its state, so 5,000 in a row never hit the 1,024 live-state limit."""
    fact = facts(rulebook)
    expected = engine.match(fact)
    for _ in range(5000):
        assert engine.match(fact) == expected


def test_eight_threads_at_once_do_not_crash(rulebook, engine):
    """The process-wide lock serialises engine calls: 8 threads x 300 evaluations, all correct."""
    fact = facts(rulebook)
    expected = engine.match(fact)
    results, errors = [], []

    def worker():
        try:
            for _ in range(300):
                results.append(engine.match(fact) == expected)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(results) == 2400 and all(results)


def test_an_action_error_surfaces_as_engine_error(rulebook):
    """durable_rules swallows action exceptions into the state; the seam raises them instead."""

    def explode(rule_id):
        raise RuntimeError(f"boom in {rule_id}")

    failing = RulesEngine(rulebook, action=explode)
    with pytest.raises(EngineError, match="boom"):
        failing.match(facts(rulebook))
    # The failed state was deleted: the same engine keeps answering (and failing) cleanly.
    with pytest.raises(EngineError):
        failing.match(facts(rulebook))


def test_each_engine_gets_its_own_ruleset_name(rulebook):
    """durable_rules cannot re-register a name, so a reload builds a new, uniquely named ruleset."""
    first, second = RulesEngine(rulebook), RulesEngine(rulebook)
    assert first.ruleset != second.ruleset
    assert first.match(facts(rulebook)) == second.match(facts(rulebook))


def test_engine_still_matches_after_unmatched_facts(rulebook):
    """After facts no rule matches, a matching fact fires its rules as before."""
    fresh = RulesEngine(rulebook)
    assert fresh.match(facts(rulebook, waba_date=19700101)) == ()
    assert "CSW-2.open" in fresh.match(facts(rulebook))


_REFERENCE_NUMBERS = itertools.count(1)

_TEXT = st.sampled_from(["none", "utility", "marketing", "authentication", "template", "text", "APPROVED",
                         "PAUSED", "US", "IN", "BR", "ZZ", "service"])
# Values fact derivation can produce; durable_rules itself segfaults on some implausible mixes of
# numbers (e.g. waba_date 5 with calling code 1999), with or without this module.
_NUMBERS = {
    "waba_date": st.dates(date(2021, 6, 1), date(2027, 6, 1)).map(day_number),
    "seconds_until_csw_close": st.integers(0, 86_400),
    "recipient_calling_code": st.sampled_from([0, 1, 44, 55, 91, 62]),
}
_VALUES = {bool: st.booleans(), str: _TEXT, int: st.integers(0, 2000)}
FACTS = st.fixed_dictionaries({name: _NUMBERS.get(name, _VALUES[kind]) for name, kind in FACT_TYPES.items()})


class _Unthreaded(durable.Host):
    """durable's Host without its timer threads, which would call the extension concurrently."""

    def _run(self):
        """Start no threads."""


class ReferenceEngine:
    """The rulebook run through durable's Host with Python actions, as durable documents it."""

    def __init__(self, rulebook):
        self.name = f"reference_{next(_REFERENCE_NUMBERS)}"
        self.fired = []
        self.host = _Unthreaded()
        self.sids = itertools.count(1)
        rules = {rule_id: {**compiled, "run": self._recorder(rule_id)}
                 for rule_id, compiled in rulebook.durable_ruleset().items()}
        # The same catch-all as the engine's, or a fact no rule matches would crash this host too.
        rules["every-fact"] = {"all": [{"m": {"$gte": {"waba_date": 0}}}], "run": lambda _closure: None}
        self.host.set_rulesets({self.name: rules})

    def _recorder(self, rule_id):
        return lambda _closure: self.fired.append(rule_id)

    def match(self, facts):
        sid, self.fired = str(next(self.sids)), []
        try:
            self.host.assert_fact(self.name, {**facts, "sid": sid})
        except durable.MessageNotHandledException:
            pass
        finally:
            self.host.delete_state(self.name, sid)
        return tuple(self.fired)


def test_direct_drain_fires_what_durables_host_fires(rulebook, engine):
    """On random facts the engine returns the same rule ids, in the same order, as durable's Host."""
    reference = ReferenceEngine(rulebook)

    @settings(max_examples=400, deadline=None)
    @given(FACTS)
    def agree(facts):
        assert engine.match(facts) == reference.match(facts)

    agree()


@settings(max_examples=400, deadline=None)
@given(FACTS)
def test_memoized_match_equals_match(engine, facts):
    """Facts the memo treats as alike (same place among the rules' numbers) fire the same rules."""
    assert engine.match_memoized(facts) == engine.match(facts)


@settings(max_examples=200, deadline=None)
@given(FACTS, st.randoms(use_true_random=False))
def test_memo_keys_facts_by_their_names_not_their_order(engine, facts, random):
    """The memo keys facts by their set of names (engine._key_maker): the same facts with their names in another
    order fire the same rules in durable_rules, so one memo entry may serve both; and facts with as many names but
    one name different never share the other's key (the last plan is not reused for them)."""
    names = list(facts)
    random.shuffle(names)
    shuffled = {name: facts[name] for name in names}
    assert engine.match(shuffled) == engine.match(facts)
    assert engine._indistinct(shuffled) == engine._indistinct(facts)
    renamed = dict(facts)
    renamed["not_a_fact"] = renamed.pop(names[0])
    assert engine._indistinct(renamed) != engine._indistinct(facts)
    assert engine.match_memoized(shuffled) == engine.match(facts)

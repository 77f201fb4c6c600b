"""The engine's direct drain of fired actions agrees with durable_rules' own Python host."""

import itertools
from datetime import date

from durable import engine as durable
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.facts import FACT_TYPES

_REFERENCE_NUMBERS = itertools.count(1)

_TEXT = st.sampled_from(["none", "utility", "marketing", "authentication", "template", "text", "APPROVED",
                         "PAUSED", "US", "IN", "BR", "ZZ", "service"])
# Values fact derivation can produce; durable_rules itself segfaults on some implausible mixes of
# numbers (e.g. waba_date 5 with calling code 1999), with or without this module.
_NUMBERS = {
    "waba_date": st.dates(date(2021, 6, 1), date(2027, 6, 1)).map(lambda d: d.year * 10000 + d.month * 100 + d.day),
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


def test_a_send_no_rule_covers_is_not_applicable_not_a_crash(engine):
    """A fact no rule matches (a send before 2022) returns no rules; durable alone segfaults on it."""
    facts = {name: {bool: False, str: "none", int: 0}[kind] for name, kind in FACT_TYPES.items()}
    assert engine.match({**facts, "waba_date": 20210601}) == ()


@settings(max_examples=400, deadline=None)
@given(FACTS)
def test_memoized_match_equals_match(engine, facts):
    """Facts the memo treats as alike (same place among the rules' numbers) fire the same rules."""
    assert engine.match_memoized(facts) == engine.match(facts)

"""The durable_rules seam survives facts that no rule matches."""

from policy_service.engine import RulesEngine


def test_unmatched_facts_neither_crash_nor_exhaust_states(rulebook, engine):
    """1,100 facts no rule matches (more than durable_rules' 1,024 states) each return no rule ids."""
    nothing_applies = {"waba_date": 19700101, "csw_open": None}
    assert all(engine.match(nothing_applies) == () for _ in range(1_100))


def test_engine_still_matches_after_unmatched_facts(rulebook):
    """After an unmatched fact, a matching fact fires its rules as before."""
    engine = RulesEngine(rulebook)
    assert engine.match({"waba_date": 19700101}) == ()
    assert "CSW-2.open" in engine.match({"waba_date": 20250812, "csw_open": True})

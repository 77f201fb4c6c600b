"""Combining: deny overrides allow, named resolution for type and charge, errors fail closed."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.core.decision import ERROR, NOT_APPLICABLE, _changes, combine, fail_closed, zone_decides
from policy_service.core.errors import EngineError
from policy_service.core.facts import derive_facts, new_state
from policy_service.core.messages import Message, Send

AT = datetime(2024, 3, 5, 12, tzinfo=UTC)


@pytest.fixture
def facts(rulebook):
    """Facts for a free-form send one hour after the user wrote (V2)."""
    state = new_state(rulebook)
    state.receive(Message("inbound", datetime(2024, 3, 5, 11, tzinfo=UTC), "text"))
    return derive_facts(Send(AT, "+5511987654321", "text"), state, {}, rulebook)


def test_deny_overrides_allow(rulebook, facts):
    """With an allowing and a denying rule, the decision is deny, determined by the denying rule."""
    decision = combine(("CSW-2.open", "CSW-2.freeform-closed"), facts, rulebook)
    assert decision.decision == "deny"
    assert "CSW-2.freeform-closed" in decision.determining_rules
    assert decision.error_codes == (131047,)


def test_allow_needs_an_allowing_rule(rulebook, facts):
    """An allowing rule and no deny gives allow."""
    assert combine(("CSW-2.open",), facts, rulebook).decision == "allow"


def test_no_rule_applied_is_a_distinct_deny(rulebook, facts):
    """No rule at all is deny with status not_applicable, not a rule's deny and never an allow."""
    decision = combine((), facts, rulebook)
    assert (decision.decision, decision.status) == ("deny", NOT_APPLICABLE)
    assert decision.required_message_type == "template"


def test_template_requirement_wins_over_any_type(rulebook, facts):
    """If one rule requires a template and another permits any type, a template is required."""
    decision = combine(("CSW-2.open", "CSW-2.closed"), facts, rulebook)
    assert decision.required_message_type == "template"


def test_lowest_priority_charge_rule_decides(rulebook, facts):
    """Of two applying charge rules the lower priority number decides; the other is marked overridden."""
    decision = combine(("CSW-2.open", "CBP-6.free-tier", "CBP-4.opens-service"), facts, rulebook)
    assert decision.charge.rule == "CBP-6.free-tier"
    overridden = next(r for r in decision.trace if r.rule == "CBP-4.opens-service")
    assert not overridden.determining and overridden.note.startswith("overridden by CBP-6.free-tier")


def test_a_denied_send_is_not_charged(rulebook, facts):
    """A denied send is not delivered: billable false, no type, no conversation, but the would-be charge is kept."""
    decision = combine(("CSW-2.freeform-closed", "CBP-4.opens-service"), facts, rulebook)
    assert (decision.charge.billable, decision.charge.type, decision.charge.opens_conversation) == (False, None, False)
    assert decision.classified_charge.billable is True


def test_unconfirmed_rules_say_so_in_their_sentence(rulebook, facts):
    """An [R] rule's reason begins with its confidence, never presented as certain."""
    decision = combine(("CSW-2.open", "TS-2.closing-soon"), facts, rulebook)
    reason = next(r for r in decision.trace if r.rule == "TS-2.closing-soon")
    assert reason.because.startswith("[R: unconfirmed]")


def test_engine_errors_fail_closed():
    """An evaluation failure is deny with status error and the error text, never an allow."""
    decision = fail_closed(EngineError("engine exploded"), "sha256:x")
    assert (decision.decision, decision.status, decision.error) == ("deny", ERROR, "engine exploded")


# Words a denied send's trace must never use about the send: it is not delivered, so not billed or counted.
UNTRUE_ON_DENY = ("is charged", "counts toward the messaging limit", "opens a conversation", "so this template opens")


def test_no_denied_fixture_has_a_determining_charge_rule_or_an_untrue_sentence(rulebook, engine):
    """Every fixture (and example) that is denied: no charge rule determines it, and no trace sentence or note
    says the send is charged, opens a conversation or counts toward the messaging limit."""
    from policy_service.contract.schemas import DecisionRequestSchema
    from policy_service.core.evaluate import evaluate
    from policy_service.review.fixtures import discover

    from ..conftest import FIXTURES_DIR

    denied = 0
    for fixture in discover([FIXTURES_DIR]):
        decision = evaluate(DecisionRequestSchema().load(fixture.request), rulebook=rulebook, engine=engine)
        if decision.decision != "deny":
            continue
        denied += 1
        for reason in decision.trace:
            rule = rulebook.rule(reason.rule)
            assert not (rule.charge and reason.determining), (fixture.name, reason.rule)
            for text in (reason.because, reason.note or ""):
                assert not any(words in text for words in UNTRUE_ON_DENY), (fixture.name, reason.rule, text)
    assert denied >= 10  # the check ran over real denies


def test_a_denied_send_outside_the_window_says_it_adds_nothing_to_the_messaging_limit(rulebook, engine):
    """LIM-1 on a deny uses its because_if_denied sentence; on an allow it keeps its own."""
    from policy_service.core.evaluate import evaluate
    from policy_service.core.messages import DecisionRequest, Template

    paused = Template("promo", "en", "marketing", "PAUSED")
    approved = Template("promo", "en", "marketing", "APPROVED")
    for template, words in ((paused, "adds nothing to the messaging limit"),
                            (approved, "counts toward the messaging limit")):
        decision = evaluate(DecisionRequest(Send(AT, "+5511987654321", "template", template)), rulebook=rulebook,
                            engine=engine)
        assert words in next(r for r in decision.trace if r.rule == "LIM-1").because


def test_a_defaulted_waba_time_zone_is_named_where_the_zone_decides(rulebook, engine):
    """With context.waba_timezone defaulted, a rule whose effective dates the send is within a day of (PMP-4,
    until 2026-09-30) names waba_timezone in its defaults; far from any boundary, or with the zone given,
    no rule does."""
    from policy_service.core.evaluate import evaluate
    from policy_service.core.messages import DecisionRequest

    def defaults(at, context):
        history = (Message("inbound", at.replace(hour=at.hour - 1), "text"),)
        decision = evaluate(DecisionRequest(Send(at, "+5511987654321", "text"), history, context),
                            rulebook=rulebook, engine=engine)
        return {r.rule: r.defaults for r in decision.trace}

    near = datetime(2026, 9, 30, 22, 30, tzinfo=UTC)
    assert "waba_timezone" in defaults(near, {})["PMP-4"]
    assert "waba_timezone" not in defaults(near, {"waba_timezone": "UTC"})["PMP-4"]
    assert all("waba_timezone" not in d for d in defaults(datetime(2026, 9, 10, 12, tzinfo=UTC), {}).values())


@settings(max_examples=400, deadline=None)
@given(start=st.dates(date(2024, 1, 1), date(2027, 12, 31)), length=st.one_of(st.none(), st.integers(0, 900)),
       at=st.datetimes(datetime(2023, 12, 1), datetime(2028, 2, 1), timezones=st.just(UTC)))
def test_zone_decides_as_a_day_by_day_check_does(rulebook, start, length, at):
    """zone_decides (interval arithmetic) agrees with checking each local day any WABA time zone can have."""
    rule = replace(rulebook.rules[0], effective_from=start,
                   effective_until=None if length is None else start + timedelta(days=length))
    first, last = (at + timedelta(hours=-12)).date(), (at + timedelta(hours=14)).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert zone_decides(rule, at) == (len({rule.in_force(day) for day in days}) > 1)
    # combine skips the check when no rule of the decision changes on a day of the span (_changes)
    assert zone_decides(rule, at) == any(first < day <= last for day in _changes(rule))


def test_readme_combining_section_says_what_combine_does():
    """README's combining section states that no charge rule is determining on a deny."""
    from ..conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    assert "no charge rule is determining on a deny" in readme


def test_the_compiled_trace_is_the_trace_reason_by_reason(rulebook, engine):
    """_trace's compiled builder (decision._builder: each entry's fields made once, its sentence filled by `%` from
    the words of text_maker) makes, for every fixture as given and moved 7 s, the same Reasons as Reason(...) with
    each step's sentence written by str.format_map from Facts.texts, as the branch for facts with sources does."""
    from msgspec.structs import astuple

    from policy_service.core.decision import Reason, _trace, _zone_days

    for name, facts, outcome in _fixture_outcomes(rulebook, engine):
        values, zone_days = facts.texts(outcome.named), _zone_days(outcome, facts)
        expected = tuple(Reason(*step.head, step.template.format_map(values) if step.named else step.sentence({}),
                                step.determining, step.defaults(facts.defaults, zone_days), step.note, {})
                         for step in outcome.ordered)
        assert _trace(outcome, facts) == expected, name
        assert [(type(reason), astuple(reason)) for reason in _trace(outcome, facts)] == \
            [(Reason, astuple(reason)) for reason in expected]


def _fixture_outcomes(rulebook, engine):
    """(fixture name, facts, outcome) as evaluate() reaches them, for every fixture as given and moved 7 s."""
    from policy_service.contract.schemas import DecisionRequestSchema
    from policy_service.core.decision import _outcome
    from policy_service.core.evaluate import late_delivery, replay
    from policy_service.review.fixtures import discover

    from ..conftest import FIXTURES_DIR

    for fixture in discover([FIXTURES_DIR]):
        for shift in (timedelta(0), timedelta(seconds=7)):
            request = DecisionRequestSchema().load(fixture.request).moved(shift)
            state = replay(request, rulebook, engine)
            facts = derive_facts(request.send, state, request.context, rulebook)
            facts, fired = late_delivery(request, state, facts, engine.match_memoized(facts.engine), rulebook, engine)
            yield fixture.name, facts, _outcome(fired, rulebook)


def test_a_reason_is_immutable_compared_by_every_field_and_hashed_without_its_sources():
    """Reason (a msgspec Struct, made in C) keeps what the frozen dataclass it replaced gave: equality over every
    field, sources included; a hash over every field but sources (a dict); no assignment; keyword and positional
    construction with the same defaults, each Reason with its own empty sources; records.replace copies it."""
    import dataclasses

    import pytest

    from policy_service.core.decision import Reason
    from policy_service.core.records import replace

    @dataclasses.dataclass(frozen=True)
    class Former:  # Reason as it was
        rule: str
        title: str
        effect: str
        citation: str
        confidence: str
        because: str
        determining: bool
        defaults: tuple[str, ...] = ()
        note: str | None = None
        sources: dict[str, str] = dataclasses.field(default_factory=dict, hash=False)

    fields = ("R1", "Title", "allow", "https://example.com", "C", "Because.", True, ("opted_in",), "a note")
    reason, former = Reason(*fields, {"opted_in": "stored"}), Former(*fields, {"opted_in": "stored"})
    assert hash(reason) == hash(former) == hash(Reason(*fields)) == hash(Reason(*fields, {"other": "x"}))
    assert reason == Reason(*fields, {"opted_in": "stored"}) != Reason(*fields)
    assert reason != replace(reason, because="Other.") and replace(reason, because="Because.") == reason
    assert Reason(rule="R", title="T", effect="deny", citation="c", confidence="S", because="b",
                  determining=False) == Reason("R", "T", "deny", "c", "S", "b", False, (), None, {})
    assert Reason(*fields).sources == {} and Reason(*fields).sources is not Reason(*fields).sources
    assert repr(reason) == repr(former).replace(Former.__qualname__, "Reason", 1)
    with pytest.raises(AttributeError):
        reason.because = "changed"  # type: ignore[misc]


def test_the_outcome_found_by_the_fired_tuple_is_the_one_its_rule_ids_give(rulebook):
    """decision._outcome finds an outcome first by the id of the fired-rules tuple (the engine memo hands out one
    tuple per set of fired rules): an equal tuple made anew gets the same outcome, a tuple of other rules never gets
    this one, and another rulebook object (of its own version) gets its own outcome, not the one remembered."""
    from dataclasses import replace as dataclass_replace

    from policy_service.core.decision import _outcome

    fired = ("CSW-2.open", "CSW-2.freeform-closed")
    first = _outcome(fired, rulebook)
    assert _outcome(fired, rulebook) is first
    assert _outcome(tuple(list(fired)), rulebook) is first  # equal, another object: found by its rule ids
    other = _outcome(("CSW-2.open",), rulebook)
    assert other is not first and other.decision == "allow" and first.decision == "deny"
    renamed = dataclass_replace(rulebook, version=rulebook.version + "-other")
    assert _outcome(fired, renamed) is not first
    assert _outcome(fired, rulebook) is first


def test_a_combined_decision_is_a_decision_as_its_constructor_makes_it(rulebook, facts):
    """combine makes a Decision (a msgspec Struct, made positionally) equal, field by field, to the one made by
    keywords from what combining decided; it refuses assignment and records.replace copies it with a change."""
    import pytest
    from msgspec.structs import asdict

    from policy_service.core.decision import Decision, _outcome
    from policy_service.core.records import replace

    for fired in (("CSW-2.open",), ("CSW-2.open", "CSW-2.freeform-closed"), ()):
        decision = combine(fired, facts, rulebook, decision_id="d")
        outcome = _outcome(fired, rulebook)
        assert type(decision) is Decision and decision == Decision(**asdict(decision))
        assert (decision.decision, decision.status, decision.required_message_type, decision.error_codes) == \
            (outcome.decision, outcome.status, outcome.required, outcome.error_codes)
        assert decision.decision_id == "d" and decision.rulebook_version == rulebook.version
        assert decision.facts is facts and decision.why_not == () and decision.error is None
        assert replace(decision, why_not=("x",)).why_not == ("x",) and replace(decision, why_not=()) == decision
        with pytest.raises(AttributeError):
            decision.decision = "allow"  # type: ignore[misc]


def test_a_charge_is_made_as_its_rule_says_and_is_immutable_and_compared_by_value(rulebook, engine):
    """_charge (a Charge, a msgspec Struct, made positionally from what is fixed per rule) equals the Charge made by
    keywords from the rule's effect and the facts, for every fixture's classified charge as given and moved 7 s;
    a Charge is equal and hashes equal to one made from the same fields, refuses assignment, and records.replace
    sets its price fields as the former copy of its fields did."""
    import pytest

    from policy_service.core.decision import Charge, _charge
    from policy_service.core.records import replace

    made = 0
    for name, facts, outcome in _fixture_outcomes(rulebook, engine):
        rule = outcome.charge_rule
        if rule is None:
            continue
        effect = rule.charge
        lasts_until = facts.at + effect.lasts if effect.opens and effect.lasts else None
        expected = Charge(
            billable=effect.billable, pricing_model=effect.pricing_model,
            category=effect.category if isinstance(effect.category, str) else effect.category_for(facts.engine),
            type=effect.type, opens_conversation=effect.opens in ("conversation", "free_entry_point_conversation"),
            conversation_expires_at=lasts_until if effect.opens else
            facts.expiries.get(effect.rides) if effect.rides else None,
            opens=effect.opens, lasts_until=lasts_until, closes_others=effect.closes_others, rule=rule.id,
            participants=facts.engine["group_participants"] if effect.per_participant else None)
        charge = _charge(rule, facts)
        assert type(charge) is Charge and charge == expected and hash(charge) == hash(expected), name
        made += 1
    assert made > 100
    priced = replace(charge, price=None, price_reason="no rate card", price_lines=())
    assert priced.price_reason == "no rate card" and replace(priced, price_reason=None) == charge
    with pytest.raises(AttributeError):
        charge.billable = not charge.billable  # type: ignore[misc]

"""Replay from the quiet point, with memoized past classifications, decides exactly as a full replay."""

import threading
from bisect import bisect_right
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import structs

from policy_service.contract.schemas import DecisionRequestSchema
from policy_service.core import decision as combining
from policy_service.core import evaluate as evaluation
from policy_service.core.chronology import by_delivery, timeline
from policy_service.core.decision import combine
from policy_service.core.evaluate import (
    _opened,
    evaluate,
    late_delivery,
    note_undelivered,
    priced,
    replay,
)
from policy_service.core.facts import derive_facts, new_state
from policy_service.core.messages import DecisionRequest, Message, Send, Template
from policy_service.core.records import replace
from policy_service.core.window import window_openers
from policy_service.review.fixtures import discover

from ..conftest import FIXTURES_DIR

FIXTURES = discover([FIXTURES_DIR])
START = datetime(2022, 1, 20, tzinfo=UTC)


def full_replay(request, rulebook, engine):
    """The replay as first written: every delivered send classified by the engine, none skipped."""
    state = new_state(rulebook)
    for index, message in timeline(by_delivery(request.history), request.send.at):
        if message.direction == "inbound":
            state.receive(message)
        elif message.business_app:  # a WhatsApp Business app reply: answers the user, classified as nothing
            state.deliver(None, closes_others=False)
        elif message.delivery_time is not None:
            past = Send(message.at, request.send.to, message.type, message.template)
            facts = derive_facts(past, state, request.context, rulebook)
            classified = combine(engine.match(facts.engine), facts, rulebook, explain=False).classified_charge
            state.deliver(_opened(classified, message, index),
                          closes_others=bool(classified and classified.closes_others))
    note_undelivered(state, request, rulebook)
    state.marketing_recent = all_marketing_delivered_recently(request.history, request.send.at, rulebook)
    return state


def all_marketing_delivered_recently(history, at, rulebook):
    """marketing_delivered_recently as first written: every message looked at, the inbound always sorted."""
    period = rulebook.parameter("marketing_recent_period")
    window = rulebook.parameter("customer_service_window")
    opens = window_openers(rulebook).opens  # a reaction never opens a window, a call only from CSW-8's day
    inbound = sorted(m.at for m in history if m.direction == "inbound" and opens(m.type, m.at) and m.at <= at)
    count = 0
    for message in history:
        delivered = message.delivery_time if message.direction == "outbound" else None
        if message.template is None or message.template.category != "marketing" or delivered is None:
            continue
        if at - period <= delivered < at:
            last_in = bisect_right(inbound, delivered)
            count += not (last_in and delivered < inbound[last_in - 1] + window)
    return count


def full_evaluate(request, rulebook, engine):
    """evaluate() with the full replay (the charge priced from the same rate cards)."""
    state = full_replay(request, rulebook, engine)
    facts = derive_facts(request.send, state, request.context, rulebook)
    facts, fired = late_delivery(request, state, facts, engine.match(facts.engine), rulebook, engine)
    return replace(priced(combine(fired, facts, rulebook), request, rulebook), decision_id="same")


def fast_evaluate(request, rulebook, engine):
    """evaluate() as shipped."""
    return evaluate(request, rulebook=rulebook, engine=engine, decision_id="same")


def test_fixtures_decide_identically(rulebook, engine):
    """Every fixture gets the same decision, charge, facts and trace from both replays."""
    for fixture in FIXTURES:
        request = DecisionRequestSchema().load(fixture.request)
        assert fast_evaluate(request, rulebook, engine) == full_evaluate(request, rulebook, engine), fixture.name


_CATEGORIES = st.sampled_from(["utility", "marketing", "authentication"])
_TEMPLATE = st.builds(Template, name=st.just("t"), language=st.just("en"), category=_CATEGORIES,
                      status=st.sampled_from(["APPROVED", "APPROVED", "PAUSED"]),
                      # Meta's message_send_ttl_seconds: none, -1 (30 days), minutes to beyond the 30-day default
                      ttl_seconds=st.one_of(st.none(), st.just(-1), st.integers(30, 3600), st.integers(1, 60 * 86400)))
# Gaps from simultaneous to well past the longest (72 h) lifetime, so histories both have and lack quiet points.
_GAP = st.one_of(st.integers(0, 3 * 3600), st.integers(20 * 3600, 26 * 3600), st.integers(70 * 3600, 200 * 3600),
                 st.integers(0, 40 * 86400))
_INBOUND = st.fixed_dictionaries({
    "direction": st.just("inbound"),
    "type": st.sampled_from(["text", "text", "reaction", "image", "call"]),
    "referral": st.one_of(st.none(), st.just({"source_type": "ad"})),
})
_OUTBOUND = st.fixed_dictionaries({
    "direction": st.just("outbound"),
    "type": st.sampled_from(["template", "template", "text"]),
    "status": st.sampled_from(["delivered", "delivered", "read", "played", "failed", "sent"]),
    "template": _TEMPLATE,
    # Seconds from sending to delivery (a delivered time given only for delivered statuses).
    "delay": st.one_of(st.none(), st.integers(0, 12 * 3600)),
})
_EVENTS = st.lists(st.tuples(_GAP, st.one_of(_INBOUND, _OUTBOUND)), min_size=1, max_size=60)


def _history(events, start):
    at, history = start, []
    for gap, fields in events:
        at += timedelta(seconds=gap)
        fields = dict(fields)
        if fields["type"] != "template":
            fields.pop("template", None)
        delay = fields.pop("delay", None)
        if delay is not None and fields["status"] in ("delivered", "read", "played"):
            fields["delivered_at"] = at + timedelta(seconds=delay)
        history.append(Message(at=at, **fields))
    return tuple(history), at


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_EVENTS, start_days=st.integers(0, 5 * 365), tail=st.integers(0, 100 * 3600),
       send=st.tuples(st.sampled_from(["template", "text"]), _TEMPLATE), shuffle=st.randoms(use_true_random=False))
def test_random_long_histories_decide_identically(rulebook, engine, events, start_days, tail, send, shuffle):
    """On random histories across all policy versions, in order or shuffled, both replays give equal decisions."""
    in_order, last = _history(events, START + timedelta(days=start_days))
    shuffled = list(in_order)
    shuffle.shuffle(shuffled)
    kind, template = send
    proposed = Send(last + timedelta(seconds=tail), "+14155550123", kind, template if kind == "template" else None)
    for history in (in_order, tuple(shuffled)):  # the in-order fast path and the sorting path
        request = DecisionRequest(proposed, history, {})
        expected = full_evaluate(request, rulebook, engine)
        assert fast_evaluate(request, rulebook, engine) == expected
        with every_history_bisected():
            assert fast_evaluate(request, rulebook, engine) == expected


def _state_fields(state):
    """A history state's fields, its ledger as the periods opened (a Ledger compares by identity)."""
    return {**structs.asdict(state), "ledger": state.ledger.periods}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(st.tuples(_GAP, _INBOUND), min_size=1, max_size=20), start_days=st.integers(0, 5 * 365),
       tail=st.integers(-30 * 3600, 100 * 3600), send=st.tuples(st.sampled_from(["template", "text"]), _TEMPLATE),
       shuffle=st.randoms(use_true_random=False))
def test_histories_of_only_the_users_messages_replay_as_the_full_replay(rulebook, engine, events, start_days, tail,
                                                                         send, shuffle):
    """A history with no outbound message takes replay's shortcut (the user's messages received in time order, up
    to the send): the same state as the full replay, in order or shuffled, with the send before, among or after
    them, and the same decision."""
    in_order, last = _history(events, START + timedelta(days=start_days))
    shuffled = list(in_order)
    shuffle.shuffle(shuffled)
    kind, template = send
    proposed = Send(last + timedelta(seconds=tail), "+14155550123", kind, template if kind == "template" else None)
    for history in (in_order, tuple(shuffled)):
        request = DecisionRequest(proposed, history, {})
        assert _state_fields(replay(request, rulebook, engine)) == _state_fields(full_replay(request, rulebook, engine))
        assert fast_evaluate(request, rulebook, engine) == full_evaluate(request, rulebook, engine)


@contextmanager
def every_history_bisected():
    """Replay bisects a history in order whatever its length (by default only a long one)."""
    short, evaluation._SHORT_HISTORY = evaluation._SHORT_HISTORY, 0
    try:
        yield
    finally:
        evaluation._SHORT_HISTORY = short


def test_without_a_quiet_gap_the_oldest_send_still_decides(rulebook, engine):
    """Why a fixed look-back is unsound: utility templates 23 h apart chain conversations back to the first."""
    first = datetime(2024, 3, 1, 9, tzinfo=UTC)
    utility = Template("t", "en", "utility")
    sends = [Message("outbound", first + timedelta(hours=23 * k), "template", utility) for k in range(40)]
    proposed = Send(first + timedelta(hours=23 * 40), "+14155550123", "template", utility)
    with_first = full_evaluate(DecisionRequest(proposed, tuple(sends)), rulebook, engine)
    without_first = full_evaluate(DecisionRequest(proposed, tuple(sends[1:])), rulebook, engine)
    assert with_first.charge.opens_conversation != without_first.charge.opens_conversation
    assert fast_evaluate(DecisionRequest(proposed, tuple(sends)), rulebook, engine) == with_first


def test_threads_sharing_the_caches_decide_as_one_thread_does(rulebook, engine):
    """Eight threads evaluating the fixtures at once, caches full and cleared, match a single thread."""
    requests = [DecisionRequestSchema().load(f.request) for f in FIXTURES]
    expected = [fast_evaluate(r, rulebook, engine) for r in requests]
    failures = []

    def work():
        for _ in range(20):
            for request, wanted in zip(requests, expected, strict=False):
                if fast_evaluate(request, rulebook, engine) != wanted:
                    failures.append(request)

    size = combining._CACHE_SIZE
    combining._CACHE_SIZE = 3  # force clears while other threads read
    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        combining._CACHE_SIZE = size
    assert not failures

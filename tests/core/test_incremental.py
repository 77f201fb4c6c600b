"""IncrementalReplay gives, call by call, exactly the state replay() gives each prefix of a history on its own.

Random histories (the strategies of test_replay_equivalence: inbound with referrals and window-ignored types,
templates of each category with their TTLs, delivered soon or late, undelivered and failed sends, gaps from none to
past the longest period lifetime): each delivered send replayed at its delivery after the messages before it, as
reconciliation asks (deliveries out of send order included), and arbitrary calls (ends going back, sends before
events already walked, histories out of time order) that take the slower paths.
"""

from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from policy_service.core.evaluate import evaluate, replay
from policy_service.core.incremental import IncrementalReplay
from policy_service.core.messages import DecisionRequest, Message, Send

from .test_replay_equivalence import _EVENTS, _INBOUND, _OUTBOUND, START, _history, _state_fields

TO = "+14155550123"
# Runs of sends minutes to a day apart, delivered up to five days late: a late delivery passes many later sends,
# and may come a longest period lifetime (72 h) after the one before it (a quiet point among unsettled events).
_LATE = st.builds(lambda fields, delay: {**fields, "delay": delay}, _OUTBOUND,
                  st.one_of(st.none(), st.integers(0, 600), st.integers(0, 86400), st.integers(3 * 86400, 5 * 86400)))
_DENSE = st.lists(st.tuples(st.one_of(st.integers(0, 900), st.integers(0, 86400)), st.one_of(_INBOUND, _LATE, _LATE)),
                  min_size=1, max_size=60)


def oracle(history, end, at, rulebook, engine):
    """The state as reconciliation replayed it before: replay() of the prefix on its own."""
    return replay(DecisionRequest(Send(at, TO, "text"), history[:end]), rulebook, engine)


def stored_order(history):
    """The history as the store reads it: by send time, then by arrival (here: the order given)."""
    return tuple(sorted(history, key=lambda m: m.at))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.one_of(_EVENTS, _DENSE), start_days=st.integers(0, 5 * 365))
def test_each_delivered_send_at_its_delivery_replays_as_on_its_own(rulebook, engine, events, start_days):
    """Reconciliation's calls: every delivered send, oldest sent first, at its delivery after the messages stored
    before it; the incremental state equals replay()'s field by field, and so does the decision made on it."""
    history, _ = _history(events, START + timedelta(days=start_days))
    history = stored_order(history)
    replays = IncrementalReplay(history, TO, rulebook, engine)
    late = 0
    for end, message in enumerate(history):
        delivered = message.delivery_time
        if message.direction != "outbound" or delivered is None:
            continue
        late += any(m.delivery_time is not None and m.delivery_time > delivered for m in history[:end]
                    if m.direction == "outbound")
        state = replays.state(end, delivered)
        expected = oracle(history, end, delivered, rulebook, engine)
        assert _state_fields(state) == _state_fields(expected), end
        request = DecisionRequest(Send(delivered, TO, "template", message.template) if message.template else
                                  Send(delivered, TO, "text"), history[:end])
        assert evaluate(request, rulebook=rulebook, engine=engine, decision_id="same", replayed=state) == \
            evaluate(request, rulebook=rulebook, engine=engine, decision_id="same")
    event("a delivery after a later send's" if late else "deliveries in send order")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.one_of(_EVENTS, _DENSE), start_days=st.integers(0, 5 * 365), shuffle=st.randoms(),
       calls=st.lists(st.tuples(st.floats(0, 1), st.integers(-3 * 86400, 5 * 86400)), min_size=1, max_size=12))
def test_any_series_of_calls_replays_as_each_on_its_own(rulebook, engine, events, start_days, shuffle, calls):
    """Ends in any order and sends at any time (before the history's messages, among them, after them), on the
    history in time order or shuffled: each state equals replay()'s."""
    in_order, _ = _history(events, START + timedelta(days=start_days))
    shuffled = list(in_order)
    shuffle.shuffle(shuffled)
    for history in (stored_order(in_order), tuple(shuffled)):
        replays = IncrementalReplay(history, TO, rulebook, engine)
        for share, offset in calls:
            end = round(share * len(history))
            at = (history[end - 1].at if end else START) + timedelta(seconds=offset)
            assert _state_fields(replays.state(end, at)) == _state_fields(oracle(history, end, at, rulebook, engine))


def test_a_busy_contact_is_classified_about_once_per_send_not_once_per_pair(rulebook, engine, monkeypatch):
    """300 utility templates a minute apart, each delivered 0-9 minutes late (out of send order; never a quiet
    point): replay() per send classifies every past send again (N²/2 in all); the incremental replay each settled
    send once, and per call only the few delivered after the next send was sent."""
    from policy_service.core import evaluate as evaluation

    history = stored_order(
        Message("outbound", START + timedelta(minutes=n), "template", None, "delivered",
                delivered_at=START + timedelta(minutes=n + n * 7 % 10)) for n in range(300))
    calls = {"classified": 0}
    classify = evaluation._classify

    def counted(*args, **kwargs):
        calls["classified"] += 1
        return classify(*args, **kwargs)

    monkeypatch.setattr(evaluation, "_classify", counted)
    replays = IncrementalReplay(history, TO, rulebook, engine)
    for end, message in enumerate(history):
        replays.state(end, message.delivered_at)
    incremental, calls["classified"] = calls["classified"], 0
    for end, message in enumerate(history):
        oracle(history, end, message.delivered_at, rulebook, engine)
    assert calls["classified"] > 40_000 and incremental <= 12 * len(history), (incremental, calls)

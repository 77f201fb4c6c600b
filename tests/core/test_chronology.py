"""core.chronology.carried_before keeps what the state needs from before the quiet point, dated types included."""

from datetime import UTC, datetime, timedelta

from policy_service.core.chronology import carried_before
from policy_service.core.facts import new_state
from policy_service.core.messages import Message


def test_a_call_before_calls_counted_is_carried_as_uncounted(rulebook):
    """A call before window_inbound_types_counted_from's day is the last uncounted inbound, so the earlier text
    (the last counted one) is carried too; a call after the start is the last counted one and carries alone."""
    start = rulebook.parameter("window_inbound_types_counted_from")["call"]
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    text = Message("inbound", midnight - timedelta(days=2), "text")
    early_call = Message("inbound", midnight - timedelta(hours=1), "call")
    history = (text, early_call, Message("inbound", midnight + timedelta(days=5), "text"))
    events = list(enumerate(history))
    assert carried_before(events, 2, new_state(rulebook), history) == events[:2]
    late_call = Message("inbound", midnight + timedelta(hours=1), "call")
    history = (text, late_call, Message("inbound", midnight + timedelta(days=5), "text"))
    events = list(enumerate(history))
    assert carried_before(events, 2, new_state(rulebook), history) == events[1:2]

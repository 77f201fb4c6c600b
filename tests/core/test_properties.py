"""Evaluation of generated requests is deterministic, blind to history order, and never allows free-form off-window."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.contract.schemas import DecisionRequestSchema
from policy_service.core.evaluate import evaluate

DAY_MINUTES = 24 * 60
NUMBERS = ("+5511987654321", "+14155550100", "+919876543210", "+447700900123", "+6281234567890")
FREE_FORM = ("text", "image", "document", "interactive", "location")
INBOUND = ("text", "image", "button", "reaction", "system", "request_welcome")
PROPERTY_SETTINGS = settings(max_examples=120, deadline=None)

templates = st.fixed_dictionaries({
    "name": st.sampled_from(("order_update", "welcome_offer", "otp_code")),
    "language": st.just("en"),
    "category": st.sampled_from(("marketing", "utility", "authentication")),
    "status": st.sampled_from(("APPROVED", "APPROVED", "PAUSED", "REJECTED")),
})
# Histories reach back a few days, and the service accepts times from 2000-01-01 on.
send_times = st.datetimes(min_value=datetime(2000, 2, 1), max_value=datetime(2026, 12, 31),
                          timezones=st.just(UTC))
contexts = st.fixed_dictionaries({}, optional={
    "opted_in": st.booleans(),
    "marketing_opt_out": st.booleans(),
    "business_region": st.sampled_from(("BR", "US", "IN", "DE")),
    "waba_timezone": st.sampled_from(("UTC", "America/Sao_Paulo", "Asia/Kolkata")),
})


@st.composite
def messages(draw, minutes_before: int, *, earliest_inbound: int = 0):
    """One history message `minutes_before` the send; inbound ones no later than `earliest_inbound` minutes before."""
    direction = "inbound" if minutes_before >= earliest_inbound and draw(st.booleans()) else "outbound"
    message = {"direction": direction, "minutes_before": minutes_before}
    if direction == "inbound":
        message["type"] = draw(st.sampled_from(INBOUND))
    elif draw(st.booleans()):
        message.update(type="template", template=draw(templates))
    else:
        message["type"] = draw(st.sampled_from(FREE_FORM))
    if direction == "outbound":
        message["status"] = draw(st.sampled_from(("delivered", "read", "failed")))
    return message


@st.composite
def requests(draw, *, send_type=None, earliest_inbound: int = 0):
    """A valid request: a send, up to 12 history messages at distinct times in the 10 days before it, a context."""
    at = draw(send_times)
    kind = send_type or draw(st.sampled_from(("template", *FREE_FORM)))
    send = {"at": at.isoformat(), "to": draw(st.sampled_from(NUMBERS)), "type": kind}
    if kind == "template":
        send["template"] = draw(templates)
    offsets = draw(st.lists(st.integers(0, 10 * DAY_MINUTES), max_size=12, unique=True))
    history = []
    for offset in offsets:
        message = draw(messages(offset, earliest_inbound=earliest_inbound))
        message["at"] = (at - timedelta(minutes=message.pop("minutes_before"))).isoformat()
        history.append(message)
    return {"send": send, "history": history, "context": draw(contexts)}


def decide(raw, rulebook, engine):
    return evaluate(DecisionRequestSchema().load(raw), rulebook=rulebook, engine=engine)


def outcome(decision):
    """Everything a client acts on, and the trace's rule ids; not the per-call decision_id."""
    return (decision.decision, decision.status, decision.required_message_type, decision.charge,
            decision.policy_version, decision.determining_rules, decision.error_codes,
            tuple(reason.rule for reason in decision.trace))


@PROPERTY_SETTINGS
@given(raw=requests())
def test_same_request_same_decision(raw, rulebook, engine):
    """Deciding the same request twice gives the same decision, charge, trace and facts."""
    first, second = decide(raw, rulebook, engine), decide(raw, rulebook, engine)
    assert first.status != "error", first.error
    assert outcome(first) == outcome(second)
    assert first.facts == second.facts
    assert first.decision_id != second.decision_id


@PROPERTY_SETTINGS
@given(data=st.data(), raw=requests())
def test_history_order_does_not_matter(data, raw, rulebook, engine):
    """Shuffling the history (times are distinct) leaves the decision, charge and trace unchanged."""
    shuffled = {**raw, "history": data.draw(st.permutations(raw["history"]))}
    assert outcome(decide(shuffled, rulebook, engine)) == outcome(decide(raw, rulebook, engine))


@PROPERTY_SETTINGS
@given(raw=st.sampled_from(FREE_FORM).flatmap(lambda kind: requests(send_type=kind, earliest_inbound=DAY_MINUTES)))
def test_free_form_send_outside_the_window_is_never_allowed(raw, rulebook, engine):
    """With the user's last message 24 hours or more before the send (or none), a non-template send is denied."""
    decision = decide(raw, rulebook, engine)
    assert decision.decision == "deny"
    assert decision.required_message_type == "template"

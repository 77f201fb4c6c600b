"""contract.fastload and the request schema that uses it: on any request, valid or not, the same DecisionRequest
or the same marshmallow errors as marshmallow alone (issue 25 item 2)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from policy_service.contract import fastload
from policy_service.contract.schemas import INBOUND_ONLY_TYPES, MESSAGE_TYPES, REQUEST

_TIMES = st.sampled_from(["2025-08-12T09:00:00+00:00", "2025-08-12T10:30:00.5+05:30", "2025-08-12T09:00:00Z",
                          "2025-08-12T09:00:00", "1999-12-31T23:00:00+00:00", "3000-01-01T00:00:00+00:00",
                          "2025-08-12", "yesterday", "2025-08-12T08:00:00-01:00", ""]) | st.integers() | st.none()
_TEXTS = st.sampled_from(["", "x", "e", "en", "a" * 513, "wamid.1"]) | st.none() | st.integers() | st.booleans()
_TEMPLATE = st.fixed_dictionaries({}, optional={
    "name": _TEXTS, "language": _TEXTS, "category": st.sampled_from(["utility", "marketing", "service", None]),
    "status": st.sampled_from(["APPROVED", "PAUSED", "approved", None]), "otp_button": st.sampled_from([True, 1, None]),
    "message_send_ttl_seconds": st.sampled_from([-1, 29, 30, 2592000, 2592001, True, 60.0, "60"]),
    "extra": st.just(1)}) | st.none() | st.just([])
_REFERRAL = st.dictionaries(st.sampled_from(["source_type", "source_id", "body", "ctwa_clid", "welcome_message",
                                             "unknown"]),
                            st.sampled_from(["ad", "post", "story", "1234567", 5, None, {"text": "hi"}]),
                            max_size=4) | st.none() | st.just("ad")
_MESSAGE = st.fixed_dictionaries({}, optional={
    "direction": st.sampled_from(["inbound", "outbound", "sideways", None]),
    "at": _TIMES,
    "type": st.sampled_from([*MESSAGE_TYPES, *INBOUND_ONLY_TYPES, "unknown", "fax", None]),
    "template": _TEMPLATE, "status": st.sampled_from(["delivered", "read", "failed", "sent", "nope", None]),
    "delivered_at": _TIMES, "referral": _REFERRAL, "id": _TEXTS, "extra": st.just(True)}) | st.none() | st.just(1)
_VALID_INBOUND = st.fixed_dictionaries({"direction": st.just("inbound"), "at": _TIMES.filter(
    lambda t: isinstance(t, str) and t[:2] == "20" and len(t) > 19), "type": st.sampled_from(["text", "call"])})
_VALID_OUTBOUND = st.fixed_dictionaries({"direction": st.just("outbound"), "at": st.just("2025-08-12T09:00:00+00:00"),
                                         "type": st.just("template"), "template": st.just({
                                             "name": "order_update", "language": "en", "category": "utility"})},
                                        optional={"status": st.sampled_from(["delivered", "sent", "failed"]),
                                                  "delivered_at": st.just("2025-08-12T09:00:05+00:00")})
_SEND = st.fixed_dictionaries(
    {"at": _TIMES, "to": st.sampled_from(["+14155550100", "+1", "14155550100", "US.13491208655302741918", "", 5]),
     "type": st.sampled_from(["text", "template", "fax", None])},
    optional={"template": _TEMPLATE, "phone_number_id": _TEXTS, "category": st.just("utility"),
              "recipient_type": st.sampled_from(["individual", "group"]), "participants": st.just(["+14155550100"]),
              "meta_business_agent": st.booleans(), "extra": st.just(1)}) | st.none() | st.sampled_from([
    {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"},
    {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "template",
     "template": {"name": "order_update", "language": "en"}, "phone_number_id": "1065"}])
_REQUEST = st.fixed_dictionaries({"send": _SEND, "history": st.none() | st.lists(
    st.one_of(_MESSAGE, _VALID_INBOUND, _VALID_OUTBOUND, _VALID_INBOUND), max_size=5)},
    optional={"context": st.sampled_from([{}, {"opted_in": True}, {"opted_in": "yes"}, None, []]) | st.dictionaries(
        st.sampled_from(["opted_in", "business_region", "currency", "waba_timezone", "messaging_limit",
                         "service_messages_this_month", "marketing_max_price", "authentication_international_start",
                         "unknown"]),
        st.sampled_from([True, False, 1, 0, -1, -2, 5, "US", "us", "US\n", "USD", "Europe/Paris", "Mars/Olympus",
                         "../etc", "", "0.05", "1.", None, "2026-01-01"]), max_size=4),
              "history_ref": st.just({"phone_number_id": "1", "contact": "14155550100"})})


def marshmallow_alone(data):
    """What marshmallow's own load gives: the request, or its error messages."""
    try:
        return Schema.load(REQUEST, data)
    except ValidationError as error:
        return error.messages


def with_fast_path(data):
    try:
        return REQUEST.load(data)
    except ValidationError as error:
        return error.messages


@settings(max_examples=400, deadline=None)
@given(_REQUEST)
def test_the_schema_loads_every_request_as_marshmallow_alone_does(data):
    """Valid or not: the same DecisionRequest (every message equal), or the same errors at the same paths."""
    assert with_fast_path(data) == marshmallow_alone(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_MESSAGE, _VALID_INBOUND, _VALID_OUTBOUND), max_size=3))
def test_fastload_answers_only_for_histories_marshmallow_accepts(history):
    """fastload never accepts what marshmallow refuses, and what it loads equals marshmallow's messages."""
    loaded = fastload.history(history)
    expected = marshmallow_alone({"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"},
                                  "history": history})
    if loaded is not None:
        assert loaded == expected.history


def test_fastload_takes_the_common_messages():
    """The fast path is really taken for ordinary inbound and outbound messages (not a check that cannot fail)."""
    history = [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text",
                "referral": {"source_type": "ad", "source_id": "1", "ctwa_clid": "x"}},
               {"direction": "outbound", "at": "2025-08-12T09:01:00+00:00", "type": "template", "status": "read",
                "template": {"name": "order_update", "language": "en", "category": "utility",
                             "message_send_ttl_seconds": 60}}]
    assert fastload.history(history) is not None


def test_a_plain_request_is_loaded_whole_by_fastload():
    """A send (a name-only template with its business number) with its history and no context: no marshmallow."""
    data = {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "template",
                     "template": {"name": "order_update", "language": "en"}, "phone_number_id": "1065"},
            "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}]}
    loaded = fastload.request(data)
    assert loaded is not None and loaded == marshmallow_alone(data)
    assert loaded.send.template.category is None and loaded.send.template.status is None


def test_a_request_with_a_plain_context_is_loaded_whole_by_fastload():
    """Booleans, counts, codes and the WABA time zone are checked as the schema declares them; a value the
    schema refuses (a lower-case region, an unknown zone, a bool as a count) leaves the request to marshmallow."""
    send = {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"}
    context = {"opted_in": True, "business_region": "BR", "currency": "USD", "waba_timezone": "America/Sao_Paulo",
               "messaging_limit": -1, "service_messages_this_month": 3}
    loaded = fastload.request({"send": send, "context": context})
    assert loaded is not None and loaded == marshmallow_alone({"send": send, "context": context})
    for wrong in ({"business_region": "br"}, {"waba_timezone": "Mars/Olympus"}, {"messaging_limit": True},
                  {"service_messages_this_month": -1}, {"authentication_international_start": "2026-01-01"}):
        assert fastload.request({"send": send, "context": wrong}) is None, wrong

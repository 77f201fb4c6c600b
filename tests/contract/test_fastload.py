"""contract.fastload and the request schema that uses it: on any request, valid or not, the same DecisionRequest
or the same marshmallow errors as marshmallow alone (issue 25 item 2)."""

import copy
import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from policy_service.contract import fastload, parsing
from policy_service.contract.schemas import BATCH_REQUEST, INBOUND_ONLY_TYPES, MESSAGE_TYPES, REQUEST
from policy_service.contract.strict import NOT_RFC3339

from .test_parsing import careful_only, parsed
from .test_strict import _PARTS

_TIMES = st.sampled_from(["2025-08-12T09:00:00+00:00", "2025-08-12T10:30:00.5+05:30", "2025-08-12T09:00:00Z",
                          "2025-08-12t09:00:00z", "2025-08-12T09:00:00", "1999-12-31T23:00:00+00:00",
                          "3000-01-01T00:00:00+00:00", "2025-08-12", "yesterday", "2025-08-12T08:00:00-01:00", "",
                          "2025-W33-2T09:00:00Z", "20250812T090000Z", "2025-08-12 09:00:00-03:00",
                          "2025-08-12T09:00+00:00", "2025-08-12T09:00:00+0000"]) | st.integers() | st.none()
_TEXTS = st.sampled_from(["", "x", "e", "en", "a" * 513, "wamid.1", "en_US", "en US", "en\n", "!!", " ", "EN",
                          "order_update", "Order-Update"]) | st.none() | st.integers() | st.booleans()
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
# Meta's phone number ids are digits: a space, a final newline, a zero-width space or other scripts' digits are not.
_PHONE_NUMBER_IDS = st.sampled_from(["106540352242922", "1", " 106540352242922", "106540352242922\n",
                                     "106540352242922\u200b", "\u0661\u0660", "1" * 64, "1" * 65])
_SEND = st.fixed_dictionaries(
    {"at": _TIMES, "to": st.sampled_from(["+14155550100", "+1", "14155550100", "US.13491208655302741918", "", 5]),
     "type": st.sampled_from(["text", "template", "fax", None])},
    optional={"template": _TEMPLATE, "phone_number_id": _TEXTS | _PHONE_NUMBER_IDS,
              "category": st.sampled_from(["utility", "authentication", "marketing", None, 1]),
              "recipient_type": st.sampled_from(["individual", "group", None, "Individual"]),
              "participants": st.sampled_from([["+14155550100"], ["+14155550100", "+4915112345678", "+14155550100"]]),
              "meta_business_agent": st.sampled_from([True, False, None, 1, "true"]),
              "marketing_messages_api": st.sampled_from([True, False, None, 0]),
              "extra": st.just(1)}) | st.none() | st.sampled_from([
    {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"},
    {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "template",
     "template": {"name": "order_update", "language": "en"}, "phone_number_id": "1065"}])
_REQUEST = st.fixed_dictionaries({"send": _SEND, "history": st.none() | st.lists(
    st.one_of(_MESSAGE, _VALID_INBOUND, _VALID_OUTBOUND, _VALID_INBOUND), max_size=5)},
    optional={"context": st.sampled_from([{}, {"opted_in": True}, {"opted_in": "yes"}, None, []]) | st.dictionaries(
        st.sampled_from(["opted_in", "business_region", "currency", "waba_timezone", "messaging_limit",
                         "service_messages_this_month", "marketing_max_price", "authentication_international_start",
                         "unknown"]),
        st.sampled_from([True, False, 1, 0, -1, -2, 5, "US", "us", "US\n", "UK", "ZZ", "GB", "USD", "Europe/Paris",
                         "Mars/Olympus", "localtime", "posixrules", "Factory", "right/UTC", "posix/UTC", "utc",
                         "../etc", "", "0.05", "1.", None, "2026-01-01", "2026-02-30", "1999-12-31", "2000-01-01",
                         "2999-12-31", "3000-01-01", "20260101", "2026-W01-1", " 2026-01-01", 20260101]), max_size=4),
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


@pytest.mark.parametrize("at", ["2025-08-12t09:00:00z", "2025-08-12T09:00:00.123456789-00:00"])
def test_fastload_takes_every_rfc3339_date_time(at):
    """A lowercase t and z, many fraction digits and -00:00 are RFC 3339: the fast path takes them (send and history)
    and loads what marshmallow loads."""
    data = {"send": {"at": at, "to": "+14155550100", "type": "text"},
            "history": [{"direction": "inbound", "at": at, "type": "text"}]}
    loaded = fastload.request(data)
    assert loaded is not None and loaded == marshmallow_alone(data)


@pytest.mark.parametrize("at", ["2025-W33-2T09:00:00Z", "20250812T090000Z", "2025-08-12 09:00:00Z",
                                "2025-08-12T09:00Z", "2025-08-12T09:00:00+0000"])
def test_fastload_leaves_iso_8601_forms_rfc3339_lacks_to_marshmallow(at):
    """ISO 8601 forms fromisoformat reads but RFC 3339 does not have are not loaded by the fast path, in the send
    or the history; marshmallow then refuses them naming the field."""
    send = {"at": "2025-08-12T12:00:00Z", "to": "+14155550100", "type": "text"}
    assert fastload.request({"send": {**send, "at": at}}) is None
    assert fastload.history([{"direction": "inbound", "at": at, "type": "text"}]) is None
    assert fastload.history([{"direction": "outbound", "at": "2025-08-12T09:00:00Z", "type": "text",
                              "delivered_at": at}]) is None
    assert marshmallow_alone({"send": {**send, "at": at}}) == {"send": {"at": [NOT_RFC3339]}}


@pytest.mark.parametrize("at", [
    "2001-01-01T00:00:00Z", "2998-12-31T23:59:59+00:00", "2000-01-01T00:00:00Z", "2000-06-01T00:00:00-05:00",
    "2000-01-01T00:30:00+01:00", "1999-12-31T23:00:00-01:00", "1999-12-31T23:59:59Z", "2999-12-31T23:59:59Z",
    "2999-12-31T23:00:00-01:00",
    "2999-12-31T23:59:59+01:00", "3000-01-01T00:00:00+01:00", "0999-01-01T00:00:00Z", "20x5-08-12T09:00:00Z",
    "2O25-08-12T09:00:00Z", "2025-08-12T09:00:00+24:00", "2025-02-30T09:00:00Z", "2025-08-12T09:00:00.5Z",
    "\u0662025-08-12T09:00:00Z", "2025-08-12t09:00:00+00:00"])
def test_history_times_read_inline_are_read_and_bounded_as_marshmallow_reads_them(at):
    """The history loop reads the common forms without a call and bounds them by their text (years 2001 to 2998):
    at the range's edges (2000, 2999, offsets across them), with letters or other scripts' digits in the year and
    with impossible dates, fastload gives marshmallow's messages, and leaves to marshmallow only what it refuses."""
    for message in ({"direction": "inbound", "at": at, "type": "text"},
                    {"direction": "outbound", "at": at, "type": "text", "delivered_at": "2999-12-31T23:59:59Z"}):
        loaded = fastload.history([message])
        expected = marshmallow_alone({"send": {"at": "2025-08-12T12:00:00Z", "to": "+14155550100", "type": "text"},
                                      "history": [message]})
        assert (loaded is None) is isinstance(expected, dict)  # every one marshmallow accepts is taken here
        assert loaded is None or loaded == expected.history


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(["2026", "2000", "2001", "2998", "2999", "3000", "1999", "0999"]),
       st.sampled_from(["-01-01", "-12-31", "-06-15"]), _PARTS, st.sampled_from([None, "00:30:00", "23:30:00"]),
       st.sampled_from([None, "-01:00", "+01:00", "-23:59", "+23:59"]), st.sampled_from(["inbound", "outbound"]))
def test_any_history_time_is_read_by_fastload_as_marshmallow_reads_it(year, day, parts, time, offset, direction):
    """Property (test_strict's generator of RFC 3339 and near-RFC 3339 text, its date moved to each year and day at
    the range's edges, with times and offsets across them): a history message's time gives fastload's message equal to
    marshmallow's whenever marshmallow accepts it, and fastload answers nothing (marshmallow words the error)
    whenever marshmallow refuses it."""
    date = parts[0]
    valid_date = date[:4].isdigit() and date[4:5] == "-" and len(date) == 10
    text = "".join((year + day if valid_date else date, parts[1], parts[2] if time is None else time, parts[3],
                    parts[4] if offset is None else offset))
    message = {"direction": direction, "at": text, "type": "text"}
    loaded = fastload.history([message])
    expected = marshmallow_alone({"send": {"at": "2026-12-07T12:00:00Z", "to": "+14155550100", "type": "text"},
                                  "history": [message]})
    assert (loaded is None) is isinstance(expected, dict), text
    assert loaded is None or (loaded == expected.history
                              and loaded[0].at.utcoffset() == expected.history[0].at.utcoffset())


def test_a_request_with_a_plain_context_is_loaded_whole_by_fastload():
    """Booleans, counts, codes and the WABA time zone are checked as the schema declares them; a value the
    schema refuses (a lower-case region, an unknown zone, a bool as a count) leaves the request to marshmallow."""
    send = {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"}
    context = {"opted_in": True, "business_region": "BR", "currency": "USD", "waba_timezone": "America/Sao_Paulo",
               "messaging_limit": -1, "service_messages_this_month": 3,
               "authentication_international_start": "2026-01-01"}
    loaded = fastload.request({"send": send, "context": context})
    assert loaded is not None and loaded == marshmallow_alone({"send": send, "context": context})
    assert loaded.context["authentication_international_start"] == date(2026, 1, 1)
    for wrong in ({"business_region": "br"}, {"waba_timezone": "Mars/Olympus"}, {"waba_timezone": "localtime"},
                  {"waba_timezone": "right/UTC"}, {"messaging_limit": True},
                  {"service_messages_this_month": -1}, {"authentication_international_start": "2026-02-30"},
                  {"authentication_international_start": "3000-01-01"}, {"authentication_international_start": 1}):
        assert fastload.request({"send": send, "context": wrong}) is None, wrong


# --- Raw bodies through contract.parsing: the typed path (orjson, msgspec Structs, fastload) against today's path
# (the standard library's careful parse and marshmallow alone), on valid bodies and on every edge case the body
# parser and the schema refuse.

class Literal(str):
    """A JSON fragment written into a body as it stands (NaN, 1e400, a 45-digit number)."""


class Pairs(list):
    """A JSON object written from (key, value) pairs: a key may repeat (JSON allows it; the last one counts)."""


def dump(value) -> str:
    """JSON text of a value built from dicts, lists, Pairs and Literals; strings escaped as json.dumps does, so a
    NUL or a lone surrogate reaches the body as \\u0000 or \\ud800."""
    if isinstance(value, Literal):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(key)}:{dump(member)}" for key, member in value) + "}"
    if isinstance(value, dict):
        return dump(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(dump(member) for member in value) + "]"
    return json.dumps(value, allow_nan=True)


_DEEP = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
_EDGES = st.sampled_from([
    "a\x00b", "\x00", "\ud800", "x\udfff", "\U0001f600", "", "x" * 513, "9" * 300, 1, 0, -1, True, False, None,
    1.0, 2.5, -0.0, 10**19, 2**64, 10**45, Literal("1e400"), Literal("NaN"), Literal("-Infinity"), Literal("1" * 45),
    Literal("-0"), Literal("1E2"), [], {}, [1], {"a": 1}, _DEEP, {"deep": _DEEP}, "2025-08-12T09:00:00",
    "2025-08-12T09:00:00+00:00", "2025-08-12t09:00:00z", "2025-08-12 09:00:00+00:00", "2025-08-12T09:00:00.1234567Z",
    "20250812T090000Z", "2025-08-12T23:59:60+00:00", "2025-08-12T09:00:00+25:00", "2025-W33-2T09:00:00Z",
    "2025-08-12T09:00+00:00", "2025-08-12T09:00:00+0000", "2025-08-12T09:00:00z", "inbound", "outbound", "template",
    "text", "utility", "APPROVED", "+14155550100", "ad", "post"])


@st.composite
def mutated(draw, value):
    """The value with one place changed: a member or item replaced by an edge case, a member added (known or
    unknown), a member dropped, or a key repeated with another value before or after it."""
    value = copy.deepcopy(value)  # strategies share their examples' objects
    containers = []

    def collect(item, path):
        if isinstance(item, dict | list) and not isinstance(item, Pairs):  # a repeated key is left as written
            containers.append(path)
            for key, member in (item.items() if isinstance(item, dict) else enumerate(item)):
                collect(member, (*path, key))
    collect(value, ())
    path = draw(st.sampled_from(containers))
    target = value
    for key in path:
        target = target[key]
    action = draw(st.sampled_from(["replace", "add", "drop", "repeat"]))
    edge = copy.deepcopy(draw(_EDGES))
    if isinstance(target, list):
        if target and action in ("replace", "drop"):
            index = draw(st.integers(0, len(target) - 1))
            if action == "drop":
                del target[index]
            else:
                target[index] = edge
        else:
            target.append(edge)
        return value
    keys = list(target)
    if action == "add" or not keys:
        target[draw(st.sampled_from(["extra", "business_app", "referral", "welcome_message", "template", "status",
                                     "delivered_at", "id", "category", "history_ref", "context"]))] = edge
        return value
    key = draw(st.sampled_from(keys))
    if action == "replace":
        target[key] = edge
    elif action == "drop":
        del target[key]
    else:
        pairs = Pairs(target.items())
        pairs.insert(draw(st.integers(0, len(pairs))), (key, edge))
        parent = value
        for part in path[:-1]:
            parent = parent[part]
        if path:
            parent[path[-1]] = pairs
        else:
            return pairs
    return value


# Valid requests of every shape the typed path takes (mutated below into invalid ones near the valid).
_AT = st.sampled_from(["2025-08-12T09:00:00+00:00", "2025-08-12T09:00:00Z", "2025-08-12T10:30:00.5+05:30",
                       "2025-08-12t09:00:00z", "2025-08-12T09:00:00.123456789-03:00", "2025-08-12T09:00:00-00:00",
                       "2025-08-12T09:00:00.123456+00:00", "2000-01-01T00:00:00+00:00", "2999-12-31T00:00:00Z"])
_LATER = st.sampled_from(["2999-12-31T00:00:00+00:00", "2025-08-12T09:00:00+00:00"])
_OK_TEMPLATE = st.fixed_dictionaries(
    {"name": st.sampled_from(["order_update", "x", "a" * 512]), "language": st.sampled_from(["en", "pt_BR", "fil"]),
     "category": st.sampled_from(["utility", "marketing", "authentication"])},
    optional={"status": st.sampled_from(["APPROVED", "PAUSED", "PENDING_DELETION"]), "otp_button": st.booleans(),
              "message_send_ttl_seconds": st.sampled_from([-1, 30, 600, 2592000])})
_OK_INBOUND = st.fixed_dictionaries(
    {"direction": st.just("inbound"), "at": _AT, "type": st.sampled_from([*MESSAGE_TYPES, *INBOUND_ONLY_TYPES])},
    optional={"id": st.sampled_from(["wamid.1", ""]), "referral": st.dictionaries(st.sampled_from(
        ["source_url", "source_id", "headline", "body", "ctwa_clid", "media_type"]), st.text(max_size=3), max_size=3)
        | st.just({"source_type": "post", "source_id": "1"})})
_OK_OUTBOUND = st.one_of(
    st.fixed_dictionaries({"direction": st.just("outbound"), "at": _AT, "type": st.just("template"),
                           "template": _OK_TEMPLATE}, optional={"id": st.just("wamid.2"), "business_app": st.booleans(),
                                                               "status": st.sampled_from(["read", "sent", "failed"])}),
    st.fixed_dictionaries({"direction": st.just("outbound"), "at": st.just("2025-08-12T09:00:00+00:00"),
                           "type": st.sampled_from(["text", "unknown", "image"])},
                          optional={"delivered_at": _LATER, "status": st.sampled_from(["delivered", "played"])}))
_OK_SEND = st.fixed_dictionaries(
    {"at": _AT, "to": st.sampled_from(["+14155550100", "US.13491208655302741918"]), "type": st.just("text")},
    optional={"phone_number_id": st.just("1065")}) | st.fixed_dictionaries(
    {"at": _AT, "to": st.just("+5511987654321"), "type": st.just("template"), "template": _OK_TEMPLATE | st.just(
        {"name": "order_update", "language": "en"})}, optional={"phone_number_id": st.just("1065")})
_VALID = st.fixed_dictionaries({"send": _OK_SEND}, optional={
    "history": st.lists(_OK_INBOUND | _OK_OUTBOUND, max_size=6),
    "context": st.sampled_from([{}, {"opted_in": False, "waba_timezone": "Asia/Kolkata", "messaging_limit": 1000}])})
_BODIES = st.one_of(_REQUEST, _VALID, _VALID.flatmap(mutated), _REQUEST.flatmap(mutated),
                    _VALID.flatmap(mutated).flatmap(
                        lambda value: st.just(value) if isinstance(value, Pairs) else mutated(value)))


def _today(body: bytes, schema=REQUEST, limits=None):
    """Today's path: the standard library's careful parse (every refusal worded) and marshmallow alone."""
    request, history = fastload.request, fastload.history
    fastload.request = fastload.history = lambda *_: None
    try:
        with careful_only():
            return _outcome(body, schema.load, limits)
    finally:
        fastload.request, fastload.history = request, history


def _outcome(body: bytes, load, limits=None):
    try:
        value = parsing.parse_json(body, limits or parsing.decision_limits())
    except parsing.BodyRefused as refused:
        return ("refused", refused.status, refused.message, refused.errors)
    try:
        loaded = load(value)
    except ValidationError as error:
        return ("invalid", error.messages)
    # repr as well as ==: the same values down to each timestamp's offset (== compares instants only).
    return ("loaded", loaded, repr(loaded), value)


@settings(max_examples=1500, deadline=None)
@given(_BODIES)
def test_a_body_loads_through_the_typed_path_exactly_as_through_todays_path(data):
    """Valid or not, with NULs, lone surrogates, non-finite and huge numbers, 1 and 0 for booleans, unknown,
    missing and repeated members, too long strings, deep nesting and naive or odd timestamps: the same
    DecisionRequest (and the same parsed body, which is logged), or the same refusal or marshmallow errors."""
    text = dump(data)
    body = text.encode("utf-8", "surrogatepass")
    expected = _today(body)
    assert _outcome(body, REQUEST.load) == expected
    # The same body as text (a form, a file, a Python caller's JSON): the same outcome.
    assert _outcome(text, REQUEST.load) == expected


@pytest.mark.parametrize("text", ['{"send": {"at": "\ud800", "to": "+14155550100", "type": "text"}}',
                                  '{"send": {"at": "2025-08-12T12:00:00Z", "to": "+14155550100", "type": "text"}, '
                                  '"history": [{"direction": "inbound", "at": "2025-08-12T09:00:00Z", '
                                  '"type": "\udfff"}]}'])
def test_text_holding_a_lone_surrogate_is_refused_as_today(text):
    """Text that cannot be encoded as UTF-8 (a lone surrogate itself, not escaped) is parsed carefully and refused
    naming the field, as before text took the fast path."""
    assert _outcome(text, REQUEST.load) == _today(text) and _outcome(text, REQUEST.load)[0] == "refused"


_TIGHT = st.sampled_from([
    parsing.Limits(max_depth=5, max_items=16, max_values=40, arrays={("history",): (3, "at most {limit}")},
                   histories=(("history",),)),
    parsing.Limits(max_depth=4, max_items=16, max_values=90, arrays={("history",): (6, "at most {limit}")},
                   histories=(("history",),)),
    parsing.Limits(max_depth=3, max_items=5, histories=(("history",),), arrays={("history",): (9, "{count}")})])


@settings(max_examples=600, deadline=None)
@given(_BODIES | _VALID.map(lambda body: {**body, "history": body.get("history", []) * 3}), _TIGHT)
def test_a_typed_history_is_bounded_exactly_as_the_walk_bounds_it(data, limits):
    """Under tight limits (a short history, few values, shallow nesting, few members; or limits typing cannot
    prove, which turn it off) a body parses to the same value, or is refused the same way, as when it is walked."""
    body = dump(data).encode("utf-8", "surrogatepass")
    with careful_only():
        expected = parsed(body, limits)
    assert parsed(body, limits) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(_VALID, min_size=1, max_size=3) | st.lists(_BODIES, min_size=1, max_size=3) | _BODIES)
def test_a_batch_loads_through_the_typed_path_exactly_as_through_todays_path(requests):
    """The same for POST /v1/decisions/batch: each request's history is typed where it stands."""
    body = dump({"requests": requests}).encode("utf-8", "surrogatepass")
    limits = parsing.batch_limits(2)
    assert _outcome(body, BATCH_REQUEST.load, limits) == _today(body, BATCH_REQUEST, limits)


@pytest.fixture
def typings(monkeypatch):
    """The histories msgspec types (fastload.typed_history), as they are typed."""
    typed = []
    convert = fastload._convert

    def spy(value, kind):
        if kind is fastload._History:
            typed.append(value)
        return convert(value, kind)
    monkeypatch.setattr(fastload, "_convert", spy)
    return typed


def test_a_history_is_typed_once_while_parsing_and_not_again_when_loaded(typings):
    """The property above is not vacuous: an ordinary body's history is typed by the parse (which then does not
    walk it), the schema's load takes the typed messages from there, and the body stays plain dicts and lists."""
    body = dump({"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"},
                 "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00Z", "type": "text", "id": "wamid.1"},
                             {"at": "2025-08-12T09:01:00+00:00", "type": "template", "direction": "outbound",
                              "template": {"name": "order_update", "language": "en", "category": "utility"}}]})
    value = parsing.parse_json(body.encode(), parsing.decision_limits())
    assert typings == [value["history"]] and type(value) is dict and type(value["history"]) is list
    assert len(REQUEST.load(value).history) == 2 and len(typings) == 1
    assert len(REQUEST.load(value).history) == 2 and len(typings) == 2  # remembered for one load only
    assert _outcome(body.encode(), REQUEST.load) == _today(body.encode())


def test_every_request_of_a_batch_or_fixture_is_typed_where_it_stands(typings):
    """A batch's requests, and a fixture file's request beside a bare history, are each typed once."""
    message = {"direction": "inbound", "at": "2025-08-12T09:00:00Z", "type": "text"}
    send = {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"}
    batch = parsing.parse_json(json.dumps({"requests": [{"send": send, "history": [message]},
                                                        {"send": send, "history": [{"at": 1}]}]}).encode(),
                               parsing.batch_limits(5))
    assert len(typings) == 2 and len(REQUEST.load(batch["requests"][0]).history) == 1 and len(typings) == 2
    typings.clear()
    fixture = parsing.parse_json(json.dumps({"history": [message], "request": {"send": send, "history": [message]}})
                                 .encode(), parsing.fixture_limits())
    assert typings == [[message], [message]] and typings[1] is fixture["request"]["history"]
    assert len(REQUEST.load(fixture["request"]).history) == 1 and len(typings) == 2


def test_typed_histories_hold_at_most_their_declared_count_of_values():
    """HISTORY_VALUES_PER_MESSAGE bounds the JSON values of any message typed_history accepts (every member,
    a referral with every key, a template with every member), counted as contract.parsing counts them."""
    referral = dict.fromkeys(["source_url", "source_id", "headline", "body", "media_type", "image_url",
                              "video_url", "thumbnail_url", "ctwa_clid"], "x") | {"source_type": "ad"}
    inbound = {"direction": "inbound", "at": "2025-08-12T09:00:00Z", "type": "text", "id": "1", "referral": referral}
    outbound = {"direction": "outbound", "at": "2025-08-12T09:00:00Z", "type": "template", "id": "1",
                "status": "read", "delivered_at": "2025-08-12T09:00:01Z", "business_app": False,
                "template": {"name": "n", "language": "en", "category": "utility", "status": "APPROVED",
                             "otp_button": True, "message_send_ttl_seconds": 60}}
    for message in (inbound, outbound):
        assert fastload.typed_history([message]) is not None
        values = 1 + len(message) + sum(len(m) for m in message.values() if isinstance(m, dict))
        assert values <= fastload.HISTORY_VALUES_PER_MESSAGE
        assert fastload.history([message]) == Schema.load(REQUEST, {"send": {
            "at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"}, "history": [message]}).history
    assert max(1 + len(m) + sum(len(v) for v in m.values() if isinstance(v, dict))
               for m in (inbound, outbound)) == fastload.HISTORY_VALUES_PER_MESSAGE


@pytest.mark.parametrize("rows, refused", [(100, False), (140, False), (161, True)])
def test_the_value_budget_holds_whatever_the_estimate_of_a_typed_history(rows, refused):
    """The estimate of a typed history's values (HISTORY_VALUES_PER_MESSAGE each) only spares a walk: 10,000
    small messages (4 values each) beside a context of `rows` thousand values pass max_values only past 160
    rows, and are refused then, and only then, exactly as the careful parse refuses them."""
    message = {"direction": "inbound", "at": "2025-08-12T09:00:00Z", "type": "text"}
    body = dump({"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"},
                 "history": [message] * 10_000, "context": {"x": [[0] * 999] * rows}})
    limits = parsing.decision_limits()
    assert 10_000 * fastload.HISTORY_VALUES_PER_MESSAGE + rows * 1_000 > limits.max_values
    if refused:
        careful = pytest.raises(parsing.BodyRefused, parsing.parse_json, body, limits).value  # text: careful path
        fast = pytest.raises(parsing.BodyRefused, parsing.parse_json, body.encode(), limits).value
        assert (fast.status, fast.errors) == (careful.status, careful.errors) == (
            422, {"_request": [f"at most {limits.max_values} JSON values in one body"]})
    else:
        assert parsing.parse_json(body.encode(), limits) == json.loads(body)

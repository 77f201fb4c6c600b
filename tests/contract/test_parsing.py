"""contract/parsing.py: every bound of the one body parser, and the bounded error lists."""

import json
from contextlib import contextmanager

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.contract import parsing
from policy_service.contract.parsing import (
    MAX_ERRORS,
    BodyRefused,
    Limits,
    batch_limits,
    bounded_errors,
    decision_limits,
    parse_json,
)
from policy_service.contract.schemas import MAX_HISTORY


def refused(body, limits=None) -> BodyRefused:
    with pytest.raises(BodyRefused) as caught:
        parse_json(body, limits or decision_limits())
    return caught.value


def test_a_plain_body_parses_to_its_value():
    """Bytes or text within every limit come back as Python's JSON value (surrogate pairs joined)."""
    document = {"a": [1, 2.5, "x\U0001f600", None, True], "b": {"c": "é"}}
    assert parse_json(json.dumps(document).encode(), decision_limits()) == document
    assert parse_json('"\\ud83d\\ude00"', decision_limits()) == "\U0001f600"


@pytest.mark.parametrize("body", [b'{"a": ', b"\xff\xfe{}", b"", b"[1,]"])
def test_malformed_or_undecodable_bodies_are_a_400(body):
    """Syntax errors and bytes that are not UTF-8 are a 400 at _request."""
    error = refused(body)
    assert error.status == 400 and list(error.errors) == ["_request"]


@pytest.mark.parametrize("body, errors", [(b"NaN", {"_request": ["NaN is not JSON"]}),
                                          (b'{"a": -Infinity}', {"a": ["-Infinity is not JSON"]})])
def test_non_standard_constants_are_refused_where_they_stand(body, errors):
    error = refused(body)
    assert (error.status, error.errors) == (422, errors)


@pytest.mark.parametrize("depth", [33, 600, 5_000, 200_000])
def test_nesting_past_the_depth_limit_is_a_400(depth):
    """Arrays or objects nested past max_depth (also past Python's own recursion limit) are a 400, no RecursionError."""
    error = refused("[" * depth + "]" * depth)
    assert error.status == 400 and "nested deeper than 32 levels" in error.message
    assert refused('{"a":' * depth + "1" + "}" * depth).status == 400


def test_nesting_at_the_limit_parses():
    assert parse_json("[" * 32 + "]" * 32, decision_limits()) is not None


@pytest.mark.parametrize("literal", ["1" * 41, "1" * 5_000, "-" + "9" * 40, "1." + "0" * 40, "1e400"])
def test_a_too_long_or_infinite_number_is_refused_where_it_stands(literal):
    """Long literals are never converted (CPython's int() fails past 4,300 digits); 1e400 would be inf."""
    error = refused('{"send": {"at": ' + literal + "}}")
    assert error.status == 422 and list(error.errors) == ["send.at"]


@pytest.mark.parametrize("text, message", [("\\u0000", "NUL"), ("a\\ud800", "lone surrogate"),
                                           ("\\udfff", "lone surrogate"), ("\\ude00\\ud83d", "lone surrogate")])
def test_nul_and_lone_surrogates_in_values_and_keys_are_field_errors(text, message):
    """A NUL or a surrogate without its pair, in a value or a key, is named by its path."""
    error = refused('{"history_ref": {"phone_number_id": "' + text + '"}}')
    assert error.status == 422 and message in error.errors["history_ref.phone_number_id"][0]
    error = refused('{"history": [{"' + text + '": 1}]}')
    assert error.status == 422 and len(error.errors) == 1 and message in next(iter(error.errors.values()))[0]


def test_named_arrays_have_their_own_limits_and_are_not_walked():
    """history may hold MAX_HISTORY items; one more is refused with the documented message, others at 1,000."""
    assert len(parse_json(json.dumps({"history": [0] * MAX_HISTORY}), decision_limits())["history"]) == MAX_HISTORY
    error = refused(json.dumps({"history": [0] * (MAX_HISTORY + 1)}))
    # Not "send only the recent history (older events cannot change the decision)": the user's last message or an
    # ad referral older than the last 10,000 messages still decides; the stored history is read as far as needed.
    assert error.errors == {"history": [f"at most {MAX_HISTORY} messages in an inline history: decide a longer one "
                                        "from the history stored from Meta's webhooks (history_ref instead of "
                                        "history: it reads all the rules can still see)"]}
    assert refused(json.dumps({"other": [0] * 1_001})).errors == {"other": ["at most 1000 items, got 1001"]}
    batch = refused(json.dumps({"requests": [{}] * 3}), batch_limits(2))
    assert batch.errors == {"requests": ["at most 2 requests per batch, got 3"]}
    nested = refused(json.dumps({"requests": [{"history": [0] * (MAX_HISTORY + 1)}]}), batch_limits(2))
    assert list(nested.errors) == ["requests.0.history"]


def test_the_whole_body_has_a_value_budget():
    """Many arrays each under their limit still cannot exceed max_values in total."""
    error = refused(json.dumps([[0] * 10] * 10), Limits(max_values=50))
    assert error.status == 422 and "at most 50 JSON values" in error.errors["_request"][0]


def test_errors_are_bounded_and_counted_in_document_order():
    """Thousands of bad strings give the first MAX_ERRORS fields in order, plus a count of the rest."""
    error = refused(json.dumps({"history": ["\x00"] * 5_000}))
    assert list(error.errors)[:3] == ["history.0", "history.1", "history.2"]
    assert len(error.errors) == MAX_ERRORS + 1
    assert error.errors["_more"] == [f"{5_000 - MAX_ERRORS} more fields with errors are not listed"]
    assert error.message.endswith("(and 4999 more)")


def test_bounded_errors_keeps_small_lists_as_they_are():
    small = {"a": ["x"], "b": ["y", "z"]}
    assert bounded_errors(small) is small
    assert bounded_errors({"a": ["1", "2", "3", "4"]}) == {"a": ["1", "2", "3"]}


def parsed(body, limits):
    """parse_json's value, or its refusal (status, message, errors)."""
    try:
        return ("value", parse_json(body, limits))
    except BodyRefused as refusal:
        return ("refused", refusal.status, refusal.message, refusal.errors)


_SCALARS = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=4) \
    | st.sampled_from(["\x00", "a\x00b", "\ud800", "é"])
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
    st.sampled_from(["history", "requests", "a", "\x00", "\udfff"]), inner, max_size=4), max_leaves=30)
_TEXTS = st.one_of(
    st.builds(lambda v: json.dumps(v, allow_nan=True), _VALUES),
    st.sampled_from(["[1e400]", '{"a":NaN}', "[Infinity]", "\ufeff{}", "[1,]", "[" * 40 + "]" * 40,
                     '{"history":[' + ",".join(["{}"] * 1001) + "]}", "[" + ",".join(["1"] * 1001) + "]",
                     '"\\\\u0000"', "123456789012345678901234", "18446744073709551615", "-9223372036854775809",
                     '{"a":1,"a":2}', '{"a":{"b":"x:y","b":[]}}', '{"a\\u003a":1,"a:":2}', '[{"k":1},{"k":1,"k":1}]']))
_LIMITS = st.sampled_from([decision_limits(), batch_limits(3), Limits(max_depth=3, max_items=3, max_values=12)])


@settings(max_examples=400, deadline=None)
@given(st.one_of(_TEXTS.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=12)), _LIMITS)
def test_the_fast_parse_gives_what_the_careful_parse_gives(body, limits):
    """orjson with the cheap checks (issue 25 item 2) returns exactly the careful path's value, and refuses
    nothing itself: every refusal, with its status, message and field errors, is the careful path's. The same for
    the body given as text."""
    texts = [body]
    try:
        texts.append(body.decode("utf-8"))  # text takes the fast path as its UTF-8 bytes
    except UnicodeDecodeError:
        pass
    for given_body in texts:
        with careful_only():
            expected = parsed(given_body, limits)
        assert parsed(given_body, limits) == expected or _both_nan(parsed(given_body, limits), expected)


@contextmanager
def careful_only():
    """contract.parsing with its fast path off: every body parsed, and refused, the careful way."""
    fast = parsing._parsed_fast
    parsing._parsed_fast = lambda body, limits: parsing._UNSURE
    try:
        yield
    finally:
        parsing._parsed_fast = fast


def _both_nan(first, second):
    # NaN != NaN: equal outcomes that hold a NaN compare by their JSON text.
    return json.dumps(first, default=str) == json.dumps(second, default=str)


def test_the_fast_parse_is_taken_for_an_ordinary_body():
    """The property above is not vacuous: an ordinary body is parsed by orjson, not sent down the careful path."""
    assert parsing._parsed_fast(b'{"send": {"to": "+14155550100"}, "history": [{"at": "x"}]}',
                                decision_limits()) == {"send": {"to": "+14155550100"}, "history": [{"at": "x"}]}


@pytest.mark.parametrize("body", [b'{"a":"x\\u0000"}', b'{"a":"\\n","b":"\\u0000"}', b'{"\\u0000":1}',
                                  b'{"a":"\\\\u0000"}', b'{"a":"\\n\\u00e9"}', b'{"a":"plain"}'])
def test_the_backslash_check_before_the_nul_search_changes_no_outcome(body):
    """A body is searched for an escaped NUL only when it holds a backslash (one memchr): with or without one, an
    escaped NUL anywhere is refused, and every other body parses, exactly as on the careful path."""
    with careful_only():
        expected = parsed(body, decision_limits())
    assert parsed(body, decision_limits()) == expected
    assert (expected[0] == "refused") is (b"\\u0000" in body.replace(b"\\\\", b""))


@pytest.mark.parametrize(("body", "path", "times"), [
    (b'{"context":{"marketing_opt_out":true,"marketing_opt_out":false}}', "context.marketing_opt_out", 2),
    (b'{"history":[{"direction":"inbound"}],"history":[]}', "history", 2),
    (b'{"a": 1, "a": 1, "a": 1}', "a", 3),
    (b'{"h":[{"at":"x:y","at":"z"}]}', "h.0.at", 2),
    (b'{"k\\u003a":1,"k:":2}', "k:", 2),  # the same key, one spelling escaped
])
def test_a_key_given_twice_in_one_object_is_refused_naming_it(body, path, times):
    """A repeated key would be read as its last value (a deny turned into an allow, if something in front of the
    service reads the first): a 422 naming the key's path, on the fast path and the careful path alike."""
    expected = ("refused", 422, f"invalid request: {path}: given {times} times in one object; give it once",
                {path: [f"given {times} times in one object; give it once"]})
    assert parsed(body, decision_limits()) == expected
    with careful_only():
        assert parsed(body, decision_limits()) == expected


@pytest.mark.parametrize("body", [
    b'{"a": "x:y:z", "b": {"c": "::"}, "d": ["e:f"]}',  # colons inside strings
    b'{\n  "a" : 1,\n  "b":\t"\\u00e9:"\n}',  # whitespace around colons, an escape beside a colon
    '{"a": "\u00e9\u6f22:\U0001f600"}'.encode(),  # non-ASCII text holding a colon
    b'{"a\\"b:": 1}',  # an escaped quote before a colon in a key
])
def test_an_ordinary_body_with_colons_in_strings_takes_the_fast_path(body):
    """The colon count proves no key is repeated without the careful parse: colons inside strings, spaces around
    the member colons and escapes other than a colon's are counted alike in the body and in orjson's text."""
    assert parsing._parsed_fast(body, decision_limits()) is not parsing._UNSURE


_PLAIN_MESSAGE = '{"direction":"inbound","at":"2025-08-12T09:00:00Z","type":"text"}'
_HISTORY_ITEMS = st.sampled_from([
    _PLAIN_MESSAGE,
    '{"direction": "outbound", "at": "2025-08-12T09:00:00+05:30", "type": "template", "template": {"name": "a:b", '
    '"language": "en", "category": "utility"}}',
    '{"direction":"inbound","at":"2025-08-12T09:00:00Z","at":"2025-08-12T09:00:01Z","type":"text"}',
    '{"direction":"outbound","at":"x","type":"text","template":{"name":"n","name":"m","language":"en",'
    '"category":"utility"}}',
    '{"direction":"inbound","at":"2025-08-12T09:00:00Z","type":"text","referral":{"body":"a: b","body":"c"}}',
    '{"direction":"inbound","at":"2025-08-12T09:00:00Z","type":"text","extra":1}',  # not typed: walked
])
_SENDS = st.sampled_from(['{"at":"2025-08-12T12:00:00Z","to":"+14155550100","type":"text"}',
                          '{"at":"2025-08-12T12:00:00Z","to":"+14155550100","to":"+14155550101","type":"text"}'])


@settings(max_examples=300, deadline=None)
@given(_SENDS, st.lists(_HISTORY_ITEMS, max_size=6), st.booleans())
def test_a_typed_history_dumped_apart_gives_what_the_careful_parse_gives(send, items, history_first):
    """A body whose top-level history the typed decoder accepts is counted for repeated keys with its history
    dumped apart (the text the decision log then reuses): a key repeated in the history or beside it is refused
    exactly as the careful path refuses it, and any other body gives the careful path's value; the history's text
    kept for the log is orjson's text of the very list returned, given once."""
    history = "[" + ",".join(items) + "]"
    members = [f'"history":{history}', f'"send":{send}']
    body = ("{" + ",".join(members if history_first else members[::-1]) + "}").encode()
    with careful_only():
        expected = parsed(body, decision_limits())
    assert parsed(body, decision_limits()) == expected
    if expected[0] == "value":
        value = parse_json(body, decision_limits())
        typed = parsing.typed_history(value["history"]) is not None
        assert parsing.dumped_history(value["history"]) == (orjson.dumps(value["history"]) if typed else None)
        assert parsing.dumped_history(value["history"]) is None  # given once


def test_the_dumped_history_is_only_the_last_bodys_own():
    """dumped_history answers only for the very list the last parse returned as its body's history: not for an
    equal list, not after another body is parsed or `forget`, and not for a history elsewhere in the body (a
    batch's)."""
    body = ('{"send":{"to":"+14155550100"},"history":[' + _PLAIN_MESSAGE + "]}").encode()
    first = parse_json(body, decision_limits())
    assert parsing.dumped_history(list(first["history"])) is None
    second = parse_json(body, decision_limits())
    assert parsing.dumped_history(first["history"]) is None
    assert parsing.dumped_history(second["history"]) == orjson.dumps(second["history"])
    batch = parse_json(('{"requests":[{"history":[' + _PLAIN_MESSAGE + "]}]}").encode(), batch_limits(3))
    assert parsing.dumped_history(batch["requests"][0]["history"]) is None
    third = parse_json(body, decision_limits())
    parsing.forget()  # a request that ends unlogged lets go of its body's history and text
    assert parsing.dumped_history(third["history"]) is None


def test_a_repeated_key_in_a_webhook_costs_only_its_event():
    """Under lenient limits (Meta's webhooks, retried whole when refused) a repeated key is listed as unreadable, so
    the reader skips the event holding it, not the payload."""
    value = parse_json(b'{"entry":[{"changes":[{"value":{"a":1,"a":2}}]}]}', parsing.WEBHOOK_LIMITS)
    assert value.unreadable == {"entry.0.changes.0.value.a": ["given 2 times in one object; give it once"]}


def test_an_objects_own_error_is_named_by_its_path():
    """marshmallow keys an object's own error `_schema`: flattened, it is the object's path (requests.1, send), so a
    whole request in a batch is named requests.<i> whatever refused it; only the body's own keeps `_schema`."""
    from policy_service.contract.parsing import flatten_errors

    assert flatten_errors({"requests": {1: {"_schema": ["must be a JSON object"]},
                                        2: {"send": {"_schema": ["x"], "at": ["y"]}}}}) == {
        "requests.1": ["must be a JSON object"], "requests.2.send": ["x"], "requests.2.send.at": ["y"]}
    assert flatten_errors({"_schema": ["must be a JSON object"]}) == {"_schema": ["must be a JSON object"]}

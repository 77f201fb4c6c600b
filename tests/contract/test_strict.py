"""contract.strict: every policy flag the API and Meta's webhooks read is a JSON boolean; 1, 0, 1.0 and "true" are
refused with the field named (marshmallow's Boolean(truthy={True}) let 1 and 0 through, since 1 == True)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from policy_service.contract.meta_webhooks import PricingSchema
from policy_service.contract.schemas import REQUEST

from . import package_schemas

SEND = {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "text"}
TEMPLATE = {"name": "code", "language": "en", "category": "authentication", "status": "APPROVED"}


def _requests(value):
    """(request, path of the flag) for every strict boolean of the decision request."""
    return [
        ({"send": SEND, "context": {"opted_in": value}}, ("context", "opted_in")),
        ({"send": SEND, "context": {"marketing_opt_out": value}}, ("context", "marketing_opt_out")),
        ({"send": {**SEND, "type": "template", "template": {**TEMPLATE, "otp_button": value}}},
         ("send", "template", "otp_button")),
        ({"send": {**SEND, "type": "template", "template": TEMPLATE, "meta_business_agent": value}},
         ("send", "meta_business_agent")),
        ({"send": SEND, "history": [{"direction": "outbound", "at": "2026-10-10T09:00:00+00:00", "type": "text",
                                     "status": "delivered", "business_app": value}]},
         ("history", 0, "business_app")),
    ]


@pytest.mark.parametrize("value", [1, 0, 1.0, "true", "yes", None])
def test_a_flag_that_is_not_a_json_boolean_is_refused_naming_it(value):
    for request, path in _requests(value):
        with pytest.raises(ValidationError) as refused:
            REQUEST.load(request)
        messages = refused.value.messages
        for key in path:
            assert key in messages, (request, messages)
            messages = messages[key]


@pytest.mark.parametrize("value", [True, False])
def test_a_json_boolean_is_loaded_as_itself(value):
    loaded = REQUEST.load({"send": SEND, "context": {"opted_in": value},
                           "history": [{"direction": "outbound", "at": "2026-10-10T09:00:00+00:00", "type": "text",
                                        "status": "delivered", "business_app": value}]})
    assert loaded.context["opted_in"] is value
    assert loaded.history[0].business_app is value


@pytest.mark.parametrize("value", [1, 0, "true"])
def test_a_webhook_status_billable_that_is_not_a_json_boolean_is_refused(value):
    with pytest.raises(ValidationError) as refused:
        PricingSchema().load({"billable": value, "category": "utility"})
    assert "billable" in refused.value.messages
    assert PricingSchema().load({"billable": False})["billable"] is False


@pytest.mark.parametrize(("request_body", "path"), [
    ([SEND], ("_schema",)),
    ("send", ("_schema",)),
    ({"send": "x"}, ("send", "_schema")),
    ({"send": SEND, "history": [[]]}, ("history", 0, "_schema")),
    ({"send": SEND, "context": []}, ("context", "_schema")),
    ({"send": {**SEND, "type": "template", "template": "code"}}, ("send", "template", "_schema")),
])
def test_anything_but_an_object_where_one_belongs_must_be_a_json_object(request_body, path):
    """RequestSchema: an array body or a string where an object belongs says so at its path, not marshmallow's
    "Invalid input type."."""
    with pytest.raises(ValidationError) as raised:
        REQUEST.load(request_body)
    errors = raised.value.messages
    for key in path:
        errors = errors[key]
    assert errors == ["must be a JSON object"]


def _pattern_validators():
    """Every validate.Regexp (or subclass) on a field (or a list field's items) of every marshmallow schema the
    package declares, as (module.Schema.field, validator)."""
    from marshmallow import validate

    found = []
    for schema in package_schemas():
        for field_name, field in schema._declared_fields.items():
            inner = getattr(field, "inner", None)
            for checked in (field, inner) if inner is not None else (field,):
                found += [(f"{schema.__module__}.{schema.__name__}.{field_name}", v) for v in checked.validators
                          if isinstance(v, validate.Regexp)]
    return found


def test_every_pattern_a_schema_checks_must_match_the_whole_value():
    """marshmallow's Regexp lets a final newline through a pattern ending in `$` ("+5511987654321\\n" was a phone
    number): every pattern on a schema field is a contract.strict.Pattern, which matches the whole value."""
    from policy_service.contract.strict import Pattern

    validators = _pattern_validators()
    assert len(validators) >= 20, validators  # the walk finds the package's patterns
    assert [name for name, validator in validators if type(validator) is not Pattern] == []


@pytest.mark.parametrize(("request_body", "path"), [
    ({"send": {**SEND, "to": "+5511988887777\n"}}, "send.to"),
    ({"send": SEND, "history_ref": {"phone_number_id": "1", "contact": "5511988887777\n"}}, "history_ref.contact"),
    ({"send": SEND, "context": {"currency": "USD\n"}}, "context.currency"),
    ({"send": {**SEND, "to": "US.13491208655302741918\n"}}, "send.to"),
])
def test_a_final_newline_is_not_part_of_a_valid_value(request_body, path):
    """A phone number, a wa_id, a BSUID or a currency code followed by a newline is refused naming the field (it was
    accepted and logged as "+55***********\\n"); without the newline it loads."""
    with pytest.raises(ValidationError) as raised:
        REQUEST.load(request_body)
    assert ".".join(map(str, next(iter(_flat(raised.value.messages))))) == path
    fixed = {key: ({k: (v.rstrip("\n") if isinstance(v, str) else v) for k, v in part.items()}
                   if isinstance(part, dict) else part) for key, part in request_body.items()}
    REQUEST.load(fixed)


def _flat(messages, path=()):
    for key, value in messages.items():
        if isinstance(value, dict):
            yield from _flat(value, (*path, key))
        else:
            yield (*path, key)


# RFC 3339 section 5.6 date-times (with offset): "T" and "Z" in either case, any number of fraction digits, -00:00.
RFC3339_TIMES = ["2026-12-07T10:00:00Z", "2026-12-07t10:00:00z", "2026-12-07T10:00:00z", "2026-12-07t10:00:00+01:00",
                 "2026-12-07T10:00:00.5+05:30", "2026-12-07T10:00:00.123456789Z", "2026-12-07T10:00:00-00:00"]
# ISO 8601 forms datetime.fromisoformat read (and so the API took) that are not RFC 3339 date-times, times without
# an offset, and text no reader takes.
NOT_RFC3339_TIMES = ["2026-W49-1T10:00:00Z", "2026-341T10:00:00Z", "20261207T100000Z", "2026-12-07", "2026-12-07T10",
                     "2026-12-07T10:00:00", "2026-12-07 10:00:00Z", "2026-12-07X10:00:00+00:00", "2026-12-07T10:00Z",
                     "2026-12-07T10Z", "2026-12-07T10:00:00+0100", "2026-12-07T10:00:00+01", "2026-12-07T10:00:00,5Z",
                     "2026-12-07T10:00:00.Z", "2026-12-07T10:00:00Z\n", " 2026-12-07T10:00:00Z",
                     "\uff12\uff10\uff12\uff16-12-07T10:00:00Z", "2026-12-07T10:00:00\u00b2Z", "2026-13-07T10:00:00Z",
                     "2026-02-30T10:00:00Z", "2026-12-07T24:00:00Z", "2026-12-07T23:59:60Z",
                     "2026-12-07T10:00:00+24:00", ""]


@pytest.mark.parametrize("text", RFC3339_TIMES)
def test_an_rfc3339_date_time_is_read_in_either_case(text):
    """Lowercase t and z (RFC 3339 section 5.6 allows them; fromisoformat refused the z) read as their capitals."""
    from datetime import datetime

    from policy_service.contract.strict import rfc3339_time

    assert rfc3339_time(text) == datetime.fromisoformat(text.upper())


@pytest.mark.parametrize("text", NOT_RFC3339_TIMES)
def test_what_is_not_an_rfc3339_date_time_with_offset_is_refused(text):
    """Week and ordinal dates, the basic format, a space or another separator, hours without minutes or seconds,
    offsets without a colon or minutes, a comma fraction, non-ASCII digits, no offset, and values out of range are
    refused by the reader and by the schema field, with one message saying what is expected."""
    from policy_service.contract.strict import NOT_RFC3339, RFC3339DateTime, rfc3339_time

    with pytest.raises(ValueError):
        rfc3339_time(text)
    with pytest.raises(ValidationError) as raised:
        RFC3339DateTime().deserialize(text)
    assert raised.value.messages == [NOT_RFC3339]


# The RFC 3339 section 5.6 date-time grammar (offset required, T and Z in either case, ASCII digits), as the reference
# rfc3339_time is proved against; the ranges are datetime's.
_GRAMMAR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
                      r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def _part(valid, other):
    """One part of a date-time: mostly a valid form (so that one odd part at a time is tried), else another."""
    valid, other = st.sampled_from(valid), st.sampled_from(other)
    return st.one_of(valid, valid, valid, other)


_PARTS = st.tuples(
    _part(["2026-12-07", "1999-12-31"], ["2026-W49-1", "2026-W49", "20261207", "2026W491", "2026-341", "2026-1207",
                                         "2026-02-30", "\uff12026-12-07", "2026-w49-1"]),
    _part(["T", "t"], [" ", "X", "", "TT"]),
    _part(["10:00:00", "23:59:59"], ["10:00", "10", "100000", "23:59:60", "24:00:00", "1:00:00", "10:00:0"]),
    _part(["", ".5", ".123456789"], [",5", ".", "..5", ".5.5", ".\u0665", ".+"]),
    _part(["Z", "z", "+01:00", "-00:00", "+23:59"], ["+0100", "+01", "+01:00:00", "+01:00:00.5", "+24:00", "+1:000", "",
                                                    "ZZ", "Z\n", " Z", "+01::0", "+01:00Z"]))


@settings(max_examples=600, deadline=None)
@given(_PARTS | st.text(alphabet="0123456789-:.+TtZzW ", max_size=30).map(lambda text: (text,)))
def test_rfc3339_time_reads_exactly_the_rfc3339_grammar(parts):
    """rfc3339_time (fixed-place checks, then fromisoformat) accepts a text exactly when the RFC 3339 grammar matches it
    and datetime can hold it, and then gives fromisoformat's time: on date, separator, time, fraction and offset
    forms ISO 8601 and fromisoformat have besides, and on random text of the same characters."""
    from datetime import datetime

    from policy_service.contract.strict import rfc3339_time

    text = "".join(parts)
    try:
        expected = datetime.fromisoformat(text.upper()) if _GRAMMAR.fullmatch(text) else None
    except ValueError:
        expected = None
    try:
        read = rfc3339_time(text)
    except ValueError:
        read = None
    assert read == expected and (read is None or read.utcoffset() == expected.utcoffset()), text


def test_every_pattern_a_schema_checks_says_what_is_expected():
    """No field of any schema in the package answers marshmallow's "String does not match expected pattern.": a
    contact filter said only that to a BSUID (GET /v1/decisions?contact=US.…), so every Pattern (and Regexp) is given
    an error naming what is expected."""
    from marshmallow import validate

    patterns = _pattern_validators()
    silent = [name for name, validator in patterns if validator.error in (None, validate.Regexp.default_message)]
    assert len(patterns) >= 10 and not silent, (len(patterns), silent)

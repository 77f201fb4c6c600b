"""marshmallow fields (and the request schemas' base) that accept only the JSON type they name, and a pattern
validator that accepts only a whole match.

marshmallow's Boolean, even given `truthy={True}, falsy={False}`, accepts 1, 0, 1.0 and 0.0: Python's
`1 in {True}` is true (1 == True and both hash alike). A policy flag (opted_in, business_app, a status's
`pricing.billable`) must be a JSON boolean, so a 1 is refused like "yes" is.

marshmallow's Regexp matches with re.match, where `$` also matches before a final newline: `^\\+[0-9]{7,15}$`
accepted "+5511987654321\n" as a phone number. `Pattern` requires the whole value to match.

marshmallow's AwareDateTime reads with datetime.fromisoformat, which takes every ISO 8601 form (week dates
`2026-W49-1T10:00:00Z`, basic `20261207T100000Z`, any separator, minutes without seconds, `+0100`) and refuses the
lowercase `t` and `z` RFC 3339 allows. `RFC3339DateTime` (and `rfc3339_time`, the fast path's reader) takes the RFC
3339 date-time exactly, with its offset required, as the OpenAPI `format: date-time` says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate


class StrictBoolean(fields.Boolean):
    """A JSON boolean only (true/false); anything else, 1 and 0 included, is marshmallow's "Not a valid boolean."."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={True}, falsy={False}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if type(value) is not bool:
            raise self.make_error("invalid", input=value)
        return value


class RequestSchema(Schema):
    """A request object's schema: anything but a JSON object where one belongs (an array body, `"send": "x"`)
    is "must be a JSON object" at that path (`_schema` for the body itself), not marshmallow's "Invalid input
    type."."""

    error_messages = {"type": "must be a JSON object"}


class Pattern(validate.Regexp):
    """validate.Regexp requiring the whole value to match (re.fullmatch): a `$` at the end of the pattern no longer
    lets a final newline through. The pattern is documented as given (OpenAPI `pattern`, an ECMAScript regex, where
    `$` ends the value)."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# RFC 3339 section 5.6 `date-time`: full-date "T" partial-time (seconds required, one or more fraction digits)
# time-offset ("Z" or +hh:mm / -hh:mm, required here: a time without one names no instant). Its section 5.6 NOTE lets
# "T" and "Z" be lowercase. What datetime.fromisoformat reads besides (Python 3.11: week dates, the basic format,
# any separator, hours without minutes or seconds, a "," or empty fraction, a space before the Z, offsets without a
# colon or with seconds) is told apart by the characters at fixed places: the offset at the end (a Z, or a sign and
# a colon), the separators of YYYY-MM-DDThh:mm:ss (every third character from the fifth, then what follows the
# seconds; a week date YYYY-Www-D has its second "-" elsewhere), and only digits between a "." and the offset.
# fromisoformat checks the other digits and the ranges (month 13, hour 24, +24:00, the leap second 60 it cannot
# hold). tests/contract/test_strict.py proves the result equals the grammar's on generated text. Read so rather than
# by a regular expression: the fast path reads up to 10,000 history times a request, and these checks cost about a
# third of what a regular expression added to fromisoformat (0.12 against 0.33 µs a time, measured 2026-12-07).
_SHAPES = frozenset(f"--{t}::{after}" for t in "Tt" for after in ".Zz+-")
_OFFSETS = frozenset(("+:", "-:"))
# The common forms, without a fraction, read at once: every third character from the fifth (the same separators, then
# the Z, or the offset's sign and colon) with the length it must come with (a shorter or longer text with the same
# characters there is not the form). A text with `PLAIN_FORMS.get(text[4::3]) == len(text)` is read by
# datetime.fromisoformat alone (contract.fastload's history loop tests it inline, without a call per message).
PLAIN_FORMS: dict[str, int] = {**{f"--{t}::Z": 20 for t in "Tt"},
                               **{f"--{t}::{sign}:": 25 for t in "Tt" for sign in "+-"}}
_fromisoformat = datetime.fromisoformat
NOT_RFC3339 = "Not an RFC 3339 date-time with offset, like 2026-12-07T10:00:00Z or 2026-12-07T10:00:00.5+05:30."


def rfc3339_time(value: str) -> datetime:
    """An RFC 3339 date-time with its offset (a str) as an aware datetime (fixed offset; fraction digits past the
    microsecond dropped, as datetime.fromisoformat drops them). Raises ValueError for any other text, ISO 8601 forms
    RFC 3339 does not have included, and for a valid-looking one datetime cannot hold (2026-02-30, 23:59:60)."""
    if PLAIN_FORMS.get(value[4::3]) == len(value):
        return _fromisoformat(value)
    last = value[-1:]
    if last == "Z":
        offset = len(value) - 1
    elif last == "z":
        value = value[:-1] + "Z"  # fromisoformat reads a Z only as a capital (and any separator, so a t)
        offset = len(value) - 1
    elif value[-6::3] in _OFFSETS:
        offset = len(value) - 6
    else:
        raise ValueError(NOT_RFC3339)
    if value[4:20:3] not in _SHAPES:
        raise ValueError(NOT_RFC3339)
    if offset != 19:  # a fraction: "." and digits up to the offset
        fraction = value[20:offset]
        if value[19] != "." or not fraction.isdigit():  # fromisoformat refuses non-ASCII digits
            raise ValueError(NOT_RFC3339)
    return _fromisoformat(value)


class RFC3339DateTime(fields.AwareDateTime):
    """An RFC 3339 date-time with its offset (rfc3339_time), loaded as an aware datetime; anything else, a non-string
    included, is NOT_RFC3339. Documented as OpenAPI `format: date-time` (an AwareDateTime)."""

    default_error_messages = {"invalid": NOT_RFC3339}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if type(value) is not str:
            raise self.make_error("invalid")
        try:
            return rfc3339_time(value)
        except ValueError:
            raise self.make_error("invalid") from None

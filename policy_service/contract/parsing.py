"""The one place every request body is parsed: raw bytes (or form text) -> a JSON value, within limits.

Every input path calls `parse_json` — POST /v1/decisions and /v1/decisions/batch (through the arguments
parser), the /ui/try form, Meta's signed webhooks and `policy-service check` — so a hostile body meets the
same bounds everywhere, before any schema deserializes it:

- encoding: strict UTF-8; anything else is a 400.
- syntax: standard JSON only (no NaN/Infinity); a syntax error is a 400 naming line and column.
- depth: at most `Limits.max_depth` nested arrays/objects (a 400). Python's parser itself stops at the
  interpreter's recursion limit; that also becomes the same 400, never a RecursionError.
- numbers: a literal longer than `Limits.max_number_chars` characters is refused where it stands (422),
  before Python turns it into an int (CPython refuses > 4,300 digits with a ValueError); a number too
  large for a float (1e400) is refused too.
- strings (values and keys): no NUL (PostgreSQL cannot store it) and no lone surrogate (UTF-8 cannot
  encode it, so the database driver would fail): a 422 naming the field.
- keys: each at most once in an object (a 422 naming it: "given 2 times in one object; give it once"). JSON
  parsers keep the last of repeated keys, so `{"marketing_opt_out": true, "marketing_opt_out": false}` would be
  read as false here and perhaps as true by a proxy or log in front of the service: a deny turned into an allow.
- item counts: any one array or object holds at most `Limits.max_items` members, and named arrays their own
  limit (`Limits.arrays`, e.g. `history` 10,000, `requests` the batch size); the whole body at most
  `Limits.max_values` JSON values. An oversized array is refused without looking inside it.

A decision request's `history` (up to 10,000 messages; `Limits.histories` says where they are) is not walked when
contract.fastload's typed decoder accepts it: a history of the declared types is within every bound above by
construction (strings, booleans and integers in objects of known members, three levels deep), so only the rest of
the body is walked; fastload remembers the typed messages for the schema's load of the same body.

Lenient limits (`Limits.lenient`, Meta's webhooks) refuse a body only for its encoding, syntax, depth and item
counts: a too long number, a non-finite one, a NUL or a lone surrogate is kept where it stands and its path
listed in the result's `unreadable` (an `Unreadable` dict), so the reader can skip only the part holding it.

Errors come back as `BodyRefused(status, message, errors)` with `errors` in the one error shape's
`{"field.path": [messages]}` form, at most `MAX_ERRORS` fields (see `bounded_errors`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from marshmallow.exceptions import SCHEMA  # marshmallow's key of an object's own errors (`_schema`)

from .fastload import HISTORY_VALUES_PER_MESSAGE, remember, typed_history
from .schemas import HISTORY_TOO_LONG, MAX_BATCH, MAX_HISTORY

# The first this many fields with errors are listed; the rest are counted (an error body stays small
# even when every one of 10,000 history items is wrong).
MAX_ERRORS = 20
ROOT = "_request"
MORE = "_more"
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_LONG_DIGITS = re.compile("[0-9]{20}")


@dataclass(frozen=True)
class Limits:
    """The bounds one input path applies to its bodies.

    `arrays` maps a path pattern (keys, with "*" for any array index, e.g. ("requests", "*", "history"))
    to (most items, message); the message may use {limit} and {count}.
    """

    max_depth: int = 32
    max_items: int = 1_000
    max_values: int = 200_000
    max_number_chars: int = 40
    lenient: bool = False  # values refused above are listed in Unreadable.unreadable, not refused
    arrays: Mapping[tuple[str, ...], tuple[int, str]] = field(default_factory=dict)
    # Path patterns of decision histories (each also in `arrays`): typed by contract.fastload instead of walked.
    histories: tuple[tuple[str, ...], ...] = ()


def decision_limits() -> Limits:
    """POST /v1/decisions, /ui/try and `policy-service check`: a history of at most MAX_HISTORY messages."""
    return Limits(max_items=1_000, arrays={("history",): (MAX_HISTORY, HISTORY_TOO_LONG)}, histories=(("history",),))


def fixture_limits() -> Limits:
    """`policy-service check`: a decision request, bare or as the `request` of a fixture file."""
    limits = decision_limits()
    return replace(limits, arrays={**limits.arrays, ("request", "history"): limits.arrays[("history",)]},
                   histories=(("history",), ("request", "history")))


def batch_limits(max_batch: int) -> Limits:
    """POST /v1/decisions/batch: at most `max_batch` requests (capped at MAX_BATCH), each as a decision."""
    return Limits(max_items=1_000, arrays={
        ("requests",): (min(max_batch, MAX_BATCH), "at most {limit} requests per batch, got {count}"),
        ("requests", "*", "history"): (MAX_HISTORY, HISTORY_TOO_LONG),
    }, histories=(("requests", "*", "history"),))


# Meta's webhooks: many messages and statuses per payload are normal (the body size, MAX_CONTENT_LENGTH,
# bounds them); only absurd fan-outs are refused.
# Values are judged leniently: Meta retries a refused payload whole, so one bad value must cost only its event.
WEBHOOK_LIMITS = Limits(max_items=100_000, max_values=2_000_000, lenient=True)


class Unreadable(dict):
    """A JSON object parsed under lenient limits that holds values the limits would refuse: `unreadable` maps
    each one's path ("entry.0.changes.0.value.messages.7.text.body") to why."""

    def __init__(self, value: dict[str, Any], unreadable: dict[str, list[str]]):
        super().__init__(value)
        self.unreadable = unreadable


class BodyRefused(Exception):
    """A body refused before deserialization: the HTTP status (400 or 422), a message and field errors."""

    def __init__(self, status: int, message: str, errors: dict[str, list[str]]):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class _Refused(str):
    """A literal the parser met and refused to convert (kept as its reason; the walk reports its path)."""


class _Repeating(dict):
    """An object that gave some keys more than once (`repeated`: each such key and how many times); it holds the
    last value of each, as a dict would. The walk reports each repeated key's path."""

    def __init__(self, pairs: list[tuple[str, Any]], repeated: dict[str, int]):
        super().__init__(pairs)
        self.repeated = repeated


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The careful parse's object: a dict, or a _Repeating one when a key is given more than once."""
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    return _Repeating(pairs, {key: times for key, times in counts.items() if times > 1})


def parse_json(body: bytes | str, limits: Limits) -> Any:
    """The JSON value of a body, or BodyRefused: 400 for undecodable, malformed or too deeply nested
    JSON; 422 naming the field for a too long number, a NUL or lone surrogate, or too many items."""
    forget()  # what was kept of an earlier body is let go
    if isinstance(body, bytes | bytearray):
        value = _parsed_fast(body, limits)
        if value is not _UNSURE:
            return value
        # Not certainly within the limits: parsed again below, where every refusal is worded.
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BodyRefused(400, f"the body is not UTF-8 (byte {error.start})",
                              {ROOT: [f"not UTF-8: invalid byte at {error.start}"]}) from None
    else:
        text = body
        # Text (a form, a file, a Python caller's JSON) takes the fast path as its UTF-8 bytes, which decode back
        # to the same text; text holding a lone surrogate cannot be encoded and is parsed carefully (and refused).
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:
            encoded = None
        value = _UNSURE if encoded is None else _parsed_fast(encoded, limits)
        if value is not _UNSURE:
            return value

    def number(literal: str, convert: Any) -> Any:
        if len(literal) > limits.max_number_chars:
            return _Refused(f"a number of at most {limits.max_number_chars} characters, got {len(literal)}")
        return convert(literal)

    # Hooks on every number cost a Python call each (0.5 s for a million items), so they are used only
    # when a long digit run exists; without one no literal can reach int()'s 4,300-digit limit.
    careful = _LONG_DIGITS.search(text) is not None
    try:
        value = json.loads(text, parse_constant=lambda s: _Refused(f"{s} is not JSON"), object_pairs_hook=_object,
                           **({"parse_int": lambda s: number(s, int), "parse_float": lambda s: number(s, float)}
                              if careful else {}))
    except json.JSONDecodeError as error:
        detail = f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        raise BodyRefused(400, f"the body is {detail}", {ROOT: [detail]}) from None
    except RecursionError:
        raise too_deep(limits) from None
    unreadable = _check(value, limits)
    return Unreadable(value, unreadable) if unreadable else value


_UNSURE = object()
# A key escaped as \u003a-style text hides a colon from the count below; such a body goes down the careful path.
_ESCAPED_COLONS = (b"\\u003a", b"\\u003A")
# An escaped NUL in a body sends it down the careful path. So does a literal beyond 64 bits, which orjson reads
# as a float (any float does: no member of a request is one), and a lone surrogate, NaN, Infinity, 1e400, a byte
# order mark or bad UTF-8, which make orjson fail.
_NUL = b"\\u0000"


def _parsed_fast(body: bytes | bytearray, limits: Limits) -> Any:
    """The body's value by orjson when it is certainly within the limits; else _UNSURE (the caller parses again,
    with the standard library, and words every refusal). Equal to what the careful path returns: orjson reads
    standard JSON the same way and refuses what that path would refuse (tests/contract/test_parsing.py)."""
    # Most bodies hold no backslash at all: one byte is found by memchr (~0.03 ms for a 10,000-event history), where
    # the six-byte escape is searched at ~0.7 ms.
    if b"\\" in body and _NUL in body:
        return _UNSURE
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNSURE
    found = _typed_histories(value, limits)
    # A history the typed decoder accepts is within every limit (fastload.typed_history): only the rest of the body
    # is walked, the histories' values counted at their most. Past that estimate, the whole body is walked and
    # counted exactly.
    if found and _within(value, limits, {id(history) for history, _ in found},
                         sum(len(typed) for _, typed in found) * HISTORY_VALUES_PER_MESSAGE):
        history = value.get("history") if type(value) is dict else None
        if any(typed_list is history for typed_list, _ in found):
            # The body's own history is dumped apart and placed in the body's text as it stands (the same bytes as
            # one dump), and kept for the decision log, which writes that text again (`dumped_history`).
            text = orjson.dumps(history)
            if not _no_repeated_key(body, orjson.dumps({**value, "history": orjson.Fragment(text)})):
                return _UNSURE
            _DUMPED.set((history, text))
        elif not _no_repeated_key(body, orjson.dumps(value)):
            return _UNSURE
        remember(found)  # for the schema's load of this body: each history is typed once
        return value
    return value if _within(value, limits) and _no_repeated_key(body, orjson.dumps(value)) else _UNSURE


# The top-level history of the body parse_json read last in this thread (or task), with its compact JSON text as
# orjson wrote it while the body's keys were counted: (the list, its text). The list is kept with its text, so
# another list never matches; taken once (dumped_history).
_DUMPED: ContextVar[tuple[list[Any], bytes] | None] = ContextVar("parsing_dumped_history", default=None)


def dumped_history(history: Any) -> bytes | None:
    """orjson.dumps(history) when `history` is the very list parse_json last read as a decision body's `history`
    in this thread (or task) and typed (fastload.typed_history), else None; given once, then let go. The decision
    log writes a 10,000-event history's text with it instead of dumping it again (~1 ms). A parsed body is never
    changed in place (the service builds new dicts), so the text is the list's. Until it is taken, the list and its
    text are kept (one body per thread or task): a request that ends without its row being written should `forget`."""
    dumped = _DUMPED.get()
    if dumped is None or dumped[0] is not history:
        return None
    _DUMPED.set(None)
    return dumped[1]


def forget() -> None:
    """Let go of what parse_json kept of the last body in this thread or task (fastload's typed histories, the
    history's text for the log): called by parse_json itself, and where a request ends, so a body refused after
    parsing, or not logged, is not held until the thread parses its next one."""
    remember([])
    _DUMPED.set(None)


def _no_repeated_key(body: bytes | bytearray, dumped: bytes) -> bool:
    """True when no object of the body repeats a key (orjson, like every JSON parser, keeps the last one silently);
    `dumped` is orjson's text of the body's value. Every member of an object is written with one colon outside
    strings, and a colon inside a string is written as itself: the body and orjson's text of its value hold the
    same number of colons exactly when no member was dropped. Two C counts (with the dump, ~1.5 ms for a
    10,000-event history); a body with a colon escaped as \u003a is not counted but parsed carefully (False)."""
    if b"\\" in body and any(escaped in body for escaped in _ESCAPED_COLONS):
        return False
    return body.count(b":") == dumped.count(b":")


def _typed_histories(value: Any, limits: Limits) -> list[tuple[list[Any], list[Any]]]:
    """The decision histories at `limits.histories` that fastload.typed_history accepts, each with its typed
    messages — when the limits keep every bound that typing proves: the history's own item limit, no other limit
    inside it, objects of at most HISTORY_VALUES_PER_MESSAGE members, and three levels (the history, a message, its
    template or referral) within max_depth."""
    found = []
    for pattern in limits.histories:
        if len(pattern) + 2 >= limits.max_depth or limits.max_items < HISTORY_VALUES_PER_MESSAGE \
                or any(len(other) > len(pattern) and other[:len(pattern)] == pattern for other in limits.arrays):
            continue
        limit = limits.arrays[pattern][0]
        for history in _at(value, pattern):
            if type(history) is list and len(history) <= limit:
                typed = typed_history(history)
                if typed is not None:
                    found.append((history, typed))
    return found


def _at(value: Any, path: tuple[str, ...]) -> Any:
    """The values found at `path` (keys, "*" for every array index)."""
    if not path:
        yield value
    elif path[0] == "*":
        if type(value) is list:
            for member in value:
                yield from _at(member, path[1:])
    elif type(value) is dict and path[0] in value:
        yield from _at(value[path[0]], path[1:])


def _within(value: Any, limits: Limits, settled: frozenset[int] | set[int] = frozenset(),
            settled_values: int = 0) -> bool:
    """True when no container is too deep or too long and the body holds at most max_values values (the
    checks of _check that strings cannot fail once NULs and lone surrogates are ruled out). `settled`: the ids
    of containers (members of objects on the paths of limits.arrays) known to be within the limits, not walked;
    together they hold at most `settled_values` values besides themselves."""
    if type(value) is not dict and type(value) is not list:
        return type(value) is not float
    prefixes = {pattern[:end] for pattern in limits.arrays for end in range(len(pattern) + 1)}
    count = 1 + settled_values
    # (container, its path pattern while it can still reach a pattern of limits.arrays else None, depth)
    stack: list[tuple[Any, tuple[str, ...] | None, int]] = [(value, (), 0)]
    while stack:
        item, pattern, depth = stack.pop()
        if depth >= limits.max_depth:
            return False
        count += len(item)
        if count > limits.max_values:
            return False
        limit = limits.arrays[pattern][0] if pattern in limits.arrays else limits.max_items
        if len(item) > limit:
            return False
        if type(item) is list:
            inner = (*pattern, "*") if pattern is not None and (*pattern, "*") in prefixes else None
            members = item
        else:
            inner = None
            members = item.values()
            if pattern is not None:
                for key, member in item.items():
                    if (type(member) is dict or type(member) is list) and id(member) not in settled:
                        stack.append((member, (*pattern, key) if (*pattern, key) in prefixes else None, depth + 1))
                    elif type(member) is float:
                        return False
                continue
        for member in members:
            kind = type(member)
            if kind is dict or kind is list:
                stack.append((member, inner, depth + 1))
            elif kind is float:
                return False
    return True


def too_deep(limits: Limits) -> BodyRefused:
    """The 400 for a body nested deeper than limits.max_depth (the Python API words a caller's value so too)."""
    detail = f"nested deeper than {limits.max_depth} levels"
    return BodyRefused(400, f"the body is {detail}", {ROOT: [detail]})


def _check(value: Any, limits: Limits) -> dict[str, list[str]]:
    """Walk the parsed value once, without recursion, collecting the errors of the module docstring; under
    lenient limits, the values' errors of an object are returned instead of raised."""
    errors: dict[str, list[str]] = {}
    # Under lenient limits, a value's error (not a container's) is the reader's to judge.
    values_errors: dict[str, list[str]] = {} if limits.lenient else errors
    values = 0
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        values += 1
        if values > limits.max_values:
            raise BodyRefused(422, f"invalid request: more than {limits.max_values} JSON values in one body",
                              {ROOT: [f"at most {limits.max_values} JSON values in one body"]})
        if isinstance(item, float) and not math.isfinite(item):
            _add(values_errors, path, "must be a finite number")
            continue
        if isinstance(item, str):
            if type(item) is _Refused:
                _add(values_errors, path, f"must be {item}" if not item.endswith("not JSON") else str(item))
            elif _BAD_CHARACTER.search(item):
                _add(values_errors, path, _character_error(item))
            continue
        if not isinstance(item, dict | list):
            continue
        if len(path) >= limits.max_depth:
            raise too_deep(limits)
        limit, message = _item_limit(path, limits)
        if len(item) > limit:
            _add(errors, path, message.format(limit=limit, count=len(item)))
            continue
        if isinstance(item, list):
            # Pushed last first, so errors are listed in document order.
            stack.extend((item[index], (*path, index)) for index in range(len(item) - 1, -1, -1))
            continue
        if type(item) is _Repeating:
            for key, times in item.repeated.items():
                # Under lenient limits (Meta's webhooks) the event holding it is skipped, not the payload refused.
                _add(values_errors, (*path, key), f"given {times} times in one object; give it once")
        for key, member in reversed(item.items()):
            if _BAD_CHARACTER.search(key):
                _add(values_errors, (*path, key.encode("utf-8", "backslashreplace").decode()), _character_error(key))
            else:
                stack.append((member, (*path, key)))
    if values_errors is not errors and values_errors and not isinstance(value, dict):
        errors.update(values_errors)  # nothing to read around: a bare bad value is refused
    if errors:
        raise BodyRefused(422, error_message(errors), bounded_errors(errors))
    return {} if values_errors is errors else values_errors


def _character_error(text: str) -> str:
    if "\x00" in text:
        return "must not contain a NUL character"
    return "must not contain a lone surrogate (\\ud800-\\udfff without its pair): it is not valid Unicode"


def _item_limit(path: tuple[str | int, ...], limits: Limits) -> tuple[int, str]:
    if limits.arrays:
        pattern = tuple("*" if isinstance(part, int) else part for part in path)
        if pattern in limits.arrays:
            return limits.arrays[pattern]
    return limits.max_items, "at most {limit} items, got {count}"


def _add(errors: dict[str, list[str]], path: tuple[str | int, ...], message: str) -> None:
    errors.setdefault(".".join(map(str, path)) or ROOT, []).append(message)


def bounded_errors(errors: dict[str, list[str]], limit: int = MAX_ERRORS) -> dict[str, list[str]]:
    """The first `limit` fields with errors (each with at most 3 messages), plus a `_more` entry saying how
    many fields were left out."""
    if len(errors) <= limit and all(len(messages) <= 3 for messages in errors.values()):
        return errors
    kept = {path: messages[:3] for path, messages in list(errors.items())[:limit]}
    if len(errors) > limit:
        kept[MORE] = [f"{len(errors) - limit} more fields with errors are not listed"]
    return kept


def error_message(errors: dict[str, list[str]]) -> str:
    """One line for the error shape's `message`: the first field's first error and how many more fields."""
    first = next(iter(errors))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid request: {first}: {errors[first][0]}{more}"


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as {"send.at": [messages]} paths. A nested object's own error
    (marshmallow's `_schema` key: "must be a JSON object") is named by the object's path, `send`, `requests.1`, as
    every other refusal of a whole object is (a batch's request refused once the store is read is `requests.2`);
    only the body's own keeps `_schema`."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = (prefix if key == SCHEMA else f"{prefix}.{key}") if prefix else str(key)
            flat.update(flatten_errors(value, path))
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        flat[prefix or ROOT] = list(errors)
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or ROOT] = [str(errors)]
    return flat

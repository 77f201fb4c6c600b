"""The decision request loaded without marshmallow when it is valid: the hot path of every decision.

marshmallow validates a history message in ~20 µs (most of a 10,000-event request's load) and a send with its
empty context in ~200 µs. Here msgspec checks the history and the send against typed Structs declared from the
same vocabulary as contract.schemas (member names, JSON types, enumerations, lengths: ~0.3 µs a message, in C),
and a short Python loop finishes what a Struct cannot say (timestamps, MessageSchema's and SendSchema's cross-field
rules, the template time-to-live range, the recipient) while it builds the `Message`, `Send` and
`DecisionRequest` values marshmallow would. Anything not certainly valid gives None: the schema then loads the
request through marshmallow, so every error, its field path and its wording come from marshmallow alone (the
fast path only ever answers for valid input). A group send, Direct Send, the Marketing Messages API and Meta
Business Agent flags, a referral's welcome_message, and context members other than booleans, counts, patterned
codes, days and the WABA time zone are always left to marshmallow. tests/contract/test_fastload.py proves on random
valid and invalid requests, and on raw bodies through contract.parsing, that the result equals marshmallow's.

`typed_history` is also what contract.parsing uses to bound a decision body's history without walking it: a list
the Structs accept is at most MAX_HISTORY objects of known members holding strings, booleans and integers, at
most HISTORY_VALUES_PER_MESSAGE JSON values each, three levels deep. What it typed there it `remember`s, and
`history` takes it from there when the schema loads the same body, so a history is typed once per request.

What is checked is what contract.schemas declares for SendSchema, SendTemplateSchema, MessageSchema,
TemplateSchema and ReferralSchema: the member names, JSON types (strict: a boolean is not an integer, 1 is not
true, null is not a string), enumerations, lengths (in code points, as len()), timestamps (strict.rfc3339_time, as
the schemas' RFC3339DateTime reads them: an RFC 3339 date-time with offset, 2000-01-01 to 2999-12-31), the template
name and language patterns, the template time-to-live range, the recipient (core.identities.parse_contact, the one
parser SendSchema uses), the sending phone_number_id's pattern (digits), SendSchema's and MessageSchema's cross-field
rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from marshmallow import fields, validate
from msgspec import Meta, Struct

from ..core.identities import E164, NotAContact, parse_contact
from ..core.messages import UNKNOWN_TYPE, DecisionRequest, Message, Send, Template
from ..core.vocabulary import DELIVERED_STATUSES
from .schemas import (
    CATEGORIES,
    DELIVERY_STATUSES,
    DIRECT_SEND_CATEGORIES,
    EARLIEST,
    HISTORY_TEMPLATE_NAME,
    INBOUND_ONLY_TYPES,
    LATEST,
    MAX_HISTORY,
    MESSAGE_TYPES,
    PHONE_NUMBER_ID,
    TEMPLATE_LANGUAGE,
    TEMPLATE_NAME,
    TEMPLATE_STATUSES,
    ContextSchema,
    ReferralSchema,
    is_iana_zone,
)
from .strict import PLAIN_FORMS, Pattern, StrictBoolean, rfc3339_time

# Every optional member below defaults to None (or the value the core record defaults to) while its annotation
# admits no null: msgspec does not check defaults, so an absent member loads as None and an explicit null is
# refused, as marshmallow refuses it (allow_none is off on every field here). The Structs are frozen so that
# equal templates can share one Template (a cache keyed by the Struct).


class _Template(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """TemplateSchema: a past outbound message's template."""

    name: Annotated[str, Meta(min_length=1, max_length=512)]
    language: Annotated[str, Meta(min_length=2, max_length=16)]
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    status: Literal[TEMPLATE_STATUSES] = "APPROVED"  # type: ignore[valid-type]
    otp_button: bool = None  # type: ignore[assignment]
    message_send_ttl_seconds: int = None  # type: ignore[assignment]  # -1 or 30..2592000: checked in _template


class _SendTemplate(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """SendTemplateSchema: category and status may be left to the template registry (None until it fills them)."""

    name: Annotated[str, Meta(min_length=1, max_length=512)]
    language: Annotated[str, Meta(min_length=2, max_length=16)]
    category: Literal[CATEGORIES] = None  # type: ignore[valid-type,assignment]
    status: Literal[TEMPLATE_STATUSES] = None  # type: ignore[valid-type,assignment]
    otp_button: bool = None  # type: ignore[assignment]
    message_send_ttl_seconds: int = None  # type: ignore[assignment]


# ReferralSchema's members in the order marshmallow loads them (declaration order, which the loaded dict keeps);
# all strings but welcome_message (a free JSON object), which is left to marshmallow. source_type: ad or post.
_REFERRAL_ORDER = tuple(ReferralSchema().load_fields)
_ReferralKey = Literal[tuple(name for name in _REFERRAL_ORDER if name != "welcome_message")]  # type: ignore[misc]
_SOURCE_TYPES = ("ad", "post")
_INBOUND_TYPES = tuple(dict.fromkeys((*MESSAGE_TYPES, *INBOUND_ONLY_TYPES)))
_OUTBOUND_TYPES = (*MESSAGE_TYPES, UNKNOWN_TYPE)


class _Inbound(Struct, tag_field="direction", tag="inbound", forbid_unknown_fields=True, gc=False):
    """MessageSchema, direction inbound: template, status, delivered_at and business_app are not allowed."""

    at: str
    type: Literal[_INBOUND_TYPES]  # type: ignore[valid-type]
    id: str = None  # type: ignore[assignment]
    referral: dict[_ReferralKey, str] = None  # type: ignore[assignment]


class _Outbound(Struct, tag_field="direction", tag="outbound", forbid_unknown_fields=True, gc=False):
    """MessageSchema, direction outbound: a referral and the inbound-only types are not allowed."""

    at: str
    type: Literal[_OUTBOUND_TYPES]  # type: ignore[valid-type]
    id: str = None  # type: ignore[assignment]
    template: _Template = None  # type: ignore[assignment]
    status: Literal[DELIVERY_STATUSES] = "delivered"  # type: ignore[valid-type]
    delivered_at: str = None  # type: ignore[assignment]
    business_app: bool = False


class _Send(Struct, forbid_unknown_fields=True):
    """SendSchema for an individual send (a group's is left to marshmallow: its participants' checks). A member
    given as null is refused here (None is only the default), as SendSchema refuses it."""

    at: str
    to: Annotated[str, Meta(min_length=1, max_length=255)]
    type: Literal[MESSAGE_TYPES]  # type: ignore[valid-type]
    template: _SendTemplate = None  # type: ignore[assignment]
    phone_number_id: Annotated[str, Meta(min_length=1, max_length=64)] = None  # type: ignore[assignment]
    recipient_type: Literal["individual"] = None  # type: ignore[assignment]
    marketing_messages_api: bool = False
    category: Literal[DIRECT_SEND_CATEGORIES] = None  # type: ignore[valid-type,assignment]
    meta_business_agent: bool = False


_History = Annotated[list[_Inbound | _Outbound], Meta(max_length=MAX_HISTORY)]
# The most JSON values one history item typed_history accepts can hold, counted as contract.parsing counts them
# (the item itself, its members with the `direction` tag, and the members of its template or referral).
HISTORY_VALUES_PER_MESSAGE = max(2 + len(_Inbound.__struct_fields__) + len(_ReferralKey.__args__),
                                 2 + len(_Outbound.__struct_fields__) + len(_Template.__struct_fields__))
_convert = msgspec.convert
_read_time = rfc3339_time


def _build_type_information() -> None:
    """Have msgspec build every Struct's decoding information now, while this module is imported (one thread,
    under the import lock). msgspec builds it on a type's first use, calling back into Python to resolve the
    annotations; two threads making that first use at once crashed a gunicorn worker with SIGSEGV (8 clients
    right after boot; tests/contract/test_fastload_threads.py). Once built it is only read."""
    for kind, sample in ((_History, []), (_Send, {})):
        try:
            _convert(sample, kind)
        except msgspec.ValidationError:
            pass  # refusing the sample needs the same information: it is built


_build_type_information()


# The histories contract.parsing typed while it bounded a body, until the schema loads that body (in this thread or
# task): {id of the history list: (the list, its typed messages)}. The list is kept with its id, so an id reused by
# another list never matches; a history looked up and not found is typed again.
_TYPED: ContextVar[dict[int, tuple[list[Any], list[Any]]] | None] = ContextVar("fastload_typed", default=None)


def remember(typed: list[tuple[list[Any], list[Any]]]) -> None:
    """Keep (history, its typed messages) pairs for `history` to use when the same lists are loaded (replacing
    what an earlier body left): contract.parsing calls this for the histories it typed."""
    _TYPED.set({id(items): (items, messages) for items, messages in typed} if typed else None)


def _remembered(items: Any) -> list[Any] | None:
    memo = _TYPED.get()
    if memo is None:
        return None
    entry = memo.pop(id(items), None)
    return entry[1] if entry is not None and entry[0] is items else None


def typed_history(items: Any) -> list[_Inbound | _Outbound] | None:
    """The JSON history as typed messages when every member of every message is of the declared type (or None):
    at most MAX_HISTORY messages, each at most HISTORY_VALUES_PER_MESSAGE JSON values, no float anywhere."""
    try:
        return _convert(items, _History)
    except msgspec.ValidationError:
        return None


def request(data: Any) -> DecisionRequest | None:
    """A decision request (send, history, an absent or empty context; no history_ref) exactly as
    DecisionRequestSchema loads it, or None when any part is not certainly valid."""
    if type(data) is not dict or not data.keys() <= _REQUEST_KEYS or "send" not in data:
        return None
    context = _context(data.get("context", {}))
    if context is None:
        return None
    send = _send(data["send"])
    if send is None:
        return None
    messages = history(data["history"]) if "history" in data else ()
    if messages is None:
        return None
    return DecisionRequest(send=send, history=messages, context=context)


_REQUEST_KEYS = frozenset(("send", "history", "context"))


def history(items: Any) -> tuple[Message, ...] | None:
    """The messages of a JSON history exactly as DecisionRequestSchema loads them, or None when any of them is
    not certainly valid (the caller then lets marshmallow load, and word the errors). A history contract.parsing
    typed while parsing its body (`remember`) is not typed again."""
    typed = _remembered(items)
    if typed is None:
        typed = typed_history(items)
        if typed is None:
            return None
    messages = []
    append = messages.append
    templates: dict[_Template, Template] = {}
    # The loop runs once per message (10,000 in a long history): names are local, and `at` is read inline (_time).
    # The common forms (rfc3339_time's first test: no fraction, a Z or an offset) with a year from 2001 to 2998 (the
    # text's first four characters, digits once fromisoformat has read it) are read at once: in range by their text.
    make, inbound, read_time, earliest, latest = Message, _Inbound, _read_time, EARLIEST, LATEST
    plain, from_text = PLAIN_FORMS.get, datetime.fromisoformat
    try:
        for item in typed:
            text = item.at
            if plain(text[4::3]) == len(text) and "2001" <= text < "2999":
                at = from_text(text)
            else:
                at = read_time(text)
                if not (2000 < at.year < 2999 or earliest <= at <= latest):
                    return None
            if type(item) is inbound:
                referral = item.referral
                if referral is not None:
                    if referral.get("source_type", "ad") not in _SOURCE_TYPES:
                        return None
                    referral = {name: referral[name] for name in _REFERRAL_ORDER if name in referral}
                append(make("inbound", at, item.type, None, "delivered", referral, item.id))
                continue
            kind, template = item.type, item.template
            if template is not None:
                if kind != "template":
                    return None
                # Equal templates are one immutable Template (a 10,000-event history names a handful).
                shared = templates.get(template)
                if shared is None:
                    shared = templates[template] = _template(template)
                    if shared is None:
                        return None
                template = shared
            elif kind == "template":
                return None
            delivered_at = item.delivered_at
            if delivered_at is not None:
                delivered_at = _time(delivered_at)
                if delivered_at is None or delivered_at < at or item.status not in DELIVERED_STATUSES:
                    return None
            append(make("outbound", at, kind, template, item.status, None, item.id, delivered_at, item.business_app))
    except ValueError:  # an `at` that is not an RFC 3339 date-time
        return None
    return tuple(messages)


def _time(value: str) -> datetime | None:
    """A timestamp as the schemas' RFC3339DateTime with their range loads it, or None."""
    try:
        at = _read_time(value)
    except ValueError:
        return None
    # rfc3339_time gives a fixed offset. Within 2001-2998 an offset (under 24 h) cannot leave the range.
    if not (2000 < at.year < 2999 or EARLIEST <= at <= LATEST):
        return None
    return at


_TEMPLATE_NAME, _TEMPLATE_LANGUAGE = re.compile(TEMPLATE_NAME).fullmatch, re.compile(TEMPLATE_LANGUAGE).fullmatch
_HISTORY_TEMPLATE_NAME = re.compile(HISTORY_TEMPLATE_NAME).fullmatch
_PHONE_NUMBER_ID = PHONE_NUMBER_ID.regex.fullmatch  # SendSchema's validator, as it reads (digits only)


def _template(value: _Template | _SendTemplate) -> Template | None:
    ttl = value.message_send_ttl_seconds
    if ttl is not None and ttl != -1 and not 30 <= ttl <= 2592000:
        return None
    # TemplateSchema's (a past message's) and SendTemplateSchema's Pattern validators, as they read (fullmatch: "en\n"
    # is no language).
    named = _TEMPLATE_NAME if type(value) is _SendTemplate else _HISTORY_TEMPLATE_NAME
    if not named(value.name) or not _TEMPLATE_LANGUAGE(value.language):
        return None
    return Template(value.name, value.language, value.category, value.status, value.otp_button, ttl)


def _send(value: Any) -> Send | None:
    try:
        send = _convert(value, _Send)
    except msgspec.ValidationError:
        return None
    at = _time(send.at)
    if at is None:
        return None
    try:
        parse_contact(send.to, E164)
    except NotAContact:
        return None
    if send.phone_number_id is not None and _PHONE_NUMBER_ID(send.phone_number_id) is None:
        return None
    template = send.template
    if (template is None) is (send.type == "template"):
        return None
    if template is not None:
        template = _template(template)
        if template is None:
            return None
    # SendSchema.template_matches_type: Direct Send's category is for free-form sends; a Meta Business Agent reply is
    # free-form without a category; the Marketing Messages API sends marketing templates (or a registry's template).
    category = send.category
    if category is not None and template is not None:
        return None
    if send.meta_business_agent and (template is not None or category is not None):
        return None
    if send.marketing_messages_api and (template is None or template.category not in (None, "marketing")):
        return None
    return Send(at, send.to, send.type, template, phone_number_id=send.phone_number_id,
                marketing_messages_api=send.marketing_messages_api, category=category,
                meta_business_agent=send.meta_business_agent)


def _context_checks() -> dict[str, Callable[[Any], bool]]:
    """For each ContextSchema field fastload can check, whether a JSON value is certainly valid for it, read from
    the schema's own declarations: strict booleans, strict integers with a Range, strings with Pattern validators,
    and waba_timezone (its @validates hook: an IANA zone). Any other field, validator or hook: left to marshmallow."""
    hooked = {name for _, _, options in ContextSchema._hooks.get("validates", []) for name in options["field_names"]}
    checks: dict[str, Callable[[Any], bool]] = {"waba_timezone": _known_zone}
    for name, field in ContextSchema().fields.items():
        if name in hooked or field.data_key not in (None, name) or field.allow_none:
            continue
        kinds = {type(v) for v in field.validators}
        if type(field) is StrictBoolean and not kinds:
            checks[name] = lambda value: type(value) is bool
        elif type(field) is fields.Integer and field.strict and kinds == {validate.Range}:
            (bound,) = field.validators
            if bound.min is not None and bound.min_inclusive and (bound.max is None or bound.max_inclusive):
                checks[name] = (lambda low, high: lambda value: type(value) is int and low <= value <= high)(
                    bound.min, bound.max if bound.max is not None else float("inf"))
        elif type(field) is fields.String and kinds == {Pattern}:
            matchers = [v.regex.fullmatch for v in field.validators]
            checks[name] = (lambda ms: lambda value: type(value) is str and all(m(value) for m in ms))(matchers)
        elif type(field) is fields.Date and field.format in ("iso", "iso8601") and kinds == {validate.Range}:
            (bound,) = field.validators
            if bound.min is not None and bound.max is not None and bound.min_inclusive and bound.max_inclusive:
                checks[name] = (lambda low, high: lambda value: _day(value, low, high) is not None)(bound.min,
                                                                                                   bound.max)
                _CONTEXT_DAYS.add(name)
    return checks


# Context members that are days (fields.Date, ISO format): loaded as marshmallow loads them, date.fromisoformat.
_CONTEXT_DAYS: set[str] = set()


def _day(value: Any, low: date, high: date) -> date | None:
    """The day a context member gives, when fields.Date would load it (a string date.fromisoformat reads) and its
    Range (low to high, both included) accepts it; else None."""
    if type(value) is not str:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if low <= day <= high else None


def _known_zone(value: Any) -> bool:
    return type(value) is str and is_iana_zone(value)  # the schema's own test (iana_zone)


_CONTEXT_CHECKS = _context_checks()
_CONTEXT_ORDER = tuple(ContextSchema().load_fields)


def _context(value: Any) -> dict[str, Any] | None:
    if type(value) is not dict:
        return None
    for name, member in value.items():
        check = _CONTEXT_CHECKS.get(name)
        if check is None or not check(member):
            return None
    # In the order marshmallow's load gives (the schema's).
    loaded = {name: value[name] for name in _CONTEXT_ORDER if name in value} if value else {}
    for name in _CONTEXT_DAYS.intersection(loaded):
        loaded[name] = date.fromisoformat(loaded[name])
    return loaded

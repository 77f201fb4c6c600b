"""The decision request loaded without marshmallow when it is valid: the hot path of every decision.

marshmallow validates a history message in ~20 µs (most of a 10,000-event request's load) and a send with its
empty context in ~200 µs. `history` and `request` load them the way `DecisionRequestSchema` would — the same
`Message`, `Send` and `DecisionRequest` values — checking each value with plain comparisons, and give up (None)
at the first value they are not certain marshmallow accepts (a group send, Direct Send,
the Marketing Messages API and Meta Business Agent flags, and context members other than booleans, counts,
patterned codes and the WABA time zone are always left to marshmallow). The schema then
loads the whole request through marshmallow, so every error, its field path and its wording come from
marshmallow alone: the fast path only ever answers for valid input. tests/contract/test_fastload.py proves on
random valid and invalid requests that the result equals marshmallow's.

What it checks is what contract.schemas declares for SendSchema, SendTemplateSchema, MessageSchema,
TemplateSchema and ReferralSchema: the member names, JSON types (strict: a boolean is not an integer, 1 is not
true), enumerations, lengths, timestamps (datetime.fromisoformat, as marshmallow's AwareDateTime; an offset
required; 2000-01-01 to 2999-12-31), the template time-to-live range, the recipient (core.identities.parse_contact,
the one parser SendSchema uses), SendSchema's and MessageSchema's cross-field rules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import fields, validate

from ..core.identities import E164, NotAContact, parse_contact
from ..core.messages import UNKNOWN_TYPE, DecisionRequest, Message, Send, Template
from .schemas import (
    CATEGORIES,
    DELIVERY_STATUSES,
    EARLIEST,
    INBOUND_ONLY_TYPES,
    LATEST,
    MAX_HISTORY,
    MESSAGE_TYPES,
    TEMPLATE_STATUSES,
    ContextSchema,
)
from .strict import StrictBoolean

_INBOUND_TYPES = frozenset((*MESSAGE_TYPES, *INBOUND_ONLY_TYPES, UNKNOWN_TYPE)) - {UNKNOWN_TYPE}
_OUTBOUND_TYPES = frozenset((*MESSAGE_TYPES, UNKNOWN_TYPE))
_STATUSES = frozenset(DELIVERY_STATUSES)
_CATEGORIES = frozenset(CATEGORIES)
_TEMPLATE_STATUSES = frozenset(TEMPLATE_STATUSES)
_INBOUND_KEYS = frozenset(("id", "direction", "at", "type", "referral"))
_OUTBOUND_KEYS = frozenset(("id", "direction", "at", "type", "template", "status", "delivered_at"))
_TEMPLATE_KEYS = frozenset(("name", "language", "category", "status", "otp_button", "message_send_ttl_seconds"))
# ReferralSchema's string members (welcome_message, a free JSON object, is left to marshmallow).
_REFERRAL_TEXT = frozenset(("source_url", "source_id", "headline", "body", "media_type", "image_url", "video_url",
                            "thumbnail_url", "ctwa_clid"))
_SOURCE_TYPES = frozenset(("ad", "post"))
_fromisoformat = datetime.fromisoformat


_SEND_KEYS = frozenset(("at", "to", "type", "template", "phone_number_id"))
_SEND_TYPES = frozenset(MESSAGE_TYPES)
_REQUEST_KEYS = frozenset(("send", "history", "context"))


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


def _context_checks() -> dict[str, Callable[[Any], bool]]:
    """For each ContextSchema field fastload can check, whether a JSON value is certainly valid for it, read from
    the schema's own declarations: strict booleans, strict integers with a Range, strings with Regexp validators,
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
            if bound.max is None and bound.min is not None and bound.min_inclusive:
                checks[name] = (lambda low: lambda value: type(value) is int and value >= low)(bound.min)
        elif type(field) is fields.String and kinds == {validate.Regexp}:
            matchers = [v.regex.match for v in field.validators]
            checks[name] = (lambda ms: lambda value: type(value) is str and all(m(value) for m in ms))(matchers)
    return checks


def _known_zone(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_CONTEXT_CHECKS = _context_checks()


def _context(value: Any) -> dict[str, Any] | None:
    if type(value) is not dict:
        return None
    for name, member in value.items():
        check = _CONTEXT_CHECKS.get(name)
        if check is None or not check(member):
            return None
    return dict(value)


def _send(value: Any) -> Send | None:
    if type(value) is not dict or not value.keys() <= _SEND_KEYS:
        return None
    at = _time(value.get("at"))
    to, kind = value.get("to"), value.get("type")
    if at is None or type(to) is not str or not 1 <= len(to) <= 255 or type(kind) is not str \
            or kind not in _SEND_TYPES:
        return None
    try:
        parse_contact(to, E164)
    except NotAContact:
        return None
    template = None
    if "template" in value:
        template = _template(value["template"], send=True)
        if template is None or kind != "template":
            return None
    elif kind == "template":
        return None
    if "phone_number_id" in value:
        number = value["phone_number_id"]
        if type(number) is not str or not 1 <= len(number) <= 64:
            return None
        return Send(at, to, kind, template, phone_number_id=number)
    return Send(at, to, kind, template)


def history(items: Any) -> tuple[Message, ...] | None:
    """The messages of a JSON history exactly as DecisionRequestSchema loads them, or None when any of them is
    not certainly valid (the caller then lets marshmallow load, and word the errors)."""
    if type(items) is not list or len(items) > MAX_HISTORY:
        return None
    messages = []
    append = messages.append
    for item in items:
        message = _message(item)
        if message is None:
            return None
        append(message)
    return tuple(messages)


def _time(value: Any) -> datetime | None:
    if type(value) is not str:
        return None
    try:
        at = _fromisoformat(value)
    except ValueError:
        return None
    # fromisoformat gives a fixed offset or none. Within 2001-2998 an offset (under 24 h) cannot leave the range.
    if at.tzinfo is None or not (2000 < at.year < 2999 or EARLIEST <= at <= LATEST):
        return None
    return at


def _message(item: Any) -> Message | None:
    if type(item) is not dict:
        return None
    direction = item.get("direction")
    kind = item.get("type")
    at = _time(item.get("at"))
    if at is None or type(kind) is not str:
        return None
    wamid = item.get("id")
    if wamid is not None and type(wamid) is not str or "id" in item and wamid is None:
        return None
    if direction == "inbound":
        if not item.keys() <= _INBOUND_KEYS or kind not in _INBOUND_TYPES:
            return None
        referral = item.get("referral")
        if referral is not None or "referral" in item:
            referral = _referral(referral)
            if referral is None:
                return None
        return Message("inbound", at, kind, referral=referral, id=wamid)
    if direction != "outbound" or not item.keys() <= _OUTBOUND_KEYS or kind not in _OUTBOUND_TYPES:
        return None
    template = None
    if "template" in item:
        template = _template(item["template"])
        if template is None or kind != "template":
            return None
    elif kind == "template":
        return None
    status = item.get("status", "delivered")
    if type(status) is not str or status not in _STATUSES:
        return None
    delivered_at = None
    if "delivered_at" in item:
        delivered_at = _time(item["delivered_at"])
        if delivered_at is None or delivered_at < at or status == "failed":
            return None
    return Message("outbound", at, kind, template, status, None, wamid, delivered_at)


def _template(value: Any, *, send: bool = False) -> Template | None:
    # TemplateSchema (a past message's) or, with send, SendTemplateSchema: category and status may be absent
    # there, and are then None (the registry fills them in).
    if type(value) is not dict or not value.keys() <= _TEMPLATE_KEYS:
        return None
    name, language = value.get("name"), value.get("language")
    if type(name) is not str or not 1 <= len(name) <= 512 or type(language) is not str \
            or not 2 <= len(language) <= 16:
        return None
    category = value.get("category") if send else value.get("category", "")
    if (category is not None or "category" in value) and (type(category) is not str or category not in _CATEGORIES):
        return None
    status = value.get("status") if send else value.get("status", "APPROVED")
    if (status is not None or "status" in value) and (type(status) is not str or status not in _TEMPLATE_STATUSES):
        return None
    otp_button = value.get("otp_button")
    if "otp_button" in value and type(otp_button) is not bool:
        return None
    ttl = value.get("message_send_ttl_seconds")
    if "message_send_ttl_seconds" in value and (type(ttl) is not int or ttl != -1 and not 30 <= ttl <= 2592000):
        return None
    return Template(name, language, category, status, otp_button, ttl)


def _referral(value: Any) -> dict[str, str] | None:
    if type(value) is not dict:
        return None
    for key, text in value.items():
        if type(text) is not str or key not in _REFERRAL_TEXT and (key != "source_type" or text not in _SOURCE_TYPES):
            return None
    return dict(value)

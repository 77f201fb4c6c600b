"""marshmallow schemas: the shape and types of every request and response (unknown fields are refused)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from ..core.decision import Decision
from ..core.identities import COUNTRIES, E164, WA_ID, NotAContact, not_dialable, parse_contact
from ..core.messages import UNKNOWN_TEMPLATE, UNKNOWN_TYPE, DecisionRequest, Message, Send, Template
from ..core.pricing import Price
from ..core.rates import BASES, iso_4217
from ..core.vocabulary import DELIVERED_STATUSES, GROUP_CATEGORY_PREFIX, STATUSES
from .strict import Pattern, RequestSchema, RFC3339DateTime, StrictBoolean

# A currency anything is billed, priced or reported in: ISO 4217's codes (rules/rates/currencies.yaml, not Python),
# less those for no money (gold, testing, fund codes). One Pattern (an alternation of the codes): the decision fast
# path checks a Pattern itself (contract.fastload), and OpenAPI shows the codes. XYZ passed as three capital letters.
CURRENCY = Pattern("^(?:" + "|".join(iso_4217().billing) + ")$",
                   error="must be an ISO 4217 currency code a bill can be in, like USD (got {input!r}; the codes: "
                         "rules/rates/currencies.yaml)")

# A country a request names: an ISO 3166 alpha-2 code a phone number can be in (core.identities.COUNTRIES, the check
# of a BSUID's prefix). One Pattern (an alternation of the codes), as CURRENCY: fastload checks a Pattern itself and
# OpenAPI shows the codes. "UK", "XX" and "ZZ" passed as two capitals: a business_region "UK" made an authentication
# template to India authentication-international, a forecast line to "UK" was priced at market Other.
COUNTRY_CODES = "^(?:" + "|".join(sorted(COUNTRIES)) + ")$"
COUNTRY_ERROR = ("must be an ISO 3166 alpha-2 country code a phone number can be in, in capitals, like BR (the "
                 "United Kingdom is GB; ZZ, XX, UK and EU name no country)")
COUNTRY = Pattern(COUNTRY_CODES, error=COUNTRY_ERROR)

# Meta's object ids are digits: a WhatsApp Business Account's (WABA id) and a business phone number's
# (phone_number_id, 106540352242922). One pattern for every id a client names (bodies, queries, paths, the Python
# API and the command line): " 106540352242922", "106540352242922\n" or "abc" named no stored number, so the
# business's stored state (a marketing opt-out, a paused template) was silently not applied. ASCII digits only:
# fullmatch, so no final newline; [0-9], not \d, which takes other scripts' digits.
META_ID = r"^[0-9]{1,64}$"
WABA_ID_DIGITS = Pattern(META_ID, error="WABA ids are digits")
PHONE_NUMBER_ID_ERROR = ("must be Meta's business phone number id: digits only (no spaces or other characters), "
                         "like 106540352242922")
PHONE_NUMBER_ID = Pattern(META_ID, error=PHONE_NUMBER_ID_ERROR)


def whole_number(text: str, *, most_digits: int = len(str(2**53 - 1))) -> int | None:
    """`text` read as a whole number when it is 1 to `most_digits` ASCII digits (nothing else, no sign or space),
    else None. Client and stored text is read with this, not str.isdigit()/isdecimal() then int(): isdigit is true
    for superscripts ("¹50001"), which int() then refuses (a ValueError, a 500), both take other scripts' digits
    ("١٢"), and int() refuses more than 4,300 digits."""
    if not 0 < len(text) <= most_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


# Every integer read from text (a query string, Meta's Unix seconds and limits) takes at most this many digits: more
# than any bound they are checked against, so a longer one is refused as too large, not as not a number.
MOST_INTEGER_DIGITS = 30
ASCII_INTEGER_ERROR = "must be a whole number in ASCII digits (0-9)"


def ascii_integer(value: Any) -> int:
    """`value` as an int: an int (not a bool), or text of ASCII digits (whole_number) after an optional minus. Raises
    ValueError (ASCII_INTEGER_ERROR) for anything else: int() also read other scripts' digits ("１", "١"), "+1",
    " 1 " and "1_000", and a float it truncates."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        number = whole_number(value.removeprefix("-"), most_digits=MOST_INTEGER_DIGITS)
        if number is not None:
            return -number if value.startswith("-") else number
    raise ValueError(ASCII_INTEGER_ERROR)


class WholeNumber(fields.Integer):
    """An integer given as a number or as text (query strings, Meta's webhooks), read by ascii_integer: "１"
    (fullwidth), "١" (Arabic-Indic), "+1", " 1", "1_0" or 1.5 are refused (ASCII_INTEGER_ERROR) where fields.Integer
    read them."""

    default_error_messages = {"invalid": ASCII_INTEGER_ERROR}

    def _validated(self, value: Any) -> int:
        try:
            return super()._validated(ascii_integer(value))
        except ValueError:
            raise self.make_error("invalid", input=value) from None


def phone_number_id_field(**kwargs: Any) -> fields.String:
    """A business phone number id (PHONE_NUMBER_ID: 1 to 64 ASCII digits) as every request and query names one."""
    return fields.String(validate=PHONE_NUMBER_ID, **kwargs)


# tzdata files that ZoneInfo loads but that name no IANA zone: the host's own zone (`localtime`), zic's default
# rules (`posixrules`), `Factory` (no time zone at all) and the leap-second (`right/UTC`: ~27 s off) and
# duplicate `posix/` trees.
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})
_NOT_ZONE_TREES = ("right/", "posix/")


@cache
def _iana_zones() -> frozenset[str]:
    # Read once (~0.1 s: zoneinfo opens each file of the tz database); links such as US/Eastern stay accepted.
    return frozenset(z for z in available_timezones() if z not in _NOT_ZONES and not z.startswith(_NOT_ZONE_TREES))


def warm_up() -> None:
    """Build, at the start of a server or a PolicyService, what a request would otherwise build on first use: the
    set of IANA zone names (~0.1 s reading the tz database, paid by a worker's first request naming a
    waba_timezone). Under gunicorn with preload it is built once, in the master, and shared with the workers."""
    _iana_zones()


def is_iana_zone(value: str) -> bool:
    """Whether `value` is an IANA time zone name of the installed tz database (`Europe/Berlin`, `UTC`, `US/Eastern`):
    case as IANA writes it (`utc` is not), and no tzdata file that is not a zone (`localtime`, `posixrules`,
    `Factory`, `right/UTC`, `posix/UTC`)."""
    return value in _iana_zones()


def iana_zone(value: str) -> None:
    """Refuse a time zone name that is no IANA zone (a WABA's time zone: `Europe/Berlin`, `UTC`; see
    is_iana_zone). Raises ValidationError("unknown IANA time zone")."""
    if not is_iana_zone(value):
        raise ValidationError("unknown IANA time zone")


MESSAGE_TYPES = (
    "text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive",
    "reaction", "template",
)
# Inbound events Meta delivers besides the types a business can send.
# `call`: a call the user placed to the business (answered or not); it opens or refreshes the window (CSW-8).
# `edit` and `revoke`: the user edited or deleted one of their messages (Meta's messages webhook).
INBOUND_ONLY_TYPES = ("button", "order", "system", "unsupported", "voice", "request_welcome", "call", "edit", "revoke")
CATEGORIES = ("marketing", "utility", "authentication")
# The `category` values Meta's Direct Send accepts on a free-form send.
DIRECT_SEND_CATEGORIES = ("utility", "authentication")
TEMPLATE_STATUSES = ("APPROVED", "PAUSED", "DISABLED", "REJECTED", "PENDING", "PENDING_DELETION")
DELIVERY_STATUSES = STATUSES  # every status value Meta has sent (core.vocabulary)
GROUP_ID = r"[A-Za-z0-9_=+/.\-]{1,255}"
# An input bound only; Meta's own limit (8) is the rule GRP-1.participants.
MAX_GROUP_PARTICIPANTS = 256
# What a response can say; typed clients get these as enums (the rules produce only these: tested).
DECISIONS = ("allow", "deny")
DECISION_STATUSES = ("decided", "not_applicable", "error")
REQUIRED_MESSAGE_TYPES = ("template", "any")
CONFIDENCES = ("C", "S", "R")
PRICING_MODELS = ("CBP", "PMP")
# Meta's webhook pricing vocabulary: categories (with the conversation-era initiated categories of 2022-23,
# and the Groups API's group_-prefixed ones) and charge types.
CHARGE_CATEGORIES = ("marketing", "utility", "authentication", "authentication-international", "service",
                     "referral_conversion", "business_initiated", "user_initiated", "marketing_lite", "business_agent",
                     *(GROUP_CATEGORY_PREFIX + category for category in (*CATEGORIES, "service")))
CHARGE_TYPES = ("regular", "free_customer_service", "free_entry_point", "free_tier", "free_group_customer_service")
MAX_HISTORY = 10_000
# A history longer than this is refused (contract.parsing, before it is read), and the message says what to do: the
# stored history (history_ref) is read as far as the rules can still see, however long. Dropping the oldest
# messages is no answer: the user's last message or an ad referral may be older than the last 10,000 messages.
HISTORY_TOO_LONG = ("at most {limit} messages in an inline history: decide a longer one from the history stored from "
                    "Meta's webhooks (history_ref instead of history: it reads all the rules can still see)")
# The hard ceiling of a batch; MAX_BATCH_SIZE in the configuration may lower it.
MAX_BATCH = 1_000


# Sends and messages fall between these; far-off years would overflow on conversion to a WABA's zone.
# LATEST is the last instant of 2999-12-31 (UTC), as the errors say ("between 2000-01-01 and 2999-12-31").
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


FIRST_DAY, LAST_DAY = EARLIEST.date(), LATEST.date()


class FromBeforeTo:
    """For a query schema whose `from` and `to` load as the attributes named by RANGE (since, until): a `to`
    before `from` is an error naming `to`, not an empty answer that looks like nothing happened."""

    RANGE = ("since", "until")

    @validates_schema
    def from_before_to(self, data: dict[str, Any], **_: Any) -> None:
        first, last = (data.get(name) for name in self.RANGE)
        if first is not None and last is not None and last < first:
            raise ValidationError("must not be before from", "to")


def day_field(**kwargs: Any) -> fields.Date:
    """A day (YYYY-MM-DD) between FIRST_DAY and LAST_DAY, like every time a request gives: a day near year 9999
    overflowed when a report or filter moved to the next day (a 500)."""
    return fields.Date(validate=validate.Range(min=FIRST_DAY, max=LAST_DAY,
                                               error="must be between 2000-01-01 and 2999-12-31"), **kwargs)


# The largest count a request may give: the largest integer every JSON reader holds exactly (RFC 8259 section 6:
# IEEE 754 doubles), well within the 64-bit columns that store counts. A larger one is no real count, and an
# unbounded one would reach storage (an OverflowError is a 500).
MAX_COUNT = 2**53 - 1


def count_range(low: int = 0) -> validate.Range:
    """A count between `low` and MAX_COUNT, with the error naming both."""
    return validate.Range(min=low, max=MAX_COUNT, error=f"must be between {low} and {MAX_COUNT:,} (2^53 - 1)")


def timestamp_field(**kwargs: Any) -> RFC3339DateTime:
    """An RFC 3339 date-time with its offset (strict.RFC3339DateTime), between EARLIEST and LATEST: every time a
    request or query gives."""
    return RFC3339DateTime(
        validate=validate.Range(min=EARLIEST, max=LATEST, error="must be between 2000-01-01 and 2999-12-31"),
        **kwargs,
    )


def _strict_bool(**kwargs: Any) -> StrictBoolean:
    # marshmallow accepts "yes", 1 and "on" by default; a policy flag must be a JSON boolean.
    return StrictBoolean(**kwargs)


def repeated_entries(items: list[Any], name: str) -> dict[int, list[str]]:
    """{index: ["repeats <name>.<first index>"]} for every entry of `items` equal to an earlier one (empty when
    all differ): a list whose entries each count (a group send's participants, each billed) must not name one
    twice."""
    first: dict[Any, int] = {}
    repeats: dict[int, list[str]] = {}
    for index, item in enumerate(items):
        if item in first:
            repeats[index] = [f"repeats {name}.{first[item]}"]
        else:
            first[item] = index
    return repeats


def dialable(value: str) -> None:
    """Refuse an E.164 number (as E164 matches it: other values are that pattern's error) whose calling code no
    country has, or whose length no number of its code has (core.identities.not_dialable): a group's participant."""
    if E164.fullmatch(value):
        problem = not_dialable(value[1:], value)
        if problem:
            raise ValidationError(problem)


class ContactField(fields.String):
    """A WhatsApp user: a phone number (in the given form: identities.E164 or WA_ID) or a BSUID.

    Loads to the string as given (a wa_id's "+" is kept); refuses anything else with the expected shape.
    """

    def __init__(self, form=E164, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.form = form

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parse_contact(text, self.form)
        except NotAContact as error:
            if re.fullmatch(r" [0-9]{6,20}", text):
                # "?contact=+5511987654321" as typed: a query string's + is a space, so the + arrives as one.
                # Said, not guessed back into a +: a space is no number's part anywhere else.
                raise ValidationError(f"{error}: it begins with a space, as a + does when sent unencoded in a "
                                      "query string (+ means a space there): write it %2B (contact=%2B"
                                      f"{text[1:]}) or leave the + out ({text[1:]})") from None
            raise ValidationError(str(error)) from None
        return text


def _ttl_seconds(value: int) -> None:
    # Meta's accepted range over all categories; each category's own range is Meta's to enforce.
    if value != -1 and not 30 <= value <= 2592000:
        raise ValidationError("must be -1 or 30 to 2592000 seconds")


# Meta's rules for a template (WhatsApp message templates): its name is lowercase letters, digits and underscores, at
# most 512 characters; its language one of Meta's codes (en, en_US, pt_BR, zh_CN, fil, prs_AF: an ISO 639 language in
# lowercase, 2 or 3 letters, then optionally _ and an ISO 3166 country in capitals). The shape, not Meta's list: a
# code Meta adds later is taken without a release. Meta's own payloads (webhooks) are stored as Meta sent them.
TEMPLATE_NAME = r"^[a-z0-9_]{1,512}$"
# A past message may also hold the name the service writes for a template it learned of from a status webhook alone
# (core.messages.UNKNOWN_TEMPLATE, in the history a history_ref resolves and the log stores): it loads back as it was
# written. A send names a real template.
HISTORY_TEMPLATE_NAME = rf"^(?:[a-z0-9_]{{1,512}}|{re.escape(UNKNOWN_TEMPLATE)})$"
TEMPLATE_LANGUAGE = r"^[a-z]{2,3}(_[A-Z]{2})?$"
TEMPLATE_NAME_ERROR = "must be a template name as Meta allows: lowercase letters, digits and underscores (1 to 512)"
TEMPLATE_LANGUAGE_ERROR = ("must be one of Meta's template language codes: a lowercase language, optionally _ and "
                           "a country in capitals (en, en_US, pt_BR, fil)")


class TemplateSchema(RequestSchema):
    """A template as named in a send or a past outbound message."""

    name = fields.String(required=True, validate=Pattern(HISTORY_TEMPLATE_NAME, error=TEMPLATE_NAME_ERROR), metadata={
        "description": "Meta's template name: lowercase letters, digits and underscores"})
    language = fields.String(required=True, validate=Pattern(TEMPLATE_LANGUAGE, error=TEMPLATE_LANGUAGE_ERROR),
                             metadata={"description": "Meta's language code: en, en_US, pt_BR..."})
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    status = fields.String(validate=validate.OneOf(TEMPLATE_STATUSES))
    otp_button = _strict_bool(metadata={"description": "authentication templates: has a copy-code, one-tap or "
                                                       "zero-tap button (unknown if absent)"})
    ttl_seconds = fields.Integer(data_key="message_send_ttl_seconds", strict=True, validate=_ttl_seconds, metadata={
        "description": "Meta's message_send_ttl_seconds, when the template has a custom time-to-live (seconds, "
                       "-1 for Meta's 30-day custom TTL): how long Meta retries delivery; absent, the category's "
                       "default applies (rules: TS-1)"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Template:
        return Template(**data)


class SendTemplateSchema(TemplateSchema):
    """The template of a proposed send: category and status may be left to the template registry.

    When the sending business is known (send.phone_number_id, or history_ref.phone_number_id), the
    registry fed by Meta's template webhooks supplies them, and wins when they differ; a template
    neither given in full nor known to the registry is a 422 naming the missing field.
    """

    name = fields.String(required=True, validate=Pattern(TEMPLATE_NAME, error=TEMPLATE_NAME_ERROR), metadata={
        "description": "Meta's template name: lowercase letters, digits and underscores"})
    category = fields.String(validate=validate.OneOf(CATEGORIES), metadata={
        "description": "optional when the registry knows the template; the registry wins when they differ"})
    status = fields.String(validate=validate.OneOf(TEMPLATE_STATUSES), metadata={
        "description": "optional when the registry knows the template; the registry wins when they differ"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Template:
        # Unknown parts stay None until the web layer fills them from the registry (or refuses the send).
        return Template(**{"category": None, "status": None, **data})


class ReferralSchema(RequestSchema):
    """The referral Meta attaches to an inbound message from a click-to-WhatsApp ad or post."""

    source_url = fields.String()
    source_id = fields.String()
    source_type = fields.String(validate=validate.OneOf(("ad", "post")))
    headline = fields.String()
    body = fields.String()
    media_type = fields.String()
    image_url = fields.String()
    video_url = fields.String()
    thumbnail_url = fields.String()
    ctwa_clid = fields.String()
    welcome_message = fields.Dict()


class SendSchema(RequestSchema):
    """The proposed send."""

    at = timestamp_field(required=True, metadata={"description": "RFC 3339 with offset"})
    to = fields.String(required=True, validate=validate.Length(min=1, max=255), metadata={
        "description": "E.164 number or business-scoped user ID (BSUID); for recipient_type group, the group id"})
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_TYPES))
    template = fields.Nested(SendTemplateSchema)
    phone_number_id = phone_number_id_field(metadata={
        "description": "the sending business phone number id (Meta's, digits): lets the stored business state "
                       "(template registry, marketing preferences, monthly counts) inform the decision"})
    marketing_messages_api = _strict_bool(metadata={
        "description": "a marketing template sent through the Marketing Messages API (/marketing_messages); "
                       "predicted as pricing category marketing_lite"})
    category = fields.String(validate=validate.OneOf(DIRECT_SEND_CATEGORIES), metadata={
        "description": "Direct Send: Meta's `category` field on a free-form send (utility, authentication)"})
    meta_business_agent = _strict_bool(metadata={
        "description": "the reply is written by Meta Business Agent (Meta's AI agent): a non-template message "
                       "Meta bills per token, not as a service message (rules: PMP26-4.agent)"})
    recipient_type = fields.String(validate=validate.OneOf(("individual", "group")), metadata={
        "description": "Meta's recipient_type: individual (default) or group (Groups API)"})
    # Participants are E.164 numbers only (Meta's Groups API adds members by phone number), so a repeat is the
    # same string: a number and a BSUID of one user cannot both be given (a BSUID is not a participant).
    participants = fields.List(fields.String(validate=[Pattern(E164, error="must be an E.164 number"), dialable]),
                               validate=validate.Length(min=1, max=MAX_GROUP_PARTICIPANTS), metadata={
        "description": "group sends: the participants' numbers, each once (Meta bills each delivery; a repeated "
                       "number is a 422 naming it)"})

    @validates_schema(skip_on_field_errors=False)  # `to` is checked even when another field is wrong
    def recipient_fits_type(self, data: dict[str, Any], **_: Any) -> None:
        group = data.get("recipient_type") == "group"
        errors: dict[str, list[str]] = {}
        if group and "participants" not in data:
            errors["participants"] = ["required when recipient_type is group"]
        if not group and "participants" in data:
            errors["participants"] = ["only allowed when recipient_type is group"]
        elif "participants" in data:
            repeats = repeated_entries(data["participants"], "participants")
            if repeats:
                errors["participants"] = repeats  # type: ignore[assignment]  # {index: [message]}
        if "to" in data:
            if group:
                if not re.fullmatch(GROUP_ID, data["to"]):
                    errors["to"] = ["must be a group id (letters, digits, _-=+/.)"]
            else:
                try:
                    parse_contact(data["to"], E164)  # the one parser of phone numbers and BSUIDs
                except NotAContact as error:
                    errors["to"] = [str(error)]
        if errors:
            raise ValidationError(errors)

    @validates_schema
    def template_matches_type(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") == "template":
            if data.get("template") is None:
                raise ValidationError("required when type is template", "template")
            if "category" in data:
                raise ValidationError("Direct Send is a free-form send; a template has its own category", "category")
        elif "template" in data:
            raise ValidationError("only allowed when type is template", "template")
        if data.get("meta_business_agent") and (data.get("type") == "template" or "category" in data):
            raise ValidationError("Meta Business Agent replies are non-template messages without a Direct Send "
                                  "category", "meta_business_agent")
        # A template named by name and language alone takes its category from the registry later.
        if data.get("marketing_messages_api") and (data.get("template") is None
                                                   or data["template"].category not in (None, "marketing")):
            raise ValidationError("the Marketing Messages API sends marketing templates only",
                                  "marketing_messages_api")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Send:
        if "participants" in data:
            data["participants"] = tuple(data["participants"])
        return Send(**data)


class MessageSchema(RequestSchema):
    """One message of the conversation history."""

    id = fields.String(metadata={"description": "Meta's wamid, when known"})
    direction = fields.String(required=True, validate=validate.OneOf(("inbound", "outbound")))
    at = timestamp_field(required=True)
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_TYPES + INBOUND_ONLY_TYPES + (UNKNOWN_TYPE,)),
                         metadata={"description": "outbound `unknown`: known only from status webhooks whose category "
                                                  "does not say (the replay states what it assumes)"})
    template = fields.Nested(TemplateSchema)
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES), metadata={
        "description": "outbound: Meta's latest status (default delivered); sent, failed, deleted and warning "
                       "do not say it was delivered"})
    delivered_at = timestamp_field(metadata={
        "description": "outbound: when Meta reported it delivered (RFC 3339); Meta opens and charges on delivery. "
                       "Without it, a delivered/read/played message counts as delivered at `at`"})
    referral = fields.Nested(ReferralSchema)
    business_app = _strict_bool(metadata={
        "description": "outbound: sent from the WhatsApp Business app (coexistence echo, smb_message_echoes): a "
                       "business message taken as delivered at `at`, not classified or charged as an API send"})

    @validates_schema
    def fits_direction(self, data: dict[str, Any], **_: Any) -> None:
        inbound = data.get("direction") == "inbound"
        errors: dict[str, list[str]] = {}
        if inbound:
            for name in ("template", "status", "delivered_at", "business_app"):
                if name in data:
                    errors[name] = ["only allowed on outbound messages"]
            if data.get("type") == UNKNOWN_TYPE:
                errors["type"] = ["`unknown` is only for outbound messages learned from status webhooks"]
        else:
            if "referral" in data:
                errors["referral"] = ["only allowed on inbound messages"]
            if data.get("type") in INBOUND_ONLY_TYPES:
                errors["type"] = [f"{data['type']!r} is an inbound-only type"]
            if data.get("type") == "template" and "template" not in data:
                errors["template"] = ["required on an outbound template message"]
            if data.get("type") != "template" and "template" in data:
                errors["template"] = ["only allowed when type is template"]
            if "delivered_at" in data and "at" in data and data["delivered_at"] < data["at"]:
                errors["delivered_at"] = ["must not be before `at` (a message is delivered after it is sent)"]
            status = data.get("status")
            if "delivered_at" in data and status is not None and status not in DELIVERED_STATUSES:
                # README: a sent, failed, deleted or warning message opened nothing; with a delivered_at it was
                # replayed as delivered (opening a conversation). Contradictory, so refused rather than guessed.
                errors["delivered_at"] = [f"a message whose latest status is {status} was not delivered; give "
                                          "status delivered, read or played, or leave delivered_at out"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Message:
        return Message(**data)


class ExceptionCountrySchema(RequestSchema):
    """One country whose authentication-international start differs from the business's general one."""

    country_code = fields.String(required=True, validate=COUNTRY)
    start_time = timestamp_field(required=True)


class AuthenticationInternationalSchema(RequestSchema):
    """Meta's authentication-international eligibility (account_update webhook, AUTH_INTL_PRICE_ELIGIBILITY_UPDATE:
    `auth_international_rate_eligibility`), with its Unix times given as RFC 3339."""

    start_time = timestamp_field(required=True, metadata={"description": "when the rate starts for every country"})
    exception_countries = fields.List(fields.Nested(ExceptionCountrySchema), validate=validate.Length(max=300),
                                      metadata={"description": "countries with their own start time"})


MAX_PRICE = 'must be a non-negative decimal string like "0.05" (a string: a JSON number would be rounded as a float)'


class ContextSchema(RequestSchema):
    """What the business knows that the history does not show; every field optional."""

    opted_in = _strict_bool(metadata={"description": "Opt-in on record (default true, named in the trace)"})
    marketing_opt_out = _strict_bool(metadata={"description": "User stopped marketing (default false)"})
    waba_timezone = fields.String(metadata={"description": "IANA zone of the WABA (default UTC)"})
    business_region = fields.String(validate=COUNTRY,
                                    metadata={"description": "ISO 3166 country of the business (default unknown)"})
    authentication_international_eligible = _strict_bool()
    direct_send_eligible = _strict_bool(metadata={"description": "the account may use Direct Send (default false)"})
    authentication_international_start = day_field(metadata={
        "description": "one start date for every country (midnight, WABA time zone); "
                       "authentication_international_eligibility gives Meta's per-country start times"})
    authentication_international_eligibility = fields.Nested(AuthenticationInternationalSchema, metadata={
        "description": "Meta's eligibility: start_time and exception_countries (implies eligible unless "
                       "authentication_international_eligible is false)"})
    primary_business_location_verified = _strict_bool(metadata={
        "description": "Meta has verified business_region as the primary business location (default false: an "
                       "unverified location counts as another country for authentication-international)"})
    conversations_this_month = fields.Integer(strict=True, validate=count_range())
    service_conversations_this_month = fields.Integer(strict=True, validate=count_range())
    service_messages_this_month = fields.Integer(strict=True, validate=count_range())
    business_initiated_restricted = _strict_bool(metadata={
        "description": "Meta restricted business-initiated messaging (account_update ACCOUNT_RESTRICTION; "
                       "default false, or the stored webhook)"})
    account_banned = _strict_bool(metadata={"description": "the WABA is disabled (account_update DISABLED_UPDATE; "
                                                           "default false, or the stored webhook)"})
    account_ban_scheduled_at = timestamp_field(metadata={
        "description": "Meta scheduled the WABA to be disabled from this time (account_update DISABLED_UPDATE "
                       "SCHEDULE_FOR_DISABLE and its waba_ban_date; default none, or the stored webhook): sends "
                       "before it are warned (ACC-2.scheduled), sends from it denied (ACC-2.scheduled-date-reached)"})
    messaging_limit = fields.Integer(strict=True, validate=count_range(-1), metadata={
        "description": "unique users per moving 24 h outside a window; -1 unlimited (default: stored "
                       "business_capability_update, else unknown)"})
    marketing_limit_refused_recently = _strict_bool(metadata={
        "description": "a marketing template to this user failed with 131049 (per-user marketing limit) within "
                       "marketing_limit_retry_after (default false, or the stored status)"})
    business_initiated_users_24h = fields.Integer(strict=True, validate=count_range(), metadata={
        "description": "users reached business-initiated in the moving period (default: counted from stored "
                       "statuses when the limit is known)"})
    # --- pricing (issue 11): what the rate card and volume tier of a billable charge depend on.
    currency = fields.String(validate=CURRENCY,
                             metadata={"description": "The WABA's billing currency; picks the rate card (default USD)"})
    volume_messages_this_month = fields.Integer(strict=True, validate=count_range(), metadata={
        "description": "Messages of the send's pricing category the business portfolio already had delivered this "
                       "month in the recipient's market (volume tiers; unknown: the list rate, an upper bound)"})
    marketing_max_price = fields.String(validate=Pattern(r"^[0-9]{1,9}(\.[0-9]{1,9})?$", error=MAX_PRICE),
        error_messages={"invalid": MAX_PRICE}, metadata={
            "description": 'The max price bid of a marketing message (Marketing Messages API), a decimal string such '
                           'as "0.05": its price is then unknown'})

    @validates("waba_timezone")
    def known_zone(self, value: str, **_: Any) -> None:
        iana_zone(value)


class HistoryRefSchema(RequestSchema):
    """A history stored from Meta's webhooks: the business phone number id and either the contact's wa_id or
    BSUID, or (Groups API) the group id, whose stored messages are the group's history."""

    phone_number_id = phone_number_id_field(required=True, metadata={
        "description": "the business phone number id (Meta's, digits) the history was stored under"})
    contact = ContactField(WA_ID, metadata={"description": "wa_id (a leading + is ignored) or BSUID of the "
                                                           "recipient send.to, or an identity the store links to it "
                                                           "(another user's is a 422)"})
    group_id = fields.String(validate=Pattern(f"^{GROUP_ID}$", error="must be a group id"), metadata={
        "description": "instead of contact, for a group send: the group whose stored history to use"})

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def one_party(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        # Judged on what was given, not on what loaded: a contact that is not a wa_id is that field's own
        # error, not also "give either".
        given = original if isinstance(original, dict) else data
        if ("contact" in given) == ("group_id" in given):
            raise ValidationError("give either contact or group_id", "contact")


class RefusesNul:
    """For a schema of query parameters: a NUL character in any of them is a field error.

    PostgreSQL cannot store or compare text containing NUL. Bodies are checked (for NUL and much else)
    by contract/parsing.py before any schema loads them; query strings are flat, so this walk is cheap.
    """

    @pre_load
    def refuse_nul(self, data: Any, **_: Any) -> Any:
        errors = _nul_errors(data)
        if errors:
            raise ValidationError(errors)
        return data


def _nul_errors(value: Any) -> Any:
    if isinstance(value, str):
        return ["must not contain a NUL character"] if "\x00" in value else None
    if isinstance(value, Mapping):
        found = {key: _nul_errors(item) for key, item in value.items()}
    elif isinstance(value, list):
        found = {index: _nul_errors(item) for index, item in enumerate(value)}
    else:
        return None
    return {key: errors for key, errors in found.items() if errors} or None


class DecisionRequestSchema(RequestSchema):
    """POST /v1/decisions: a proposed send and the history before it (inline, or a stored history_ref)."""

    send = fields.Nested(SendSchema, required=True)
    # The body parser (contract/parsing.py) refuses a longer history before it is deserialized; the
    # validator documents the limit (maxItems) and guards loads of bodies that bypass the parser.
    history = fields.List(fields.Nested(MessageSchema), validate=validate.Length(
        max=MAX_HISTORY, error=HISTORY_TOO_LONG.replace("{limit}", "{max}")))
    history_ref = fields.Nested(HistoryRefSchema, metadata={"description": "use the history stored from webhooks"})
    context = fields.Nested(ContextSchema, load_default=dict)

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None, unknown: str | None = None) -> Any:
        """marshmallow's load, but a valid request is loaded by contract.fastload (the same DecisionRequest, ~50x
        faster): the whole of a plain one, else its history while marshmallow loads the rest. Whatever fastload is
        not certain of goes through marshmallow whole, so every error is marshmallow's own. A history
        contract.parsing typed while parsing the body is not typed again."""
        if many is None and not partial and unknown in (None, RAISE) and type(data) is dict \
                and "history_ref" not in data:
            from . import fastload  # fastload reads this module's constants

            whole = fastload.request(data)
            if whole is not None:
                return whole
            messages = fastload.history(data["history"]) if "history" in data else None
            if messages is not None:
                try:
                    rest = super().load({key: value for key, value in data.items() if key != "history"})
                except ValidationError:
                    pass  # the whole request again below, so the errors are exactly marshmallow's
                else:
                    return replace(rest, history=messages)
        return super().load(data, many=many, partial=partial, unknown=unknown)

    @validates_schema
    def one_history(self, data: dict[str, Any], **_: Any) -> None:
        if "history" in data and "history_ref" in data:
            raise ValidationError("give either history or history_ref, not both", "history_ref")
        group_ref = (data.get("history_ref") or {}).get("group_id")
        send = data.get("send")
        # As history_ref.contact must name the recipient (service.decisions), its business number must be the
        # sending one: a history read under one number and a send from another decides on the wrong window.
        ref_number = (data.get("history_ref") or {}).get("phone_number_id")
        if ref_number is not None and send is not None and send.phone_number_id not in (None, ref_number):
            raise ValidationError({"send": {"phone_number_id": [
                f"must be history_ref.phone_number_id ({ref_number}): the history is read under the sending "
                "business number (or leave send.phone_number_id out)"]}})
        if group_ref is not None and send is not None and (send.recipient_type != "group" or send.to != group_ref):
            raise ValidationError({"history_ref": {"group_id": [
                "must be the group the send is to (send.recipient_type group, send.to)"]}})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> DecisionRequest:
        # A history_ref is resolved by the web layer, which replaces this empty history.
        return DecisionRequest(send=data["send"], history=tuple(data.get("history", ())), context=data["context"])


class ResponseSchema(Schema):
    """A response body. The OpenAPI document marks every field required (always present, possibly null)
    except those in OPTIONAL, and leaves the object open: clients must ignore fields added later."""

    OPTIONAL: tuple[str, ...] = ()


class RateCardRefSchema(ResponseSchema):
    """The rate card a price comes from, with its dates and where its numbers were taken from."""

    id = fields.String()
    title = fields.String()
    currency = fields.String()
    effective_from = fields.Date()
    effective_until = fields.Date(allow_none=True)
    citation = fields.String(metadata={"description": "Meta's page the card reproduces"})
    source = fields.String(metadata={"description": "where the numbers were carried over from"})
    confidence = fields.String(metadata={"description": "C confirmed, S secondary, R unconfirmed"})


class VolumeTierSchema(ResponseSchema):
    """The volume tier a message falls in (marginal: by its number this month)."""

    number = fields.Integer(attribute="tier_number", metadata={"description": "1 is the list rate"})
    first_message = fields.Function(lambda price: price.tier.first)
    last_message = fields.Function(lambda price: price.tier.last, allow_none=True)
    messages_before = fields.Integer(attribute="volume_before", allow_none=True,
                                     metadata={"description": "delivered this month before this one; null: unknown"})


_TIER = VolumeTierSchema()  # one instance: a schema costs hundreds of µs to build (issue 14)


class PriceSchema(ResponseSchema):
    """What a billable charge costs: amount (decimal string), currency, rate card, market, tier and basis."""

    amount = fields.Decimal(as_string=True, places=None, metadata={"type": "string", "format": "decimal"})
    currency = fields.String()
    rate_card = fields.Nested(RateCardRefSchema, attribute="card")
    market = fields.String(allow_none=True, metadata={
        "description": "the rate card's market of the recipient's country (null: a group send over several)"})
    tier = fields.Method("dump_tier", metadata={"type": ["object", "null"], "description": "the volume tier "
                                                "(number, first_message, last_message, messages_before), or null "
                                                "when the card has none"})
    basis = fields.Function(lambda price: BASES[price.basis],
                            metadata={"type": "string", "description": "per delivered message, or per conversation"})

    def dump_tier(self, price: Price) -> dict[str, Any] | None:
        return _TIER.dump(price) if price.tiered else None


class PriceLineSchema(ResponseSchema):
    """One participant of a group send and what its delivery costs (amount null: reason says why)."""

    participant = fields.String(metadata={"description": "the participant's number, as sent"})
    country = fields.String(metadata={"description": "ISO 3166 alpha-2 of its calling code (ZZ: unknown)"})
    market = fields.Function(lambda line: line.price.market, allow_none=True)
    amount = fields.Function(lambda line: None if line.price.amount is None else str(line.price.amount),
                             allow_none=True, metadata={"type": "string", "format": "decimal"})
    currency = fields.Function(lambda line: line.price.currency, allow_none=True)
    reason = fields.Function(lambda line: line.price.reason or None, allow_none=True,
                             metadata={"description": "why amount is null"})


class ChargeSchema(ResponseSchema):
    """How Meta will charge the send, in its webhook `pricing` vocabulary, and what it costs."""

    billable = fields.Boolean()
    pricing_model = fields.String(validate=validate.OneOf(PRICING_MODELS),
                                  metadata={"description": "CBP (conversation-based) or PMP (per-message)"})
    category = fields.String(validate=validate.OneOf(CHARGE_CATEGORIES))
    type = fields.String(allow_none=True, validate=validate.OneOf(CHARGE_TYPES),
                         metadata={"description": "null when the send is not delivered (a deny)"})
    opens_conversation = fields.Boolean()
    conversation_expires_at = fields.DateTime(allow_none=True)
    rule = fields.String(metadata={"description": "the charge rule that decided"})
    participants = fields.Integer(allow_none=True, metadata={
        "description": "group sends: participants billed if it reaches every one (Meta bills each delivery)"})
    price = fields.Nested(PriceSchema, allow_none=True,
                          metadata={"description": "null when not billable or not known (price_reason says why)"})
    price_reason = fields.String(allow_none=True, metadata={"description": "why price is null"})
    price_lines = fields.List(fields.Nested(PriceLineSchema), metadata={
        "description": "group sends: one line per participant, each at its market's rate (empty otherwise)"})


class ReasonSchema(ResponseSchema):
    """One rule in the trace."""

    rule = fields.String()
    title = fields.String()
    effect = fields.String()
    citation = fields.String()
    confidence = fields.String(validate=validate.OneOf(CONFIDENCES),
                               metadata={"description": "C confirmed, S secondary, R unconfirmed"})
    because = fields.String()
    determining = fields.Boolean()
    defaults = fields.List(fields.String(), metadata={"description": "context fields defaulted for this rule"})
    note = fields.String(allow_none=True)
    sources = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "facts this rule read that the request did not give: fact -> source (a stored webhook "
                       "and its time, or a count over stored statuses)"})


class ConditionSchema(ResponseSchema):
    """One test of a rule that did not hold."""

    fact = fields.String()
    test = fields.String()
    wanted = fields.Raw(allow_none=True)
    actual = fields.Raw(allow_none=True)


class NotAppliedSchema(ResponseSchema):
    """A rule in force that did not apply, with the tests that failed."""

    rule = fields.String()
    title = fields.String()
    confidence = fields.String(validate=validate.OneOf(CONFIDENCES))
    failed = fields.List(fields.Nested(ConditionSchema))


class ExplainSchema(RequestSchema):
    """Query parameters of POST /v1/decisions."""

    explain = fields.String(validate=validate.OneOf(("full",)),
                            metadata={"description": "full: also list every rule in force that did not apply, and why"})


class DecisionResponseSchema(ResponseSchema):
    """The decision, its obligations and the trace that explains it."""

    OPTIONAL = ("history_source", "business_state")

    decision_id = fields.String()
    decision = fields.String(validate=validate.OneOf(DECISIONS))
    status = fields.String(validate=validate.OneOf(DECISION_STATUSES),
                           metadata={"description": "decided, not_applicable (no rule applied: deny) or error (deny)"})
    required_message_type = fields.String(validate=validate.OneOf(REQUIRED_MESSAGE_TYPES))
    charge = fields.Nested(ChargeSchema, allow_none=True, metadata={"description": "null when no charge rule applied"})
    policy_version = fields.String(allow_none=True)
    rulebook_version = fields.String()
    determining_rules = fields.List(fields.String())
    error_codes = fields.List(fields.Integer(), metadata={"description": "Meta error codes a deny predicts"})
    error = fields.String(allow_none=True, metadata={
        "description": "status error: why evaluation failed; status not_applicable: why no rule is in force"})
    trace = fields.List(fields.Nested(ReasonSchema))
    why_not = fields.List(fields.Nested(NotAppliedSchema),
                          metadata={"description": "filled only with ?explain=full (else empty)"})
    facts = fields.Method("dump_facts", metadata={
        "type": "object",
        "description": "what the rules saw: seen_by_rules (fact -> value), times_and_names, defaults_used, "
                       "open_periods (kind, category, pricing_model, opened_at, expires_at, "
                       "opened_by_history_index, rule); empty when evaluation failed early"})
    history_source = fields.Dict(metadata={"description": (
        "with history_ref: what was read of the stored history: {ref, from, until (RFC 3339, UTC), events (how "
        "many), digest ('sha256:' and the hex sha256 of the history's canonical JSON)}. Every event whose time "
        "in the replay lies in [from, until] was read, and of older ones only those the rules still see (the "
        "last user message, the last entry point); history indexes in the trace and facts count in that read; "
        "`note` when nothing at all is stored for that phone_number_id (a mistyped id reads an empty history). "
        "Without history and history_ref: {given: 'none', events: 0, note}: decided on an empty history. With a "
        "history holding messages dated after send.at: {given: 'history', events, after_send (how many), note}: "
        "those were not read")})
    business_state = fields.Dict(metadata={"description": (
        "only when send.phone_number_id (without history_ref) names a business number the store has never seen (no "
        "webhook named it): {phone_number_id, note}: no stored state (template registry, account, marketing "
        "preferences, counts) informed the decision; a mistyped id reads as a business with none")})

    def dump_facts(self, decision: Decision) -> dict[str, Any]:
        facts = decision.facts
        if facts is None:
            return {}
        return {
            "seen_by_rules": facts.engine,
            "times_and_names": facts.display,
            "defaults_used": sorted(facts.defaults),
            "sources": dict(sorted(facts.sources.items())),
            "open_periods": [
                {"kind": p.kind, "category": p.category, "pricing_model": p.pricing_model,
                 "opened_at": p.opened_at.isoformat(), "expires_at": p.expires_at.isoformat(),
                 "opened_by_history_index": p.opened_by, "rule": p.rule}
                for p in facts.periods
            ],
        }


class ErrorSchema(ResponseSchema):
    """Every error response: {code, status, message, errors: {field: [messages]}}."""

    code = fields.Integer()
    status = fields.String()
    message = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))



class BatchRequestSchema(RequestSchema):
    """POST /v1/decisions/batch: several decision requests, answered in order."""

    requests = fields.List(fields.Nested(DecisionRequestSchema), required=True,
                           validate=validate.Length(
                               min=1, max=MAX_BATCH,
                               # The configured MAX_BATCH_SIZE (at most MAX_BATCH) is enforced, and named, by the
                               # body parser before this schema: only the lower bound is worth saying here.
                               error="must hold at least one request"))


class BatchResponseSchema(ResponseSchema):
    """The decisions of a batch, in the order of its requests."""

    decisions = fields.List(fields.Nested(DecisionResponseSchema))


class LoggedDecisionSchema(ResponseSchema):
    """GET /v1/decisions/{decision_id}: a decision as it was returned, with its request, from the log."""

    decision_id = fields.String()
    logged_at = fields.String(metadata={"description": "when it was logged (ISO 8601)"})
    decision = fields.String(validate=validate.OneOf(DECISIONS))
    status = fields.String(validate=validate.OneOf(DECISION_STATUSES))
    rulebook_version = fields.String()
    policy_version = fields.String(allow_none=True)
    determining_rules = fields.List(fields.String())
    recipient_region = fields.String(metadata={"description": "the recipient's region, kept unmasked for replay"})
    masked = fields.Boolean(metadata={"description": "phone numbers in request and response were masked"})
    api_key = fields.String(allow_none=True, metadata={
        "description": "the name of the API key that asked for the decision (never the key); null with keys off"})
    request = fields.Dict(metadata={"description": (
        "the request as received (masked), with the values the store supplied written in; a history_ref request "
        "also holds history_read, the range of stored messages it read ({from, until, events, digest, and the "
        "wamids of older events read (carried), of those read dated exactly until (at_until) and of one message of "
        "the contact (anchor)}), not the messages")})
    response = fields.Dict(metadata={"description": "the response as returned (masked)"})


class HealthSchema(ResponseSchema):
    """GET /healthz: the process is alive."""

    status = fields.String(validate=validate.OneOf(("ok",)))


class ReadinessSchema(ResponseSchema):
    """GET /readyz: rules loaded and the decision log reachable."""

    status = fields.String(validate=validate.OneOf(("ready",)))
    rulebook_version = fields.String()
    rules = fields.Integer(metadata={"description": "number of rules loaded"})
    database = fields.String(validate=validate.OneOf(("ok",)))
    last_reload_error = fields.String(allow_none=True,
                                      metadata={"description": "why the last reload failed, if it did"})
    rules_generation = fields.Integer(metadata={"description": "the published reload this worker serves (0: none)"})
    fleet_rules_generation = fields.Integer(
        metadata={"description": "the latest reload published to every instance on this database (0: none)"})
    fleet_rulebook_version = fields.String(allow_none=True,
                                           metadata={"description": "the rulebook that reload published"})
    follows_fleet = fields.Boolean(metadata={"description": "this worker serves the fleet's published rulebook"})
    recycling = fields.Boolean(metadata={"description": "this worker exits after the requests in hand, for a "
                                                        "fresh one serving the published rulebook"})
    worker_pid = fields.Integer(metadata={"description": "the process that answered (a gunicorn worker)"})


class ReloadSchema(ResponseSchema):
    """POST /v1/admin/reload-rules: the rule set now active in this process and published to the fleet."""

    rulebook_version = fields.String()
    previous_rulebook_version = fields.String()
    rules = fields.Integer()
    generation = fields.Integer(metadata={"description": "the published reload's number; /readyz of each "
                                                         "worker names the generation it serves"})
    fleet_follows_within_seconds = fields.Float(
        metadata={"description": "how often every worker checks for a published reload (RULES_CHECK_SECONDS)"})


class DifferenceSchema(ResponseSchema):
    """One field on which Meta's pricing and the predicted charge differ."""

    field = fields.String()
    meta = fields.Raw(allow_none=True)
    predicted = fields.Raw(allow_none=True)


class CauseSchema(ResponseSchema):
    """The likely reason for a mismatch: a short kind (as the summary counts it) and a sentence with its evidence."""

    kind = fields.String()
    detail = fields.String()


# A comparison's basis, and its decision when the rules do not model Meta's category (review.reconciliation).
COMPARISON_BASES = ("logged_prediction", "replay")
NOT_MODELLED = "not_modelled"


class ComparisonSchema(ResponseSchema):
    """One delivered message: Meta's pricing beside the charge the rules predict."""

    wamid = fields.String()
    phone_number_id = fields.String()
    contact = fields.String()
    at = fields.String(metadata={"description": "when it was sent (ISO 8601)"})
    matches = fields.Boolean()
    meta = fields.Dict(metadata={"description": "Meta's pricing object as its webhook reported it"})
    predicted = fields.Dict(allow_none=True, metadata={"description": "pricing_model, category, type, billable"})
    basis = fields.String(validate=validate.OneOf(COMPARISON_BASES), metadata={
        "description": "logged_prediction: the decision logged for this send (linked by biz_opaque_callback_data); "
                       "replay: the send replayed through today's rules"})
    decision_id = fields.String(allow_none=True, metadata={"description": "the logged decision (basis "
                                                                          "logged_prediction), else null"})
    decision = fields.String(allow_none=True, validate=validate.OneOf((*DECISIONS, NOT_MODELLED)), metadata={
        "description": "the decision predicted or logged for the send; not_modelled when the rules do not model "
                       "Meta's category (modelled false: nothing was replayed)"})
    determining_rules = fields.List(fields.String())
    cause = fields.Nested(CauseSchema, allow_none=True, metadata={
        "description": "the likely cause of a mismatch (logged or replayed), or contradictory_statuses, when one is "
                       "known: {kind, detail}; kind is what summary counts the comparison under "
                       "(review.reconciliation.CAUSES)"})
    modelled = fields.Boolean(metadata={"description": "false: the rules do not model Meta's category; nothing "
                                                       "was predicted"})
    note = fields.String(allow_none=True, metadata={"description": "an assumption the replay made, if any"})
    differences = fields.List(fields.Nested(DifferenceSchema))
    failures = fields.List(fields.Dict(), metadata={
        "description": "Meta's errors ({code, title}) of a failed status of a message it also reported "
                       "delivered (contradictory statuses); such a comparison does not match"})


class ReconciliationSchema(ResponseSchema):
    """GET /v1/reconciliation: every delivered message compared, and the counts."""

    checked = fields.Integer()
    matching = fields.Integer()
    mismatching = fields.Integer()
    contradictory = fields.Integer(metadata={"description": "pricing matches, but Meta also reported a failure"})
    not_modelled = fields.Integer()
    comparisons = fields.List(fields.Nested(ComparisonSchema))
    summary = fields.List(fields.Dict(), metadata={
        "description": "every comparison (not one page) counted: [{month, category, cause, count}]"})
    pagination = fields.Dict(metadata={"description": "{page, page_size, total, pages}"})
    note = fields.String(metadata={"description": "only when `contact` was read as a Groups API group id (neither a "
                                                  "wa_id nor a BSUID) and nothing of it is stored: says so"})

    OPTIONAL = ("note",)


class SkippedPartSchema(ResponseSchema):
    """A part of a webhook payload that was not stored: where it is and why."""

    path = fields.String(required=True, metadata={"description": "e.g. entry.0.changes.1.value.statuses.2"})
    reason = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)


class WebhookReceiptSchema(ResponseSchema):
    """POST /v1/webhooks/whatsapp and GET /v1/admin/webhooks/{id}: a stored payload, its processing state, and once
    processed how many events had a new wamid and how many a known one, how many wa_id-BSUID links were new, and
    the parts skipped (the first 20; skipped_not_listed counts the rest)."""

    id = fields.Integer(metadata={"description": "the stored payload's id (GET /v1/admin/webhooks/{id})"})
    status = fields.String(validate=validate.OneOf(("pending", "done", "failed")),
                           metadata={"description": "pending until its events are stored, then done; failed after "
                                                    "repeated errors (kept, and retried by `policy-service webhooks "
                                                    "process --retry-failed`)"})
    duplicate = fields.Boolean(metadata={"description": "this delivery's body was stored before: it added nothing"})
    received_at = fields.String(metadata={"description": "when the payload was stored (ISO 8601)"})
    attempts = fields.Integer(metadata={"description": "processing attempts so far"})
    progress = fields.Integer(metadata={"description": "events stored so far (the payload's batches committed)"})
    error = fields.String(allow_none=True, metadata={"description": "why the last attempt failed"})
    processed_at = fields.String(allow_none=True, metadata={"description": "when it was done (ISO 8601)"})
    new = fields.Integer(allow_none=True, metadata={"description": "events with a wamid not stored before"})
    known = fields.Integer(allow_none=True, metadata={"description": "events with a wamid stored before"})
    linked = fields.Integer(allow_none=True, metadata={"description": "new wa_id-BSUID links"})
    skipped = fields.List(fields.Nested(SkippedPartSchema), allow_none=True,
                          metadata={"description": "the first 20 parts not read, with path and reason (once done)"})
    skipped_not_listed = fields.Integer(allow_none=True, metadata={"description": "further parts not read"})


class WebhookBacklogSchema(ResponseSchema):
    """GET /v1/admin/webhooks/backlog: stored webhook payloads whose events are not stored yet."""

    pending = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    oldest_pending_seconds = fields.Float(allow_none=True, required=True,
                                          metadata={"description": "age of the oldest pending payload (seconds)"})


DECISION_REQUEST_EXAMPLE = {
    "send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "template",
             "template": {"name": "order_update", "language": "en", "category": "utility", "status": "APPROVED"}},
    "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}],
}
DECISION_RESPONSE_EXAMPLE = {
    "decision_id": "00f33eb0fa4f4ed48589f83813e5f685",
    "decision": "allow",
    "status": "decided",
    "required_message_type": "any",
    "charge": {"billable": False, "pricing_model": "PMP", "category": "utility", "type": "free_customer_service",
               "opens_conversation": False, "conversation_expires_at": None, "rule": "PMP-3", "participants": None,
               "price": None, "price_reason": "not billable: Meta charges nothing for this send", "price_lines": []},
    "policy_version": "V3",
    "rulebook_version": "sha256:0123456789abcdef",
    "determining_rules": ["CSW-2.open", "TPL-1.approved", "PMP-3"],
    "error_codes": [],
    "error": None,
    "trace": [{
        "rule": "CSW-2.open", "title": "Inside the customer service window any message type may be sent",
        "effect": "allow, any message type",
        "citation": "https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/send-messages",
        "confidence": "C", "determining": True, "defaults": [], "note": None,
        "because": "The user last wrote at 2025-08-12T09:00:00+00:00, so the window is open until "
                   "2025-08-13T09:00:00+00:00 and the send at 2025-08-12T12:00:00+00:00 falls inside it.",
    }],
    "why_not": [],
    "facts": {"seen_by_rules": {"csw_open": True, "send_is_template": True}, "times_and_names": {},
              "defaults_used": ["opted_in"], "open_periods": []},
}
ERROR_EXAMPLE = {
    "code": 422, "status": "Unprocessable Entity",
    "message": "invalid request: send.to: must be an E.164 number like +14155550100 or a BSUID like "
               "US.13491208655302741918",
    "errors": {"send.to": ["must be an E.164 number like +14155550100 or a BSUID like US.13491208655302741918"]},
}


# Built once and shared: constructing a schema costs several times a load or dump with it
# (a response: 238 µs to build, 56 µs to dump), and marshmallow 4 schemas keep no state between
# calls, so one instance serves every caller and thread.
# webargs and flask-smorest build a new schema per request when given a class: give them these.
# tests/web/test_schema_instances.py fails if any request constructs a schema.
REQUEST = DecisionRequestSchema()
RESPONSE = DecisionResponseSchema()
CHARGE = ChargeSchema()
EXPLAIN = ExplainSchema()
BATCH_REQUEST = BatchRequestSchema()
LOGGED_DECISION = LoggedDecisionSchema()

"""Meta's WhatsApp payloads, read once: every Meta object has its one schema here, and one pass over a webhook
body yields typed events and every part that could not be read, with its path.

Shapes follow Meta's webhook references (https://developers.facebook.com/documentation/business-messaging/
whatsapp/webhooks/reference/<field>): `messages` (inbound messages, statuses with pricing, errors,
`biz_opaque_callback_data` and groups, contacts with BSUIDs, system messages about number changes), `calls`,
`message_template_status_update`, `template_category_update`, `message_template_quality_update`,
`user_preferences`, `account_update`, `business_capability_update`, `smb_message_echoes` (coexistence: messages
the business sent from the WhatsApp Business app) and the Groups API fields (`group_lifecycle_update`,
`group_participants_update`, `group_settings_update`, `group_status_update`, whose items sit in `value.groups`).
Also here: Meta's `GET /<WABA_ID>/message_templates` listing, which backfills the template webhooks.

Reading is tolerant where Meta is (unknown keys are ignored: Meta adds fields over time) and strict where the
rules depend on a value. Each entry, change and item is read on its own: one that cannot be read is listed
once in `Reading.skipped` (path like `entry.0.changes.1.value.statuses.2`, and why) and costs only itself,
because Meta retries a whole payload on an error and refusing all of it would lose the good events.

This module only reads; `service.ingest` stores what it yields.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from ..core import identities
from ..core.vocabulary import STATUS_RANK
from .parsing import WEBHOOK_LIMITS, BodyRefused, Unreadable, bounded_errors, flatten_errors, parse_json
from .queries import WABA_ID
from .schemas import (
    EARLIEST,
    INBOUND_ONLY_TYPES,
    LATEST,
    MESSAGE_TYPES,
    META_ID,
    TEMPLATE_LANGUAGE,
    TEMPLATE_LANGUAGE_ERROR,
    TEMPLATE_NAME,
    TEMPLATE_NAME_ERROR,
    WholeNumber,
    ascii_integer,
)
from .strict import Pattern, StrictBoolean

KNOWN_INBOUND_TYPES = frozenset(MESSAGE_TYPES + INBOUND_ONLY_TYPES)
# System message types saying the user moved to a new number (the older name first).
NUMBER_CHANGES = ("customer_changed_number", "user_changed_number")
# Echo types that change an earlier message instead of sending one (smb_message_echoes reference: triggers).
NOT_A_SEND = ("edit", "revoke")
# Meta's template statuses the rules know (rules/templates.yaml), by the status or event that sets them.
STATUS_EVENTS = {
    "APPROVED": "APPROVED", "REINSTATED": "APPROVED", "UNARCHIVED": "APPROVED", "PAUSED": "PAUSED",
    "DISABLED": "DISABLED", "REJECTED": "REJECTED", "PENDING": "PENDING", "PENDING_DELETION": "PENDING_DELETION",
    "DELETED": "PENDING_DELETION", "ARCHIVED": "PENDING_DELETION",
}
# message_template_status_update events that leave the status as it was: they are kept in the template's history but
# do not change the status a send is judged by (a FLAGGED template stays APPROVED until Meta disables it; LOCKED and
# UNLOCKED are about editing it; IN_APPEAL keeps the rejection under appeal).
UNCHANGED_STATUS_EVENTS = frozenset(("FLAGGED", "LOCKED", "UNLOCKED", "IN_APPEAL"))
# Meta spells categories in capitals, with marketing_lite and authentication_international beside them.
CATEGORY_NAMES = {
    "MARKETING": "marketing", "MARKETING_LITE": "marketing", "UTILITY": "utility",
    "AUTHENTICATION": "authentication", "AUTHENTICATION_INTERNATIONAL": "authentication",
}
# A status or category Meta sent that the rules do not model is stored as one of these, with Meta's value named in
# the event's reason (and kept in its payload and the stored raw webhook): the registry then says the part is
# unknown, where it kept an earlier value (or none) as if nothing had been said.
UNKNOWN_STATUS, UNKNOWN_CATEGORY = "UNKNOWN", "unknown"
UNKNOWN_VALUES = frozenset((UNKNOWN_STATUS, UNKNOWN_CATEGORY))
# The statuses of a template in Meta's GET /<WABA_ID>/message_templates (the Graph API's WhatsApp template node,
# https://developers.facebook.com/docs/graph-api/reference/whats-app-business-hsm/, with ARCHIVED): what an import
# may say. Those the rules do not model (IN_APPEAL, LIMIT_EXCEEDED) are imported as UNKNOWN_STATUS.
LISTED_STATUSES = ("APPROVED", "ARCHIVED", "DELETED", "DISABLED", "IN_APPEAL", "LIMIT_EXCEEDED", "PAUSED", "PENDING",
                   "PENDING_DELETION", "REJECTED")
IMPORT_SOURCE = "message_templates import"


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """True when the header is `sha256=` + the HMAC-SHA256 of the raw body under the app secret
    (Meta's X-Hub-Signature-256)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII str with a TypeError (a 500 for crafted headers).
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").strip().lower().encode())


def meta_time(value: Any) -> datetime:
    """Meta's times: Unix seconds (a number or a numeric string), or ISO 8601 (with +0000 offsets), as aware UTC.

    Raises ValueError (or OverflowError/OSError for absurd numbers) for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    # ASCII digits only: str.isdigit (and int) also read other scripts' digits ("١٧٠٠٠٠٠٠٠٠"), which Meta never sends.
    if isinstance(value, int | float) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        return datetime.fromtimestamp(int(value), tz=UTC)
    text = str(value).replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# Month names as a ban date spells them ("January 2, 2026"; "Jan" too), in any case: read here, not by strptime,
# whose %B follows the process's locale.
_MONTHS = {name: number for number, name in enumerate((
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december"), 1)}
_SPELLED_DAY = re.compile(r"([A-Za-z]{3,9})\.? +([0-9]{1,2}),? +([0-9]{4})")
# account_update's ban event, and the ban_info.waba_ban_state values Meta documents (its account_update reference).
BAN_EVENT = "DISABLED_UPDATE"
BAN_STATES = ("DISABLE", "SCHEDULE_FOR_DISABLE", "REINSTATE")
BAN_DATE_FORMS = ('a day as Meta writes it ("January 2, 2026"), an ISO 8601 date or time, or Unix seconds, '
                  "between 2000-01-01 and 2999-12-31")


def ban_date(value: Any) -> datetime:
    """account_update DISABLED_UPDATE's `ban_info.waba_ban_date` as the instant it names (aware UTC): a day as Meta
    writes it ("January 2, 2026": a month's English name or its first three letters, in any case, the comma
    optional) or an ISO 8601 date starts at 00:00 UTC; an ISO 8601 time or Unix seconds is that instant (meta_time).

    Raises ValueError (naming the forms read, BAN_DATE_FORMS) for anything else or a time outside 2000-2999."""
    spelled = _SPELLED_DAY.fullmatch(value.strip()) if isinstance(value, str) else None
    try:
        if spelled is not None:
            name, day, year = spelled.groups()
            month = _MONTHS.get(name.lower()) or next(
                (number for full, number in _MONTHS.items() if len(name) == 3 and full.startswith(name.lower())), 0)
            moment = datetime(int(year), month, int(day), tzinfo=UTC)
        else:
            moment = meta_time(value)
    except (ValueError, OverflowError, OSError, TypeError):
        raise ValueError(f"must be {BAN_DATE_FORMS}") from None
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"must be {BAN_DATE_FORMS}")
    return moment


# --- The events one payload yields (what service.ingest stores) -------------------------------------------


@dataclass(frozen=True)
class Link:
    """A webhook named a user's phone number and BSUID together."""

    phone_number_id: str
    wa_id: str
    user_id: str


@dataclass(frozen=True)
class Inbound:
    """An inbound message (a group message is stored under its group: `contact` is then the group id)."""

    wamid: str
    phone_number_id: str
    contact: str
    at: datetime
    type: str
    referral: dict[str, Any] | None = None
    group_id: str | None = None
    errors: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Status:
    """One status of an outbound message: delivery, Meta's pricing, the decision it was sent under
    (`biz_opaque_callback_data`) and why it failed (`errors`)."""

    wamid: str
    phone_number_id: str
    contact: str
    at: datetime
    status: str
    conversation_id: str | None = None
    conversation_origin: str | None = None
    pricing: dict[str, Any] | None = None
    group_id: str | None = None
    errors: list[dict[str, Any]] | None = None  # e.g. 131047 on a failed status: Meta found the window closed
    decision_id: str | None = None  # biz_opaque_callback_data
    waba_id: str | None = None

    def error_codes(self) -> set[int]:
        """The codes of the status's errors."""
        return {error["code"] for error in self.errors or () if isinstance(error.get("code"), int)}


@dataclass(frozen=True)
class Call:
    """A WhatsApp call as the `calls` webhook reports it: `inbound` when the user called the business."""

    wacid: str
    phone_number_id: str
    contact: str
    at: datetime
    direction: str


@dataclass(frozen=True)
class Echo:
    """A message the business sent from the WhatsApp Business app (coexistence, `smb_message_echoes`):
    an outbound business message with its type, known without any status."""

    wamid: str
    phone_number_id: str
    contact: str
    at: datetime
    type: str


@dataclass(frozen=True)
class NumberSeen:
    """A change named a business phone number under a WhatsApp Business Account (`entry.id`)."""

    phone_number_id: str
    waba_id: str
    at: datetime


@dataclass(frozen=True)
class NumberChange:
    """A user moved to a new phone number (system message `user_changed_number`): the history follows them."""

    phone_number_id: str
    old_contact: str
    new_contact: str
    at: datetime


@dataclass(frozen=True)
class TemplateChange:
    """A template status, category or quality change (a webhook, or an imported listing), with when it takes
    effect; `source` is the webhook field or IMPORT_SOURCE."""

    waba_id: str
    name: str
    language: str
    source: str
    effective_at: datetime
    event: str | None = None
    template_id: str | None = None
    status: str | None = None
    category: str | None = None
    previous_category: str | None = None
    quality: str | None = None
    reason: str | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class Preference:
    """A user stopped or resumed a category of messages (`user_preferences`, or a status failing with 131050)."""

    phone_number_id: str
    contact: str
    value: str  # stop | resume
    at: datetime
    source: str


@dataclass(frozen=True)
class AccountChange:
    """An account-level event of a WABA: `account_update` (its event) or `business_capability_update`
    (event CAPABILITY), with the change's value."""

    waba_id: str
    field: str
    event: str
    at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class GroupEvent:
    """A Groups API event (group created or deleted, participants, settings, status) of a business number."""

    phone_number_id: str
    field: str
    type: str
    group_id: str | None
    at: datetime
    payload: dict[str, Any]


CAPABILITY = "CAPABILITY"  # the event name given to business_capability_update changes

Event = (Link | Inbound | Status | Call | Echo | NumberSeen | NumberChange | TemplateChange | Preference
         | AccountChange | GroupEvent)


@dataclass(frozen=True)
class Skipped:
    """A part of a payload that was not read: where it is (entry.0.changes.1.value.statuses.2) and why."""

    path: str
    reason: dict[str, list[str]]


@dataclass
class Reading:
    """What one payload yields: its events in payload order, and every part skipped with its reason."""

    events: list[Event] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Values the lenient parse kept but could not vouch for (parsing.Unreadable: a NUL, a lone surrogate, a
    # number too long or not finite), by path; `holding` is every path that has one of them inside.
    unreadable: dict[str, list[str]] = field(default_factory=dict)
    holding: set[str] = field(default_factory=set)

    def load(self, schema: Schema, item: Any, path: str) -> dict[str, Any] | None:
        """The item loaded with the schema, or None after recording why it was skipped.

        This is the one place a part of a payload is judged: a part we cannot read costs only itself. A part
        holding an unreadable value in a field it reads (or anywhere, when it is stored whole) is skipped; one
        in a field it does not read (a message's text) is listed, and the part read without it.
        """
        if path in self.holding and not self._readable_around(schema, path):
            return None
        try:
            return schema.load(item)
        except ValidationError as error:
            reason = flatten_errors(error.messages)
            name = path.rsplit(".", 1)[-1]
            if "_schema" in reason and not name.isdigit():
                # The part as a whole (`metadata: null`) is said under its field's name, as its fields' faults are
                # (marshmallow's `_schema` names no field); a list's item is named by its path alone.
                reason = {name: [*reason.pop(name, []), *reason.pop("_schema")], **reason}
            self.skip(path, reason)
            return None

    def _readable_around(self, schema: Schema, path: str) -> bool:
        prefix = path + "."
        inside = {bad[len(prefix):]: why for bad, why in self.unreadable.items() if bad.startswith(prefix)}
        apart = getattr(schema, "read_apart", ())
        inside = {bad: why for bad, why in inside.items() if bad.split(".", 1)[0] not in apart}
        if not inside:
            return True
        read = {f.data_key or name for name, f in schema.fields.items()}
        if getattr(schema, "kept_whole", False) or any(bad.split(".", 1)[0] in read for bad in inside):
            self.skip(path, inside)
            return False
        for bad, why in inside.items():
            self.skip(f"{prefix}{bad}", {bad: [*why, "not read (the rest of the part was read)"]})
        return True

    def skip(self, path: str, reason: dict[str, list[str]]) -> None:
        """List a part as skipped (its reason bounded, so a huge bad part cannot make the listing huge)."""
        self.skipped.append(Skipped(path, bounded_errors(reason)))

    def each(self, schema: Schema, value: dict[str, Any], key: str, path: str
             ) -> Iterator[tuple[str, dict[str, Any], Any]]:
        """(path, loaded, as sent) of every readable item of the list `value[key]` (absent: none)."""
        items = value.get(key, [])
        if not isinstance(items, list):
            self.skip(f"{path}.{key}", {key: ["must be a list"]})
            return
        for index, item in enumerate(items):
            loaded = self.load(schema, item, f"{path}.{key}.{index}")
            if loaded is not None:
                yield f"{path}.{key}.{index}", loaded, item


# --- Schemas: one per Meta object --------------------------------------------------------------------------


class _MetaSchema(Schema):
    # Meta adds fields over time; unknown ones are ignored, not refused.
    class Meta:
        unknown = EXCLUDE

    # Anything but an object where one belongs is said as the decision API says it (not "Invalid input type.").
    error_messages = {"type": "must be a JSON object"}


# Meta writes countries as two letters (in either case, as read: upper()).
_COUNTRY = Pattern(r"^[A-Za-z]{2}$", error="must be a two-letter country code (ISO 3166)")


class UnixTime(fields.Field):
    """Meta's Unix-seconds timestamp (a numeric string, or a number) as an aware UTC datetime, between
    2000-01-01 and 2999-12-31 like every time of the decisions API (-1 or 0 is no time Meta sends)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        try:  # ASCII digits only: int() also read "１７６５１３００００" (fullwidth) as a time
            moment = datetime.fromtimestamp(ascii_integer(value), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise ValidationError("must be Unix seconds") from None
        if not EARLIEST <= moment <= LATEST:
            raise ValidationError("must be Unix seconds between 2000-01-01 and 2999-12-31")
        return moment


class MetaTime(fields.Field):
    """A time in an account event: Unix seconds, or ISO 8601 as Meta writes it (2026-04-19T13:59:20+0000), between
    2000-01-01 and 2999-12-31 like UnixTime."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("must be Unix seconds or an ISO 8601 time")
        try:
            moment = meta_time(value)
        except (ValueError, OverflowError, OSError):
            raise ValidationError("must be Unix seconds or an ISO 8601 time") from None
        # Bounded as every time of the decisions API and UnixTime: an ACCOUNT_RESTRICTION "until" the year 5138
        # would be cited in decisions as if Meta had said so.
        if not EARLIEST <= moment <= LATEST:
            raise ValidationError("must be a time between 2000-01-01 and 2999-12-31 (Unix seconds or ISO 8601)")
        return moment


def _text(max_length: int = 512, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def _contact(wa_id: str, user_id: str, name: str) -> tuple[str, str | None]:
    """The stored contact (wa_id, else BSUID) and the BSUID named beside a wa_id; a ValidationError on `name`."""
    try:
        contact, bsuid = identities.webhook_contact(wa_id, user_id)
    except identities.NotAContact as error:
        raise ValidationError(str(error), name) from None
    return contact.id, bsuid.id if bsuid else None


class MetadataSchema(_MetaSchema):
    """`value.metadata`: the business number a change is about."""

    # Digits, as Meta sends it (and as the WABA id of an entry must be): " 1065..." would be stored as another
    # number of the WABA, one no request names.
    phone_number_id = fields.String(required=True, validate=Pattern(
        META_ID, error="must be the business phone number's id, 1 to 64 digits as Meta sends it: the "
                                "change is not read (the stored payload keeps it)"))
    display_phone_number = fields.String(load_default="")


class ContactSchema(_MetaSchema):
    """One entry of `value.contacts`: the user's wa_id (empty for a username user) and BSUID (`user_id`)."""

    wa_id = fields.String(load_default="")
    user_id = fields.String(load_default="")

    @post_load
    def contact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["contact"], data["bsuid"] = _contact(data["wa_id"], data["user_id"], "wa_id")
        return data


class SystemSchema(_MetaSchema):
    """`system` of a system message: user_changed_number carries the new wa_id."""

    type = fields.String(required=True)
    wa_id = _text(64)
    new_wa_id = fields.Raw()  # the older name of wa_id (a number or a string)


class InboundSchema(_MetaSchema):
    """One entry of `value.messages`: from a phone number (`from`) or, for a user with a username, a BSUID
    (`from_user_id`); with neither, the change's one contact names the sender (`contacts[].user_id`)."""

    id = _text(255, required=True)
    sender = fields.String(data_key="from", load_default="")
    sender_user_id = fields.String(data_key="from_user_id", load_default="")
    timestamp = UnixTime(required=True)
    type = fields.String(required=True)
    referral = fields.Dict()
    group_id = _text(255)  # Groups API: a participant wrote in a group
    errors = fields.List(fields.Dict())  # e.g. on an unsupported message
    system = fields.Nested(SystemSchema)


class OriginSchema(_MetaSchema):
    """`conversation.origin`: the category that opened the conversation."""

    type = fields.String(validate=validate.Length(max=64))


class ConversationSchema(_MetaSchema):
    """The `conversation` of a status."""

    id = fields.String(validate=validate.Length(max=255))
    origin = fields.Nested(OriginSchema)


class PricingSchema(Schema):
    """A status's `pricing` (kept whole: Meta adds keys): whether Meta bills the message, and its pricing
    category and type as Meta names them (marketing, utility, authentication, authentication_international,
    service...; regular, free_customer_service, free_entry_point), which reconciliation compares with decisions.
    Reference: developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status
    """

    class Meta:
        unknown = INCLUDE

    billable = StrictBoolean()  # a JSON boolean, not "yes" or 1
    pricing_model = _text(32)
    category = _text(64)
    type = _text(64)


class StatusErrorSchema(Schema):
    """One entry of a status's `errors` (kept whole: error_data and href too)."""

    class Meta:
        unknown = INCLUDE

    code = fields.Integer(required=True, strict=True)
    title = fields.String()
    message = fields.String()


class StatusSchema(_MetaSchema):
    """One entry of `value.statuses`: to a phone number (`recipient_id`), a BSUID (`recipient_user_id`), or a
    group (`recipient_type: group`, recipient_id the group id)."""

    id = _text(255, required=True)
    status = fields.String(required=True, validate=validate.OneOf(tuple(STATUS_RANK)))
    timestamp = UnixTime(required=True)
    recipient_id = fields.String(validate=validate.Length(max=255), load_default="")
    recipient_user_id = fields.String(validate=validate.Length(max=160), load_default="")
    recipient_type = fields.String()  # "group": recipient_id is the group id (Groups API)
    conversation = fields.Nested(ConversationSchema)
    pricing = fields.Nested(PricingSchema)
    biz_opaque_callback_data = fields.String(validate=validate.Length(max=512))
    errors = fields.List(fields.Nested(StatusErrorSchema))  # why a message failed (131047: the window was closed)

    @post_load
    def contact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("recipient_type") == "group" and data["recipient_id"]:
            # Groups API: the recipient is the group; its messages are the group's history (stored under its id).
            data["contact"], data["bsuid"] = data["recipient_id"], None
            return data
        data["contact"], data["bsuid"] = _contact(data["recipient_id"], data["recipient_user_id"], "recipient_id")
        return data


class CallSchema(_MetaSchema):
    """One entry of `value.calls`: a call's connect or terminate event.

    A user-initiated call is from the user (`from`, or `from_user_id` for a BSUID) to the business; a
    business-initiated one is to the user (`to`/`to_user_id`). Without `direction`, a call from the
    business's own display number is business-initiated.
    """

    id = _text(255, required=True)
    event = fields.String(validate=validate.Length(max=64))
    timestamp = UnixTime(required=True)
    direction = fields.String(validate=validate.OneOf(("USER_INITIATED", "BUSINESS_INITIATED")))
    sender = fields.String(data_key="from", load_default="")
    sender_user_id = fields.String(data_key="from_user_id", load_default="")
    to = fields.String(load_default="")
    to_user_id = fields.String(load_default="")
    # terminate events: "COMPLETED" or "FAILED" (Meta has sent a string and a one-item list) and when it began.
    status = fields.Raw()
    start_time = UnixTime()

    @staticmethod
    def accepted(call: dict[str, Any]) -> bool:
        """True for the terminate event of a call that was answered (it completed)."""
        status = call.get("status")
        statuses = status if isinstance(status, list) else [status]
        return call.get("event") == "terminate" and any(str(s).upper() == "COMPLETED" for s in statuses)


class EchoSchema(_MetaSchema):
    """One entry of `value.message_echoes` (smb_message_echoes): from the business's display number `to` the
    user's number (or `to_user_id`, a BSUID)."""

    id = _text(255, required=True)
    sender = fields.String(data_key="from", load_default="")
    to = fields.String(load_default="")
    to_user_id = fields.String(load_default="")
    timestamp = UnixTime(required=True)
    type = _text(32, required=True)

    @post_load
    def contact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["contact"], data["bsuid"] = _contact(data["to"].removeprefix("+"), data["to_user_id"], "to")
        return data


class TemplateKeySchema(_MetaSchema):
    """The template a template webhook is about."""

    kept_whole = True  # the change's value is stored as it came (TemplateChange.payload)

    message_template_id = fields.Raw()
    message_template_name = _text(required=True)
    message_template_language = _text(16, required=True)


class TemplateStatusSchema(TemplateKeySchema):
    """`message_template_status_update`: event (APPROVED, PAUSED, DISABLED, REJECTED...) and reason."""

    event = _text(32, required=True)
    reason = fields.String(allow_none=True)
    message_template_category = _text(32)


class TemplateCategorySchema(TemplateKeySchema):
    """`template_category_update`: completed (previous_category -> new_category) or impending
    (new_category is the current one, correct_category takes effect at category_update_timestamp)."""

    previous_category = _text(32)
    new_category = _text(32, required=True)
    correct_category = _text(32)
    category_update_timestamp = UnixTime()


class TemplateQualitySchema(TemplateKeySchema):
    """`message_template_quality_update`: previous_quality_score -> new_quality_score."""

    previous_quality_score = _text(32)
    new_quality_score = _text(32, required=True)


class PreferenceSchema(_MetaSchema):
    """One entry of `value.user_preferences`."""

    wa_id = _text(64, required=True)
    category = _text(64, required=True)
    value = _text(16, required=True)
    detail = fields.String()
    timestamp = UnixTime(required=True)

    @post_load
    def contact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # The key the user's messages are stored under (as every other event's): "+5511..." stored as sent never
        # met the user's history, so a stop was never applied (a silent allow); " 5511..." is no wa_id at all.
        data["contact"], _bsuid = _contact(data["wa_id"], "", "wa_id")
        return data


class RestrictionSchema(_MetaSchema):
    """One entry of `restriction_info`."""

    restriction_type = _text(64, required=True)
    expiration = MetaTime()


class CountryStartSchema(_MetaSchema):
    """One exception country of authentication-international eligibility."""

    country_code = fields.String(required=True, validate=_COUNTRY)
    start_time = MetaTime(required=True)


class EligibilitySchema(_MetaSchema):
    """`auth_international_rate_eligibility`: the start time, and countries with their own."""

    start_time = MetaTime()
    exception_countries = fields.List(fields.Nested(CountryStartSchema), load_default=list)


class BanInfoSchema(_MetaSchema):
    """`ban_info`: the WABA's ban state (DISABLE, SCHEDULE_FOR_DISABLE, REINSTATE)."""

    # Not required here: a DISABLED_UPDATE without it is listed and kept as a ban (_read_account_update), not
    # skipped whole (a silent allow).
    waba_ban_state = _text(64)
    # Read apart (_read_account_update, ban_date): one that cannot be read is listed, and the ban is kept (a ban
    # dropped for its date would be a silent allow).
    waba_ban_date = fields.Raw(allow_none=True)


class AccountUpdateSchema(_MetaSchema):
    """`account_update`: an account event and the part of the value that goes with it."""

    kept_whole = True  # AccountChange.payload

    event = _text(64, required=True)
    country = fields.String(validate=_COUNTRY)
    auth_international_rate_eligibility = fields.Nested(EligibilitySchema)
    restriction_info = fields.List(fields.Nested(RestrictionSchema))
    ban_info = fields.Nested(BanInfoSchema)
    volume_tier_info = fields.Dict()
    violation_info = fields.Dict()


class CapabilitySchema(_MetaSchema):
    """`business_capability_update`: the portfolio's messaging limit (-1 unlimited) and phone number limits."""

    kept_whole = True  # AccountChange.payload

    max_daily_conversations_per_business = WholeNumber(validate=validate.Range(min=-1))
    max_daily_conversation_per_phone = WholeNumber(validate=validate.Range(min=-1))
    max_phone_numbers_per_business = WholeNumber()
    max_phone_numbers_per_waba = WholeNumber()


class GroupSchema(_MetaSchema):
    """One entry of `value.groups` (Groups API fields): what happened to which group, and when."""

    kept_whole = True  # GroupEvent.payload

    type = _text(64, required=True)
    timestamp = UnixTime(required=True)
    group_id = _text(255)


class ChangeSchema(_MetaSchema):
    """One change: which webhook `field` it is, and its value (read by that field's reader)."""

    field = _text(255, required=True)
    value = fields.Dict(required=True)
    read_apart = ("value",)  # judged by the field's reader, part by part


NOT_A_WABA_ID = "the WhatsApp Business Account id, digits as Meta sends it: the entry is not read (the stored " \
               "payload keeps it)"


def _waba_id(value: Any) -> None:
    # Meta's WABA ids are digits (a string, or a number as Meta has sent them): the API and pages take no other
    # (contract.queries.WABA_ID), so an entry under "WABA1" would be stored under an account no one can read.
    if isinstance(value, bool) or not (isinstance(value, int) and value >= 0
                                       or isinstance(value, str) and WABA_ID.fullmatch(value)):
        raise ValidationError(f"must be {NOT_A_WABA_ID}")


class EntrySchema(_MetaSchema):
    """One WhatsApp Business Account's changes (each change is read on its own); `time` when Meta sent them."""

    # Required: an entry without one was read under the WABA id "" (its number learned under no account), where
    # "WABA1" or null are skipped: every entry whose account is unknown is skipped alike, naming entry.N.id.
    id = fields.Raw(required=True, validate=_waba_id,
                    error_messages={"required": f"required: {NOT_A_WABA_ID}", "null": f"must be {NOT_A_WABA_ID}"})
    # Read tolerantly (_entry_time): some fields omit it; null, like any value that is no time, is listed there.
    time = fields.Raw(allow_none=True)
    changes = fields.List(fields.Raw(), required=True)
    read_apart = ("changes", "time")  # changes are judged one by one; time is read tolerantly


class NotificationSchema(_MetaSchema):
    """The whole webhook body: only its envelope must be right; each entry is read on its own."""

    object = fields.String(required=True, validate=validate.Equal("whatsapp_business_account"))
    entry = fields.List(fields.Raw(), required=True)


def _one_of(names: Any) -> Callable[[str], None]:
    """A validator of Meta's capitalised names, in any case (as they are read: upper()), whose error lists them."""
    allowed = tuple(names)

    def check(value: str) -> None:
        if value.upper() not in allowed:
            raise ValidationError(f"must be one of: {', '.join(allowed)}")
    return check


class ListedTemplateSchema(_MetaSchema):
    """One template of Meta's `GET /<WABA_ID>/message_templates` response (`data[]`): a client imports it, so a
    status or category that is not Meta's is a 422 naming it and the values allowed (never stored as unknown)."""

    id = fields.Raw()
    # A client names these in sends (contract.schemas.TemplateSchema): the same rules as there.
    name = fields.String(required=True, validate=Pattern(TEMPLATE_NAME, error=TEMPLATE_NAME_ERROR))
    language = fields.String(required=True, validate=Pattern(TEMPLATE_LANGUAGE, error=TEMPLATE_LANGUAGE_ERROR))
    category = fields.String(required=True, validate=[validate.Length(min=1, max=32), _one_of(CATEGORY_NAMES)])
    status = fields.String(required=True, validate=[validate.Length(min=1, max=32), _one_of(LISTED_STATUSES)])


class MessageTemplatesSchema(_MetaSchema):
    """Meta's `GET /<WABA_ID>/message_templates` response: `{data: [...], paging: {...}}`."""

    data = fields.List(fields.Nested(ListedTemplateSchema), required=True)

    @validates_schema
    def _each_template_once(self, data: dict[str, Any], **_: Any) -> None:
        """A template (name and language) listed twice was imported twice, the last entry winning without a word
        (APPROVED then PAUSED answered imported: 2): a second listing is refused naming it and the first."""
        first: dict[tuple[str, str], int] = {}
        errors: dict[int, dict[str, list[str]]] = {}
        for index, template in enumerate(data.get("data") or ()):
            earlier = first.setdefault((template["name"], template["language"]), index)
            if earlier != index:
                errors[index] = {"language": [f"{template['name']} in {template['language']} is listed already at "
                                              f"data.{earlier}: each template once"]}
        if errors:
            raise ValidationError({"data": errors})


# One instance each, shared by every payload: building a schema costs hundreds of µs (issue 14).
NOTIFICATION, ENTRY, CHANGE, METADATA = NotificationSchema(), EntrySchema(), ChangeSchema(), MetadataSchema()
INBOUND, STATUS, CONTACT, CALL, ECHO = InboundSchema(), StatusSchema(), ContactSchema(), CallSchema(), EchoSchema()
OUT_OF_BAND_ERROR = StatusErrorSchema()  # an entry of a `messages` change's `value.errors`: the same shape
TEMPLATE_STATUS, TEMPLATE_CATEGORY, TEMPLATE_QUALITY = (TemplateStatusSchema(), TemplateCategorySchema(),
                                                         TemplateQualitySchema())
PREFERENCE, ACCOUNT_UPDATE, CAPABILITY_UPDATE, GROUP = (PreferenceSchema(), AccountUpdateSchema(),
                                                        CapabilitySchema(), GroupSchema())
MESSAGE_TEMPLATES = MessageTemplatesSchema()


# --- Reading a payload -------------------------------------------------------------------------------------


# A change is judged by the bounds of every body (contract.parsing.WEBHOOK_LIMITS: nesting from the body's root,
# members of one array or object); the payload around it only by PAYLOAD_LIMITS, so that one change past them is
# skipped and listed, not the payload refused (Meta would retry it forever, and its good events would be lost).
CHANGE_DEPTH, CHANGE_ITEMS, CHANGE_VALUES = (WEBHOOK_LIMITS.max_depth, WEBHOOK_LIMITS.max_items,
                                             WEBHOOK_LIMITS.max_values)
# The body's own bounds keep parsing cheap: nesting (Python's parser recurses; orjson stops at 1,024 levels) and
# values; a body past them is refused unstored (400/422). Meta's payloads are about 8 levels deep, and a body of the
# default POLICY_MAX_CONTENT_LENGTH (4 MiB) holds at most ~2.1 million values. Item counts are bounded by values.
PAYLOAD_DEPTH, PAYLOAD_VALUES = 256, 4 * WEBHOOK_LIMITS.max_values
PAYLOAD_LIMITS = replace(WEBHOOK_LIMITS, max_depth=PAYLOAD_DEPTH, max_items=PAYLOAD_VALUES, max_values=PAYLOAD_VALUES)
_CHANGE_LEVEL = 4  # root object, entry list, an entry, its changes list: a change is this deep


def parse_payload(body: bytes | str) -> Any:
    """A webhook body's JSON value for `envelope_errors` and `read`: an `Unreadable` dict listing, besides the values
    the lenient parse could not vouch for, each change nested deeper than CHANGE_DEPTH levels or holding more than
    CHANGE_ITEMS members in one array or object (`read` skips it and lists it). Raises contract.parsing.BodyRefused
    (400/422) for a body that is not UTF-8 JSON, is nested deeper than PAYLOAD_DEPTH levels or holds more than
    PAYLOAD_VALUES values (a change holding more than CHANGE_VALUES is skipped)."""
    try:
        return parse_json(body, WEBHOOK_LIMITS)
    except BodyRefused:
        # Perhaps only a change is too deep or too long: parsed again within the payload's bounds (only such a
        # body pays for a second parse), and each change judged on its own.
        pass
    document = parse_json(body, PAYLOAD_LIMITS)
    oversized = _oversized_changes(document)
    if not oversized:
        return document
    return Unreadable(document, {**(getattr(document, "unreadable", None) or {}), **oversized})


def _oversized_changes(document: Any) -> dict[str, list[str]]:
    """The path of each change past CHANGE_DEPTH or CHANGE_ITEMS, with why (the first fault found in it)."""
    found: dict[str, list[str]] = {}
    entries = document.get("entry") if isinstance(document, dict) else None
    for entry_index, entry in enumerate(entries if isinstance(entries, list) else ()):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change_index, change in enumerate(changes if isinstance(changes, list) else ()):
            if fault := _oversized(change):
                found[f"entry.{entry_index}.changes.{change_index}"] = [
                    f"{fault}: the change is not read (the stored payload keeps it)"]
    return found


def _oversized(change: Any) -> str | None:
    """Why a change is past the bounds of a body, or None; walked without recursion."""
    stack = [(change, _CHANGE_LEVEL)] if isinstance(change, dict | list) else []
    values = 1
    while stack:
        item, depth = stack.pop()
        if depth >= CHANGE_DEPTH:
            return f"nested deeper than {CHANGE_DEPTH} levels"
        if len(item) > CHANGE_ITEMS:
            return f"at most {CHANGE_ITEMS} members in one array or object, got {len(item)}"
        values += len(item)
        if values > CHANGE_VALUES:
            return f"at most {CHANGE_VALUES} JSON values"
        members = item.values() if isinstance(item, dict) else item
        stack.extend((member, depth + 1) for member in members if isinstance(member, dict | list))
    return None


def envelope_errors(document: Any) -> dict[str, list[str]] | None:
    """Why a parsed body is not a WhatsApp Business Account webhook at all (`object`, `entry`), or None."""
    try:
        NOTIFICATION.load(document)
    except ValidationError as error:
        return flatten_errors(error.messages)
    return None


@dataclass(frozen=True)
class _Change:
    """What every field reader gets: the change's value, path, WABA id and time."""

    value: dict[str, Any]
    path: str
    waba_id: str
    at: datetime


def read(document: dict[str, Any], received_at: datetime) -> Reading:
    """Every event of a webhook body whose envelope is valid (envelope_errors is None), and every part
    skipped, in payload order. `received_at` stands in for `entry.time` where Meta omits it."""
    unreadable = getattr(document, "unreadable", None) or {}
    reading = Reading(unreadable=unreadable, holding={
        bad[:end] for bad in unreadable for end in range(len(bad)) if bad[end] == "."})
    for entry_index, raw_entry in enumerate(document["entry"]):
        entry = reading.load(ENTRY, raw_entry, f"entry.{entry_index}")
        at = _entry_time(reading, entry, f"entry.{entry_index}.time", received_at) if entry else received_at
        for change_index, raw_change in enumerate(entry["changes"] if entry else ()):
            path = f"entry.{entry_index}.changes.{change_index}"
            if path in reading.unreadable:  # past a body's bounds, or a bare value that cannot be vouched for
                reading.skip(path, {"_": reading.unreadable[path]})
                continue
            change = reading.load(CHANGE, raw_change, path)
            if change is None:
                continue
            reader = FIELD_READERS.get(change["field"])
            if reader is None:
                reading.skip(f"{path}.field", {"field": [
                    f"{change['field']!r} is not stored: policy-service reads {', '.join(sorted(FIELD_READERS))}"]})
                continue
            reader(reading, _Change(change["value"], f"{path}.value", str(entry["id"]), at))
    return reading


def _entry_time(reading: Reading, entry: dict[str, Any], path: str, received_at: datetime) -> datetime:
    """entry.time (when Meta triggered the webhook: the time of its account and template events), else the
    receipt time. Some fields omit it: the receipt time stands in silently. One that is not Unix seconds between
    2000 and 2999 (null too) is listed as not read and the receipt time stands in too: an ACCOUNT_RESTRICTION
    dated in the year 9999 would never apply before it (a silent allow)."""
    if "time" not in entry:
        return received_at
    try:
        if entry["time"] is None:  # null as "abc" or -5: no time, so the entry is read at the receipt time
            raise ValidationError("must be Unix seconds, not null")
        return _ENTRY_TIME.deserialize(entry["time"])
    except ValidationError as error:
        reading.skip(path, {"time": [*error.messages, "not read: the receipt time stands in"]})
        return received_at


_ENTRY_TIME = UnixTime()  # read like every Unix time of a webhook


def _metadata(reading: Reading, change: _Change) -> dict[str, Any] | None:
    if "metadata" not in change.value:
        # Said as missing: loading None would answer "_schema: must be a JSON object", naming no field.
        reading.skip(f"{change.path}.metadata", {"metadata": [
            "missing: required (the business phone number the change is about, `phone_number_id`); the change is "
            "not read (the stored payload keeps it)"]})
        return None
    metadata = reading.load(METADATA, change.value["metadata"], f"{change.path}.metadata")
    if metadata is not None:  # every entry read has its WABA id (EntrySchema requires one)
        reading.events.append(NumberSeen(metadata["phone_number_id"], change.waba_id, change.at))
    return metadata


def _link(reading: Reading, number: str, item: dict[str, Any]) -> None:
    if item["bsuid"] is not None:
        reading.events.append(Link(number, item["contact"], item["bsuid"]))


def _read_messages(reading: Reading, change: _Change) -> None:
    """`messages`: contacts (wa_id-BSUID links), inbound messages (and number changes), statuses, and Meta's
    out-of-band errors (`value.errors`: a system, app or account problem that kept Meta from processing a request,
    for no message in particular), which nothing stores: each is listed as skipped with its code, title, message
    and details, so it reaches the receipt and the log instead of vanishing."""
    for path, error, _ in reading.each(OUT_OF_BAND_ERROR, change.value, "errors", change.path):
        details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
        said = "; ".join(str(part) for part in (error.get("title"), error.get("message"), details) if part)
        reading.skip(path, {"errors": [
            f"Meta reported error {error['code']}" + (f" ({said})" if said else "")
            + ": an out-of-band error for no message, not stored (listed here and logged)"]})
    metadata = _metadata(reading, change)
    if metadata is None:
        return
    number = metadata["phone_number_id"]
    contacts = [contact for _, contact, _ in reading.each(CONTACT, change.value, "contacts", change.path)]
    for contact in contacts:
        _link(reading, number, contact)
    for path, m, _ in reading.each(INBOUND, change.value, "messages", change.path):
        wa_id, user_id = m["sender"], m["sender_user_id"]
        if not wa_id and not user_id and len(contacts) == 1:
            # A username user may be named only by the change's one contact (`contacts[].user_id`).
            wa_id, user_id = contacts[0]["wa_id"], contacts[0]["user_id"]
        try:
            m["contact"], m["bsuid"] = _contact(wa_id, user_id, "from")
        except ValidationError as error:
            reading.skip(path, flatten_errors(error.normalized_messages()))
            continue
        _link(reading, number, m)
        reading.events.append(Inbound(
            # A group message is the group's history, never the participant's 1:1 history.
            wamid=m["id"], phone_number_id=number, contact=m.get("group_id") or m["contact"], at=m["timestamp"],
            type=m["type"] if m["type"] in KNOWN_INBOUND_TYPES else "unsupported", referral=m.get("referral"),
            group_id=m.get("group_id"), errors=m.get("errors"),
        ))
        system = m.get("system") or {}
        new = system.get("wa_id") or system.get("new_wa_id")
        if m["type"] == "system" and system.get("type") in NUMBER_CHANGES and new and m["sender"]:
            # Both numbers as histories are keyed ("+5511..." or " 5511..." would move the history to no one).
            try:
                moved_to, _bsuid = _contact(str(new), "", "wa_id")
            except ValidationError as error:
                reading.skip(f"{path}.system", flatten_errors(error.normalized_messages()))
                continue
            reading.events.append(NumberChange(number, m["contact"], moved_to, m["timestamp"]))
    for _, s, _ in reading.each(STATUS, change.value, "statuses", change.path):
        _link(reading, number, s)
        conversation = s.get("conversation") or {}
        reading.events.append(Status(
            wamid=s["id"], phone_number_id=number, contact=s["contact"], at=s["timestamp"],
            status=s["status"], conversation_id=conversation.get("id"),
            conversation_origin=(conversation.get("origin") or {}).get("type"), pricing=s.get("pricing"),
            group_id=s["recipient_id"] if s.get("recipient_type") == "group" else None, errors=s.get("errors"),
            decision_id=s.get("biz_opaque_callback_data") or None, waba_id=change.waba_id,
        ))


def _read_calls(reading: Reading, change: _Change) -> None:
    """`calls`: a user-initiated call is an inbound `call` (it opens or refreshes the customer service window from
    CSW-8.call's start on, rules parameter window_inbound_types_counted_from); a business-initiated one an outbound
    `call`, which opens nothing, and when its terminate event says it completed, the user accepted it: an inbound
    `call` at its start (id `<call id>#accepted`). A call's connect and terminate events share its id, so it is
    stored once."""
    metadata = _metadata(reading, change)
    if metadata is None:
        return
    number = metadata["phone_number_id"]
    for path, call, _ in reading.each(CALL, change.value, "calls", change.path):
        business = call.get("direction") == "BUSINESS_INITIATED" or (
            "direction" not in call and bool(call["sender"]) and call["sender"] == metadata["display_phone_number"])
        wa_id, user_id = (call["to"], call["to_user_id"]) if business else (call["sender"], call["sender_user_id"])
        try:
            contact, bsuid = _contact(wa_id, user_id, "to" if business else "from")
        except ValidationError as error:
            reading.skip(path, flatten_errors(error.normalized_messages()))
            continue
        if bsuid is not None:
            reading.events.append(Link(number, contact, bsuid))
        reading.events.append(Call(wacid=call["id"], phone_number_id=number, contact=contact, at=call["timestamp"],
                                   direction="outbound" if business else "inbound"))
        if business and CallSchema.accepted(call):
            reading.events.append(Call(wacid=call["id"] + "#accepted", phone_number_id=number, contact=contact,
                                       at=call.get("start_time", call["timestamp"]), direction="inbound"))


def _read_echoes(reading: Reading, change: _Change) -> None:
    """`smb_message_echoes`: each message the business sent from the WhatsApp Business app is an outbound
    business message of its type; an echo of an edit or a revoke changes an earlier message and sends nothing."""
    metadata = _metadata(reading, change)
    if metadata is None:
        return
    number = metadata["phone_number_id"]
    for _, echo, _ in reading.each(ECHO, change.value, "message_echoes", change.path):
        _link(reading, number, echo)
        if echo["type"] in NOT_A_SEND:
            continue
        reading.events.append(Echo(wamid=echo["id"], phone_number_id=number, contact=echo["contact"],
                                   at=echo["timestamp"], type=echo["type"] if echo["type"] in MESSAGE_TYPES
                                   else "unknown"))


def _read_preferences(reading: Reading, change: _Change) -> None:
    """`user_preferences`: a user stopping or resuming marketing messages (other categories are not rules')."""
    metadata = _metadata(reading, change)
    if metadata is None:
        return
    for _, p, _ in reading.each(PREFERENCE, change.value, "user_preferences", change.path):
        if p["category"] == "marketing_messages" and p["value"] in ("stop", "resume"):
            reading.events.append(Preference(metadata["phone_number_id"], p["contact"], p["value"], p["timestamp"],
                                             "user_preferences webhook"))


def _read_groups(reading: Reading, change: _Change, field_name: str) -> None:
    """The Groups API fields: each entry of `value.groups` kept as Meta sent it, under its type and group."""
    metadata = _metadata(reading, change)
    if metadata is None:
        return
    for _, group, raw in reading.each(GROUP, change.value, "groups", change.path):
        reading.events.append(GroupEvent(metadata["phone_number_id"], field_name, group["type"],
                                         group.get("group_id"), group["timestamp"], raw))


def _category(value: str | None) -> str | None:
    """A category as the rules name it; UNKNOWN_CATEGORY for one they do not model; None when Meta gave none."""
    return CATEGORY_NAMES.get(value.upper(), UNKNOWN_CATEGORY) if value else None


def _status(event: str) -> str | None:
    """The status a status event sets; None when it leaves the status as it was; UNKNOWN_STATUS for an event the
    rules do not model (the status it leaves is not known)."""
    if event in STATUS_EVENTS:
        return STATUS_EVENTS[event]
    return None if event in UNCHANGED_STATUS_EVENTS else UNKNOWN_STATUS


def _noted(reason: str | None, *parts: tuple[str, str | None, str | None]) -> str | None:
    """Meta's reason, followed by each part (what, Meta's value, as read) read as unknown, with Meta's value."""
    notes = [f"Meta's {what} {raw} is not one the rules model" for what, raw, read in parts if read in UNKNOWN_VALUES]
    return "; ".join(filter(None, (reason, *notes))) or None


def _template(value: dict[str, Any], change: _Change, field_name: str, at: datetime, **parts: Any) -> TemplateChange:
    template_id = value.get("message_template_id")
    return TemplateChange(
        waba_id=change.waba_id, name=value["message_template_name"], language=value["message_template_language"],
        source=field_name, effective_at=at, template_id=None if template_id is None else str(template_id),
        payload=change.value, **parts)


def _whole(schema: Schema) -> Callable[[Callable[..., list[Event]]], Callable[[Reading, _Change], None]]:
    """A reader of a field whose value is one object: unreadable, the whole value is skipped (path `...value`)."""
    def wrap(build: Callable[..., list[Event]]) -> Callable[[Reading, _Change], None]:
        def reader(reading: Reading, change: _Change) -> None:
            value = reading.load(schema, change.value, change.path)
            if value is not None:
                reading.events.extend(build(value, change))
        reader.__doc__ = build.__doc__
        return reader
    return wrap


@_whole(TEMPLATE_STATUS)
def _read_template_status(value: dict[str, Any], change: _Change) -> list[Event]:
    """`message_template_status_update`: the status in force from the change's time."""
    event, category = value["event"].upper(), value.get("message_template_category")
    status, read_category = _status(event), _category(category)
    return [_template(value, change, "message_template_status_update", change.at, event=event, status=status,
                      category=read_category, reason=_noted(value.get("reason"), ("status event", event, status),
                                                            ("category", category, read_category)))]


@_whole(TEMPLATE_CATEGORY)
def _read_template_category(value: dict[str, Any], change: _Change) -> list[Event]:
    """`template_category_update`: completed, or impending (the current category stands until
    category_update_timestamp, then the correct one)."""
    source = "template_category_update"
    new, correct, previous = value["new_category"], value.get("correct_category"), value.get("previous_category")
    if "correct_category" in value:
        return [
            _template(value, change, source, change.at, event="IMPENDING", category=_category(new),
                      reason=_noted(None, ("category", new, _category(new)))),
            _template(value, change, source, value.get("category_update_timestamp") or change.at,
                      event="CATEGORY_CHANGE_TAKES_EFFECT", category=_category(correct),
                      previous_category=_category(new), reason=_noted(
                          None, ("category", correct, _category(correct)), ("category", new, _category(new)))),
        ]
    return [_template(value, change, source, change.at, event="COMPLETED", category=_category(new),
                      previous_category=_category(previous), reason=_noted(
                          None, ("category", new, _category(new)), ("category", previous, _category(previous))))]


@_whole(TEMPLATE_QUALITY)
def _read_template_quality(value: dict[str, Any], change: _Change) -> list[Event]:
    """`message_template_quality_update`: the new quality score."""
    previous, new = value.get("previous_quality_score", "UNKNOWN"), value["new_quality_score"]
    return [_template(value, change, "message_template_quality_update", change.at, event="QUALITY", quality=new,
                      reason=f"quality {previous} -> {new}")]


def _read_account_update(reading: Reading, change: _Change) -> None:
    """`account_update`: kept whole under its event (eligibility, country, restrictions, bans, volume tiers).

    A ban's `waba_ban_date` that ban_date cannot read, or a `waba_ban_state` not in BAN_STATES, is listed (path
    `...value.ban_info.<field>`) and the event is stored all the same: a ban scheduled on a date no one can read
    counts from the webhook's time, and a state the rules do not know is taken as disabled
    (store.business_state.account_state: fail closed), never dropped."""
    value = reading.load(ACCOUNT_UPDATE, change.value, change.path)
    if value is None:
        return
    state = (value.get("ban_info") or {}).get("waba_ban_state")
    if value["event"].upper() == BAN_EVENT and (state or "").upper() not in BAN_STATES:
        reading.skip(f"{change.path}.ban_info.waba_ban_state", {"waba_ban_state": [
            f"must be one of: {', '.join(BAN_STATES)}" if state else "required for DISABLED_UPDATE",
            "not read: the account is taken as disabled from the webhook's time (fail closed)"]})
    when = (value.get("ban_info") or {}).get("waba_ban_date")
    if when is not None:
        try:
            ban_date(when)
        except ValueError as error:
            reading.skip(f"{change.path}.ban_info.waba_ban_date", {"waba_ban_date": [
                str(error), "not read: a ban scheduled on it counts from the webhook's time (fail closed)"]})
    reading.events.append(AccountChange(change.waba_id, "account_update", value["event"].upper(), change.at,
                                        change.value))


@_whole(CAPABILITY_UPDATE)
def _read_capability(value: dict[str, Any], change: _Change) -> list[Event]:
    """`business_capability_update`: the messaging limit (the per-phone name is its older spelling)."""
    payload = dict(change.value)
    if "max_daily_conversations_per_business" not in value and "max_daily_conversation_per_phone" in value:
        payload["max_daily_conversations_per_business"] = value["max_daily_conversation_per_phone"]
    return [AccountChange(change.waba_id, "business_capability_update", CAPABILITY, change.at, payload)]


GROUP_FIELDS = ("group_lifecycle_update", "group_participants_update", "group_settings_update", "group_status_update")

# Which webhook `field`s are read, and by what; any other field is listed as skipped, never silently dropped.
FIELD_READERS: dict[str, Callable[[Reading, _Change], None]] = {
    "messages": _read_messages,
    "calls": _read_calls,
    "smb_message_echoes": _read_echoes,
    "user_preferences": _read_preferences,
    "message_template_status_update": _read_template_status,
    "template_category_update": _read_template_category,
    "message_template_quality_update": _read_template_quality,
    "account_update": _read_account_update,
    "business_capability_update": _read_capability,
    **{name: (lambda reading, change, name=name: _read_groups(reading, change, name)) for name in GROUP_FIELDS},
}


def parse_message_templates(waba_id: str, response: Any, imported_at: datetime | None = None
                            ) -> list[TemplateChange]:
    """The templates of a `GET /<WABA_ID>/message_templates` response as registry entries of the WABA, stamped
    with the import time. Raises ValidationError naming `data.<i>.<field>` for a malformed template."""
    at = imported_at or datetime.now(UTC)
    if not isinstance(response, dict):
        raise ValidationError({"_schema": ["must be the JSON object GET /<WABA_ID>/message_templates returns"]})
    return [_listed(waba_id, t, at) for t in MESSAGE_TEMPLATES.load(response)["data"]]


def _listed(waba_id: str, template: dict[str, Any], at: datetime) -> TemplateChange:
    """One listed template as a registry entry: a status the rules do not model (IN_APPEAL, LIMIT_EXCEEDED) is
    UNKNOWN_STATUS, named in the reason."""
    status = template["status"].upper()
    known = STATUS_EVENTS.get(status, UNKNOWN_STATUS)
    return TemplateChange(
        waba_id=waba_id, name=template["name"], language=template["language"], source=IMPORT_SOURCE, effective_at=at,
        event=status, template_id=None if template.get("id") is None else str(template["id"]), status=known,
        category=_category(template["category"]), reason=_noted(None, ("status", status, known)), payload=template)

"""Meta's WhatsApp webhooks: verify the signature, answer the subscription challenge, store what they report."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint, abort
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from ..contract.parsing import MAX_ERRORS, WEBHOOK_LIMITS, bounded_errors, flatten_errors
from ..contract.schemas import INBOUND_ONLY_TYPES, MESSAGE_TYPES, ErrorSchema, WebhookReceiptSchema
from ..core import identities
from ..store import histories
from . import webhook_fields
from .api import parse_body

blp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks", description="Meta's WhatsApp webhooks")

log = logging.getLogger("policy_service.webhooks")
SIGNATURE_HEADER = "X-Hub-Signature-256"
KNOWN_INBOUND_TYPES = frozenset(MESSAGE_TYPES + INBOUND_ONLY_TYPES)


class _MetaSchema(Schema):
    # Meta adds fields over time; unknown ones are ignored, not refused.
    class Meta:
        unknown = EXCLUDE


class UnixTime(fields.Field):
    """Meta's Unix-seconds timestamp (sent as a string) as an aware UTC datetime."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        try:
            return datetime.fromtimestamp(int(value), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise ValidationError("must be Unix seconds") from None


class InboundSchema(_MetaSchema):
    """One entry of `value.messages`: from a phone number (`from`) or, for a user with a username, a BSUID."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    sender = fields.String(data_key="from", load_default="")
    sender_user_id = fields.String(data_key="from_user_id", load_default="")
    timestamp = UnixTime(required=True)
    type = fields.String(required=True)
    referral = fields.Dict()
    group_id = fields.String(validate=validate.Length(min=1, max=255))  # Groups API: a participant wrote in a group
    errors = fields.List(fields.Dict())  # e.g. on an unsupported message

    @post_load
    def contact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["contact"], data["bsuid"] = _contact(data["sender"], data["sender_user_id"], "from")
        return data


class OriginSchema(_MetaSchema):
    """`conversation.origin`: the category that opened the conversation."""

    type = fields.String(validate=validate.Length(max=64))


class ConversationSchema(_MetaSchema):
    """The `conversation` of a status."""

    id = fields.String(validate=validate.Length(max=255))
    origin = fields.Nested(OriginSchema)


class StatusSchema(_MetaSchema):
    """One entry of `value.statuses`: to a phone number (`recipient_id`) or a BSUID (`recipient_user_id`)."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    status = fields.String(required=True, validate=validate.OneOf(tuple(histories.STATUS_RANK)))
    timestamp = UnixTime(required=True)
    recipient_id = fields.String(load_default="")
    recipient_user_id = fields.String(load_default="")
    conversation = fields.Nested(ConversationSchema)
    pricing = fields.Dict()
    recipient_type = fields.String()  # "group": recipient_id is the group id (Groups API)
    errors = fields.List(fields.Dict())  # why a message failed (e.g. 131047: the window was closed)

    @post_load
    def contact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("recipient_type") == "group" and data["recipient_id"]:
            # Groups API: the recipient is the group; its messages are the group's history (stored under its id).
            data["contact"], data["bsuid"] = data["recipient_id"], None
            return data
        data["contact"], data["bsuid"] = _contact(data["recipient_id"], data["recipient_user_id"], "recipient_id")
        return data


class ContactSchema(_MetaSchema):
    """One entry of `value.contacts`: the user's wa_id (empty for a username user) and BSUID (`user_id`)."""

    wa_id = fields.String(load_default="")
    user_id = fields.String(load_default="")

    @post_load
    def contact(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["contact"], data["bsuid"] = _contact(data["wa_id"], data["user_id"], "wa_id")
        return data


class CallSchema(_MetaSchema):
    """One entry of `value.calls` (the `calls` field): a call's connect or terminate event.

    A user-initiated call is from the user (`from`, or `from_user_id` for a BSUID) to the business; a
    business-initiated one is to the user (`to`/`to_user_id`). Without `direction`, a call from the
    business's own display number is business-initiated.
    """

    id = fields.String(required=True, validate=validate.Length(min=1, max=255))
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

    def accepted(self, call: dict[str, Any]) -> bool:
        """True for the terminate event of a call that was answered (it completed)."""
        status = call.get("status")
        statuses = status if isinstance(status, list) else [status]
        return call.get("event") == "terminate" and any(str(s).upper() == "COMPLETED" for s in statuses)


class MetadataSchema(_MetaSchema):
    """The business number a change is about."""

    phone_number_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    display_phone_number = fields.String(load_default="")


class ChangeSchema(_MetaSchema):
    """One change: which webhook `field` it is, and its value (read by that field's reader)."""

    field = fields.String(required=True, validate=validate.Length(min=1, max=255))
    value = fields.Dict(required=True)


class EntrySchema(_MetaSchema):
    """One WhatsApp Business Account's changes (each change is read on its own)."""

    changes = fields.List(fields.Raw(), required=True)


class NotificationSchema(_MetaSchema):
    """The whole webhook body: only its envelope must be right; each entry is read on its own."""

    object = fields.String(required=True, validate=validate.Equal("whatsapp_business_account"))
    entry = fields.List(fields.Raw(), required=True)


# One instance each, shared by every payload (see schemas.REQUEST on why schemas are shared).
NOTIFICATION, ENTRY, CHANGE, METADATA = NotificationSchema(), EntrySchema(), ChangeSchema(), MetadataSchema()
INBOUND, STATUS, CONTACT, CALL = InboundSchema(), StatusSchema(), ContactSchema(), CallSchema()

Event = histories.Inbound | histories.Status | histories.Link | histories.Call


@dataclass(frozen=True)
class Skipped:
    """A part of a payload that was not stored: where it is (a path like entry.0.changes.1.value.statuses.2) and why."""

    path: str
    reason: dict[str, list[str]]


@dataclass
class Reading:
    """What one payload yields: the events to store, and every part skipped with its reason."""

    events: list[Event] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def load(self, schema: Schema, item: Any, path: str) -> dict[str, Any] | None:
        """The item loaded with the schema, or None after recording why it was skipped.

        This is the one place a part of a payload is judged: a part we cannot read costs only itself.
        """
        try:
            return schema.load(item)
        except ValidationError as error:
            self.skipped.append(Skipped(path, bounded_errors(flatten_errors(error.messages))))
            return None

    def each(self, schema: Schema, value: dict[str, Any], key: str, path: str):
        """Every readable item of the list `value[key]` (absent: none), with its path."""
        items = value.get(key, [])
        if not isinstance(items, list):
            self.skipped.append(Skipped(f"{path}.{key}", {"_": ["must be a list"]}))
            return
        for index, item in enumerate(items):
            loaded = self.load(schema, item, f"{path}.{key}.{index}")
            if loaded is not None:
                yield loaded


def read_payload(data: dict[str, Any]) -> Reading:
    """Every event of a webhook body whose envelope validated, and every part skipped, in payload order."""
    reading = Reading()
    for entry_index, raw_entry in enumerate(data["entry"]):
        entry = reading.load(ENTRY, raw_entry, f"entry.{entry_index}")
        for change_index, raw_change in enumerate(entry["changes"] if entry else ()):
            path = f"entry.{entry_index}.changes.{change_index}"
            change = reading.load(CHANGE, raw_change, path)
            if change is None:
                continue
            reader = FIELD_READERS.get(change["field"])
            if reader is None and change["field"] in webhook_fields.PARSERS:
                continue  # business state only (templates, preferences, account): webhook_fields stores it
            if reader is None:
                reading.skipped.append(Skipped(f"{path}.field", {"field": [
                    f"{change['field']!r} is not stored: policy-service reads {', '.join(sorted(READ_FIELDS))}"]}))
                continue
            metadata = reading.load(METADATA, change["value"].get("metadata"), f"{path}.value.metadata")
            if metadata is not None:
                reader(reading, change["value"], metadata, f"{path}.value")
    return reading


def _read_messages(reading: Reading, value: dict[str, Any], metadata: dict[str, Any], path: str) -> None:
    """The `messages` field: inbound messages, statuses of outbound ones, and the contacts they name."""
    number = metadata["phone_number_id"]
    for contact in reading.each(CONTACT, value, "contacts", path):
        _link(reading, number, contact)
    for m in reading.each(INBOUND, value, "messages", path):
        _link(reading, number, m)
        reading.events.append(histories.Inbound(
            # A group message is the group's history, never the participant's 1:1 history.
            wamid=m["id"], phone_number_id=number, contact=m.get("group_id") or m["contact"], at=m["timestamp"],
            type=m["type"] if m["type"] in KNOWN_INBOUND_TYPES else "unsupported", referral=m.get("referral"),
            group_id=m.get("group_id"), errors=m.get("errors"),
        ))
    for s in reading.each(STATUS, value, "statuses", path):
        _link(reading, number, s)
        conversation = s.get("conversation") or {}
        reading.events.append(histories.Status(
            wamid=s["id"], phone_number_id=number, contact=s["contact"], at=s["timestamp"],
            status=s["status"], conversation_id=conversation.get("id"),
            conversation_origin=(conversation.get("origin") or {}).get("type"), pricing=s.get("pricing"),
            group_id=s["recipient_id"] if s.get("recipient_type") == "group" else None, errors=s.get("errors"),
        ))


def _read_calls(reading: Reading, value: dict[str, Any], metadata: dict[str, Any], path: str) -> None:
    """The `calls` field: a user-initiated call is stored as an inbound `call` (it opens or refreshes the
    customer service window, rule CSW-8); a business-initiated one is stored as an outbound `call`,
    which opens nothing, and when its terminate event says it completed, the user accepted it, which
    is stored as an inbound `call` at its start (id `<call id>#accepted`). A call's connect and
    terminate events share its id, so it is stored once."""
    number = metadata["phone_number_id"]
    for index, call in enumerate(reading.each(CALL, value, "calls", path)):
        business = call.get("direction") == "BUSINESS_INITIATED" or (
            "direction" not in call and bool(call["sender"]) and call["sender"] == metadata["display_phone_number"])
        wa_id, user_id = (call["to"], call["to_user_id"]) if business else (call["sender"], call["sender_user_id"])
        try:
            contact, bsuid = identities.webhook_contact(wa_id, user_id)
        except identities.NotAContact as error:
            reading.skipped.append(Skipped(f"{path}.calls.{index}", {"to" if business else "from": [str(error)]}))
            continue
        if bsuid is not None:
            reading.events.append(histories.Link(number, contact.id, bsuid.id))
        reading.events.append(histories.Call(
            wacid=call["id"], phone_number_id=number, contact=contact.id, at=call["timestamp"],
            direction="outbound" if business else "inbound"))
        if business and CALL.accepted(call):
            reading.events.append(histories.Call(
                wacid=call["id"] + "#accepted", phone_number_id=number, contact=contact.id,
                at=call.get("start_time", call["timestamp"]), direction="inbound"))


# Which webhook `field`s are read, and by what; any other field is reported as skipped, never
# silently dropped. A reader gets the change's value, its validated metadata and its path.
FIELD_READERS = {"messages": _read_messages, "calls": _read_calls}
# Every field policy-service stores: events (above) and business state (webhook_fields).
READ_FIELDS = sorted({*FIELD_READERS, *webhook_fields.PARSERS})


def _contact(wa_id: str, user_id: str, name: str) -> tuple[str, str | None]:
    try:
        contact, bsuid = identities.webhook_contact(wa_id, user_id)
    except identities.NotAContact as error:
        raise ValidationError(str(error), name) from None
    return contact.id, bsuid.id if bsuid else None


def _link(reading: Reading, number: str, item: dict[str, Any]) -> None:
    if item["bsuid"] is not None:
        reading.events.append(histories.Link(number, item["contact"], item["bsuid"]))


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """True when the header is `sha256=` + the HMAC-SHA256 of the raw body under the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII str with a TypeError (a 500 for crafted headers).
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").strip().lower().encode())


@blp.route("/whatsapp", methods=["GET"])
@blp.alt_response(200, description="The challenge, echoed as text", success=True,
                  content_type="text/plain", schema={"type": "string"})
@blp.alt_response(403, schema=ErrorSchema, description="Not a subscription, or the verify token does not match")
def verify_subscription():
    """Answer Meta's subscription check: echo hub.challenge when hub.verify_token matches."""
    # from_prefixed_env JSON-decodes values, so an all-digit token arrives as a number.
    expected = str(current_app.config.get("WHATSAPP_VERIFY_TOKEN") or "")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    matches = bool(expected) and hmac.compare_digest(token.encode(), expected.encode())
    if request.args.get("hub.mode") != "subscribe" or not matches:
        abort(403, message="verification refused: hub.mode must be subscribe and hub.verify_token must match")
    return current_app.response_class(challenge, mimetype="text/plain")


@blp.route("/whatsapp", methods=["POST"])
@blp.alt_response(200, schema=WebhookReceiptSchema, success=True,
                  description="How many events were new and how many known, how many wa_id-BSUID links were new, "
                              "and the parts skipped with why (the first 20; skipped_not_listed counts the rest)")
@blp.alt_response(400, schema=ErrorSchema, description="The body is not JSON")
@blp.alt_response(401, schema=ErrorSchema, description="Missing or wrong X-Hub-Signature-256")
@blp.alt_response(413, schema=ErrorSchema, description="The body is larger than POLICY_MAX_CONTENT_LENGTH")
@blp.alt_response(422, schema=ErrorSchema, description="Not a WhatsApp Business Account webhook (object, entry)")
@blp.alt_response(503, schema=ErrorSchema, description="POLICY_WHATSAPP_APP_SECRET is not configured")
def receive_notification():
    """Store the messages, statuses, contacts and calls of a signed webhook; the same wamid is stored once.

    Each entry, change and event is read on its own: one that cannot be read is skipped and listed
    (path and reason) in the answer's `skipped` and in the log, and every other one is stored.
    """
    secret = str(current_app.config.get("WHATSAPP_APP_SECRET") or "")
    if not secret:
        abort(503, message="WHATSAPP_APP_SECRET is not configured, so no webhook can be verified")
    body = request.get_data(cache=False)
    if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), secret):
        abort(401, message=f"{SIGNATURE_HEADER} is missing or does not match the body")
    document = parse_body(body, WEBHOOK_LIMITS)
    try:
        data = NOTIFICATION.load(document)
    except ValidationError as error:
        abort(422, errors=error.messages)
    reading = read_payload(data)
    # Templates, preferences, account state and billing (webhook_fields): each change read on its own,
    # like the events above, so one unreadable change is skipped and reported, never the whole payload.
    business_writes, business_skipped = webhook_fields.parse(document, reported_elsewhere=frozenset(FIELD_READERS))
    reading.skipped.extend(Skipped(path, reason) for path, reason in business_skipped)
    counts = {"new": 0, "known": 0, "linked": 0}
    for event in reading.events:
        new = histories.store_event(event)
        if isinstance(event, histories.Link):
            counts["linked"] += new
        else:
            counts["new" if new else "known"] += 1
    for write in business_writes:
        write()
    # 200 even when parts were skipped: Meta retries a whole payload on an error, and the rest is stored.
    # The answer and the log list the first MAX_ERRORS skipped parts and count the rest, so a payload of
    # a million bad events cannot make either one huge.
    listed = [{"path": part.path, "reason": part.reason} for part in reading.skipped[:MAX_ERRORS]]
    for part in listed:
        log.warning("webhook part skipped", extra=part)
    answer = {**counts, "skipped": listed}
    if len(reading.skipped) > MAX_ERRORS:
        answer["skipped_not_listed"] = len(reading.skipped) - MAX_ERRORS
        log.warning("webhook parts skipped, not listed", extra={"count": answer["skipped_not_listed"]})
    return answer

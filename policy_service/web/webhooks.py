"""Meta's WhatsApp webhooks: verify the signature, answer the subscription challenge, store messages."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from flask import current_app, request
from flask_smorest import Blueprint, abort
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from ..contract.parsing import WEBHOOK_LIMITS
from ..contract.schemas import INBOUND_ONLY_TYPES, MESSAGE_TYPES, ErrorSchema
from ..store import histories
from .api import parse_body

blp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks", description="Meta's WhatsApp webhooks")

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
    """One entry of `value.messages`."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    sender = fields.String(required=True, data_key="from", validate=validate.Length(min=1, max=64))
    timestamp = UnixTime(required=True)
    type = fields.String(required=True)
    referral = fields.Dict()
    group_id = fields.String(validate=validate.Length(min=1, max=255))  # Groups API: a participant wrote in a group
    errors = fields.List(fields.Dict())  # e.g. on an unsupported message


class OriginSchema(_MetaSchema):
    """`conversation.origin`: the category that opened the conversation."""

    type = fields.String(validate=validate.Length(max=64))


class ConversationSchema(_MetaSchema):
    """The `conversation` of a status."""

    id = fields.String(validate=validate.Length(max=255))
    origin = fields.Nested(OriginSchema)


class StatusSchema(_MetaSchema):
    """One entry of `value.statuses`."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    status = fields.String(required=True, validate=validate.OneOf(tuple(histories.STATUS_RANK)))
    timestamp = UnixTime(required=True)
    recipient_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    conversation = fields.Nested(ConversationSchema)
    pricing = fields.Dict()
    recipient_type = fields.String()  # "group": recipient_id is the group id (Groups API)
    errors = fields.List(fields.Dict())  # why a message failed (e.g. 131047: the window was closed)


class MetadataSchema(_MetaSchema):
    """The business number a change is about."""

    phone_number_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ValueSchema(_MetaSchema):
    """`changes[].value` of a messages webhook."""

    metadata = fields.Nested(MetadataSchema, required=True)
    messages = fields.List(fields.Nested(InboundSchema), load_default=list)
    statuses = fields.List(fields.Nested(StatusSchema), load_default=list)


# One instance for every change of every payload (see schemas.REQUEST on why schemas are shared).
VALUE = ValueSchema()


class ChangeSchema(_MetaSchema):
    """One change; only the `messages` field carries messages and statuses."""

    field = fields.String(required=True)
    value = fields.Dict(required=True)


class EntrySchema(_MetaSchema):
    """One WhatsApp Business Account's changes."""

    changes = fields.List(fields.Nested(ChangeSchema), required=True)


class NotificationSchema(_MetaSchema):
    """The whole webhook body."""

    object = fields.String(required=True, validate=validate.Equal("whatsapp_business_account"))
    entry = fields.List(fields.Nested(EntrySchema), required=True)

    @post_load
    def events(self, data: dict[str, Any], **_: Any) -> list[histories.Inbound | histories.Status]:
        """The inbound messages and statuses of every `messages` change, in payload order."""
        found: list[histories.Inbound | histories.Status] = []
        for entry_index, entry in enumerate(data["entry"]):
            for change_index, change in enumerate(entry["changes"]):
                if change["field"] != "messages":
                    continue
                try:
                    value = VALUE.load(change["value"])
                except ValidationError as error:
                    raise ValidationError({"entry": {entry_index: {"changes": {change_index: {
                        "value": error.messages}}}}}) from None
                found.extend(_events(value))
        return found


NOTIFICATION = NotificationSchema()


def signature_valid(body: bytes, header: str | None, secret: str) -> bool:
    """True when the header is `sha256=` + the HMAC-SHA256 of the raw body under the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII str with a TypeError (a 500 for crafted headers).
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").strip().lower().encode())


@blp.route("/whatsapp", methods=["GET"])
@blp.alt_response(200, description="The challenge, echoed as text")
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
@blp.alt_response(200, description="How many events had a new wamid and how many a known one")
@blp.alt_response(401, schema=ErrorSchema, description="Missing or wrong X-Hub-Signature-256")
@blp.alt_response(422, schema=ErrorSchema, description="Not a WhatsApp messages webhook")
def receive_notification():
    """Store the messages and statuses of a signed webhook; the same wamid is stored once."""
    secret = str(current_app.config.get("WHATSAPP_APP_SECRET") or "")
    if not secret:
        abort(503, message="WHATSAPP_APP_SECRET is not configured, so no webhook can be verified")
    body = request.get_data(cache=False)
    if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), secret):
        abort(401, message=f"{SIGNATURE_HEADER} is missing or does not match the body")
    document = parse_body(body, WEBHOOK_LIMITS)
    try:
        events = NOTIFICATION.load(document)
    except ValidationError as error:
        abort(422, errors=error.messages)
    counts = {"new": 0, "known": 0}
    for event in events:
        new = histories.store_inbound(event) if isinstance(event, histories.Inbound) else histories.store_status(event)
        counts["new" if new else "known"] += 1
    return counts


def _events(value: dict[str, Any]) -> list[histories.Inbound | histories.Status]:
    phone_number_id = value["metadata"]["phone_number_id"]
    events: list[histories.Inbound | histories.Status] = [
        histories.Inbound(
            # A group message is the group's history, never the participant's 1:1 history.
            wamid=m["id"], phone_number_id=phone_number_id, contact=m.get("group_id") or m["sender"],
            at=m["timestamp"], type=m["type"] if m["type"] in KNOWN_INBOUND_TYPES else "unsupported",
            referral=m.get("referral"), group_id=m.get("group_id"), errors=m.get("errors"),
        )
        for m in value["messages"]
    ]
    for s in value["statuses"]:
        conversation = s.get("conversation") or {}
        events.append(histories.Status(
            wamid=s["id"], phone_number_id=phone_number_id, contact=s["recipient_id"], at=s["timestamp"],
            status=s["status"], conversation_id=conversation.get("id"),
            conversation_origin=(conversation.get("origin") or {}).get("type"), pricing=s.get("pricing"),
            group_id=s["recipient_id"] if s.get("recipient_type") == "group" else None, errors=s.get("errors"),
        ))
    return events

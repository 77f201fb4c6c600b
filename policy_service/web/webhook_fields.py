"""The business-state fields of Meta's WhatsApp webhooks: template status, category and quality updates,
user marketing preferences, and what statuses say about billing (pricing, biz_opaque_callback_data,
errors). webhooks.py verifies and dispatches the body; this module validates and stores these fields.

Payload shapes follow Meta's webhook references (developers.facebook.com/documentation/business-messaging/
whatsapp/webhooks/reference/<field>). Every field's events are validated before any is stored, so a bad
change is a 422 naming `entry.<i>.changes.<j>.value.<field>` and nothing of the body is half-stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from ..store import business_state as state
from ..store import decision_log

# A status error code -> what it tells about the business's own state.
STOPPED_MARKETING = 131050
TEMPLATE_ERRORS = {132015: "PAUSED", 132016: "DISABLED"}
# System message types saying the user moved to a new number (the older name first).
NUMBER_CHANGES = ("customer_changed_number", "user_changed_number")


class _Tolerant(Schema):
    # Meta adds fields over time; unknown ones are ignored, not refused.
    class Meta:
        unknown = EXCLUDE


class UnixSeconds(fields.Field):
    """Meta's Unix-seconds timestamp (a number or a numeric string) as an aware UTC datetime."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, bool):
            raise ValidationError("must be Unix seconds")
        try:
            return datetime.fromtimestamp(int(value), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise ValidationError("must be Unix seconds") from None


def _text(max_length: int = 512, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class TemplateKeySchema(_Tolerant):
    """The template a template webhook is about."""

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
    category_update_timestamp = UnixSeconds()


class TemplateQualitySchema(TemplateKeySchema):
    """`message_template_quality_update`: previous_quality_score -> new_quality_score."""

    previous_quality_score = _text(32)
    new_quality_score = _text(32, required=True)


class MetadataSchema(_Tolerant):
    """The business number a messages-like change is about."""

    phone_number_id = _text(64, required=True)


class PreferenceSchema(_Tolerant):
    """One entry of `user_preferences`."""

    wa_id = _text(64, required=True)
    category = _text(64, required=True)
    value = _text(16, required=True)
    detail = fields.String()
    timestamp = UnixSeconds(required=True)


class UserPreferencesSchema(_Tolerant):
    """`user_preferences`: a user stopped or resumed marketing messages."""

    metadata = fields.Nested(MetadataSchema, required=True)
    user_preferences = fields.List(fields.Nested(PreferenceSchema), required=True)


class ErrorSchema(_Tolerant):
    """One entry of a status's `errors`."""

    code = fields.Integer(required=True)
    title = fields.String()
    message = fields.String()


class StatusSchema(_Tolerant):
    """What this module keeps of one entry of `value.statuses` (webhooks.py stores the rest)."""

    id = _text(255, required=True)
    status = _text(16, required=True)
    timestamp = UnixSeconds(required=True)
    recipient_id = _text(64, required=True)
    pricing = fields.Dict()
    biz_opaque_callback_data = fields.String(validate=validate.Length(max=512))
    errors = fields.List(fields.Nested(ErrorSchema), load_default=list)


class SystemSchema(_Tolerant):
    """`system` of a system message: user_changed_number carries the new wa_id."""

    type = fields.String(required=True)
    wa_id = _text(64)
    new_wa_id = fields.Raw()  # the older name of wa_id (a number or a string)


class InboundSchema(_Tolerant):
    """What this module keeps of one entry of `value.messages`: system messages about the user's number."""

    sender = fields.String(data_key="from", load_default="")
    timestamp = UnixSeconds(required=True)
    type = fields.String(required=True)
    system = fields.Nested(SystemSchema)


class MessagesSchema(_Tolerant):
    """The parts of a `messages` change this module reads."""

    metadata = fields.Nested(MetadataSchema, required=True)
    statuses = fields.List(fields.Nested(StatusSchema), load_default=list)
    messages = fields.List(fields.Nested(InboundSchema), load_default=list)


class MetaTime(fields.Field):
    """A time in an account event: Unix seconds, or ISO 8601 as Meta writes it (2026-04-19T13:59:20+0000)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("must be Unix seconds or an ISO 8601 time")
        try:
            return state.meta_time(value)
        except (ValueError, OverflowError, OSError):
            raise ValidationError("must be Unix seconds or an ISO 8601 time") from None


class RestrictionSchema(_Tolerant):
    """One entry of `restriction_info`."""

    restriction_type = _text(64, required=True)
    expiration = MetaTime()


class CountryStartSchema(_Tolerant):
    """One exception country of authentication-international eligibility."""

    country_code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z]{2}$"))
    start_time = MetaTime(required=True)


class EligibilitySchema(_Tolerant):
    """`auth_international_rate_eligibility`: the start time, and countries with their own."""

    start_time = MetaTime()
    exception_countries = fields.List(fields.Nested(CountryStartSchema), load_default=list)


class BanInfoSchema(_Tolerant):
    """`ban_info`: the WABA's ban state (DISABLE, SCHEDULE_FOR_DISABLE, REINSTATE)."""

    waba_ban_state = _text(64, required=True)
    waba_ban_date = fields.String()


class AccountUpdateSchema(_Tolerant):
    """`account_update`: an account event and the part of the value that goes with it."""

    event = _text(64, required=True)
    country = fields.String(validate=validate.Regexp(r"^[A-Za-z]{2}$"))
    auth_international_rate_eligibility = fields.Nested(EligibilitySchema)
    restriction_info = fields.List(fields.Nested(RestrictionSchema))
    ban_info = fields.Nested(BanInfoSchema)
    volume_tier_info = fields.Dict()
    violation_info = fields.Dict()


class CapabilitySchema(_Tolerant):
    """`business_capability_update`: the portfolio's messaging limit (-1 unlimited) and phone number limits."""

    max_daily_conversations_per_business = fields.Integer(validate=validate.Range(min=-1))
    max_daily_conversation_per_phone = fields.Integer(validate=validate.Range(min=-1))
    max_phone_numbers_per_business = fields.Integer()
    max_phone_numbers_per_waba = fields.Integer()


TEMPLATE_STATUS, TEMPLATE_CATEGORY, TEMPLATE_QUALITY = (TemplateStatusSchema(), TemplateCategorySchema(),
                                                         TemplateQualitySchema())
USER_PREFERENCES, MESSAGES = UserPreferencesSchema(), MessagesSchema()
ACCOUNT_UPDATE, CAPABILITY = AccountUpdateSchema(), CapabilitySchema()

Store = Callable[[], None]


def parse(body: dict[str, Any], received_at: datetime | None = None) -> list[Store]:
    """Validate the business-state fields of a webhook body; the writes that store them, in payload order.

    Raises ValidationError with the path of the first bad change. Fields this module does not know
    are left to webhooks.py (and ignored there when it does not know them either).
    """
    now = received_at or datetime.now(UTC)
    writes: list[Store] = []
    for entry_index, entry in enumerate(_list(body.get("entry"))):
        if not isinstance(entry, dict):
            continue
        waba_id = str(entry.get("id") or "")
        at = _entry_time(entry, now)
        for change_index, change in enumerate(_list(entry.get("changes"))):
            if not isinstance(change, dict) or change.get("field") not in PARSERS:
                continue
            schema, build = PARSERS[change["field"]]
            try:
                value = schema.load(change.get("value") if isinstance(change.get("value"), dict) else {})
            except ValidationError as error:
                raise ValidationError({"entry": {entry_index: {"changes": {change_index: {
                    "value": error.messages}}}}}) from None
            writes.extend(build(value, waba_id, at, change["field"]))
    return writes


def _entry_time(entry: dict[str, Any], now: datetime) -> datetime:
    # entry.time is when Meta triggered the webhook; some fields omit it, so receipt time stands in.
    try:
        return datetime.fromtimestamp(int(entry["time"]), tz=UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return now


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _category(value: str | None) -> str | None:
    return state.CATEGORY_NAMES.get(value.upper()) if value else None


def _template(value: dict[str, Any], waba_id: str, field: str, at: datetime, **parts: Any) -> state.TemplateChange:
    template_id = value.get("message_template_id")
    return state.TemplateChange(
        waba_id=waba_id, name=value["message_template_name"], language=value["message_template_language"],
        source=field, effective_at=at, template_id=None if template_id is None else str(template_id),
        payload=value, **parts)


def _status_update(value: dict[str, Any], waba_id: str, at: datetime, field: str) -> list[Store]:
    event = value["event"].upper()
    change = _template(value, waba_id, field, at, event=event, status=state.STATUS_EVENTS.get(event),
                       category=_category(value.get("message_template_category")), reason=value.get("reason"))
    return [lambda: state.record_template(change)]


def _category_update(value: dict[str, Any], waba_id: str, at: datetime, field: str) -> list[Store]:
    if "correct_category" in value:
        # Impending: the current category stands until category_update_timestamp, then the correct one.
        changes = [_template(value, waba_id, field, at, event="IMPENDING",
                             category=_category(value["new_category"]))]
        changes.append(_template(value, waba_id, field, value.get("category_update_timestamp") or at,
                                 event="CATEGORY_CHANGE_TAKES_EFFECT", category=_category(value["correct_category"]),
                                 previous_category=_category(value["new_category"])))
    else:
        changes = [_template(value, waba_id, field, at, event="COMPLETED", category=_category(value["new_category"]),
                             previous_category=_category(value.get("previous_category")))]
    return [lambda c=c: state.record_template(c) for c in changes]


def _quality_update(value: dict[str, Any], waba_id: str, at: datetime, field: str) -> list[Store]:
    change = _template(value, waba_id, field, at, event="QUALITY", quality=value["new_quality_score"],
                       reason=f"quality {value.get('previous_quality_score', 'UNKNOWN')} -> "
                              f"{value['new_quality_score']}")
    return [lambda: state.record_template(change)]


def _preferences(value: dict[str, Any], waba_id: str, at: datetime, field: str) -> list[Store]:
    phone_number_id = value["metadata"]["phone_number_id"]
    writes: list[Store] = [lambda: state.learn_number(phone_number_id, waba_id, at)] if waba_id else []
    for preference in value["user_preferences"]:
        if preference["category"] != "marketing_messages" or preference["value"] not in ("stop", "resume"):
            continue
        writes.append(lambda p=preference: state.record_preference(
            phone_number_id, p["wa_id"], p["value"], p["timestamp"], f"{field} webhook"))
    return writes


def _messages(value: dict[str, Any], waba_id: str, at: datetime, field: str) -> list[Store]:
    phone_number_id = value["metadata"]["phone_number_id"]
    writes: list[Store] = [lambda: state.learn_number(phone_number_id, waba_id, at)] if waba_id else []
    for message in value["messages"]:
        system = message.get("system") or {}
        new = system.get("wa_id") or system.get("new_wa_id")
        if message["type"] == "system" and system.get("type") in NUMBER_CHANGES and new and message["sender"]:
            writes.append(lambda m=message, n=str(new): state.record_number_change(
                phone_number_id, m["sender"], n, m["timestamp"]))
    for status in value["statuses"]:
        billing = state.Billing(
            wamid=status["id"], phone_number_id=phone_number_id, contact=status["recipient_id"],
            at=status["timestamp"], status=status["status"], pricing=status.get("pricing"),
            decision_id=status.get("biz_opaque_callback_data") or None,
            errors=tuple({k: e[k] for k in ("code", "title", "message") if k in e} for e in status["errors"]))
        writes.append(lambda b=billing: state.record_billing(b))
        codes = {e["code"] for e in status["errors"]}
        if STOPPED_MARKETING in codes:
            writes.append(lambda b=billing: state.record_preference(
                b.phone_number_id, b.contact, "stop", b.at, f"status error {STOPPED_MARKETING} on {b.wamid}"))
        for code in sorted(codes & set(TEMPLATE_ERRORS)):
            if billing.decision_id and waba_id:
                writes.append(lambda b=billing, c=code: _template_refused(b, waba_id, c))
    return writes


def _template_refused(billing: state.Billing, waba_id: str, code: int) -> None:
    """A send refused with 132015/132016 tells the registry its template is paused/disabled; the template is
    the one the linked decision's request named (statuses do not name templates)."""
    logged = decision_log.get(billing.decision_id or "")
    template = ((logged or {}).get("request", {}).get("send") or {}).get("template") if logged else None
    if not isinstance(template, dict) or not template.get("name") or not template.get("language"):
        return
    state.record_template(state.TemplateChange(
        waba_id=waba_id, name=template["name"], language=template["language"],
        source=f"status error {code} on {billing.wamid}", effective_at=billing.at, event=TEMPLATE_ERRORS[code],
        status=TEMPLATE_ERRORS[code], reason=f"Meta refused the send with {code}"))


def _account_update(value: dict[str, Any], waba_id: str, at: datetime, field: str) -> list[Store]:
    return [lambda: state.record_account(waba_id, field, value["event"].upper(), at, value)]


def _capability(value: dict[str, Any], waba_id: str, at: datetime, field: str) -> list[Store]:
    if "max_daily_conversations_per_business" not in value and "max_daily_conversation_per_phone" in value:
        # The per-phone name is the older spelling of the same (now portfolio-wide) messaging limit.
        value = {**value, "max_daily_conversations_per_business": value["max_daily_conversation_per_phone"]}
    return [lambda: state.record_account(waba_id, field, state.CAPABILITY, at, value)]


PARSERS: dict[str, tuple[Schema, Callable[..., list[Store]]]] = {
    "messages": (MESSAGES, _messages),
    "message_template_status_update": (TEMPLATE_STATUS, _status_update),
    "template_category_update": (TEMPLATE_CATEGORY, _category_update),
    "message_template_quality_update": (TEMPLATE_QUALITY, _quality_update),
    "user_preferences": (USER_PREFERENCES, _preferences),
    "account_update": (ACCOUNT_UPDATE, _account_update),
    "business_capability_update": (CAPABILITY, _capability),
}


class ListedTemplateSchema(_Tolerant):
    """One template of Meta's `GET /<WABA_ID>/message_templates` response (`data[]`)."""

    id = fields.Raw()
    name = _text(required=True)
    language = _text(16, required=True)
    category = _text(32, required=True)
    status = _text(32, required=True)


class MessageTemplatesSchema(_Tolerant):
    """Meta's `GET /<WABA_ID>/message_templates` response: `{data: [...], paging: {...}}`."""

    data = fields.List(fields.Nested(ListedTemplateSchema), required=True)


MESSAGE_TEMPLATES = MessageTemplatesSchema()


def parse_message_templates(waba_id: str, response: Any, imported_at: datetime | None = None
                            ) -> list[state.TemplateChange]:
    """The templates of a message_templates response as registry entries of the WABA, stamped with the import time.

    Raises ValidationError naming `data.<i>.<field>` for a malformed template.
    """
    at = imported_at or datetime.now(UTC)
    if not isinstance(response, dict):
        raise ValidationError({"_schema": ["must be the JSON object GET /<WABA_ID>/message_templates returns"]})
    return [
        state.TemplateChange(
            waba_id=waba_id, name=t["name"], language=t["language"], source=state.IMPORT_SOURCE, effective_at=at,
            event=t["status"].upper(), template_id=None if t.get("id") is None else str(t["id"]),
            status=state.STATUS_EVENTS.get(t["status"].upper()), category=_category(t["category"]), payload=t)
        for t in MESSAGE_TEMPLATES.load(response)["data"]
    ]

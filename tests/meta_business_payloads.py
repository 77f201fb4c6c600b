"""WhatsApp Business Account webhook bodies about the business's own state, shaped like the Syntax sections
of Meta's webhook references (message_template_status_update, template_category_update,
message_template_quality_update, user_preferences) and its message_templates response."""

from __future__ import annotations

from typing import Any

from .meta_payloads import CONTACT, DISPLAY_NUMBER, PHONE_NUMBER_ID, WABA_ID, notification

TEMPLATE_ID = 564750795574598


def account_change(field: str, value: dict[str, Any], time: int) -> dict[str, Any]:
    """One change of a WABA-level field, as Meta wraps it (entry.time is when the webhook fired)."""
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "time": time, "changes": [{"value": value, "field": field}]}]}


def template_key(name: str, language: str) -> dict[str, Any]:
    return {"message_template_id": TEMPLATE_ID, "message_template_name": name, "message_template_language": language}


def template_status(name: str, language: str, event: str, time: int, *, reason: str = "NONE",
                    category: str | None = None) -> dict[str, Any]:
    """message_template_status_update: the template's new status (APPROVED, PAUSED, DISABLED...)."""
    value = {"event": event, **template_key(name, language), "reason": reason}
    if category:
        value["message_template_category"] = category
    return account_change("message_template_status_update", value, time)


def category_completed(name: str, language: str, previous: str, new: str, time: int) -> dict[str, Any]:
    """template_category_update, completed: previous_category -> new_category."""
    return account_change("template_category_update",
                          {**template_key(name, language), "previous_category": previous, "new_category": new}, time)


def category_impending(name: str, language: str, current: str, correct: str, time: int,
                       takes_effect: int) -> dict[str, Any]:
    """template_category_update, impending: correct_category takes effect at category_update_timestamp."""
    return account_change("template_category_update", {
        **template_key(name, language), "correct_category": correct, "new_category": current,
        "category_update_timestamp": takes_effect}, time)


def quality_update(name: str, language: str, previous: str, new: str, time: int) -> dict[str, Any]:
    """message_template_quality_update: previous_quality_score -> new_quality_score."""
    return account_change("message_template_quality_update", {
        **template_key(name, language), "previous_quality_score": previous, "new_quality_score": new}, time)


def user_preference(value: str, timestamp: int, *, contact: str = CONTACT) -> dict[str, Any]:
    """user_preferences: the user stopped (`stop`) or resumed (`resume`) marketing messages."""
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{"value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": contact}],
        "user_preferences": [{"wa_id": contact, "detail": "User requested to stop marketing messages",
                              "category": "marketing_messages", "value": value, "timestamp": timestamp}],
    }, "field": "user_preferences"}]}]}


def billed_status(wamid: str, state: str, timestamp: int, pricing: dict, *, contact: str = CONTACT,
                  decision_id: str | None = None, errors: list[dict] | None = None) -> dict[str, Any]:
    """A status with pricing, echoing biz_opaque_callback_data (the decision id the send carried)."""
    update: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(timestamp), "recipient_id": contact,
                              "pricing": pricing}
    if decision_id:
        update["biz_opaque_callback_data"] = decision_id
    if errors:
        update["errors"] = errors
    return notification({"statuses": [update]})


def message_templates_response(*templates: tuple[str, str, str, str]) -> dict[str, Any]:
    """GET /<WABA_ID>/message_templates: {data: [{name, language, category, status, id}], paging}."""
    return {"data": [{"name": name, "language": language, "category": category, "status": status,
                      "id": str(TEMPLATE_ID + index)}
                     for index, (name, language, category, status) in enumerate(templates)],
            "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}}


def account_update(event: str, time: int, **value: Any) -> dict[str, Any]:
    """account_update: an account event (ACCOUNT_RESTRICTION, DISABLED_UPDATE, AUTH_INTL_PRICE_ELIGIBILITY_UPDATE,
    BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE, VOLUME_BASED_PRICING_TIER_UPDATE...) with its details."""
    return account_change("account_update", {"phone_number": DISPLAY_NUMBER, "event": event, **value}, time)


def capability_update(limit: int, time: int) -> dict[str, Any]:
    """business_capability_update: the portfolio's messaging limit and phone number limits."""
    return account_change("business_capability_update", {
        "max_daily_conversation_per_phone": limit, "max_daily_conversations_per_business": limit,
        "max_phone_numbers_per_business": 20, "max_phone_numbers_per_waba": 25}, time)


def user_changed_number(old: str, new: str, timestamp: int) -> dict[str, Any]:
    """A system message: the user changed from the old number to the new one (messages webhook, no contacts)."""
    return notification({"messages": [{
        "from": old, "id": f"wamid.system.{old}.{new}", "timestamp": str(timestamp), "type": "system",
        "system": {"body": f"User Sheena Nelson changed from {old} to {new}", "wa_id": new,
                   "type": "user_changed_number"}}]})

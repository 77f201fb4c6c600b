"""Webhook bodies shaped like the examples in Meta's webhook reference (messages and statuses)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
CONTACT = "5511987654321"

# The referral Meta attaches to a message sent from a click-to-WhatsApp ad (text message reference).
AD_REFERRAL = {
    "source_url": "https://fb.me/3cr4Wqqkv",
    "source_id": "120226305854810726",
    "source_type": "ad",
    "body": "Chat with us about our spring sale",
    "headline": "Chat with us",
    "media_type": "image",
    "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/ad.png",
    "ctwa_clid": ("Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0NiNhEgpGo0AHemvuSoifXaytfTzcchptiErTKCqTrJ5"
                  "nW1h7IHYeYymGb5K5J5iTROpBhWAGaIAeUzHL50"),
    "welcome_message": {"text": "Hi there! Let us know how we can help!"},
}


def notification(value: dict[str, Any]) -> dict[str, Any]:
    """One `messages` change for the test business number, wrapped as Meta sends it."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": WABA_ID,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
                    **value,
                },
                "field": "messages",
            }],
        }],
    }


def inbound_text(wamid: str, timestamp: int, *, contact: str = CONTACT, referral: dict | None = None) -> dict:
    """A text message from a user, optionally sent from a click-to-WhatsApp ad."""
    message: dict[str, Any] = {"from": contact, "id": wamid, "timestamp": str(timestamp), "type": "text",
                               "text": {"body": "Hi, is this still available?"}}
    if referral:
        message["referral"] = referral
    return notification({
        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": contact}],
        "messages": [message],
    })


def status(wamid: str, state: str, timestamp: int, *, contact: str = CONTACT, pricing: dict | None = None,
           origin: str | None = None) -> dict:
    """A status of an outbound message, with the conversation and pricing Meta adds when it has them."""
    update: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(timestamp), "recipient_id": contact}
    if origin:
        update["conversation"] = {"id": "ee7bba5f6d06e1ea57fe3c22a3ef2b0b", "origin": {"type": origin}}
    if pricing:
        update["pricing"] = pricing
    return notification({"statuses": [update]})


def pmp(category: str, pricing_type: str, billable: bool) -> dict:
    """A per-message-pricing `pricing` object."""
    return {"billable": billable, "pricing_model": "PMP", "category": category, "type": pricing_type}


def signed(body: dict | bytes, secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    """The raw body and the headers Meta sends with it, signed with the app secret."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


def deliver(client, *bodies: dict) -> list:
    """POST each body, signed, to the webhook; every one must be accepted."""
    responses = []
    for body in bodies:
        raw, headers = signed(body)
        response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
        assert response.status_code == 200, response.json
        responses.append(response)
    return responses


def counts(answer: dict) -> dict:
    """What a receipt processed inline says was stored: new, known, linked and skipped (its id and status aside)."""
    found = {key: answer[key] for key in ("new", "known", "linked", "skipped")}
    return found | ({"skipped_not_listed": answer["skipped_not_listed"]} if answer["skipped_not_listed"] else {})


# A user with a username: Meta's BSUID examples (business-scoped user IDs page).
BSUID = "US.13491208655302741918"


def username_inbound(wamid: str, timestamp: int, *, user_id: str = BSUID, wa_id: str = "") -> dict:
    """A text from a user known by a BSUID: `from` is empty (or the number, when Meta still shares it)."""
    return notification({
        "contacts": [{"profile": {"name": "Customer", "username": "@customer"}, "wa_id": wa_id, "user_id": user_id}],
        "messages": [{"from": wa_id, "from_user_id": user_id, "id": wamid, "timestamp": str(timestamp),
                      "type": "text", "text": {"body": "Does it come in another color?"}}],
    })


def username_status(wamid: str, state: str, timestamp: int, *, user_id: str = BSUID,
                    pricing: dict | None = None) -> dict:
    """A status of a message to a user known by a BSUID: `recipient_id` is empty."""
    update: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(timestamp), "recipient_id": "",
                              "recipient_user_id": user_id}
    if pricing:
        update["pricing"] = pricing
    return notification({"statuses": [update]})


def call(wacid: str, timestamp: int, *, event: str = "connect", direction: str | None = "USER_INITIATED",
         contact: str = CONTACT, user_id: str | None = None) -> dict:
    """A `calls` webhook: one connect or terminate event of a call between the user and the business."""
    business = direction == "BUSINESS_INITIATED"
    item: dict[str, Any] = {"id": wacid, "event": event, "timestamp": str(timestamp),
                            "from": DISPLAY_NUMBER if business else contact,
                            "to": contact if business else DISPLAY_NUMBER}
    if direction:
        item["direction"] = direction
    if user_id:
        item["to_user_id" if business else "from_user_id"] = user_id
    body = notification({"contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": contact}], "calls": [item]})
    body["entry"][0]["changes"][0]["field"] = "calls"
    return body

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

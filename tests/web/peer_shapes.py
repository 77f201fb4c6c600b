"""Our own webhook bodies in every shape the public WhatsApp SDK test suites exercise (pywa, whatsapp-business-java-api,
netflie/whatsapp-cloud-api, piusalfred/whatsapp): written here with our own words and values, none copied.

Each shape says what a send-policy service must keep from it (`keeps`): the stored row's type, times, group,
category or status. Times are Unix seconds around 2025-09-01 (per-message pricing) unless a shape is about an
older version.
"""

from __future__ import annotations

from typing import Any

from ..meta_payloads import CONTACT, notification

T = 1756720800  # 2025-09-01T10:00:00Z
GROUP = "Q2x1Ykdyb3VwOmJvb2tjbHVi"  # a group id, base64-like as Meta's are
MEMBER = "5511976541234"


def _inbound(kind: str, body: dict[str, Any] | None = None, *, wamid: str, at: int = T, sender: str = CONTACT,
             extra: dict[str, Any] | None = None, contacts: bool = True) -> dict[str, Any]:
    message: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": str(at), "type": kind, **(extra or {})}
    if body is not None:
        message[kind] = body
    value: dict[str, Any] = {"messages": [message]}
    if contacts:
        value["contacts"] = [{"profile": {"name": "Ana Lima"}, "wa_id": sender}]
    return notification(value)


def _status(state: str, *, wamid: str, at: int = T, recipient: str = CONTACT, **fields: Any) -> dict[str, Any]:
    return notification({"statuses": [{"id": wamid, "status": state, "timestamp": str(at), "recipient_id": recipient,
                                       **fields}]})


_MEDIA = {"mime_type": "image/jpeg", "sha256": "c2hhMjU2LW9mLXRoZS1waWN0dXJl", "id": "8842001177"}

# name -> (body, what must be kept: {"wamid", "direction", "type", "contact", "group_id", "status", "category",
#          "delivered", "errors"})
SHAPES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": (_inbound("text", {"body": "Do you ship to Recife?"}, wamid="wamid.p.text"),
             {"type": "text"}),
    "text replying to a business message": (
        _inbound("text", {"body": "Yes, that one"}, wamid="wamid.p.reply",
                 extra={"context": {"from": "15550783881", "id": "wamid.p.earlier"}}), {"type": "text"}),
    "forwarded text": (
        _inbound("text", {"body": "Look at this"}, wamid="wamid.p.fwd",
                 extra={"context": {"forwarded": True, "frequently_forwarded": True}}), {"type": "text"}),
    "image with caption": (_inbound("image", {**_MEDIA, "caption": "The torn box"}, wamid="wamid.p.image"),
                           {"type": "image"}),
    "image with a media url": (_inbound("image", {**_MEDIA, "url": "https://lookaside.example/media/8842001177"},
                                        wamid="wamid.p.image-url"), {"type": "image"}),
    "video": (_inbound("video", {**_MEDIA, "mime_type": "video/mp4"}, wamid="wamid.p.video"), {"type": "video"}),
    "document": (_inbound("document", {**_MEDIA, "mime_type": "application/pdf", "filename": "nota.pdf"},
                          wamid="wamid.p.doc"), {"type": "document"}),
    "audio": (_inbound("audio", {**_MEDIA, "mime_type": "audio/mpeg"}, wamid="wamid.p.audio"), {"type": "audio"}),
    "voice note": (_inbound("audio", {**_MEDIA, "mime_type": "audio/ogg; codecs=opus", "voice": True},
                            wamid="wamid.p.voice"), {"type": "audio"}),
    "sticker": (_inbound("sticker", {**_MEDIA, "mime_type": "image/webp", "animated": False},
                         wamid="wamid.p.sticker"), {"type": "sticker"}),
    "animated sticker": (_inbound("sticker", {**_MEDIA, "mime_type": "image/webp", "animated": True},
                                  wamid="wamid.p.sticker2"), {"type": "sticker"}),
    "reaction": (_inbound("reaction", {"message_id": "wamid.p.earlier", "emoji": "\U0001F44D"},
                          wamid="wamid.p.react"), {"type": "reaction"}),
    "reaction removed": (_inbound("reaction", {"message_id": "wamid.p.earlier", "emoji": ""},
                                  wamid="wamid.p.unreact"), {"type": "reaction"}),
    "location": (_inbound("location", {"latitude": -8.05, "longitude": -34.9, "name": "Loja Centro"},
                          wamid="wamid.p.location"), {"type": "location"}),
    "contacts": (_inbound("contacts", [{"name": {"formatted_name": "Bruno Reis", "first_name": "Bruno"},
                                        "phones": [{"phone": "+55 81 99876 5432", "type": "CELL"}]}],
                          wamid="wamid.p.contacts"), {"type": "contacts"}),
    "quick reply button": (_inbound("button", {"payload": "STOP_PROMOS", "text": "Stop promotions"},
                                    wamid="wamid.p.button", extra={"context": {"id": "wamid.p.promo"}}),
                           {"type": "button"}),
    "interactive button reply": (
        _inbound("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}},
                 wamid="wamid.p.ibutton"), {"type": "interactive"}),
    "interactive list reply": (
        _inbound("interactive", {"type": "list_reply", "list_reply": {"id": "s2", "title": "Size M"}},
                 wamid="wamid.p.list"), {"type": "interactive"}),
    "flow completion": (
        _inbound("interactive", {"type": "nfm_reply", "nfm_reply": {"name": "flow", "response_json": "{}"}},
                 wamid="wamid.p.flow"), {"type": "interactive"}),
    "order": (_inbound("order", {"catalog_id": "55501", "product_items": [
        {"product_retailer_id": "sku-9", "quantity": 2, "item_price": 19.9, "currency": "BRL"}]},
        wamid="wamid.p.order"), {"type": "order"}),
    "user changed number": (
        _inbound("system", {"body": "Ana changed her number", "wa_id": "5511976549999", "type": "user_changed_number"},
                 wamid="wamid.p.sys-number"), {"type": "system"}),
    "identity changed": (
        _inbound("system", {"body": "Identity changed", "type": "customer_identity_changed"}, wamid="wamid.p.sys-id",
                 extra={"identity": {"acknowledged": True, "created_timestamp": str(T), "hash": "aGFzaA"}}),
        {"type": "system"}),
    "unsupported with errors": (
        _inbound("unsupported", None, wamid="wamid.p.unsupported",
                 extra={"errors": [{"code": 131051, "title": "Message type unknown",
                                    "error_data": {"details": "Not supported yet"}}]}), {"type": "unsupported"}),
    "a type no version knows": (_inbound("hologram", {"id": "x"}, wamid="wamid.p.unknown-type"),
                                {"type": "unsupported"}),
    "message from an ad": (
        _inbound("text", {"body": "Is the offer on?"}, wamid="wamid.p.ad",
                 extra={"referral": {"source_url": "https://fb.me/ad-example", "source_id": "7700112233",
                                     "source_type": "ad", "headline": "Winter sale", "body": "Up to 40% off",
                                     "media_type": "image", "image_url": "https://example.org/ad.png",
                                     "ctwa_clid": "click-id-123"}}), {"type": "text", "referral": True}),
    "welcome request": (_inbound("request_welcome", None, wamid="wamid.p.welcome"), {"type": "request_welcome"}),
    "user edited a message": (
        _inbound("edit", {"original_message_id": "wamid.p.text", "message": {"type": "text",
                                                                          "text": {"body": "Do you ship to Olinda?"}}},
                 wamid="wamid.p.edit"), {"type": "edit"}),
    "user deleted a message": (_inbound("revoke", {"original_message_id": "wamid.p.text"}, wamid="wamid.p.revoke"),
                               {"type": "revoke"}),
    "message with errors beside it": (
        notification({"contacts": [{"profile": {"name": "Ana Lima"}, "wa_id": CONTACT}],
                      "messages": [{"from": CONTACT, "id": "wamid.p.with-errors", "timestamp": str(T),
                                    "type": "interactive", "context": {"id": "wamid.p.menu"}}],
                      "errors": [{"code": 131000, "title": "Something went wrong"}]}), {"type": "interactive"}),
    "message in a group": (
        _inbound("text", {"body": "Who is coming on Friday?"}, wamid="wamid.p.group-in", sender=MEMBER,
                 extra={"group_id": GROUP}), {"type": "text", "contact": GROUP, "group_id": GROUP}),
    # Statuses
    "sent, 2022 business-initiated conversation": (
        _status("sent", wamid="wamid.p.s2022", at=1656666000,
                conversation={"id": "c2022", "expiration_timestamp": str(1656666000 + 86400),
                              "origin": {"type": "business_initiated"}},
                pricing={"billable": True, "pricing_model": "CBP", "category": "business_initiated"}),
        {"direction": "outbound", "status": "sent", "category": "business_initiated", "delivered": False}),
    "delivered with CBP pricing": (
        _status("delivered", wamid="wamid.p.cbp", at=1709629200,
                conversation={"id": "c2024", "origin": {"type": "utility"}},
                pricing={"billable": True, "pricing_model": "CBP", "category": "utility"}),
        {"direction": "outbound", "status": "delivered", "category": "utility", "delivered": True}),
    "delivered, v24 per-message pricing without conversation": (
        _status("delivered", wamid="wamid.p.pmp",
                pricing={"billable": False, "pricing_model": "PMP", "category": "utility",
                         "type": "free_customer_service"}),
        {"direction": "outbound", "status": "delivered", "category": "utility", "delivered": True}),
    "read": (_status("read", wamid="wamid.p.read"), {"status": "read", "delivered": True}),
    "played voice message": (
        _status("played", wamid="wamid.p.played",
                pricing={"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"}),
        {"status": "played", "category": "marketing", "delivered": True}),
    "failed, re-engagement": (
        _status("failed", wamid="wamid.p.failed",
                errors=[{"code": 131047, "title": "Re-engagement message",
                         "error_data": {"details": "More than 24 hours since the customer last wrote"}}]),
        {"status": "failed", "delivered": False, "errors": [131047]}),
    "failed, experiment": (
        _status("failed", wamid="wamid.p.failed2", errors=[{"code": 130472, "title": "Part of an experiment"}]),
        {"status": "failed", "delivered": False, "errors": [130472]}),
    "with callback data": (
        _status("sent", wamid="wamid.p.tracked", biz_opaque_callback_data="campaign-42",
                pricing={"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"}),
        {"status": "sent", "category": "marketing", "delivered": False}),
    "deleted": (_status("deleted", wamid="wamid.p.deleted"), {"status": "deleted", "delivered": False}),
    "warning": (_status("warning", wamid="wamid.p.warning"), {"status": "warning", "delivered": False}),
    "group participant read": (
        _status("read", wamid="wamid.p.group-out", recipient=GROUP, recipient_type="group",
                recipient_participant_id=MEMBER,
                pricing={"billable": True, "pricing_model": "PMP", "category": "group_marketing",
                         "type": "regular"}),
        {"direction": "outbound", "contact": GROUP, "group_id": GROUP, "category": "group_marketing",
         "delivered": True}),
}

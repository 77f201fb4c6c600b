"""The WhatsApp webhook: signed payloads only, Meta's subscription challenge, idempotent storage."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from policy_service import create_app
from policy_service.store import histories
from policy_service.web.webhooks import signature_valid

from ..meta_payloads import (
    AD_REFERRAL,
    APP_SECRET,
    CONTACT,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    deliver,
    inbound_text,
    pmp,
    signed,
    status,
)

T0 = 1754989200  # 2025-08-12T09:00:00Z


def stored(app):
    with app.app_context():
        return {row.wamid: row for row in histories.stored_messages(PHONE_NUMBER_ID, CONTACT)}


def test_signature_is_hmac_sha256_of_the_raw_body():
    """Only sha256=<hex HMAC of the exact body under the app secret> verifies."""
    raw, headers = signed(b'{"object": "whatsapp_business_account"}')
    good = headers["X-Hub-Signature-256"]
    assert signature_valid(raw, good, APP_SECRET)
    assert not signature_valid(raw + b" ", good, APP_SECRET)
    assert not signature_valid(raw, good, "another-secret")
    assert not signature_valid(raw, good.removeprefix("sha256="), APP_SECRET)
    assert not signature_valid(raw, None, APP_SECRET)


@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "sha1=abc"])
def test_unsigned_or_badly_signed_payload_is_401(app, client, header):
    """A payload without a matching X-Hub-Signature-256 is refused and stores nothing."""
    headers = {"Content-Type": "application/json"} | ({"X-Hub-Signature-256": header} if header else {})
    raw, _ = signed(inbound_text("wamid.unsigned", T0))
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 401 and set(response.json) == {"code", "status", "message", "errors"}
    assert stored(app) == {}


def test_without_an_app_secret_every_payload_is_refused(database_url):
    """An unconfigured app secret fails closed: nothing can be verified, so nothing is stored."""
    client = create_app({"TESTING": True, "DATABASE_URL": database_url}).test_client()
    raw, headers = signed(inbound_text("wamid.x", T0))
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 503 and "WHATSAPP_APP_SECRET" in response.json["message"]


@pytest.mark.parametrize(("mode", "token", "expected"), [
    ("subscribe", VERIFY_TOKEN, 200), ("subscribe", "wrong", 403), ("unsubscribe", VERIFY_TOKEN, 403),
    (None, None, 403),
])
def test_subscription_challenge(client, mode, token, expected):
    """GET echoes hub.challenge only for hub.mode=subscribe with the configured verify token."""
    query = {"hub.challenge": "1158201444"} | ({"hub.mode": mode} if mode else {}) | (
        {"hub.verify_token": token} if token else {})
    response = client.get("/v1/webhooks/whatsapp", query_string=query)
    assert response.status_code == expected
    if expected == 200:
        assert response.get_data(as_text=True) == "1158201444" and response.mimetype == "text/plain"
    else:
        assert response.json["code"] == 403


def test_inbound_message_with_referral_is_stored_once(app, client):
    """An inbound message from an ad is stored with its referral; the same wamid again changes nothing."""
    body = inbound_text("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", T0, referral=AD_REFERRAL)
    first, again = deliver(client, body, body)
    assert first.json == {"new": 1, "known": 0} and again.json == {"new": 0, "known": 1}
    rows = stored(app)
    assert list(rows) == ["wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="]
    message = histories.as_message(next(iter(rows.values())))
    assert message.direction == "inbound" and message.referral["source_type"] == "ad"
    assert message.at.isoformat() == "2025-08-12T09:00:00+00:00"


def test_statuses_build_one_outbound_message_with_pricing(app, client):
    """sent, delivered and read statuses of one wamid update one message; pricing is kept from the one that had it."""
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA"
    responses = deliver(
        client,
        status(wamid, "sent", T0 + 3600, origin="utility", pricing=pmp("utility", "free_customer_service", False)),
        status(wamid, "delivered", T0 + 3605),
        status(wamid, "read", T0 + 3700),
        status(wamid, "delivered", T0 + 3605),
    )
    assert [r.json["new"] for r in responses] == [1, 0, 0, 0]
    row = stored(app)[wamid]
    assert row.direction == "outbound" and row.status == "read"
    assert histories.pricing(row) == pmp("utility", "free_customer_service", False)
    message = histories.as_message(row)
    assert message.type == "template" and message.template.category == "utility"
    assert message.at.isoformat() == "2025-08-12T10:00:00+00:00"


def test_messages_are_kept_per_business_number_and_contact(app, client):
    """Messages with other contacts do not enter a contact's history."""
    deliver(client, inbound_text("wamid.a", T0), inbound_text("wamid.b", T0, contact="14155550100"))
    assert list(stored(app)) == ["wamid.a"]


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", 400),
    (b'{"object": "page", "entry": []}', 422),
    (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {}}]}]}', 422),
    (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": '
     b'{"metadata": {"phone_number_id": "1"}, "statuses": [{"id": "w", "status": "sent", "timestamp": "soon", '
     b'"recipient_id": "1"}]}}]}]}', 422),
    (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": '
     b'{"metadata": {"phone_number_id": "1"}, "statuses": [{"id": "w", "status": "sent", "timestamp": "1", '
     b'"recipient_id": "1", "conversation": {"id": "c", "origin": {"type": "' + b"x" * 65 + b'"}}}]}}]}]}', 422),
    (b'[1]', 422),
])
def test_malformed_signed_payload_is_a_4xx_in_the_error_shape(client, body, code):
    """A signed body that is not a WhatsApp messages webhook gets a clear 4xx, never a 500."""
    raw, headers = signed(body)
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == code
    assert set(response.json) == {"code", "status", "message", "errors"}


def test_other_webhook_fields_are_accepted_and_ignored(app, client):
    """Changes of fields nothing reads (e.g. phone_number_name_update) are acknowledged without storing.

    (Template, preference and account fields are stored: tests/web/test_webhook_fields.py.)"""
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "phone_number_name_update", "value": {"display_phone_number": "15550783881",
                                                        "decision": "APPROVED"}}]}]}
    assert deliver(client, body)[0].json == {"new": 0, "known": 0}
    assert stored(app) == {}


def test_numeric_secrets_from_the_environment_still_verify(database_url):
    """POLICY_* values are JSON-decoded, so an all-digit secret or token arrives as a number and must still work."""
    client = create_app({"TESTING": True, "DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": 1234567890,
                         "WHATSAPP_VERIFY_TOKEN": 42}).test_client()
    raw, headers = signed(inbound_text("wamid.n", T0), secret="1234567890")
    assert client.post("/v1/webhooks/whatsapp", data=raw, headers=headers).status_code == 200
    query = {"hub.mode": "subscribe", "hub.verify_token": "42", "hub.challenge": "7"}
    assert client.get("/v1/webhooks/whatsapp", query_string=query).get_data(as_text=True) == "7"


def test_concurrent_deliveries_of_the_same_statuses_store_one_message(app):
    """Meta's retries arriving at once on several threads leave one row, with the strongest status and its pricing."""
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NjY0Q0Q0RUNDQkY1MkE3OTMA"
    bodies = [status(wamid, "sent", T0, pricing=pmp("marketing", "regular", True)), status(wamid, "delivered", T0 + 5),
              status(wamid, "read", T0 + 60), inbound_text("wamid.in", T0 - 60)] * 6

    def post(body):
        raw, headers = signed(body)
        return app.test_client().post("/v1/webhooks/whatsapp", data=raw, headers=headers).json

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, bodies))
    assert sum(r["new"] for r in results) == 2 and sum(r["known"] for r in results) == len(bodies) - 2
    rows = stored(app)
    assert set(rows) == {wamid, "wamid.in"}
    assert rows[wamid].status == "read" and histories.pricing(rows[wamid])["category"] == "marketing"


def test_non_ascii_tokens_and_signatures_are_refused_not_crashed(client):
    """A verify token or signature with non-ASCII characters is a 403 / 401, never a 500."""
    challenge = client.get("/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=%C3%A9&hub.challenge=1")
    assert challenge.status_code == 403
    signed = client.post("/v1/webhooks/whatsapp", data=b"{}", headers={"X-Hub-Signature-256": "sha256=\u00e9"})
    assert signed.status_code == 401


def test_a_nul_character_anywhere_in_a_payload_is_a_field_error(client):
    """A NUL (which PostgreSQL cannot store) in a signed payload is a 422 naming where it is, not a 500."""
    body = inbound_text("wamid.nul", T0, contact="5511987654321\u0000")
    raw, headers = signed(body)
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 422
    assert any("NUL" in message for messages in response.json["errors"].values() for message in messages)

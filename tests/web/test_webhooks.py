"""The WhatsApp webhook: signed payloads only, Meta's subscription challenge, idempotent storage."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from policy_service import create_app
from policy_service.store import histories
from policy_service.web.webhooks import signature_valid

from ..conftest import assert_error_shape
from ..meta_payloads import (
    AD_REFERRAL,
    APP_SECRET,
    BSUID,
    CONTACT,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    call,
    counts,
    deliver,
    inbound_text,
    notification,
    pmp,
    signed,
    status,
    username_inbound,
    username_status,
)

T0 = 1754989200  # 2025-08-12T09:00:00Z
LATER = datetime(2999, 1, 1, tzinfo=UTC)


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
    assert response.status_code == 503 and response.json["message"].startswith("POLICY_WHATSAPP_APP_SECRET ")
    assert list(response.json["errors"]) == ["POLICY_WHATSAPP_APP_SECRET"]  # the variable an operator sets


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_is_a_415(app, client, content_type):
    """Meta posts its notifications as JSON (Content-Type: application/json); anything else is refused as README
    says, before the payload is stored."""
    raw, headers = signed(inbound_text("wamid.plain", T0))
    headers = {key: value for key, value in headers.items() if key != "Content-Type"}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 415 and list(response.json["errors"]) == ["headers.Content-Type"]
    assert stored(app) == {}
    charset = client.post("/v1/webhooks/whatsapp", data=raw,
                          headers={**headers, "Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 200


@pytest.mark.parametrize("payload_id", ["99999999999999999999999", "9223372036854775808", "0"])
def test_a_payload_id_no_database_can_hold_is_not_found(client, payload_id):
    """An id beyond 64 bits names no payload: a 404, not the driver's OverflowError (a 500)."""
    response = client.get(f"/v1/admin/webhooks/{payload_id}")
    assert response.status_code == 404 and set(response.json) == {"code", "status", "message", "errors"}


@pytest.mark.parametrize(("mode", "token", "expected"), [
    ("subscribe", VERIFY_TOKEN, 200), ("subscribe", "wrong", 403), ("unsubscribe", VERIFY_TOKEN, 403),
    (None, None, 403),
])
def test_subscription_challenge(client, mode, token, expected):
    """GET echoes hub.challenge only for hub.mode=subscribe with the configured verify token; a 403 names the
    parameter that is wrong."""
    query = {"hub.challenge": "1158201444"} | ({"hub.mode": mode} if mode else {}) | (
        {"hub.verify_token": token} if token else {})
    response = client.get("/v1/webhooks/whatsapp", query_string=query)
    assert response.status_code == expected
    if expected == 200:
        assert response.get_data(as_text=True) == "1158201444" and response.mimetype == "text/plain"
    else:
        assert response.json["code"] == 403
        # the errors name what did not match: the mode, the token, or both
        wrong = {"query.hub.mode": mode != "subscribe", "query.hub.verify_token": token != VERIFY_TOKEN}
        assert set(response.json["errors"]) == {parameter for parameter, is_wrong in wrong.items() if is_wrong}


def test_a_subscription_check_without_a_challenge_is_a_400_naming_it(client):
    """With the right token but no hub.challenge, an empty 200 looked like a passed check: it is a 400."""
    response = client.get("/v1/webhooks/whatsapp", query_string={"hub.mode": "subscribe",
                                                                 "hub.verify_token": VERIFY_TOKEN})
    assert response.status_code == 400 and list(response.json["errors"]) == ["query.hub.challenge"]


@pytest.mark.parametrize("parameter", ["hub.mode", "hub.verify_token", "hub.challenge"])
def test_a_subscription_check_parameter_given_twice_is_a_422_naming_it(client, parameter):
    """hub.verify_token=wrong&hub.verify_token=<the token> was read as its first value (request.args.get), so which
    value decided the check depended on the order: each of the three given twice is a 422 naming it as the API
    names a repeated query parameter (query.hub.mode: given 2 times), whichever order and even when both agree;
    another parameter given twice is not the check's, and given once each the check passes."""
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    for second in (query[parameter], "other"):
        given = [*query.items(), (parameter, second)]
        for pairs in (given, given[::-1]):
            response = client.get("/v1/webhooks/whatsapp", query_string=pairs)
            assert response.status_code == 422, pairs
            assert response.json["errors"] == {f"query.{parameter}": ["given 2 times; give it once"]}, pairs
            assert response.json["message"] == f"invalid request: query.{parameter}: given 2 times; give it once"
    response = client.get("/v1/webhooks/whatsapp", query_string=[*query.items(), ("extra", "1"), ("extra", "2")])
    assert response.status_code == 200 and response.get_data(as_text=True) == "1158201444"


def test_inbound_message_with_referral_is_stored_once(app, client):
    """An inbound message from an ad is stored with its referral; the same wamid again changes nothing."""
    body = inbound_text("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", T0, referral=AD_REFERRAL)
    first, again = deliver(client, body, body)
    assert counts(first.json) == {"new": 1, "known": 0, "linked": 0, "skipped": []}
    assert first.json["status"] == "done" and first.json["duplicate"] is False
    # Meta's retry of the same body: the stored payload is found, and nothing is added.
    assert (again.json["id"], again.json["duplicate"], again.json["status"]) == (first.json["id"], True, "done")
    # The same message in another body (another delivery): known, not stored again.
    body["entry"][0]["time"] = T0 + 5
    assert counts(deliver(client, body)[0].json) == {"new": 0, "known": 1, "linked": 0, "skipped": []}
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
    assert responses[3].json["duplicate"] is True  # the same body as the second: nothing added
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
    (b'{"object": "whatsapp_business_account", "entry": {}}', 422),
    (b'[1]', 422),
])
def test_malformed_signed_payload_is_a_4xx_in_the_error_shape(client, body, code):
    """A signed body that is not a WhatsApp Business Account webhook at all gets a clear 4xx, never a 500."""
    raw, headers = signed(body)
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == code
    assert set(response.json) == {"code", "status", "message", "errors"}


def test_other_webhook_fields_are_skipped_explicitly(app, client):
    """A change of a field nothing reads (e.g. phone_number_name_update) is answered 200 and listed as skipped.

    (Template, preference and account fields are stored: tests/web/test_webhook_fields.py.)"""
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "phone_number_name_update", "value": {"display_phone_number": "15550783881",
                                                        "decision": "APPROVED"}}]}]}
    answer = deliver(client, body)[0].json
    assert answer["new"] == 0 and answer["known"] == 0
    [skipped] = answer["skipped"]
    assert skipped["path"] == "entry.0.changes.0.field"
    assert "'phone_number_name_update' is not stored" in skipped["reason"]["field"][0]
    assert stored(app) == {}


def test_an_out_of_band_error_is_listed_in_the_receipt_and_logged(app, client, caplog):
    """The newcomer's payload: a `messages` change holding only `value.errors` (Meta's messages/errors webhook) was
    answered new 0, skipped [] and logged nothing. Now the receipt lists it with Meta's code and title, and the log
    has it (`webhook part skipped`)."""
    body = notification({"errors": [{"code": 131056, "title": "(Business Account, Consumer Account) pair rate limit "
                                     "hit", "message": "Too many messages sent to this user"}]})
    with caplog.at_level("WARNING", logger="policy_service.webhooks"):
        answer = deliver(client, body)[0].json
    assert (answer["new"], answer["known"]) == (0, 0)
    [skipped] = answer["skipped"]
    assert skipped["path"] == "entry.0.changes.0.value.errors.0"
    assert skipped["reason"]["errors"][0].startswith("Meta reported error 131056 ((Business Account, Consumer "
                                                     "Account) pair rate limit hit; Too many messages")
    assert [record.path for record in caplog.records if record.getMessage() == "webhook part skipped"] == [
        "entry.0.changes.0.value.errors.0"]


def test_an_unreadable_business_state_change_is_skipped_not_the_payload(app, client):
    """A template status update without the template name is skipped with its reason; the message beside it
    is stored."""
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}]}
    body["entry"][0]["changes"] += inbound_text("wamid.beside", 1754989200)["entry"][0]["changes"]
    answer = deliver(client, body)[0].json
    assert answer["new"] == 1
    [skipped] = answer["skipped"]
    assert skipped["path"] == "entry.0.changes.0.value"
    assert "message_template_name" in skipped["reason"]
    assert set(stored(app)) == {"wamid.beside"}


def test_an_entry_under_no_waba_id_is_skipped_and_a_null_time_is_read_at_receipt(app, client):
    """Meta's WABA ids are digits: a messages entry under "WABA1" was stored and drove decisions while
    /v1/wabas/WABA1/templates is a 404; it is skipped naming entry.0 `id` (the stored payload keeps it). An entry
    whose time is null was lost whole; it is read, entry.0.time listed as not read, as "abc" is. An entry with no
    id at all was read under the WABA id "": it is skipped as "WABA1" is, the entry beside it stored."""
    body = inbound_text("wamid.waba1", T0)
    body["entry"][0]["id"] = "WABA1"
    answer = deliver(client, body)[0].json
    assert answer["new"] == 0 and [(part["path"], list(part["reason"])) for part in answer["skipped"]] == [
        ("entry.0", ["id"])], answer
    assert stored(app) == {}
    with app.app_context():
        from policy_service.store.raw_webhooks import RawWebhook

        assert '"WABA1"' in RawWebhook.get_by_id(answer["id"]).body
    body = inbound_text("wamid.null-time", T0)
    body["entry"][0]["time"] = None
    answer = deliver(client, body)[0].json
    assert answer["new"] == 1 and [part["path"] for part in answer["skipped"]] == ["entry.0.time"], answer
    assert set(stored(app)) == {"wamid.null-time"}
    # An entry with no id at all was read under the WABA id "": it is skipped alike, the others stored.
    body = inbound_text("wamid.no-waba", T0)
    del body["entry"][0]["id"]
    body["entry"].append(inbound_text("wamid.beside-it", T0)["entry"][0])
    answer = deliver(client, body)[0].json
    assert answer["new"] == 1 and [(part["path"], part["reason"]) for part in answer["skipped"]] == [
        ("entry.0", {"id": ["required: the WhatsApp Business Account id, digits as Meta sends it: the entry is not "
                            "read (the stored payload keeps it)"]})], answer
    assert set(stored(app)) == {"wamid.null-time", "wamid.beside-it"}


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
    # Each of the four bodies is stored once; its retries are duplicates that add nothing.
    assert sorted(r["duplicate"] for r in results) == [False] * 4 + [True] * (len(bodies) - 4)
    delivered = [r for r in results if not r["duplicate"]]
    assert sum(r["new"] for r in delivered) == 2 and sum(r["known"] for r in delivered) == 2
    rows = stored(app)
    assert set(rows) == {wamid, "wamid.in"}
    assert rows[wamid].status == "read" and histories.pricing(rows[wamid])["category"] == "marketing"


def test_non_ascii_tokens_and_signatures_are_refused_not_crashed(client):
    """A verify token or signature with non-ASCII characters is a 403 / 401, never a 500."""
    challenge = client.get("/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=%C3%A9&hub.challenge=1")
    assert challenge.status_code == 403
    signed = client.post("/v1/webhooks/whatsapp", data=b"{}", headers={"X-Hub-Signature-256": "sha256=\u00e9",
                                                                     "Content-Type": "application/json"})
    assert signed.status_code == 401


def test_one_bad_value_costs_only_its_own_event(app, client):
    """A signed payload of 1,500 messages, one with a NUL in its id, one with a NUL in its text (not read), a
    status with a 45-digit error code, a template change with a 45-digit id: every other event is stored, and
    each bad value is listed with its path (a 422 for the whole body lost all 1,499 good messages)."""
    body = inbound_text("wamid.0", T0)
    value = body["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]
    value["messages"] = [{**template, "id": f"wamid.{index}", "text": {"body": "hi"}} for index in range(1_500)]
    value["messages"][7]["id"] = "wamid.\u0000"
    value["messages"][8]["text"]["body"] = "a\u0000b"
    failed = status("wamid.out", "failed", T0)["entry"][0]["changes"][0]["value"]["statuses"][0]
    value["statuses"] = [{**failed, "errors": [{"code": 10**44}]}]
    body["entry"][0]["changes"].append({"field": "message_template_status_update", "value": {
        "event": "APPROVED", "message_template_id": 10**44, "message_template_name": "t",
        "message_template_language": "en"}})
    raw, headers = signed(body)
    answer = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers).json
    assert answer["new"] == 1_499 and len(stored(app)) == 1_499 and "wamid.8" in stored(app)
    assert answer["skipped"] == [
        {"path": "entry.0.changes.0.value.messages.7", "reason": {"id": ["must not contain a NUL character"]}},
        {"path": "entry.0.changes.0.value.messages.8.text.body",
         "reason": {"text.body": ["must not contain a NUL character", "not read (the rest of the part was read)"]}},
        {"path": "entry.0.changes.0.value.statuses.0",
         "reason": {"errors.0.code": ["must be a number of at most 40 characters, got 45"]}},
        {"path": "entry.0.changes.1.value",
         "reason": {"message_template_id": ["must be a number of at most 40 characters, got 45"]}}]


def test_only_a_body_that_is_no_webhook_is_refused_whole(client):
    """Without `object`/`entry` there is nothing to read around: a NUL there is a 422 naming it."""
    body = inbound_text("wamid.nul", T0)
    body["object"] = "whatsapp_business_account\u0000"
    raw, headers = signed(body)
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 422 and "object" in response.json["errors"]


def test_one_unreadable_event_costs_only_itself(app, client, caplog):
    """A status we cannot read is skipped with its path and reason (answer and log); the rest is stored, 200."""
    body = status("wamid.bad", "sent", T0)
    good = {"id": "wamid.good", "status": "delivered", "timestamp": str(T0), "recipient_id": CONTACT}
    bad = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    bad["timestamp"] = "soon"
    body["entry"][0]["changes"][0]["value"]["statuses"].append(good)
    answer = deliver(client, body)[0].json
    assert answer["new"] == 1
    assert answer["skipped"] == [{"path": "entry.0.changes.0.value.statuses.0",
                                  "reason": {"timestamp": ["must be Unix seconds"]}}]
    assert list(stored(app)) == ["wamid.good"]
    assert any(r.message == "webhook part skipped" and r.path == "entry.0.changes.0.value.statuses.0"
               for r in caplog.records)


@pytest.mark.parametrize(("change", "path", "field"), [
    ({"field": "messages", "value": {}}, "entry.0.changes.1.value.metadata", "metadata"),  # named as missing
    ({"field": "messages"}, "entry.0.changes.1", "value"),
    # A phone_number_id with a leading space was stored and counted as another number of the WABA.
    ({"field": "messages", "value": {"metadata": {"phone_number_id": " 106540352242922"}, "messages": [{
        "id": "wamid.space", "timestamp": str(T0), "type": "text", "from": CONTACT}]}},
     "entry.0.changes.1.value.metadata", "phone_number_id"),
    ({"field": "calls", "value": {"metadata": {"phone_number_id": "PNID1"}, "calls": []}},
     "entry.0.changes.1.value.metadata", "phone_number_id"),
    ({"field": "messages", "value": {"metadata": {"phone_number_id": "1"}, "statuses": {}}},
     "entry.0.changes.1.value.statuses", "statuses"),
    ({"field": "messages", "value": {"metadata": {"phone_number_id": "1"}, "statuses": [{
        "id": "w", "status": "sent", "timestamp": str(T0), "recipient_id": "1",
        "conversation": {"id": "c", "origin": {"type": "x" * 65}}}]}},
     "entry.0.changes.1.value.statuses.0", "conversation.origin.type"),
    ({"field": "messages", "value": {"metadata": {"phone_number_id": "1"}, "messages": [{
        "id": "w", "timestamp": str(T0), "type": "text", "from": "", "from_user_id": ""}]}},
     "entry.0.changes.1.value.messages.0", "from"),
    ({"field": "messages", "value": {"metadata": {"phone_number_id": "1"}, "contacts": [{
        "wa_id": "", "user_id": "not-a-bsuid"}]}}, "entry.0.changes.1.value.contacts.0", "wa_id"),
    ({"field": "calls", "value": {"metadata": {"phone_number_id": "1"}, "calls": [{
        "id": "wacid.1", "timestamp": str(T0), "direction": "USER_INITIATED", "from": ""}]}},
     "entry.0.changes.1.value.calls.0", "from"),
    ({"field": "calls", "value": {"metadata": {"phone_number_id": "1"}, "calls": [{
        "id": "wacid.1", "timestamp": str(T0), "direction": "SIDEWAYS", "from": "1"}]}},
     "entry.0.changes.1.value.calls.0", "direction"),
])
def test_each_kind_of_unreadable_part_is_skipped_and_named(app, client, change, path, field):
    """Missing metadata, a non-list, an over-long value, no identity at all, a bad call: each is skipped alone."""
    body = inbound_text("wamid.kept", T0)
    body["entry"][0]["changes"].append(change)
    answer = deliver(client, body)[0].json
    assert answer["new"] == 1 and list(stored(app)) == ["wamid.kept"]
    [skipped] = answer["skipped"]
    assert skipped["path"] == path and field in skipped["reason"], skipped


def _nested(levels: int) -> dict:
    value: dict = {"display_phone_number": "15550783881"}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("value", "reason"), [
    (_nested(35), "nested deeper than 32 levels"),
    ({"names": [0] * 100_001}, "at most 100000 members in one array or object, got 100001"),
])
def test_a_change_past_the_body_bounds_is_skipped_not_the_payload(app, client, value, reason):
    """A change nested 35 levels deep (or with an array of 100,001 items) beside a valid message refused the whole
    payload (400 "nested deeper than 32 levels"): nothing stored, Meta retrying forever, wamid.DEEP1 lost. The
    payload is stored, the message read, and the change listed in `skipped` (processed later:
    tests/service/test_ingest.py)."""
    body = inbound_text("wamid.DEEP1", T0)
    body["entry"][0]["changes"].append({"field": "phone_number_name_update", "value": value})
    answer = deliver(client, body)[0].json
    assert answer["new"] == 1 and list(stored(app)) == ["wamid.DEEP1"], answer
    assert answer["skipped"] == [{"path": "entry.0.changes.1", "reason": {
        "_": [f"{reason}: the change is not read (the stored payload keeps it)"]}}]


def test_a_body_past_the_payload_depth_is_still_refused(client):
    """Parsing stays bounded: a body nested deeper than PAYLOAD_DEPTH (256) levels, or deeper than any parser here
    reads, is a 400 naming the depth (no Meta payload is deeper than about 8)."""
    for levels in (300, 100_000):
        raw = b'{"object": "whatsapp_business_account", "entry": [' + b"[" * levels + b"]" * levels + b"]}"
        raw, headers = signed(raw)
        response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
        assert response.status_code == 400, response.json
        assert response.json["errors"] == {"_request": ["nested deeper than 256 levels"]}


def test_the_webhook_ignores_query_parameters_of_the_callback_url(app, client):
    """README's one exception to "a misspelled parameter is a 422": the callback URL configured at Meta may carry its
    own query string, so the subscription check and a signed payload are answered as without it."""
    check = client.get("/v1/webhooks/whatsapp?tenant=a&hub.mode=subscribe&hub.challenge=42&hub.verify_token="
                       + VERIFY_TOKEN)
    assert (check.status_code, check.get_data(as_text=True)) == (200, "42")
    raw, headers = signed(inbound_text("wamid.query", T0))
    answer = client.post("/v1/webhooks/whatsapp?tenant=a", data=raw, headers=headers)
    assert answer.status_code == 200 and answer.json["new"] == 1, answer.json


def test_an_unreadable_entry_costs_only_itself(app, client):
    """An entry without changes is skipped; the next entry is stored."""
    body = inbound_text("wamid.kept", T0)
    body["entry"].insert(0, {"id": "1"})
    answer = deliver(client, body)[0].json
    assert answer["new"] == 1 and answer["skipped"] == [{"path": "entry.0",
                                                        "reason": {"changes": ["Missing data for required field."]}}]


def test_username_users_are_stored_under_their_bsuid(app, client):
    """`from: ""` + `from_user_id` and `recipient_id: ""` + `recipient_user_id` are stored under the BSUID."""
    answer = deliver(client, username_inbound("wamid.in", T0), username_status("wamid.out", "delivered", T0 + 60))
    assert [a.json["new"] for a in answer] == [1, 1]
    with app.app_context():
        rows = histories.stored_messages(PHONE_NUMBER_ID, BSUID)
    assert [(row.wamid, row.contact, row.direction) for row in rows] == [
        ("wamid.in", BSUID, "inbound"), ("wamid.out", BSUID, "outbound")]


def test_a_bsuid_meta_sends_is_stored_as_sent_whatever_its_prefix(app, client):
    """A client's BSUID must start with a country (a 422 otherwise); one Meta sends is its data: stored under it as
    sent, not skipped, even with a prefix phonenumbers does not know (a newer ISO 3166 code)."""
    odd = "QQ.13491208655302741918"
    answer = deliver(client, username_inbound("wamid.odd", T0, user_id=odd))
    assert answer[0].json["new"] == 1 and answer[0].json["skipped"] == []
    with app.app_context():
        assert [row.wamid for row in histories.stored_messages(PHONE_NUMBER_ID, odd)] == ["wamid.odd"]


def test_a_number_and_a_bsuid_named_together_are_one_history(app, client):
    """When a webhook names both a wa_id and a BSUID, messages stored under either are one history."""
    deliver(client, inbound_text("wamid.by-number", T0))
    answer = deliver(client, username_inbound("wamid.both", T0 + 60, wa_id=CONTACT),
                     username_status("wamid.by-bsuid", "delivered", T0 + 120))
    assert answer[0].json["linked"] == 1
    with app.app_context():
        by_number = [row.wamid for row in histories.stored_messages(PHONE_NUMBER_ID, CONTACT)]
        by_bsuid = [row.wamid for row in histories.stored_messages(PHONE_NUMBER_ID, BSUID)]
    assert by_number == by_bsuid == ["wamid.by-number", "wamid.both", "wamid.by-bsuid"]


def test_a_user_call_is_an_inbound_call_stored_once(app, client):
    """A user-initiated call's connect and terminate events store one inbound `call` (it opens the window)."""
    answers = deliver(client, call("wacid.1", T0), call("wacid.1", T0 + 30, event="terminate"))
    assert [(a.json["new"], a.json["known"]) for a in answers] == [(1, 0), (0, 1)]
    with app.app_context():
        [message] = histories.stored_history(PHONE_NUMBER_ID, CONTACT, until=LATER)
    assert (message.direction, message.type, message.id) == ("inbound", "call", "wacid.1")


def test_a_business_call_is_stored_but_is_not_history(app, client):
    """A business-initiated call is kept (what Meta sent) but opens nothing: the rules' history leaves it out."""
    deliver(client, call("wacid.2", T0, direction="BUSINESS_INITIATED"), call("wacid.3", T0, direction=None))
    with app.app_context():
        rows = histories.stored_messages(PHONE_NUMBER_ID, CONTACT)
        history = histories.stored_history(PHONE_NUMBER_ID, CONTACT, until=LATER)
    # wacid.3 has no direction and comes from the user's number, so it is the user's call.
    assert sorted((row.wamid, row.direction) for row in rows) == [("wacid.2", "outbound"), ("wacid.3", "inbound")]
    assert [m.id for m in history] == ["wacid.3"]


def test_a_call_from_a_username_user_is_stored_under_the_bsuid(app, client):
    """A call with `from: ""` + `from_user_id` is the BSUID's call."""
    deliver(client, call("wacid.4", T0, contact="", user_id=BSUID))
    with app.app_context():
        assert [row.wamid for row in histories.stored_messages(PHONE_NUMBER_ID, BSUID)] == ["wacid.4"]


@pytest.mark.parametrize("call_status", ["COMPLETED", ["COMPLETED"]])
def test_a_business_call_the_user_accepted_opens_the_window_from_its_start(app, client, call_status):
    """A completed business-initiated call was accepted: an inbound `call` at its start_time enters the history."""
    ended = call("wacid.5", T0 + 90, event="terminate", direction="BUSINESS_INITIATED")
    ended["entry"][0]["changes"][0]["value"]["calls"][0].update(status=call_status, start_time=str(T0 + 10))
    failed = call("wacid.6", T0 + 90, event="terminate", direction="BUSINESS_INITIATED")
    failed["entry"][0]["changes"][0]["value"]["calls"][0]["status"] = "FAILED"
    deliver(client, call("wacid.5", T0, direction="BUSINESS_INITIATED"), ended, failed)
    with app.app_context():
        history = histories.stored_history(PHONE_NUMBER_ID, CONTACT, until=LATER)
    assert [(m.id, m.direction, m.type, m.at.timestamp()) for m in history] == [
        ("wacid.5#accepted", "inbound", "call", T0 + 10)]


def test_a_message_sent_from_the_business_app_is_an_outbound_business_message(app, client):
    """smb_message_echoes (coexistence): the echo is stored once as an outbound message of its type, marked as
    sent from the WhatsApp Business app; an echo of an edit adds nothing."""
    def echo(wamid, kind):
        body = notification({"message_echoes": [{"from": "15550783881", "to": "+" + CONTACT, "id": wamid,
                                                 "timestamp": str(T0 + 60), "type": kind, kind: {"body": "On it!"}}]})
        body["entry"][0]["changes"][0]["field"] = "smb_message_echoes"
        return body

    answers = deliver(client, inbound_text("wamid.in", T0), echo("wamid.echo", "text"), echo("wamid.edit", "edit"))
    assert [counts(a.json)["new"] for a in answers] == [1, 1, 0]
    rows = stored(app)
    assert list(rows) == ["wamid.in", "wamid.echo"]
    message = histories.as_message(rows["wamid.echo"])
    assert (message.direction, message.type, message.business_app) == ("outbound", "text", True)


@pytest.mark.parametrize("query", ["foo=1", "status=pending", "status=pending&status=failed", "page=2"])
def test_the_backlog_refuses_a_query_parameter_naming_it(client, query):
    """GET /v1/admin/webhooks/backlog takes no query parameter: any is a 422 naming it (query.<name>), as every other
    listing refuses one it does not take (it was ignored, so a filter looked applied); without one it answers."""
    name = query.partition("=")[0]
    body = assert_error_shape(client.get(f"/v1/admin/webhooks/backlog?{query}"), 422)
    assert list(body["errors"]) == [f"query.{name}"] and f"query.{name}" in body["message"]
    assert client.get("/v1/admin/webhooks/backlog").json == {"pending": 0, "failed": 0, "oldest_pending_seconds": None}

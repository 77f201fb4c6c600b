"""Deciding from a stored history: a signed webhook history is what history_ref decides on, and the decision
log keeps the ref and the range read (not the history), from which the same messages are found again."""

from policy_service.service import logged as decision_log

from ..meta_payloads import (
    AD_REFERRAL,
    BSUID,
    CONTACT,
    PHONE_NUMBER_ID,
    call,
    deliver,
    inbound_text,
    pmp,
    status,
    username_inbound,
)

T0 = 1756717200  # 2025-09-01T09:00:00Z, as in fixture 13a
AD_WAMID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEM2OEI5RjQ4QjE2RkE1NEYwAA=="


def read_wamids(client, body: dict) -> list[str]:
    """The wamids a history_ref decision read, found again from its logged row (which holds no history)."""
    row = client.get(f"/v1/decisions/{body['decision_id']}").json
    with client.application.app_context():
        request, problem = decision_log.replayable(row["request"])
    assert problem is None, problem
    return [message.get("id") for message in request["history"]]


def freeform_at(at: str, ref: dict | None = None) -> dict:
    return {"send": {"at": at, "to": "+" + CONTACT, "type": "text"},
            "history_ref": ref or {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}


def test_reply_to_an_ad_decides_on_the_stored_referral(client):
    """Fixture 13a from webhooks: a free-form reply two hours after an ad message opens the free entry point."""
    deliver(client, inbound_text(AD_WAMID, T0, referral=AD_REFERRAL))
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00")).json
    assert body["decision"] == "allow"
    assert body["charge"]["type"] == "free_entry_point" and "FEP-2.opens-service" in body["determining_rules"]
    source = body["history_source"]
    assert {key: source[key] for key in ("ref", "until", "events")} == {
        "ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}, "until": "2025-09-01T11:00:00+00:00",
        "events": 1}
    assert source["from"] < source["until"] and source["digest"].startswith("sha256:") and len(source["digest"]) == 71
    assert read_wamids(client, body) == [AD_WAMID]


def test_only_events_up_to_the_send_are_read_and_the_log_keeps_the_range_not_the_history(client):
    """Events after the send are left out; the log keeps the ref (masked) and the range read with its digest,
    from which the same messages are read again."""
    deliver(client, inbound_text(AD_WAMID, T0, referral=AD_REFERRAL),
            status("wamid.later", "delivered", T0 + 86400, pricing=pmp("marketing", "regular", True)))
    ref = {"phone_number_id": PHONE_NUMBER_ID, "contact": "+" + CONTACT}
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00", ref)).json
    assert body["history_source"]["events"] == 1
    logged = client.get(f"/v1/decisions/{body['decision_id']}").json
    assert "history" not in logged["request"] and logged["request"]["history_ref"]["contact"] == "+55***********"
    read = logged["request"]["history_read"]
    assert {key: read[key] for key in ("from", "until", "events", "digest")} == {
        key: body["history_source"][key] for key in ("from", "until", "events", "digest")}
    assert logged["response"]["history_source"]["ref"]["contact"] == "55***********"
    assert read_wamids(client, body) == [AD_WAMID]


def test_an_unknown_history_is_empty_so_a_freeform_send_is_denied(client):
    """A ref with no stored messages is an empty history: outside any window, the free-form send is denied."""
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00")).json
    assert body["decision"] == "deny" and body["history_source"]["events"] == 0
    assert read_wamids(client, body) == []


def test_a_history_ref_naming_a_number_nothing_is_stored_for_says_so(client):
    """A mistyped phone_number_id reads an empty history: the response says nothing is stored for that number;
    a known number whose contact has no messages gets no such note (that user simply never wrote)."""
    deliver(client, inbound_text("wamid.in.other", T0))
    unknown = client.post("/v1/decisions", json=freeform_at(
        "2025-09-01T11:00:00+00:00", {"phone_number_id": "999000111", "contact": CONTACT})).json
    assert unknown["history_source"]["events"] == 0
    assert "nothing is stored for phone_number_id 999000111" in unknown["history_source"]["note"]
    known = client.post("/v1/decisions", json=freeform_at(
        "2025-09-01T11:00:00+00:00", {"phone_number_id": PHONE_NUMBER_ID, "contact": "5511900000001"})
        | {"send": {"at": "2025-09-01T11:00:00+00:00", "to": "+5511900000001", "type": "text"}}).json
    assert known["history_source"]["events"] == 0 and "note" not in known["history_source"]


def test_a_request_without_history_says_it_was_decided_on_an_empty_history(client):
    """No history and no history_ref: decided as a first contact, and history_source says the history was not
    given (a forgotten field must not look like a user who never wrote); an explicit [] gets no such note."""
    send = {"at": "2025-09-01T11:00:00+00:00", "to": "+" + CONTACT, "type": "text"}
    missing = client.post("/v1/decisions", json={"send": send}).json
    assert missing["decision"] == "deny"
    assert missing["history_source"]["given"] == "none" and "neither history nor history_ref" in \
        missing["history_source"]["note"]
    assert "history_source" not in client.post("/v1/decisions", json={"send": send, "history": []}).json


def test_a_caller_changing_one_answers_history_source_does_not_change_the_next(app):
    """The Python API hands the body itself to its caller: the shared NO_HISTORY must not be in it."""
    from policy_service.contract.schemas import REQUEST
    from policy_service.service import decisions

    raw = {"send": {"at": "2025-09-01T11:00:00+00:00", "to": "+" + CONTACT, "type": "text"}}
    first = decisions.resolve_history(decisions.proposal(REQUEST.load(raw), raw), None)
    first.history_source["note"] = "changed by a caller"
    second = decisions.resolve_history(decisions.proposal(REQUEST.load(raw), raw), None)
    assert second.history_source == decisions.NO_HISTORY != first.history_source


def test_history_and_history_ref_together_are_a_422(client):
    """A request gives either an inline history or a history_ref, never both."""
    request = freeform_at("2025-09-01T11:00:00+00:00") | {"history": []}
    response = client.post("/v1/decisions", json=request)
    assert response.status_code == 422
    assert response.json["errors"] == {"history_ref": ["give either history or history_ref, not both"]}


def test_malformed_history_ref_is_a_422(client):
    """A ref without a phone number id or with a non-numeric contact is refused field by field."""
    response = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00", {"contact": "abc"}))
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"history_ref.phone_number_id", "history_ref.contact"}


def test_a_bsuid_history_ref_decides_on_the_username_users_messages(client):
    """send.to and history_ref.contact may be a BSUID: the stored messages from that user open the window."""
    deliver(client, username_inbound("wamid.from-username", T0))
    request = {"send": {"at": "2025-09-01T11:00:00+00:00", "to": BSUID, "type": "text"},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": BSUID}}
    body = client.post("/v1/decisions", json=request).json
    assert body["decision"] == "allow" and read_wamids(client, body) == ["wamid.from-username"]
    assert body["facts"]["seen_by_rules"]["recipient_is_bsuid"] is True
    assert body["facts"]["times_and_names"]["recipient_region_source"] == "the BSUID's country prefix US"
    logged = client.get(f"/v1/decisions/{body['decision_id']}").json
    assert BSUID not in str(logged)


def test_a_linked_number_and_bsuid_decide_on_one_history(client):
    """The user wrote by number, later known by BSUID too: asking by the BSUID finds the number's messages."""
    deliver(client, inbound_text("wamid.by-number", T0), username_inbound("wamid.linked", T0 - 86400, wa_id=CONTACT))
    request = {"send": {"at": "2025-09-01T11:00:00+00:00", "to": BSUID, "type": "text"},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": BSUID}}
    body = client.post("/v1/decisions", json=request).json
    assert body["decision"] == "allow" and read_wamids(client, body) == ["wamid.linked", "wamid.by-number"]


def test_a_history_ref_contact_of_another_user_is_refused_naming_it(client):
    """history_ref.contact must be the recipient or an identity linked to it: another user's open window never
    allows a free-form send to someone who never wrote (it was a silent allow); linked identities still pass."""
    deliver(client, inbound_text("wamid.by-number", T0), username_inbound("wamid.linked", T0 - 86400, wa_id=CONTACT))
    stranger = {"send": {"at": "2025-09-01T11:00:00+00:00", "to": "+5511900000000", "type": "text"},
                "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}
    refused = client.post("/v1/decisions", json=stranger)
    assert refused.status_code == 422, refused.json
    assert "history_ref.contact" in refused.json["errors"], refused.json
    batch = client.post("/v1/decisions/batch", json={"requests": [stranger]})
    assert batch.status_code == 422 and any("history_ref.contact" in key for key in batch.json["errors"]), batch.json
    for to, contact in ((BSUID, CONTACT), ("+" + CONTACT, BSUID), ("+" + CONTACT, "+" + CONTACT)):
        linked = {"send": {"at": "2025-09-01T11:00:00+00:00", "to": to, "type": "text"},
                  "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": contact}}
        answer = client.post("/v1/decisions", json=linked)
        assert answer.status_code == 200 and answer.json["decision"] == "allow", (to, contact, answer.json)


def test_a_send_from_another_business_number_than_the_history_ref_is_refused(client):
    """send.phone_number_id and history_ref.phone_number_id name one sending number: a send from "999" decided on
    another number's stored history was a silent allow; it is a 422 naming send.phone_number_id (API and batch).
    The same number, or a send naming none, is decided."""
    deliver(client, inbound_text("wamid.by-number", T0))
    request = freeform_at("2025-09-01T11:00:00+00:00")
    other = {**request, "send": {**request["send"], "phone_number_id": "999"}}
    refused = client.post("/v1/decisions", json=other)
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["send.phone_number_id"], refused.json
    assert PHONE_NUMBER_ID in refused.json["errors"]["send.phone_number_id"][0]
    batch = client.post("/v1/decisions/batch", json={"requests": [other]})
    assert batch.status_code == 422 and "requests.0.send.phone_number_id" in batch.json["errors"], batch.json
    same = {**request, "send": {**request["send"], "phone_number_id": PHONE_NUMBER_ID}}
    for body in (same, request):
        answer = client.post("/v1/decisions", json=body)
        assert answer.status_code == 200 and answer.json["decision"] == "allow", answer.json


def test_a_stored_user_call_opens_the_window_for_history_ref(client):
    """A `calls` webhook of a user-initiated call makes a free-form reply 30 minutes later allowed (CSW-8.call)."""
    deliver(client, call("wacid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=", T0))
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T09:30:00+00:00")).json
    assert body["decision"] == "allow" and "CSW-8.call" in [r["rule"] for r in body["trace"]]


def test_a_business_call_does_not_open_the_window_for_history_ref(client):
    """A business-initiated call the user did not accept opens nothing: the reply is still refused (131047)."""
    deliver(client, call("wacid.business", T0, direction="BUSINESS_INITIATED"))
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T09:30:00+00:00")).json
    assert body["decision"] == "deny" and body["error_codes"] == [131047] and body["history_source"]["events"] == 0


def test_a_reply_from_the_business_app_is_a_business_message_of_the_stored_history(client):
    """Coexistence: the user wrote from an ad, the business answered from the WhatsApp Business app (an
    smb_message_echoes echo). That echo is the first reply: a later API reply opens no free entry point, it
    is an ordinary free service message, and the echo is never reported as pending delivery."""
    from ..contract.test_meta_webhooks import echo

    deliver(client, inbound_text(AD_WAMID, T0, referral=AD_REFERRAL), echo("wamid.echo", T0 + 600))
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00")).json
    assert body["decision"] == "allow" and read_wamids(client, body) == [AD_WAMID, "wamid.echo"]
    assert body["charge"]["type"] == "free_customer_service", body["charge"]
    assert not {"FEP-2.opens-service", "TS-1.undelivered"} & {r["rule"] for r in body["trace"]}


def test_the_decision_page_draws_the_range_read_again_and_says_when_the_store_changed(client):
    """The page of a history_ref decision draws its timeline from the messages read again; once a message of the
    range is gone (pruned), the page still shows the decision and says why there is no timeline."""
    from policy_service.store import histories

    deliver(client, inbound_text(AD_WAMID, T0, referral=AD_REFERRAL), inbound_text("wamid.after", T0 + 60))
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00")).json
    page = client.get(f"/ui/decisions/{body['decision_id']}").get_data(as_text=True)
    assert "<svg" in page and 'id="replay-problem"' not in page
    with client.application.app_context():
        histories.StoredMessage.delete().where(histories.StoredMessage.wamid == AD_WAMID).execute()
    response = client.get(f"/ui/decisions/{body['decision_id']}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and f'<span class="verdict" id="verdict">{body["decision"]}</span>' in page
    assert "<svg" not in page and "the stored history changed since the decision" in page


MEXICO_WA_ID, MEXICO_E164 = "5215512345678", "+525512345678"  # Meta's wa_id keeps the 1 after 52
BRAZIL_WA_ID, BRAZIL_E164 = "552187654321", "+5521987654321"  # registered before the ninth digit


def test_a_mexican_wa_id_with_the_1_after_52_is_the_same_user_as_the_e164_number(client):
    """Meta's wa_id may not match the number a business sends to: a Mexican user writes from wa_id 5215512345678
    (the 1 Mexico dropped from mobile numbers in 2019), whose E.164 number is +525512345678. The stored message is
    that user's: history_ref.contact in either form is taken (it was a 422 "no possible number of calling code
    +52"), and a free-form reply to +525512345678 ten minutes later is inside the window (it was a deny: the
    message was not found); /v1/reconciliation?contact= takes the wa_id too."""
    deliver(client, inbound_text("wamid.mx1", T0, contact=MEXICO_WA_ID))
    for contact in (MEXICO_WA_ID, MEXICO_E164):
        body = client.post("/v1/decisions", json={
            "send": {"at": "2025-09-01T09:10:00+00:00", "to": MEXICO_E164, "type": "text"},
            "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": contact}})
        assert body.status_code == 200, body.json
        assert (body.json["decision"], body.json["history_source"]["events"]) == ("allow", 1), contact
    assert client.get(f"/v1/reconciliation?contact={MEXICO_WA_ID}").status_code == 200


def test_a_brazilian_wa_id_without_the_ninth_digit_is_the_same_user_as_the_e164_number(client):
    """A Brazilian user registered before the ninth digit writes from wa_id 552187654321; the business sends to
    +5521987654321 naming that wa_id as history_ref.contact: the same user (it was a 422 "names another user"),
    and the reply ten minutes later is inside the window. Another user's wa_id is still refused."""
    deliver(client, inbound_text("wamid.br1", T0, contact=BRAZIL_WA_ID))
    body = client.post("/v1/decisions", json={
        "send": {"at": "2025-09-01T09:10:00+00:00", "to": BRAZIL_E164, "type": "text"},
        "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": BRAZIL_WA_ID}})
    assert body.status_code == 200, body.json
    assert (body.json["decision"], body.json["history_source"]["events"]) == ("allow", 1)
    other = client.post("/v1/decisions", json={
        "send": {"at": "2025-09-01T09:10:00+00:00", "to": "+5521987650000", "type": "text"},
        "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": BRAZIL_WA_ID}})
    assert other.status_code == 422 and "history_ref.contact" in other.json["errors"]

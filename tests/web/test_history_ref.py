"""Deciding from a stored history: a signed webhook history is what history_ref decides on."""

from ..meta_payloads import AD_REFERRAL, CONTACT, PHONE_NUMBER_ID, deliver, inbound_text, pmp, status

T0 = 1756717200  # 2025-09-01T09:00:00Z, as in fixture 13a
AD_WAMID = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMEM2OEI5RjQ4QjE2RkE1NEYwAA=="


def freeform_at(at: str, ref: dict | None = None) -> dict:
    return {"send": {"at": at, "to": "+" + CONTACT, "type": "text"},
            "history_ref": ref or {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}


def test_reply_to_an_ad_decides_on_the_stored_referral(client):
    """Fixture 13a from webhooks: a free-form reply two hours after an ad message opens the free entry point."""
    deliver(client, inbound_text(AD_WAMID, T0, referral=AD_REFERRAL))
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00")).json
    assert body["decision"] == "allow"
    assert body["charge"]["type"] == "free_entry_point" and "FEP-2.opens-service" in body["determining_rules"]
    assert body["history_source"] == {"ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT},
                                      "events": [AD_WAMID]}


def test_only_events_up_to_the_send_are_used_and_logged_inline(client):
    """Events after the send are left out; the log keeps the resolved history so it replays without the store."""
    deliver(client, inbound_text(AD_WAMID, T0, referral=AD_REFERRAL),
            status("wamid.later", "delivered", T0 + 86400, pricing=pmp("marketing", "regular", True)))
    ref = {"phone_number_id": PHONE_NUMBER_ID, "contact": "+" + CONTACT}
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00", ref)).json
    assert body["history_source"]["events"] == [AD_WAMID]
    logged = client.get(f"/v1/decisions/{body['decision_id']}").json
    assert "history_ref" not in logged["request"]
    assert [m["id"] for m in logged["request"]["history"]] == [AD_WAMID]
    assert logged["response"]["history_source"]["ref"]["contact"] == "55***********"


def test_an_unknown_history_is_empty_so_a_freeform_send_is_denied(client):
    """A ref with no stored messages is an empty history: outside any window, the free-form send is denied."""
    body = client.post("/v1/decisions", json=freeform_at("2025-09-01T11:00:00+00:00")).json
    assert body["decision"] == "deny" and body["history_source"]["events"] == []


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

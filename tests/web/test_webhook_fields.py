"""The business-state webhook fields: what each stores, and that a malformed one is a 422 storing nothing."""

from datetime import UTC, datetime

from policy_service.store import business_state

from ..meta_business_payloads import (
    billed_status,
    category_completed,
    quality_update,
    template_status,
    user_preference,
)
from ..meta_payloads import CONTACT, PHONE_NUMBER_ID, WABA_ID, counts, deliver, inbound_text, pmp, signed

T0 = 1756717200  # 2025-09-01T09:00:00Z


def post(client, body):
    raw, headers = signed(body)
    return client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)


def test_template_events_are_kept_as_the_templates_history(app, client):
    """Status, category and quality updates are each one event of the template's history, in time order."""
    deliver(client, template_status("order_update", "en_US", "APPROVED", T0, category="UTILITY"),
            quality_update("order_update", "en_US", "GREEN", "YELLOW", T0 + 60),
            category_completed("order_update", "en_US", "UTILITY", "MARKETING", T0 + 120))
    with app.app_context():
        history = business_state.template_history(WABA_ID, "order_update", "en_US")
    assert [(e["source"], e["event"], e["status"], e["category"], e["quality"]) for e in history] == [
        ("message_template_status_update", "APPROVED", "APPROVED", "utility", None),
        ("message_template_quality_update", "QUALITY", None, None, "YELLOW"),
        ("template_category_update", "COMPLETED", None, "marketing", None),
    ]
    assert history[2]["previous_category"] == "utility"
    assert history[0]["effective_at"] == "2025-09-01T09:00:00+00:00"


def test_a_template_update_without_a_name_is_skipped_naming_the_field_and_the_rest_is_stored(app, client):
    """Meta always names the template; a change without one is skipped with its path (answer 200, since Meta
    retries whole payloads on errors), and the readable change beside it is stored."""
    body = template_status("order_update", "en_US", "PAUSED", T0)
    del body["entry"][0]["changes"][0]["value"]["message_template_name"]
    body["entry"][0]["changes"].insert(0, template_status("other", "en", "APPROVED", T0)["entry"][0]["changes"][0])
    response = post(client, body)
    assert response.status_code == 200
    assert response.json["skipped"] == [{"path": "entry.0.changes.1.value",
                                         "reason": {"message_template_name": ["Missing data for required field."]}}]
    with app.app_context():
        assert [event["name"] for event in business_state.template_history(WABA_ID)] == ["other"]


def test_a_bad_preference_timestamp_is_skipped_with_its_path(app, client):
    """user_preferences timestamps are Unix seconds; a preference with another value is skipped, not stored."""
    body = user_preference("stop", T0)
    body["entry"][0]["changes"][0]["value"]["user_preferences"][0]["timestamp"] = "yesterday"
    response = post(client, body)
    assert response.status_code == 200
    assert response.json["skipped"] == [{"path": "entry.0.changes.0.value.user_preferences.0",
                                         "reason": {"timestamp": ["must be Unix seconds"]}}]


def test_a_status_keeps_its_decision_id_pricing_and_errors_and_names_the_waba(app, client):
    """biz_opaque_callback_data links the wamid to its decision; entry.id tells the number's WABA."""
    deliver(client, billed_status("wamid.b1", "sent", T0, pmp("utility", "regular", True), decision_id="d-123"),
            billed_status("wamid.b1", "delivered", T0 + 5, pmp("utility", "regular", True)))
    with app.app_context():
        row = business_state.MessageBilling.get(business_state.MessageBilling.wamid == "wamid.b1")
        assert (row.status, row.category, row.decision_id) == ("delivered", "utility", "d-123")
        assert business_state.waba_of(PHONE_NUMBER_ID) == WABA_ID


def test_error_131050_on_a_status_records_that_the_user_stopped_marketing(app, client):
    """A marketing template failing with 131050 tells the store the user stopped marketing messages."""
    deliver(client, billed_status("wamid.f1", "failed", T0, pmp("marketing", "regular", False), errors=[
        {"code": 131050, "title": "Unable to deliver the message. This recipient has chosen to stop receiving "
                                  "marketing messages on WhatsApp from your business"}]))
    with app.app_context():
        stopped = business_state.marketing_stopped(PHONE_NUMBER_ID, CONTACT, datetime(2025, 9, 2, tzinfo=UTC))
        assert stopped.value is True and stopped.source.startswith("status error 131050 on wamid.f1")
        # A failed message is not counted.
        assert business_state.count_messages(since=datetime(2025, 9, 1, tzinfo=UTC),
                                             until=datetime(2025, 9, 2, tzinfo=UTC), categories=("marketing",),
                                             phone_number_id=PHONE_NUMBER_ID) == 0


def test_inbound_messages_still_store_beside_the_number_to_waba_link(app, client):
    """The messages field stores history while the same pass learns the number's WABA."""
    answer = deliver(client, inbound_text("wamid.i1", T0))[0].json
    assert counts(answer) == {"new": 1, "known": 0, "linked": 0, "skipped": []}
    with app.app_context():
        assert business_state.waba_of(PHONE_NUMBER_ID) == WABA_ID


def test_a_send_refused_with_132015_pauses_its_template_in_the_registry(client):
    """Statuses name no template: the linked decision's request does, so 132015 marks that template PAUSED."""
    deliver(client, inbound_text("wamid.in", T0))
    request = {"send": {"at": "2025-09-01T09:30:00+00:00", "to": "+" + CONTACT, "type": "template",
                        "phone_number_id": PHONE_NUMBER_ID,
                        "template": {"name": "order_update", "language": "en", "category": "utility",
                                     "status": "APPROVED"}}, "history_ref": {"phone_number_id": PHONE_NUMBER_ID,
                                                                             "contact": CONTACT}}
    decision = client.post("/v1/decisions", json=request).json
    assert decision["decision"] == "allow"
    deliver(client, billed_status("wamid.p1", "failed", T0 + 1800, pmp("utility", "regular", False),
                                  decision_id=decision["decision_id"],
                                  errors=[{"code": 132015, "title": "Template is Paused"}]))
    again = client.post("/v1/decisions", json=request | {"send": {**request["send"],
                                                                   "at": "2025-09-01T09:40:00+00:00"}}).json
    assert again["decision"] == "deny" and again["error_codes"] == [132015]
    assert again["facts"]["sources"]["template_status"].startswith(
        "status error 132015 on wamid.p1 at 2025-09-01T09:30:00+00:00")


def test_a_131049_refusal_advises_against_retrying_marketing_for_24_hours(client):
    """A marketing template failing with 131049 (per-user marketing limit) adds MKT-1 advice to the next one."""
    deliver(client, inbound_text("wamid.in", T0),
            billed_status("wamid.m1", "failed", T0 + 60, pmp("marketing", "regular", False),
                          errors=[{"code": 131049, "title": "This message was not delivered to maintain healthy "
                                                            "ecosystem engagement."}]))
    request = {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+" + CONTACT, "type": "template",
                        "template": {"name": "spring_sale", "language": "en", "category": "marketing",
                                     "status": "APPROVED"}},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}
    body = client.post("/v1/decisions", json=request).json
    advice = next(r for r in body["trace"] if r["rule"] == "MKT-1")
    assert advice["sources"]["marketing_limit_refused_recently"] == \
        "status error 131049 on wamid.m1 at 2025-09-01T09:01:00+00:00"
    later = request | {"send": {**request["send"], "at": "2025-09-02T10:00:00+00:00"}}
    assert "MKT-1" not in [r["rule"] for r in client.post("/v1/decisions", json=later).json["trace"]]

"""The issue's acceptance test: Meta's documented webhooks change the next decisions the way Meta would
deliver and charge them, and each trace names the webhook (or count) its value came from."""

from datetime import UTC, datetime

import pytest

from policy_service.store import business_state

from ..meta_business_payloads import (
    billed_status,
    category_completed,
    category_impending,
    template_status,
    user_changed_number,
    user_preference,
)
from ..meta_payloads import CONTACT, PHONE_NUMBER_ID, WABA_ID, deliver, inbound_text, pmp, status
from .test_history_ref import read_wamids

T0 = 1756717200  # 2025-09-01T09:00:00Z (per-message pricing, V3)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def template_send(at: int, template: dict, **send) -> dict:
    """A template send from the test number to the test contact; history stored from webhooks."""
    return {"send": {"at": iso(at), "to": "+" + CONTACT, "type": "template", "template": template, **send},
            "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}


def sources_of(body: dict, fact: str) -> set[str]:
    """Every source a trace entry names for a fact."""
    return {reason["sources"][fact] for reason in body["trace"] if fact in reason.get("sources", {})}


@pytest.fixture
def window_open(client):
    """The user wrote at T0 (so the window is open for 24 h); the webhook also names the number's WABA."""
    deliver(client, inbound_text("wamid.in1", T0))
    return client


def test_a_completed_utility_to_marketing_update_makes_a_name_only_utility_send_a_charged_marketing_send(window_open):
    """Before the update the name-only send is the free in-window utility template; after it, marketing, charged."""
    client = window_open
    deliver(client, category_completed("order_update", "en_US", "UTILITY", "MARKETING", T0 + 600))
    name_only = {"name": "order_update", "language": "en_US"}

    before = client.post("/v1/decisions", json=template_send(T0 + 300, name_only | {"status": "APPROVED"})).json
    assert before["decision"] == "allow"
    assert before["charge"]["category"] == "utility" and before["charge"]["billable"] is False
    assert sources_of(before, "template_category") == {
        f"previous_category of the template_category_update webhook at {iso(T0 + 600)}"}

    claimed_utility = {**name_only, "category": "utility", "status": "APPROVED"}
    after = client.post("/v1/decisions", json=template_send(T0 + 3600, claimed_utility)).json
    assert after["decision"] == "allow"
    assert after["charge"] | {"rule": None} == {**after["charge"], "category": "marketing", "billable": True,
                                                "type": "regular", "rule": None}
    assert sources_of(after, "template_category") == {
        f"template_category_update webhook at {iso(T0 + 600)} (the request said utility; the registry wins)"}
    assert after["facts"]["sources"]["template_category"].startswith("template_category_update webhook at")
    # The log keeps the category the decision used, so the request replays without the registry.
    logged = client.get(f"/v1/decisions/{after['decision_id']}").json
    assert logged["request"]["send"]["template"]["category"] == "marketing"


def test_an_impending_category_change_takes_effect_at_its_timestamp(window_open):
    """Impending: the current category stands until category_update_timestamp, the correct one after it."""
    client = window_open
    deliver(client, category_impending("order_update", "en_US", "UTILITY", "MARKETING", T0 + 60, T0 + 7200))
    name_only = {"name": "order_update", "language": "en_US", "status": "APPROVED"}
    assert client.post("/v1/decisions", json=template_send(T0 + 3600, name_only)).json["charge"]["category"] == \
        "utility"
    later = client.post("/v1/decisions", json=template_send(T0 + 7200, name_only)).json
    assert later["charge"]["category"] == "marketing"
    assert sources_of(later, "template_category") == {f"template_category_update webhook at {iso(T0 + 7200)}"}


def test_a_paused_status_makes_an_approved_claiming_send_a_deny_132015(window_open):
    """The caller's copy says APPROVED; Meta paused the template, so Meta would refuse it with 132015."""
    client = window_open
    deliver(client, template_status("order_update", "en_US", "APPROVED", T0 + 60, category="UTILITY"),
            template_status("order_update", "en_US", "PAUSED", T0 + 600, reason="LOW_QUALITY"))
    body = client.post("/v1/decisions", json=template_send(T0 + 900, {
        "name": "order_update", "language": "en_US", "category": "utility", "status": "APPROVED"})).json
    assert body["decision"] == "deny" and body["error_codes"] == [132015]
    assert "TPL-1.paused" in body["determining_rules"]
    assert sources_of(body, "template_status") == {
        f"message_template_status_update webhook at {iso(T0 + 600)} (the request said APPROVED; the registry wins)"}
    # Reinstated: the next send is allowed again.
    deliver(client, template_status("order_update", "en_US", "APPROVED", T0 + 1200))
    again = client.post("/v1/decisions", json=template_send(T0 + 1500, {"name": "order_update",
                                                                        "language": "en_US"})).json
    assert again["decision"] == "allow"


def registry_state(client, at: int) -> dict:
    """GET /v1/wabas/<WABA>/templates/order_update/en_US at a time (the registry's state in force then)."""
    return client.get(f"/v1/wabas/{WABA_ID}/templates/order_update/en_US",
                      query_string={"at": iso(at)}).json


def test_a_status_or_category_meta_sends_that_the_rules_do_not_model_is_unknown_not_the_earlier_one(window_open):
    """An APPROVED utility template, then a status event and a category the rules do not model: the registry keeps
    Meta's values (the event, its reason, the stored webhook) and says status and category are unknown, naming them,
    instead of keeping APPROVED and utility as if nothing had been said; a name-only send is a 422 saying so, and a
    send that gives both is decided on them with the trace saying the registry's are unknown."""
    client = window_open
    deliver(client, template_status("order_update", "en_US", "APPROVED", T0 + 60, category="UTILITY"),
            template_status("order_update", "en_US", "SUSPENDED_FOR_REVIEW", T0 + 600, reason="NONE",
                            category="PROMOTIONAL"))
    state = registry_state(client, T0 + 900)
    webhook = f"message_template_status_update webhook at {iso(T0 + 600)}"
    assert state["status"] == {"value": "UNKNOWN", "source": f"{webhook} (NONE; Meta's status event "
                                                             "SUSPENDED_FOR_REVIEW is not one the rules model; Meta's "
                                                             "category PROMOTIONAL is not one the rules model)"}
    assert state["category"]["value"] == "unknown" and state["category"]["source"] == state["status"]["source"]
    assert state["history"][-1]["event"] == "SUSPENDED_FOR_REVIEW"

    name_only = client.post("/v1/decisions", json=template_send(T0 + 900, {"name": "order_update",
                                                                          "language": "en_US"}))
    assert name_only.status_code == 422 and set(name_only.json["errors"]) == {"send.template.category",
                                                                                "send.template.status"}
    assert name_only.json["errors"]["send.template.status"] == [
        f"required: the template registry's status is unknown ({state['status']['source']}); give it in the request"]

    given = client.post("/v1/decisions", json=template_send(T0 + 900, {
        "name": "order_update", "language": "en_US", "category": "utility", "status": "APPROVED"})).json
    assert given["decision"] == "allow"
    assert sources_of(given, "template_status") == {
        f"the request (the registry's status is unknown: {state['status']['source']})"}


def test_known_events_that_leave_the_status_keep_it(window_open):
    """FLAGGED (Meta keeps the template APPROVED until it disables it), LOCKED, UNLOCKED and IN_APPEAL change nothing
    a send is judged by: the earlier status stands, from its own webhook."""
    client = window_open
    deliver(client, template_status("order_update", "en_US", "APPROVED", T0 + 60, category="UTILITY"),
            *(template_status("order_update", "en_US", event, T0 + 600 + index)
              for index, event in enumerate(("FLAGGED", "LOCKED", "UNLOCKED", "IN_APPEAL"))))
    state = registry_state(client, T0 + 900)
    assert state["status"] == {"value": "APPROVED",
                               "source": f"message_template_status_update webhook at {iso(T0 + 60)}"}


def test_an_unknown_new_category_is_unknown_from_its_time(window_open):
    """template_category_update to a category the rules do not model: unknown from then, named; utility before. From
    a category the rules do not model: unknown before it, named too."""
    client = window_open
    deliver(client, category_completed("order_update", "en_US", "UTILITY", "LOYALTY", T0 + 600))
    before = registry_state(client, T0 + 300)
    after = registry_state(client, T0 + 900)
    assert before["category"]["value"] == "utility"
    assert after["category"] == {"value": "unknown", "source": f"template_category_update webhook at {iso(T0 + 600)} "
                                                               "(Meta's category LOYALTY is not one the rules model)"}
    deliver(client, category_completed("welcome", "en_US", "LEGACY", "UTILITY", T0 + 600))
    earlier = client.get(f"/v1/wabas/{WABA_ID}/templates/welcome/en_US", query_string={"at": iso(T0 + 300)}).json
    assert earlier["category"] == {"value": "unknown", "source": "previous_category of the template_category_update "
                                                                 f"webhook at {iso(T0 + 600)} (Meta's category LEGACY "
                                                                 "is not one the rules model)"}


def test_a_stop_preference_denies_marketing_and_resume_allows_it(window_open):
    """user_preferences `stop` decides OPT-2 without any context; `resume` lifts it."""
    client = window_open
    marketing = {"name": "spring_sale", "language": "en", "category": "marketing", "status": "APPROVED"}
    deliver(client, user_preference("stop", T0 + 60))
    body = client.post("/v1/decisions", json=template_send(T0 + 120, marketing)).json
    assert body["decision"] == "deny" and body["error_codes"] == [131050]
    assert sources_of(body, "marketing_opt_out") == {f"user_preferences webhook at {iso(T0 + 60)} (stop)"}
    assert "marketing_opt_out" not in body["facts"]["defaults_used"]
    deliver(client, user_preference("resume", T0 + 180))
    assert client.post("/v1/decisions", json=template_send(T0 + 240, marketing)).json["decision"] == "allow"


def test_a_stop_preference_is_stored_under_the_users_history_key(window_open):
    """A user_preferences `wa_id` written "+5511987654321" was stored as sent, beside the history stored under
    5511987654321: the stop never applied (a silent allow). It is stored under the same key as the user's messages;
    " 5511987654321" names no user and is skipped, naming wa_id."""
    client = window_open
    marketing = {"name": "spring_sale", "language": "en", "category": "marketing", "status": "APPROVED"}
    body = user_preference("stop", T0 + 60)
    body["entry"][0]["changes"][0]["value"]["user_preferences"][0]["wa_id"] = " " + CONTACT
    (answer,) = deliver(client, body)
    assert [(part["path"], list(part["reason"])) for part in answer.json["skipped"]] == [
        ("entry.0.changes.0.value.user_preferences.0", ["wa_id"])], answer.json
    assert client.post("/v1/decisions", json=template_send(T0 + 120, marketing)).json["decision"] == "allow"
    body["entry"][0]["changes"][0]["value"]["user_preferences"][0]["wa_id"] = "+" + CONTACT
    deliver(client, body)
    denied = client.post("/v1/decisions", json=template_send(T0 + 120, marketing)).json
    assert denied["decision"] == "deny" and denied["error_codes"] == [131050], denied


def test_the_context_still_overrides_the_stored_preference(window_open):
    """Context fields stay explicit overrides: marketing_opt_out false wins over a stored stop."""
    client = window_open
    deliver(client, user_preference("stop", T0 + 60))
    request = template_send(T0 + 120, {"name": "spring_sale", "language": "en", "category": "marketing",
                                       "status": "APPROVED"}) | {"context": {"marketing_opt_out": False}}
    assert client.post("/v1/decisions", json=request).json["decision"] == "allow"


def test_a_template_neither_given_nor_known_is_a_422_naming_the_field(window_open):
    """A name-only template the registry does not know cannot be judged: 422 on send.template.category."""
    response = window_open.post("/v1/decisions", json=template_send(T0 + 60, {"name": "unknown", "language": "en"}))
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"send.template.category", "send.template.status"}
    assert "does not know 'unknown'" in response.json["errors"]["send.template.category"][0]


def test_a_name_only_send_without_a_known_number_is_a_422(client):
    """Inline history and no send.phone_number_id: no registry to ask."""
    request = {"send": {"at": iso(T0), "to": "+" + CONTACT, "type": "template",
                        "template": {"name": "order_update", "language": "en_US"}}}
    response = client.post("/v1/decisions", json=request)
    assert response.status_code == 422 and "send.template.category" in response.json["errors"]


def test_send_phone_number_id_consults_the_registry_with_an_inline_history(window_open):
    """A caller that sends its own history names its sending number to use the registry."""
    client = window_open
    deliver(client, template_status("order_update", "en_US", "APPROVED", T0 + 60, category="UTILITY"))
    request = {"send": {"at": iso(T0 + 120), "to": "+" + CONTACT, "type": "template",
                        "phone_number_id": PHONE_NUMBER_ID,
                        "template": {"name": "order_update", "language": "en_US"}},
               "history": [{"direction": "inbound", "at": iso(T0), "type": "text"}]}
    body = client.post("/v1/decisions", json=request).json
    assert body["decision"] == "allow" and body["charge"]["category"] == "utility"
    assert sources_of(body, "template_status") == {f"message_template_status_update webhook at {iso(T0 + 60)}"}


V4 = 1790848800  # 2026-10-01T09:00:00Z: from here each number's first 1,000 service messages a month are free


def freeform(at: int, **context) -> dict:
    return {"send": {"at": iso(at), "to": "+" + CONTACT, "type": "text"},
            "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}, "context": context}


def test_the_sixth_service_message_of_the_month_is_free_and_the_count_is_named(client):
    """Five service messages stored from statuses: the sixth is inside the 1,000 free (PMP26-1)."""
    deliver(client, inbound_text("wamid.v4in", V4))
    deliver(client, *(status(f"wamid.s{i}", "sent", V4 + 60 + i, pricing=pmp("service", "free_customer_service",
                                                                            False)) for i in range(5)))
    body = client.post("/v1/decisions", json=freeform(V4 + 3600)).json
    assert body["decision"] == "allow"
    assert body["charge"]["billable"] is False and "PMP26-1.free-allowance" in body["determining_rules"]
    assert sources_of(body, "service_messages_this_month") == {
        f"5 service messages since 2026-10-01 00:00 UTC from phone number {PHONE_NUMBER_ID}, "
        "counted from stored statuses by maintained counters"}


def test_the_1001st_service_message_of_the_month_is_billable(app, client):
    """1,000 service messages already this month (in the account's time zone): the next one is charged."""
    deliver(client, inbound_text("wamid.v4in", V4))
    with app.app_context():
        business_state.MessageBilling.insert_many([
            {"wamid": f"wamid.bulk{i}", "phone_number_id": PHONE_NUMBER_ID, "contact": f"55119{i:08d}",
             "at": datetime(2026, 10, 1, 3, 0), "status": "delivered", "category": "service",
             "pricing": '{"category": "service"}'} for i in range(1000)]).execute()
        # Before 2026-10-01 00:00 in Sao Paulo (03:00 UTC): last month, not counted there.
        business_state.MessageBilling.create(wamid="wamid.september", phone_number_id=PHONE_NUMBER_ID,
                                             contact=CONTACT, at=datetime(2026, 10, 1, 2, 59), status="delivered",
                                             category="service")
        business_state.rebuild_counters()  # rows loaded without record_billing: count them in
    body = client.post("/v1/decisions", json=freeform(V4 + 3600, waba_timezone="America/Sao_Paulo")).json
    assert body["charge"]["billable"] is True and "PMP26-1.charged" in body["determining_rules"]
    assert sources_of(body, "service_messages_this_month") == {
        f"1,000 service messages since 2026-10-01 00:00 America/Sao_Paulo from phone number {PHONE_NUMBER_ID}, "
        "counted from stored statuses by maintained counters"}
    in_utc = client.post("/v1/decisions", json=freeform(V4 + 3600)).json
    assert in_utc["facts"]["seen_by_rules"]["service_messages_this_month"] == 1001


def test_a_status_whose_billing_differs_from_the_logged_prediction_is_a_mismatch_linked_to_its_decision(window_open):
    """The client sends decision_id as biz_opaque_callback_data; Meta bills marketing after a re-categorisation
    the decision could not know; reconciliation compares with the logged prediction and names the cause."""
    client = window_open
    decision = client.post("/v1/decisions", json=template_send(T0 + 3600, {
        "name": "order_update", "language": "en_US", "category": "utility", "status": "APPROVED"})).json
    assert decision["charge"]["category"] == "utility" and decision["charge"]["billable"] is False
    deliver(client, category_completed("order_update", "en_US", "UTILITY", "MARKETING", T0 + 3590),
            billed_status("wamid.out1", "sent", T0 + 3601, pmp("marketing", "regular", True),
                          decision_id=decision["decision_id"]),
            status("wamid.out1", "delivered", T0 + 3605),
            # An unlinked message is still reconciled, by replay.
            status("wamid.out2", "delivered", T0 + 4000, pricing=pmp("service", "free_customer_service", False)))
    report = client.get("/v1/reconciliation").json
    linked = next(c for c in report["comparisons"] if c["wamid"] == "wamid.out1")
    assert (linked["basis"], linked["decision_id"], linked["matches"]) == (
        "logged_prediction", decision["decision_id"], False)
    assert linked["predicted"] == {"pricing_model": "PMP", "category": "utility", "type": "free_customer_service",
                                   "billable": False}
    assert {d["field"] for d in linked["differences"]} == {"category", "type", "billable"}
    assert linked["cause"]["kind"] == "template_recategorised"
    assert linked["cause"]["detail"].startswith(
        "template order_update (en_US) was re-categorised to marketing: "
        f"template_category_update webhook at {iso(T0 + 3590)}; the registry received it only after the decision")
    replayed = next(c for c in report["comparisons"] if c["wamid"] == "wamid.out2")
    assert replayed["basis"] == "replay" and replayed["decision_id"] is None and replayed["matches"]
    assert report["summary"] == [
        {"month": "2025-09", "category": "marketing", "cause": "template_recategorised", "count": 1},
        {"month": "2025-09", "category": "service", "cause": "match", "count": 1}]
    first = client.get("/v1/reconciliation?page=1&page_size=1").json
    assert [c["wamid"] for c in first["comparisons"]] == ["wamid.out1"]
    assert first["pagination"] == {"page": 1, "page_size": 1, "total": 2, "pages": 2}
    assert first["summary"] == report["summary"]
    assert client.get("/v1/reconciliation?page_size=0").status_code == 422


def test_the_history_follows_a_user_who_changed_numbers(window_open):
    """user_changed_number: the window the user opened from the old number is open for the new one."""
    client = window_open
    new = "5511999990000"
    deliver(client, user_changed_number(CONTACT, new, T0 + 60))
    body = client.post("/v1/decisions", json={"send": {"at": iso(T0 + 3600), "to": "+" + new, "type": "text"},
                                              "history_ref": {"phone_number_id": PHONE_NUMBER_ID,
                                                              "contact": new}}).json
    assert body["decision"] == "allow" and "CSW-2.open" in body["determining_rules"]
    assert "wamid.in1" in read_wamids(client, body)
    other = client.post("/v1/decisions", json={"send": {"at": iso(T0 + 3600), "to": "+5511999990001",
                                                        "type": "text"},
                                               "history_ref": {"phone_number_id": PHONE_NUMBER_ID,
                                                               "contact": "5511999990001"}}).json
    assert other["decision"] == "deny"


def test_a_new_number_written_with_a_plus_is_the_users_history_key(window_open):
    """user_changed_number with `system.wa_id` "+5511999990000" moved the history to a key no request reads (the
    window the user opened was lost: a deny where Meta allows); it is read as the user's number. " 5511999990000"
    names no number: the number change is skipped naming it, the message itself still stored."""
    client = window_open
    body = user_changed_number(CONTACT, " 5511999990000", T0 + 30)
    (answer,) = deliver(client, body)
    assert answer.json["new"] == 1 and [(part["path"], list(part["reason"])) for part in answer.json["skipped"]] == [
        ("entry.0.changes.0.value.messages.0.system", ["wa_id"])], answer.json
    new = "5511999990000"
    deliver(client, user_changed_number(CONTACT, "+" + new, T0 + 60))
    body = client.post("/v1/decisions", json={"send": {"at": iso(T0 + 3600), "to": "+" + new, "type": "text"},
                                              "history_ref": {"phone_number_id": PHONE_NUMBER_ID,
                                                              "contact": new}}).json
    assert body["decision"] == "allow" and "CSW-2.open" in body["determining_rules"], body


def test_a_send_phone_number_id_the_store_has_never_seen_is_named_in_the_response(client):
    """send.phone_number_id with an inline history and a number no webhook ever named: the decision is made without
    stored state (a mistyped id reads as a business with no opt-out, no paused template) and was answered with no word
    of it. The response's business_state says so, as history_source does for a history_ref; once a webhook names the
    number, or without send.phone_number_id, the response has no business_state (a decision body is unchanged)."""
    marketing = {"name": "spring_sale", "language": "en", "category": "marketing", "status": "APPROVED"}
    request = {"send": {"at": iso(T0 + 120), "to": "+" + CONTACT, "type": "template", "template": marketing,
                        "phone_number_id": PHONE_NUMBER_ID},
               "history": [{"direction": "inbound", "at": iso(T0), "type": "text"}]}
    unseen = client.post("/v1/decisions", json=request).json
    assert unseen["business_state"]["phone_number_id"] == PHONE_NUMBER_ID
    assert unseen["business_state"]["note"].startswith(f"nothing is stored for phone_number_id {PHONE_NUMBER_ID}")
    logged = client.get(f"/v1/decisions/{unseen['decision_id']}").json["response"]
    assert logged["business_state"] == unseen["business_state"]
    plain = {**request, "send": {k: v for k, v in request["send"].items() if k != "phone_number_id"}}
    assert "business_state" not in client.post("/v1/decisions", json=plain).json
    deliver(client, inbound_text("wamid.in1", T0))  # a webhook names the number (and its WABA)
    assert "business_state" not in client.post("/v1/decisions", json=request).json
    deliver(client, user_preference("stop", T0 + 60))
    stopped = client.post("/v1/decisions", json=request).json
    assert stopped["decision"] == "deny" and "business_state" not in stopped


def test_a_history_ref_of_a_number_never_seen_is_noted_once(client):
    """With a history_ref, history_source's note says the number is unknown: business_state does not repeat it."""
    body = client.post("/v1/decisions", json=template_send(T0 + 120, {
        "name": "order_update", "language": "en", "category": "utility", "status": "APPROVED"},
        phone_number_id=PHONE_NUMBER_ID)).json
    assert "nothing is stored" in body["history_source"]["note"] and "business_state" not in body


def test_a_stop_from_a_mexican_wa_id_denies_marketing_to_its_e164_number(client):
    """Meta's wa_id may not match the number sent to: a user whose wa_id is 5215512345678 (+525512345678) stops
    marketing. A marketing template to +525512345678 naming the user by either form is denied (the stop was
    stored under the wa_id and read only under the contact as named: a silent allow)."""
    deliver(client, inbound_text("wamid.mx", T0, contact="5215512345678"),
            user_preference("stop", T0 + 60, contact="5215512345678"))
    marketing = {"name": "spring_sale", "language": "en", "category": "marketing", "status": "APPROVED"}
    for contact in ("+525512345678", "5215512345678"):
        body = client.post("/v1/decisions", json={
            "send": {"at": iso(T0 + 120), "to": "+525512345678", "type": "template", "template": marketing},
            "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": contact}}).json
        assert body["decision"] == "deny" and body["error_codes"] == [131050], (contact, body)

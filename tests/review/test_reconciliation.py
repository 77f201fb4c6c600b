"""Reconciliation: Meta's pricing of delivered messages against the charge the rules predict."""

import json
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from msgspec import structs

from policy_service.cli import main
from policy_service.core.evaluate import replay
from policy_service.core.messages import DecisionRequest, Send
from policy_service.review import reconciliation
from policy_service.review.reconciliation import normalized_category
from policy_service.store import histories

from ..conftest import BILLED_T0 as T0
from ..meta_business_payloads import billed_status, category_completed
from ..meta_payloads import BSUID, CONTACT, deliver, inbound_text, notification, pmp, status, username_status


def test_report_compares_each_delivered_priced_message(client, billed_history):
    """Matches and mismatches are reported field by field; failed and undelivered messages are not checked."""
    report = client.get("/v1/reconciliation").json
    by_wamid = {item["wamid"]: item for item in report["comparisons"]}
    assert list(by_wamid) == ["wamid.utility", "wamid.marketing", "wamid.auth"]
    assert (report["checked"], report["matching"], report["mismatching"]) == (3, 2, 1)
    assert by_wamid["wamid.utility"]["matches"] and "PMP-3" in by_wamid["wamid.utility"]["determining_rules"]
    assert by_wamid["wamid.marketing"]["predicted"] == {"pricing_model": "PMP", "category": "marketing",
                                                        "type": "regular", "billable": True}
    # Without context the rules cannot know the business is eligible for authentication-international.
    assert by_wamid["wamid.auth"]["differences"] == [
        {"field": "category", "meta": "authentication_international", "predicted": "authentication"}]


def test_report_filters_by_contact(client, billed_history):
    """A contact with no delivered messages has nothing to reconcile."""
    assert client.get("/v1/reconciliation?contact=%2B14155550100").json["checked"] == 0
    assert client.get("/v1/reconciliation?contact=%2B5511987654321&phone_number_id=106540352242922").json[
        "checked"] == 3


@pytest.mark.parametrize("contact", ["alice smith", "al!ce", "x" * 256, "%3Cscript%3E"])
def test_bad_filter_is_a_422(client, contact):
    """A contact that is neither a number, a BSUID nor a group id is refused in the error shape, naming it."""
    response = client.get(f"/v1/reconciliation?contact={contact}")
    assert response.status_code == 422 and "query.contact" in response.json["errors"]
    assert "group id" in response.json["errors"]["query.contact"][0]


@pytest.mark.parametrize(("meta", "ours"), [("authentication_international", "authentication-international"),
                                             ("authentication-international", "authentication-international"),
                                             ("marketing_lite", "marketing"), ("utility", "utility")])
def test_both_spellings_of_authentication_international_match(meta, ours):
    """Meta's underscore and hyphen spellings, and the Marketing Messages API's marketing_lite (same rates,
    PMP-8), compare equal to the rules' category."""
    assert normalized_category(meta) == normalized_category(ours)


def test_cli_reports_the_same_as_the_api(client, billed_history, database_url):
    """`policy-service reconcile` prints the mismatch field by field, and the same counts as JSON."""
    runner = CliRunner()
    text = runner.invoke(main, ["reconcile", "--database-url", database_url])
    assert text.exit_code == 0, text.output
    assert "MISMATCH wamid.auth" in text.output
    assert "category: Meta 'authentication_international', rules 'authentication'" in text.output
    assert text.output.rstrip().endswith("3 delivered messages checked: 2 match, 1 mismatch, 0 category not modelled")
    as_json = runner.invoke(main, ["reconcile", "--database-url", database_url, "--json"])
    assert json.loads(as_json.output)["mismatching"] == 1


def cbp(category: str, billable: bool = True) -> dict:
    """A conversation-based `pricing` object, as Meta sent it before 2025-07-01."""
    return {"billable": billable, "pricing_model": "CBP", "category": category}


V1 = 1656666000  # 2022-07-01T09:00:00Z: the 2022 conversation model
V2 = 1709629200  # 2024-03-05T09:00:00Z: four categories


# (pricing, status time, with an inbound message an hour before): every category of every version.
CATEGORIES = [
    (cbp("business_initiated"), V1, False), (cbp("user_initiated"), V1, True),
    (cbp("referral_conversion", False), V1, True),
    (cbp("marketing"), V2, False), (cbp("utility"), V2, False), (cbp("authentication"), V2, False),
    (cbp("authentication-international"), V2, False), (cbp("service"), V2, True),
    (cbp("referral_conversion", False), V2, False),
    (pmp("marketing", "regular", True), T0, False), (pmp("marketing_lite", "regular", True), T0, False),
    (pmp("utility", "free_customer_service", False), T0, True), (pmp("authentication", "regular", True), T0, False),
    (pmp("authentication_international", "regular", True), T0, False),
    (pmp("service", "free_customer_service", False), T0, True),
    (pmp("marketing", "free_entry_point", False), T0, False),
]
NOT_MODELLED = ["general_purpose_ai"]


@pytest.mark.parametrize(("pricing", "at", "inbound_before"), CATEGORIES,
                         ids=[f"{p['pricing_model']}-{p['category']}-{at}" for p, at, _ in CATEGORIES])
def test_every_modelled_category_of_every_version_is_replayed_never_as_a_denied_freeform(client, pricing, at,
                                                                                         inbound_before):
    """Each category is replayed as what Meta's category allows; none becomes a free-form message denied with
    131047, and a category that does not say the type names the assumption."""
    bodies = [inbound_text("wamid.in", at - 3600)] if inbound_before else []
    deliver(client, *bodies, status("wamid.x", "delivered", at, pricing=pricing))
    (item,) = client.get("/v1/reconciliation").json["comparisons"]
    assert item["modelled"] and item["predicted"] is not None
    assert item["decision"] == "allow", item
    if pricing["category"] in ("business_initiated", "user_initiated", "referral_conversion"):
        assert item["note"].startswith("assumed"), item
        # Outside the window only a template can have been delivered.
        assert item["note"].startswith("assumed a template") == (not inbound_before)


@pytest.mark.parametrize("category", NOT_MODELLED)
def test_a_category_the_rules_do_not_model_is_reported_not_replayed(client, category):
    """general_purpose_ai is stored as Meta sent it and reported as "category not modelled", with no
    prediction and no replay."""
    deliver(client, status("wamid.x", "delivered", T0, pricing=pmp(category, "regular", True)))
    report = client.get("/v1/reconciliation").json
    (item,) = report["comparisons"]
    assert (item["modelled"], item["predicted"], item["decision"]) == (False, None, "not_modelled")
    assert item["note"] == f"category not modelled: {category}" and item["meta"]["category"] == category
    assert (report["matching"], report["mismatching"], report["not_modelled"]) == (0, 0, 1)


@pytest.mark.parametrize(("states", "reconciled"), [
    (["sent"], False), (["sent", "delivered"], True), (["sent", "read"], True), (["sent", "played"], True),
    (["sent", "failed"], False), (["sent", "deleted"], False), (["sent", "warning"], False),
    (["delivered", "deleted"], True),
])
def test_every_status_value_decides_whether_a_message_is_reconciled(client, states, reconciled):
    """Delivered, read and played (a voice message) messages are reconciled; sent, failed, deleted and warning
    alone say nothing was delivered."""
    deliver(client, *(status("wamid.v", state, T0 + i, pricing=pmp("marketing", "regular", True) if not i else None)
                      for i, state in enumerate(states)))
    assert client.get("/v1/reconciliation").json["checked"] == int(reconciled)


def test_a_message_is_reconciled_at_its_delivery(client):
    """A utility template sent inside the window but delivered after it closed is predicted charged, as Meta
    bills it; dated by its sending it would have been predicted free."""
    deliver(client, inbound_text("wamid.in", T0),
            status("wamid.late", "sent", T0 + 86400 - 60, pricing=pmp("utility", "regular", True)),
            status("wamid.late", "delivered", T0 + 86400 + 600))
    (item,) = client.get("/v1/reconciliation").json["comparisons"]
    assert item["matches"] and item["predicted"]["billable"] is True, item


def test_a_marketing_messages_api_delivery_matches_its_marketing_lite_prediction(client):
    """Meta's marketing_lite (pricing and origin) is predicted as a Marketing Messages API send: no mismatch."""
    deliver(client, status("wamid.mm", "delivered", T0, origin="marketing_lite",
                           pricing=pmp("marketing_lite", "regular", True)))
    [comparison] = client.get("/v1/reconciliation").json["comparisons"]
    assert comparison["matches"], comparison["differences"]
    assert comparison["predicted"]["category"] == "marketing_lite"
    assert comparison["determining_rules"][-1] == "PMP-8.marketing-lite"


def test_a_delivery_to_a_username_user_is_reconciled_under_the_bsuid(client):
    """A status with recipient_user_id only is compared like any other; its recipient is the BSUID, whose
    country prefix the rules read (a US BSUID gets no marketing: MKT-4)."""
    brazilian = "BR.1502576394655843"
    deliver(client, username_status("wamid.br", "delivered", T0, user_id=brazilian,
                                    pricing=pmp("marketing", "regular", True)),
            username_status("wamid.us", "delivered", T0, pricing=pmp("marketing", "regular", True)))
    [comparison] = client.get(f"/v1/reconciliation?contact={brazilian}").json["comparisons"]
    assert comparison["contact"] == brazilian and comparison["matches"], comparison
    [us] = client.get(f"/v1/reconciliation?contact={BSUID}").json["comparisons"]
    assert us["decision"] == "deny" and "MKT-4" in us["determining_rules"]


def test_a_recategorisation_the_registry_knew_before_the_send_is_the_cause_not_a_window(client):
    """The registry received UTILITY -> MARKETING before the decision (the webhook's own time, 10 minutes after
    the send, lags the change Meta applied); the decision, given its history inline and no phone_number_id,
    predicted the in-window utility template free. Meta billed marketing: the cause is the re-categorisation
    the store knew at send time, not `window_assumed`."""
    at = "2025-08-12T09:00:00+00:00"  # T0
    deliver(client, inbound_text("wamid.in", T0 - 3600),
            category_completed("order_update", "en_US", "UTILITY", "MARKETING", T0 + 600))
    decision = client.post("/v1/decisions", json={
        "send": {"at": at, "to": "+" + CONTACT, "type": "template",
                 "template": {"name": "order_update", "language": "en_US", "category": "utility",
                              "status": "APPROVED"}},
        "history": [{"direction": "inbound", "at": "2025-08-12T08:00:00+00:00", "type": "text"}]}).json
    assert decision["charge"]["type"] == "free_customer_service"
    deliver(client, billed_status("wamid.out", "sent", T0 + 1, pmp("marketing", "regular", True),
                                  decision_id=decision["decision_id"]),
            status("wamid.out", "delivered", T0 + 5))
    [item] = [c for c in client.get("/v1/reconciliation").json["comparisons"] if c["wamid"] == "wamid.out"]
    assert item["basis"] == "logged_prediction" and not item["matches"]
    assert item["cause"]["kind"] == "template_recategorised", item["cause"]
    assert "the registry had received it" in item["cause"]["detail"]
    assert "which used the category utility" in item["cause"]["detail"]


def test_a_message_reported_sent_then_failed_then_delivered_keeps_its_failure_visible(client):
    """Meta sends `sent`, then `failed` (131026), then `delivered` for one message: it is stored as delivered
    with the failure kept, and reconciled as contradictory statuses (not a clean match), the error named."""
    failed = {"id": "wamid.odd", "status": "failed", "timestamp": str(T0 + 30), "recipient_id": CONTACT,
              "errors": [{"code": 131026, "title": "Message undeliverable"}]}
    deliver(client, inbound_text("wamid.in", T0 - 60),
            status("wamid.odd", "sent", T0, pricing=pmp("utility", "free_customer_service", False)),
            notification({"statuses": [failed]}),
            status("wamid.odd", "delivered", T0 + 90, pricing=pmp("utility", "free_customer_service", False)))
    report = client.get("/v1/reconciliation").json
    [item] = report["comparisons"]
    assert item["failures"] == [{"code": 131026, "title": "Message undeliverable"}]
    assert not item["matches"] and item["differences"] == []
    assert "failed (131026 (Message undeliverable)) and also delivered" in item["note"]
    assert (report["matching"], report["contradictory"]) == (0, 1)
    assert [s["cause"] for s in report["summary"]] == ["contradictory_statuses"]
    assert item["cause"] == {"kind": "contradictory_statuses", "detail": "Meta reported this message failed "
                             "(131026 (Message undeliverable)) and also delivered"}


def causes_agree(report):
    """Each comparison's cause kind is the one the summary counts it under (match, not_modelled or its cause)."""
    counted = sorted((s["month"], s["cause"]) for s in report["summary"] for _ in range(s["count"]))
    kinds = sorted((c["at"][:7], "not_modelled" if not c["modelled"] else "match" if c["matches"] else
                    (c["cause"] or {}).get("kind", "unknown")) for c in report["comparisons"])
    return counted == kinds


def test_a_logged_prediction_of_a_message_reported_failed_and_delivered_has_the_cause_the_summary_counts(client):
    """A linked message Meta reported delivered, then failed (131026), priced as predicted: its comparison's cause
    was null while the summary counted it contradictory_statuses; both now say contradictory_statuses."""
    decision = client.post("/v1/decisions", json={
        "send": {"at": "2025-08-12T09:10:00+00:00", "to": "+" + CONTACT, "type": "text"},
        "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}]}).json
    assert decision["charge"]["type"] == "free_customer_service"
    failed = {"id": "wamid.odd", "status": "failed", "timestamp": str(T0 + 900), "recipient_id": CONTACT,
              "errors": [{"code": 131026, "title": "Message undeliverable"}]}
    deliver(client, billed_status("wamid.odd", "delivered", T0 + 600, pmp("service", "free_customer_service", False),
                                  decision_id=decision["decision_id"]),
            notification({"statuses": [failed]}))
    report = client.get("/v1/reconciliation").json
    [item] = report["comparisons"]
    assert item["basis"] == "logged_prediction" and item["differences"] == [] and not item["matches"]
    assert item["cause"]["kind"] == "contradictory_statuses" and "131026" in item["cause"]["detail"]
    assert [s["cause"] for s in report["summary"]] == ["contradictory_statuses"] and causes_agree(report)


def test_a_replayed_service_message_free_for_meta_with_no_inbound_stored_is_a_window_not_in_history(client):
    """A service message Meta priced free_customer_service, with no inbound message stored: the replay denies it
    (131047, no open window) and the comparison had no cause (counted `unknown`); its cause is now
    window_not_in_history, saying the stored history did not show the window and the replay denied the send."""
    deliver(client, *(status(f"wamid.svc{i}", "delivered", T0 + i, pricing=pmp("service", "free_customer_service",
                                                                               False)) for i in range(3)))
    report = client.get("/v1/reconciliation").json
    assert len(report["comparisons"]) == 3 and report["mismatching"] == 3
    for item in report["comparisons"]:
        assert item["basis"] == "replay" and item["decision"] == "deny", item
        assert item["cause"]["kind"] == "window_not_in_history", item
        assert "the stored history did not show" in item["cause"]["detail"]
        assert "the replay denied the send (131047)" in item["cause"]["detail"]
    assert report["summary"] == [{"month": "2025-08", "category": "service", "cause": "window_not_in_history",
                                  "count": 3}] and causes_agree(report)


def test_a_replayed_send_todays_rules_deny_for_no_window_reason_is_denied_on_replay(client):
    """A marketing template Meta delivered and billed to a US user (BSUID US.…): today's rules deny it (MKT-4), no
    window or count explains the mismatch, and its cause says the replay denied it rather than `unknown`."""
    deliver(client, username_status("wamid.us", "delivered", T0, pricing=pmp("marketing", "regular", True)))
    report = client.get("/v1/reconciliation").json
    [item] = report["comparisons"]
    assert item["decision"] == "deny" and item["cause"]["kind"] == "denied_on_replay", item
    assert "MKT-4" in item["cause"]["detail"] and causes_agree(report)


def test_every_cause_a_comparison_may_have_is_documented():
    """CAUSES names each kind and README's reconciliation section lists each, so a reader of the summary can look
    up what it counts."""
    from pathlib import Path
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert set(reconciliation.CAUSES) >= {"window_not_in_history", "contradictory_statuses", "denied_on_replay"}
    assert all(f"`{kind}`" in readme for kind in reconciliation.CAUSES)


def test_a_failed_message_never_delivered_is_not_reconciled_as_contradictory(client):
    """A message that only failed is not a delivered message: nothing to reconcile, no contradiction."""
    failed = {"id": "wamid.fail", "status": "failed", "timestamp": str(T0 + 30), "recipient_id": CONTACT,
              "errors": [{"code": 131026, "title": "Message undeliverable"}]}
    deliver(client, status("wamid.fail", "sent", T0, pricing=pmp("marketing", "regular", True)),
            notification({"statuses": [failed]}))
    assert client.get("/v1/reconciliation").json["comparisons"] == []


GROUP = "Q2x1Ykdyb3VwOmJvb2tjbHVi"
MEMBER = "5511976541234"


def group_inbound(wamid, timestamp):
    """A participant's text in the group (Groups API): stored under the group, it opens the group's window."""
    return notification({"messages": [{"from": MEMBER, "id": wamid, "timestamp": str(timestamp), "type": "text",
                                       "group_id": GROUP, "text": {"body": "Who is coming on Friday?"}}],
                         "contacts": [{"profile": {"name": "Ana"}, "wa_id": MEMBER}]})


def group_status(wamid, state, timestamp, category, pricing_type, billable):
    return notification({"statuses": [{"id": wamid, "status": state, "timestamp": str(timestamp),
                                       "recipient_id": GROUP, "recipient_type": "group",
                                       "recipient_participant_id": MEMBER,
                                       "pricing": {"billable": billable, "pricing_model": "PMP",
                                                   "category": category, "type": pricing_type}}]})


GROUPS_T0 = 1764579600  # 2025-12-01T09:00:00Z: the Groups API is priced (from 2025-10-22)


@pytest.mark.parametrize(("category", "pricing_type", "billable", "window_open"), [
    ("group_utility", "free_group_customer_service", False, True),
    ("group_utility", "regular", True, False),
    ("group_marketing", "regular", True, True),
    ("group_service", "free_group_customer_service", False, True),
])
def test_a_group_message_is_reconciled_as_the_send_side_prices_it(client, category, pricing_type, billable,
                                                                   window_open):
    """group_utility, group_marketing and group_service are replayed as a send to the group after the group's
    stored history (GRP-2 inside the group's window, GRP-3 billed per participant): they match Meta's pricing."""
    at = GROUPS_T0 + (3600 if window_open else 3 * 86400)
    deliver(client, group_inbound("wamid.gin", GROUPS_T0), group_status("wamid.gout", "delivered", at, category,
                                                                         pricing_type, billable))
    [item] = client.get("/v1/reconciliation").json["comparisons"]
    assert item["modelled"] and item["matches"], item
    assert item["predicted"]["category"] == category and item["predicted"]["type"] == pricing_type


def test_history_ref_names_a_group_whose_stored_history_decides_the_window(client):
    """history_ref.group_id uses the group's stored history: a participant wrote an hour ago, so a free-form
    message to the group is allowed and free (GRP-2); with no such message stored it would be refused."""
    from ..meta_payloads import PHONE_NUMBER_ID

    deliver(client, group_inbound("wamid.gin", GROUPS_T0))
    send = {"at": "2025-12-01T10:00:00+00:00", "to": GROUP, "type": "text", "recipient_type": "group",
            "participants": ["+" + MEMBER]}
    body = client.post("/v1/decisions", json={
        "send": send, "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "group_id": GROUP}}).json
    assert body["decision"] == "allow", body
    assert body["charge"]["category"] == "group_service" and body["charge"]["billable"] is False
    other = client.post("/v1/decisions", json={
        "send": {**send, "to": "Z3JvdXAy"}, "history_ref": {"phone_number_id": PHONE_NUMBER_ID,
                                                           "group_id": "Z3JvdXAy"}}).json
    assert other["decision"] == "deny"


def test_reconciliation_filters_by_a_group_id_over_http_and_in_python(client, app, database_url):
    """contact=<group id> (as history_ref.group_id names a group) reconciles the group's sends alone — over
    HTTP and through PolicyService.reconcile, with the same body — not a 422."""
    from policy_service import PolicyService

    from ..meta_payloads import PHONE_NUMBER_ID

    at = GROUPS_T0 + 3600
    deliver(client, group_inbound("wamid.gin", GROUPS_T0),
            group_status("wamid.gout", "delivered", at, "group_utility", "free_group_customer_service", False),
            inbound_text("wamid.in1", GROUPS_T0),
            status("wamid.out1", "delivered", at, pricing=pmp("utility", "free_customer_service", False)))
    assert client.get("/v1/reconciliation").json["checked"] == 2
    over_http = client.get(f"/v1/reconciliation?contact={GROUP}&phone_number_id={PHONE_NUMBER_ID}")
    assert over_http.status_code == 200, over_http.json
    [item] = over_http.json["comparisons"]
    assert (item["wamid"], item["contact"]) == ("wamid.gout", GROUP)
    assert item["modelled"] and item["matches"] and item["predicted"]["category"] == "group_utility"
    svc = PolicyService(database_url=database_url, whatsapp_app_secret=app.config["WHATSAPP_APP_SECRET"])
    try:
        assert svc.reconcile(contact=GROUP, phone_number_id=PHONE_NUMBER_ID) == over_http.json
        assert svc.reconcile(contact=GROUP) == client.get(f"/v1/reconciliation?contact={GROUP}").json
    finally:
        svc.close()


AGENT_T0 = 1786525200  # 2026-08-12T09:00:00Z: Meta Business Agent replies billed per token (from 2026-08-01)


def test_a_meta_business_agent_reply_is_replayed_as_the_send_side_predicts_it(client):
    """business_agent (PMP26-4.agent) is no longer "not modelled": the delivered message is replayed as a reply
    written by Meta Business Agent inside the window, predicted billed as business_agent, and matches on
    pricing model, category and billable; the note says its per-token price is not predicted."""
    deliver(client, inbound_text("wamid.in", AGENT_T0),
            status("wamid.agent", "delivered", AGENT_T0 + 600, pricing=pmp("business_agent", "regular", True)))
    report = client.get("/v1/reconciliation").json
    (item,) = report["comparisons"]
    assert item["modelled"] and item["matches"] and item["decision"] == "allow", item
    assert "PMP26-4.agent" in item["determining_rules"]
    assert item["predicted"] == {"pricing_model": "PMP", "category": "business_agent", "type": "regular",
                                 "billable": True}
    assert "billed per token" in item["note"] and "price is not predicted" in item["note"]
    assert (report["matching"], report["not_modelled"]) == (1, 0)
    assert report["summary"] == [{"month": "2026-08", "category": "business_agent", "cause": "match", "count": 1}]


def test_an_agent_reply_is_compared_on_category_and_billable_not_on_a_per_message_type(client):
    """Meta bills an agent reply per token: a `type` Meta gives it is not compared with a per-message type; a
    billable difference still is."""
    deliver(client, inbound_text("wamid.in", AGENT_T0),
            status("wamid.a1", "delivered", AGENT_T0 + 600, pricing=pmp("business_agent", "per_token", True)),
            status("wamid.a2", "delivered", AGENT_T0 + 700, pricing=pmp("business_agent", "regular", False)))
    first, second = client.get("/v1/reconciliation").json["comparisons"]
    assert first["matches"] and first["differences"] == []
    assert second["differences"] == [{"field": "billable", "meta": False, "predicted": True}]


def test_a_linked_agent_reply_decided_as_a_persons_reply_names_the_cause(client):
    """A decision asked for a person's reply (free service message) that Meta billed as business_agent: the
    mismatch's cause is the undeclared agent reply, not a window the history showed."""
    decision = client.post("/v1/decisions", json={
        "send": {"at": "2026-08-12T09:10:00+00:00", "to": "+" + CONTACT, "type": "text"},
        "history": [{"direction": "inbound", "at": "2026-08-12T09:00:00+00:00", "type": "text"}]}).json
    assert decision["charge"]["category"] == "service"
    deliver(client, billed_status("wamid.agent", "delivered", AGENT_T0 + 600, pmp("business_agent", "regular", True),
                                  decision_id=decision["decision_id"]))
    (item,) = client.get("/v1/reconciliation").json["comparisons"]
    assert item["basis"] == "logged_prediction" and not item["matches"]
    assert item["cause"]["kind"] == "agent_reply_not_declared" and "per token" in item["note"]


def test_the_summary_counts_both_spellings_of_authentication_international_as_one(client):
    """The summary is by Meta's pricing category: authentication_international (origin.type, some senders) and
    authentication-international (pricing) are one category there (domain notes WH-2), as /v1/costs has them,
    named in the pricing spelling."""
    deliver(client, inbound_text("wamid.in", T0),
            status("wamid.h", "delivered", T0 + 60, pricing=pmp("authentication-international", "regular", True)),
            status("wamid.u", "delivered", T0 + 120, pricing=pmp("authentication_international", "regular", True)))
    summary = client.get("/v1/reconciliation").json["summary"]
    assert [row["category"] for row in summary] == ["authentication-international"] * len(summary), summary
    assert sum(row["count"] for row in summary) == 2


def test_each_delivered_message_is_replayed_once_and_each_stored_message_read_once(client, app, monkeypatch):
    """GET /v1/reconciliation slowed sharply with many messages to one contact (300: 1.0 s, 1,200: 35 s): each
    message's history was replayed twice (once to assume its send, again inside evaluate) and every stored message
    before it converted again and searched for (N² conversions). Each compared message's state is now made once
    (by the conversation's one incremental replay, core.incremental; given to evaluate, which replays nothing) and
    each stored message read as the core's Message once per conversation, whatever N; the answers are unchanged
    (the other tests here, and test_the_incremental_replay_compares_as_each_message_replayed_on_its_own)."""
    from policy_service.core import evaluate as core_evaluate
    from policy_service.core.incremental import IncrementalReplay

    counts = {"replay": 0, "state": 0, "as_message": 0}

    def counting(name, function):
        def counted(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)
        return counted

    monkeypatch.setattr(core_evaluate, "replay", counting("replay", core_evaluate.replay))
    monkeypatch.setattr(IncrementalReplay, "state", counting("state", IncrementalReplay.state))
    monkeypatch.setattr(histories, "as_message", counting("as_message", histories.as_message))
    for n in (20, 40):
        deliver(client, inbound_text(f"wamid.in-{n}", T0), *(
            status(f"wamid.{n}-{i}", "delivered", T0 + 60 * (i + 1), pricing=pmp("utility", "free_customer_service",
                                                                                  False)) for i in range(n)))
        counts.update(replay=0, state=0, as_message=0)
        report = client.get("/v1/reconciliation?page_size=10").json
        assert (report["checked"], len(report["comparisons"])) == (counts["state"], 10), (n, counts)
        assert counts["replay"] == 0, counts
        # Each compared row itself, and the conversation's rows (those compared and the inbound ones) once.
        assert counts["as_message"] <= 2 * report["checked"] + 2, (n, counts)


PHONE_NUMBER_ID = "106540352242922"
NUMBER, LINKED_BSUID, OTHER = "5511987654321", "BR.AbCdEf0123456789", "5511900000002"
START = datetime(2023, 9, 1, tzinfo=UTC)  # + up to two years: conversation-based pricing, then per-message
_GAP = st.one_of(st.integers(0, 900), st.integers(0, 3 * 3600), st.integers(20 * 3600, 26 * 3600),
                 st.integers(70 * 3600, 200 * 3600))
_STORED_INBOUND = st.fixed_dictionaries({
    "direction": st.just("inbound"), "type": st.sampled_from(["text", "text", "reaction", "image"]),
    "referral": st.sampled_from([None, None, None, {"source_type": "ad"}]),
})
_STORED_OUTBOUND = st.fixed_dictionaries({
    "direction": st.just("outbound"), "type": st.sampled_from(["unknown", "unknown", "text"]),
    "status": st.sampled_from(["delivered", "read", "sent", "failed", "delivered"]),
    "category": st.sampled_from(["marketing", "utility", "authentication", "service", "referral_conversion",
                                 "general_purpose_ai"]),
    "pricing_type": st.sampled_from(["regular", "free_customer_service", "free_entry_point"]),
    # Seconds from sending to the delivered status: at once, minutes (past later sends), days (past a quiet point).
    "delay": st.one_of(st.none(), st.integers(0, 900), st.integers(0, 86400), st.integers(3 * 86400, 5 * 86400)),
})


def store_rows(events, start, arrival):
    """Insert the events as stored rows in `arrival` order (webhooks are not ordered: the row ids follow arrival,
    which orders messages stored at one instant); whether some message was delivered after a later one."""
    at, rows = start, []
    for number, (gap, contact, fields) in enumerate(events):
        at += timedelta(seconds=gap)
        row = {"wamid": f"wamid.{number}", "phone_number_id": PHONE_NUMBER_ID, "contact": contact,
               "direction": fields["direction"], "at": at.replace(tzinfo=None), "type": fields["type"],
               "status": None, "delivered_at": None, "referral": None, "pricing": None}
        if fields["direction"] == "inbound":
            row["referral"] = json.dumps(fields["referral"]) if fields["referral"] else None
        else:
            row["status"] = fields["status"]
            if fields["delay"] is not None and row["status"] in ("delivered", "read"):
                row["delivered_at"] = (at + timedelta(seconds=fields["delay"])).replace(tzinfo=None)
            kind = fields["pricing_type"]
            row["pricing"] = json.dumps({"pricing_model": "PMP", "category": fields["category"], "type": kind,
                                         "billable": kind == "regular"})
        rows.append(row)
    arrival.shuffle(rows)
    for row in rows:
        histories.StoredMessage.insert(**row).execute()
    delivered = [row["delivered_at"] for row in sorted(rows, key=lambda row: row["at"]) if row["delivered_at"]]
    return delivered != sorted(delivered)


def replayed_on_its_own(self, row, to, at, rulebook, engine):
    """_Conversation.state as reconciliation made it before: the history before the row replayed for it alone."""
    return replay(DecisionRequest(Send(at, to, "text"), self.before(row)), rulebook, engine)


def recorded(states, state):
    """_Conversation.state that also records each state's fields as it is made (evaluate may use it up)."""
    def recording(self, row, to, at, rulebook, engine):
        made = state(self, row, to, at, rulebook, engine)
        states.append({**structs.asdict(made), "ledger": list(made.ledger.periods)})
        return made
    return recording


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.tuples(_GAP, st.sampled_from([NUMBER, NUMBER, LINKED_BSUID, OTHER]),
                                 st.one_of(_STORED_INBOUND, _STORED_OUTBOUND, _STORED_OUTBOUND)), min_size=20,
                       max_size=80),
       start_days=st.integers(0, 2 * 365), arrival=st.randoms(use_true_random=False),
       contact=st.sampled_from([None, NUMBER, LINKED_BSUID]))
def test_the_incremental_replay_compares_as_each_message_replayed_on_its_own(app, rulebook, engine, events,
                                                                              start_days, arrival, contact):
    """On random stored histories of several contacts (one linked to a BSUID), stored in random arrival order, with
    deliveries out of send order: reconcile() (one incremental replay per conversation, core.incremental) gives
    exactly the comparisons of the per-message replay it replaced (kept here as the oracle), for every contact or
    one."""
    with app.app_context():
        for model in (histories.StoredMessage, histories.ContactLink):
            model.delete().execute()
        histories.store_links([histories.Link(PHONE_NUMBER_ID, NUMBER, LINKED_BSUID)])
        out_of_order = store_rows(events, START + timedelta(days=start_days), arrival)
        filters = {"phone_number_id": PHONE_NUMBER_ID if contact else None, "contact": contact}
        states, expected_states = [], []
        with patch.object(reconciliation._Conversation, "state", recorded(states, reconciliation._Conversation.state)):
            incremental = reconciliation.reconcile(rulebook, engine, **filters)
        with patch.object(reconciliation._Conversation, "state", recorded(expected_states, replayed_on_its_own)):
            assert incremental == reconciliation.reconcile(rulebook, engine, **filters)
        # The states too (a state may differ where the comparison does not: periods that expired long before).
        assert states == expected_states
        event(f"{len(incremental) // 10 * 10}+ compared")
        event("deliveries out of send order" if out_of_order else "deliveries in send order")


def test_a_message_riding_a_billed_cbp_conversation_is_compared_as_the_conversation_meta_bills(client):
    """Under conversation-based pricing Meta's `pricing.billable` "indicates if the given message or conversation is
    billable. Default is true for all conversations ... except those initiated from free entry points" (Meta's
    webhook components reference): every message of a billed conversation says true. Two marketing templates of
    2024-03-05 in one conversation: the second rides it (CBP-3.rides: billable false, no new charge) and was
    reported as a `billable` mismatch. It is not compared on the message's billable; the conversation's
    billability is compared on the message that opened it, where a disagreement is still a difference."""
    def in_conversation(wamid, at, conversation, billable=True):
        body = status(wamid, "delivered", at, pricing=cbp("marketing", billable))
        body["entry"][0]["changes"][0]["value"]["statuses"][0]["conversation"] = {
            "id": conversation, "origin": {"type": "marketing"}}
        return body

    deliver(client, in_conversation("wamid.C1", V2, "conv-1"), in_conversation("wamid.C2", V2 + 600, "conv-1"))
    report = client.get("/v1/reconciliation").json
    first, second = report["comparisons"]
    assert second["determining_rules"][-1] == "CBP-3.rides" and second["predicted"]["billable"] is False
    assert second["meta"]["billable"] is True
    assert (first["matches"], second["matches"]) == (True, True), second["differences"]
    assert (report["matching"], report["mismatching"]) == (2, 0)
    # A day later the next marketing template opens a conversation, which Meta says is not billable: a difference.
    deliver(client, in_conversation("wamid.C3", V2 + 86_400 + 600, "conv-2", billable=False))
    third = client.get("/v1/reconciliation").json["comparisons"][2]
    assert third["determining_rules"][-1] != "CBP-3.rides"
    assert third["differences"] == [{"field": "billable", "meta": False, "predicted": True}], third


def test_a_predicted_ride_meta_bills_as_a_new_conversation_keeps_its_billable_difference(client):
    """A CBP ride is spared the billable comparison only when Meta agrees it rides: two marketing templates of
    2024-03-05 an hour apart, Meta naming a new conversation (conv-A, then conv-B) billable for each. The rules
    predict the second rides conv-A (CBP-3.rides, billable false); Meta charged a second conversation, so the
    billable difference stands (it was reported a match). The same message in conv-A still matches."""
    def in_conversation(wamid, at, conversation):
        body = status(wamid, "delivered", at, pricing=cbp("marketing", True))
        body["entry"][0]["changes"][0]["value"]["statuses"][0]["conversation"] = {
            "id": conversation, "origin": {"type": "marketing"}}
        return body

    deliver(client, in_conversation("wamid.D1", V2, "conv-A"), in_conversation("wamid.D2", V2 + 3600, "conv-B"))
    report = client.get("/v1/reconciliation").json
    first, second = report["comparisons"]
    assert second["determining_rules"][-1] == "CBP-3.rides" and second["predicted"]["billable"] is False
    assert first["matches"] is True
    assert second["matches"] is False
    assert second["differences"] == [{"field": "billable", "meta": True, "predicted": False}]
    deliver(client, in_conversation("wamid.D3", V2 + 7200, "conv-A"))
    third = client.get("/v1/reconciliation").json["comparisons"][2]
    assert third["determining_rules"][-1] == "CBP-3.rides" and third["matches"] is True, third

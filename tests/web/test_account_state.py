"""Account-level webhooks (account_update, business_capability_update) change the next decisions, named in the trace."""

import json
from datetime import UTC, datetime

from ..meta_business_payloads import account_update, capability_update
from ..meta_payloads import CONTACT, PHONE_NUMBER_ID, deliver, inbound_text, pmp, status

T0 = 1756717200  # 2025-09-01T09:00:00Z
UTILITY = {"name": "order_update", "language": "en", "category": "utility", "status": "APPROVED"}


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def send(at: int, *, to: str = "+" + CONTACT, template: dict | None = UTILITY) -> dict:
    body = {"at": iso(at), "to": to, "type": "template" if template else "text", "phone_number_id": PHONE_NUMBER_ID}
    if template:
        body["template"] = template
    return {"send": body, "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": to.lstrip("+")}}


def sources_of(body: dict, fact: str) -> set[str]:
    return {reason["sources"][fact] for reason in body["trace"] if fact in reason.get("sources", {})}


def test_a_business_initiated_restriction_denies_templates_until_it_expires(client):
    """ACCOUNT_RESTRICTION RESTRICTED_BIZ_INITIATED_MESSAGING: business-initiated templates are denied (ACC-1)."""
    deliver(client, inbound_text("wamid.old", T0 - 10 * 86400),  # names the number's WABA; its window is long closed
            account_update("ACCOUNT_RESTRICTION", T0, restriction_info=[
                {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": T0 + 86400}]))
    body = client.post("/v1/decisions", json=send(T0 + 3600)).json
    assert body["decision"] == "deny" and "ACC-1" in body["determining_rules"]
    assert sources_of(body, "business_initiated_restricted") == {
        f"account_update ACCOUNT_RESTRICTION webhook at {iso(T0)}, until {iso(T0 + 86400)}"}
    assert client.post("/v1/decisions", json=send(T0 + 86400 + 60)).json["decision"] == "allow"


def test_a_disabled_waba_is_denied_until_reinstated(client):
    """DISABLED_UPDATE with waba_ban_state DISABLE denies every send (ACC-2); REINSTATE lifts it."""
    deliver(client, inbound_text("wamid.in", T0),
            account_update("DISABLED_UPDATE", T0 + 60, ban_info={"waba_ban_state": "DISABLE",
                                                                  "waba_ban_date": "2025-09-01"}))
    body = client.post("/v1/decisions", json=send(T0 + 120, template=None)).json
    assert body["decision"] == "deny" and "ACC-2" in body["determining_rules"]
    assert sources_of(body, "account_banned") == {f"account_update DISABLED_UPDATE webhook at {iso(T0 + 60)} (DISABLE)"}
    deliver(client, account_update("DISABLED_UPDATE", T0 + 180, ban_info={"waba_ban_state": "REINSTATE"}))
    assert client.post("/v1/decisions", json=send(T0 + 240, template=None)).json["decision"] == "allow"


def test_a_waba_scheduled_for_disable_may_send_before_its_date_with_a_warning_and_not_from_it(client):
    """DISABLED_UPDATE SCHEDULE_FOR_DISABLE with waba_ban_date "September 10, 2025" (as Meta writes it): before that
    day the send is judged as usual and ACC-2.scheduled warns of the date; from 00:00 UTC that day it is denied
    (ACC-2.scheduled-date-reached), each naming the webhook. REINSTATE lifts the schedule."""
    ban_day = 1757462400  # 2025-09-10T00:00:00Z
    _, answer = deliver(client, inbound_text("wamid.in", T0), account_update(
        "DISABLED_UPDATE", T0 + 60, ban_info={"waba_ban_state": "SCHEDULE_FOR_DISABLE",
                                              "waba_ban_date": "September 10, 2025"}))
    assert answer.json["skipped"] == []
    before = client.post("/v1/decisions", json=send(T0 + 120, template=None)).json
    assert before["decision"] == "allow" and "ACC-2" not in before["determining_rules"]
    warning = next(r for r in before["trace"] if r["rule"] == "ACC-2.scheduled")
    assert iso(ban_day) in warning["because"] and warning["confidence"] == "S"
    assert sources_of(before, "account_ban_scheduled") == {
        f"account_update DISABLED_UPDATE webhook at {iso(T0 + 60)} (SCHEDULE_FOR_DISABLE), waba_ban_date "
        "September 10, 2025"}
    for at in (ban_day - 1, ban_day, ban_day + 86400):
        body = client.post("/v1/decisions", json=send(at)).json
        reached = at >= ban_day
        assert body["decision"] == ("deny" if reached else "allow"), at
        assert ("ACC-2.scheduled-date-reached" in body["determining_rules"]) is reached
    deliver(client, account_update("DISABLED_UPDATE", ban_day + 3600, ban_info={"waba_ban_state": "REINSTATE"}))
    after = client.post("/v1/decisions", json=send(ban_day + 7200)).json
    assert after["decision"] == "allow" and not [r for r in after["trace"] if r["rule"].startswith("ACC-2")]


def test_a_scheduled_ban_whose_date_cannot_be_read_is_listed_and_counts_from_the_webhook(client):
    """A waba_ban_date no form reads ("soon", 99999999999, "May 1, 1999") was stored and the schedule taken as a
    ban at once without a word; a number was refused as "Not a valid string" and the ban skipped whole (a silent
    allow). Now the field is listed in the receipt (path and reason), the event is stored (the next send is denied),
    and the schedule counts from the webhook's time: fail closed, the trace's source saying so. Unix seconds are
    read as a date."""
    deliver(client, inbound_text("wamid.old", T0 - 10 * 86400))  # names the number's WABA
    for index, bad in enumerate(("soon", 99999999999, "May 1, 1999")):
        at = T0 + index * 86400
        (answer,) = deliver(client, account_update("DISABLED_UPDATE", at, ban_info={
            "waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": bad}))
        ((path, reason),) = [(s["path"], s["reason"]) for s in answer.json["skipped"]]
        assert path == "entry.0.changes.0.value.ban_info.waba_ban_date"
        assert "January 2, 2026" in reason["waba_ban_date"][0] and "fail closed" in reason["waba_ban_date"][1]
        body = client.post("/v1/decisions", json=send(at + 60)).json
        assert body["decision"] == "deny" and "ACC-2.scheduled-date-reached" in body["determining_rules"]
        assert sources_of(body, "account_ban_date_reached") == {
            f"account_update DISABLED_UPDATE webhook at {iso(at)} (SCHEDULE_FOR_DISABLE), waba_ban_date "
            f"{json.dumps(bad)} could not be read: taken from the webhook's time (fail closed)"}
    at = T0 + 5 * 86400
    (answer,) = deliver(client, account_update("DISABLED_UPDATE", at, ban_info={
        "waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": at + 86400}))
    assert answer.json["skipped"] == []
    assert client.post("/v1/decisions", json=send(at + 60)).json["decision"] == "allow"
    assert client.post("/v1/decisions", json=send(at + 86400)).json["decision"] == "deny"


def test_primary_country_and_eligibility_feed_the_authentication_international_rate(client):
    """The business's primary country and its eligibility start come from account_update, not context."""
    deliver(client, inbound_text("wamid.in", T0),
            account_update("BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE", T0, country="GB"),
            account_update("AUTH_INTL_PRICE_ELIGIBILITY_UPDATE", T0, auth_international_rate_eligibility={
                "start_time": 1738368000, "exception_countries": [{"country_code": "IN", "start_time": 1736467200}]}))
    authentication = {"name": "otp", "language": "en", "category": "authentication", "status": "APPROVED"}
    body = client.post("/v1/decisions", json=send(T0 + 86400, to="+919876543210", template=authentication)).json
    assert body["charge"]["category"] == "authentication-international" and body["charge"]["billable"] is True
    assert body["facts"]["sources"]["business_region"] == \
        f"account_update BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE webhook at {iso(T0)}"
    assert "authentication_international_started" in body["facts"]["sources"]
    assert {"business_region", "authentication_international_eligible"}.isdisjoint(body["facts"]["defaults_used"])


def test_a_user_reached_inside_their_own_window_does_not_count_toward_the_messaging_limit(client):
    """Meta counts users reached outside a customer service window (LIM-1.counted): of two users who got a
    template, one had written a minute before, so one user counts and a limit of 2 is not reached."""
    deliver(client, capability_update(2, T0), inbound_text("wamid.w", T0, contact="5511987650000"),
            *(status(f"wamid.t{i}", "delivered", T0 + 60 + i, contact=f"551198765000{i}",
                     pricing=pmp("marketing", "regular", True)) for i in range(2)))
    body = client.post("/v1/decisions", json=send(T0 + 3600)).json
    assert "LIM-2" not in [r["rule"] for r in body["trace"]]
    assert "; 1 users reached by templates outside a customer service window" in \
        body["facts"]["sources"]["messaging_limit_reached"]


def test_the_messaging_limit_from_capability_updates_and_users_counted_from_statuses(client):
    """business_capability_update sets the limit; users reached by templates in 24 h are counted (LIM-2 advice)."""
    deliver(client, capability_update(2, T0),
            *(status(f"wamid.t{i}", "delivered", T0 + 60 + i, contact=f"551198765000{i}",
                     pricing=pmp("marketing", "regular", True)) for i in range(2)))
    body = client.post("/v1/decisions", json=send(T0 + 3600)).json
    assert body["decision"] == "allow"
    lim = next(r for r in body["trace"] if r["rule"] == "LIM-2")
    assert lim["sources"]["messaging_limit_reached"] == (
        f"business_capability_update webhook at {iso(T0)}; 2 users reached by templates outside a customer service "
        f"window in the 24 h since {iso(T0 + 3600 - 86400)} from the 1 phone number(s) of WABA 102290129340398, "
        "counted from stored statuses by maintained per-user reach times and inbound messages (users who wrote "
        "in the period checked message by message)")
    # A larger limit from context overrides the stored one: no advice.
    request = send(T0 + 3600) | {"context": {"messaging_limit": 1000}}
    assert "LIM-2" not in [r["rule"] for r in client.post("/v1/decisions", json=request).json["trace"]]


def test_an_entry_time_out_of_range_is_listed_and_the_receipt_time_stands_in(client):
    """An ACCOUNT_RESTRICTION whose entry.time is the year 9999 (or a boolean, or not a number) was dated there
    silently and never applied: a silent allow. The time is listed as not read, and the restriction is dated when
    the webhook arrived, so a send after that is denied (ACC-1)."""
    received = int(datetime.now(UTC).timestamp())
    deliver(client, inbound_text("wamid.old", received - 10 * 86400))  # names the number's WABA
    for bad in (253402300799, True, "soon"):
        (answer,) = deliver(client, account_update("ACCOUNT_RESTRICTION", bad, restriction_info=[
            {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": received + 30 * 86400}]))
        assert [(s["path"], list(s["reason"])) for s in answer.json["skipped"]] == [("entry.0.time", ["time"])], \
            answer.json
    body = client.post("/v1/decisions", json=send(received + 86400)).json
    assert body["decision"] == "deny" and "ACC-1" in body["determining_rules"]


def test_an_account_time_out_of_range_is_skipped_not_cited(client):
    """An ACCOUNT_RESTRICTION "expiration": 99999999999 was stored and decisions cited "until 5138-11-16": every
    time of an account event is Unix seconds (or ISO 8601) between 2000 and 2999, as every other webhook time. Such
    an event is skipped and listed (path, field), as are eligibility start times out of range; nothing is stored."""
    deliver(client, inbound_text("wamid.old", T0 - 10 * 86400))  # names the number's WABA
    for value, field in (
        ({"restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 99999999999}]},
         "restriction_info.0.expiration"),
        ({"restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                                "expiration": "1999-12-31T23:59:59+0000"}]}, "restriction_info.0.expiration"),
        ({"auth_international_rate_eligibility": {"start_time": 99999999999}},
         "auth_international_rate_eligibility.start_time"),
        ({"auth_international_rate_eligibility": {"start_time": 1738368000, "exception_countries": [
            {"country_code": "IN", "start_time": "5138-11-16T09:46:39+0000"}]}},
         "auth_international_rate_eligibility.exception_countries.0.start_time"),
    ):
        (answer,) = deliver(client, account_update("ACCOUNT_RESTRICTION", T0, **value))
        assert answer.json["new"] == 0 and [(s["path"], list(s["reason"])) for s in answer.json["skipped"]] == [
            ("entry.0.changes.0.value", [field])], answer.json
        assert "between 2000-01-01 and 2999-12-31" in answer.json["skipped"][0]["reason"][field][0]
    body = client.post("/v1/decisions", json=send(T0 + 3600)).json
    assert "ACC-1" not in body["determining_rules"] and "5138" not in str(body)


def test_a_scheduled_ban_in_the_context_is_read_as_a_time_and_a_bad_one_is_a_422_naming_it(client):
    """context.account_ban_scheduled_at stands in for the stored webhook: an RFC 3339 time (a send before it is
    warned, from it denied); a date without a time, a number or a time outside 2000-2999 is a 422 naming the field."""
    inline = {"send": {"at": iso(T0), "to": "+" + CONTACT, "type": "text"},
              "history": [{"direction": "inbound", "at": iso(T0 - 60), "type": "text"}]}
    for scheduled, decision in ((T0 + 1, "allow"), (T0, "deny")):
        body = client.post("/v1/decisions", json={**inline, "context": {"account_ban_scheduled_at": iso(scheduled)}})
        assert body.status_code == 200 and body.json["decision"] == decision
    for bad in ("2025-09-10", 1757462400, "5138-11-16T00:00:00Z"):
        answer = client.post("/v1/decisions", json={**inline, "context": {"account_ban_scheduled_at": bad}})
        assert answer.status_code == 422 and "account_ban_scheduled_at" in json.dumps(answer.json), answer.json


def test_a_ban_with_a_state_the_rules_do_not_model_is_listed_and_taken_as_disabled(client):
    """A DISABLED_UPDATE whose waba_ban_state is none of DISABLE, SCHEDULE_FOR_DISABLE, REINSTATE ("PAUSE_WABA"), or
    that has none (a ban_info without it was skipped whole; an unknown state read as no ban: a silent allow), is
    listed in the receipt naming the field and kept as a ban: every send is denied (ACC-2), its source saying why.
    REINSTATE lifts it."""
    deliver(client, inbound_text("wamid.old", T0 - 10 * 86400))  # names the number's WABA
    for index, info in enumerate(({"waba_ban_state": "PAUSE_WABA"}, {"waba_ban_date": "September 10, 2025"})):
        at = T0 + index * 86400
        (answer,) = deliver(client, account_update("DISABLED_UPDATE", at, ban_info=info))
        ((path, reason),) = [(s["path"], s["reason"]) for s in answer.json["skipped"]]
        assert path == "entry.0.changes.0.value.ban_info.waba_ban_state"
        assert "fail closed" in reason["waba_ban_state"][1]
        body = client.post("/v1/decisions", json=send(at + 60)).json
        assert body["decision"] == "deny" and "ACC-2" in body["determining_rules"]
        (source,) = sources_of(body, "account_banned")
        assert source.endswith("not a ban state the rules model (DISABLE, SCHEDULE_FOR_DISABLE, REINSTATE), taken as "
                               "disabled (fail closed)")
    (answer,) = deliver(client, account_update("DISABLED_UPDATE", T0 + 3 * 86400,
                                               ban_info={"waba_ban_state": "REINSTATE"}))
    assert answer.json["skipped"] == []
    assert client.post("/v1/decisions", json=send(T0 + 3 * 86400 + 60)).json["decision"] == "allow"


def test_a_schedule_after_a_ban_in_force_does_not_lift_it(client):
    """DISABLE at 09:01, then SCHEDULE_FOR_DISABLE for September 20 at 10:00: a send at 12:00 is denied (ACC-2: only
    REINSTATE lifts a ban; a newcomer's trial found it allowed — the schedule, being the latest ban event, hid the
    ban). After REINSTATE the schedule alone decides: allowed before its date, with ACC-2.scheduled's warning."""
    deliver(client, inbound_text("wamid.in", T0),
            account_update("DISABLED_UPDATE", T0 + 60, ban_info={"waba_ban_state": "DISABLE"}),
            account_update("DISABLED_UPDATE", T0 + 3600, ban_info={"waba_ban_state": "SCHEDULE_FOR_DISABLE",
                                                                   "waba_ban_date": "September 20, 2025"}))
    body = client.post("/v1/decisions", json=send(T0 + 3 * 3600, template=None)).json
    assert body["decision"] == "deny" and "ACC-2" in body["determining_rules"]
    assert sources_of(body, "account_banned") == {f"account_update DISABLED_UPDATE webhook at {iso(T0 + 60)} (DISABLE)"}
    deliver(client, account_update("DISABLED_UPDATE", T0 + 4 * 3600, ban_info={"waba_ban_state": "REINSTATE"}),
            account_update("DISABLED_UPDATE", T0 + 5 * 3600, ban_info={"waba_ban_state": "SCHEDULE_FOR_DISABLE",
                                                                       "waba_ban_date": "September 20, 2025"}))
    later = client.post("/v1/decisions", json=send(T0 + 6 * 3600, template=None)).json
    assert later["decision"] == "allow" and "ACC-2.scheduled" in {r["rule"] for r in later["trace"]}

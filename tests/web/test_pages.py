"""The reviewer pages through Flask's test client: status codes, content, escaping and error display."""

import json
import re
from datetime import UTC, datetime

import pytest

from policy_service.review.fixtures import discover
from policy_service.store import decision_log
from policy_service.web import pages

from ..conftest import FIXTURES_DIR

FIXTURE = "15b_marketing_template_rides_the_free_entry_point_conversation"


def fixture_request(name):
    (fixture,) = [f for f in discover([FIXTURES_DIR]) if f.name == name]
    return fixture.request


def submit(client, body):
    return client.post("/ui/try", data={"request": body if isinstance(body, str) else json.dumps(body)})


def rule_ids(html):
    return re.findall(r'<li class="rule [^"]*" id="rule-([^"]+)"', html)


def test_index_redirects_to_the_rule_catalogue(client):
    """/ui/ sends a reviewer to the rules page."""
    response = client.get("/ui/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/rules")


def test_rules_page_lists_every_rule_with_file_citation_and_coverage(client, rulebook):
    """Unfiltered, every rule appears once with its file, citation, dates and covering fixtures."""
    html = client.get("/ui/rules").get_data(as_text=True)
    assert sorted(rule_ids(html)) == sorted(r.id for r in rulebook.rules)
    assert "rules/customer-service-window.yaml" in html
    assert 'href="https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/send-messages"' \
        in html
    assert "2022-02-01 → no end date" in html
    assert f'href="/ui/try?fixture={FIXTURE}"' in html


@pytest.mark.parametrize("query, check", [
    ("confidence=R", lambda rule, book: rule.confidence == "R"),
    ("area=Customer+service+window", lambda rule, book: rule.file == "customer-service-window.yaml"),
    ("version=V1", lambda rule, book: rule.effective_from <= book.versions[0].effective_until),
])
def test_rules_page_filters(client, rulebook, query, check):
    """Each filter keeps exactly the rules it describes."""
    shown = rule_ids(client.get(f"/ui/rules?{query}").get_data(as_text=True))
    assert shown and sorted(shown) == sorted(r.id for r in rulebook.rules if check(r, rulebook))


def test_rules_page_marks_secondary_and_unconfirmed_rules(client):
    """Rules from secondary or unconfirmed sources carry a visible [S] or [R] badge."""
    html = client.get("/ui/rules?confidence=S").get_data(as_text=True)
    assert "[S] secondary" in html and "[R] unconfirmed" not in html.split('id="rules-heading"')[1]


def test_coverage_names_the_fixtures_whose_trace_has_the_rule(app):
    """The coverage map links a rule to each fixture whose decision trace names it."""
    with app.app_context():
        coverage = pages.fixture_coverage(pages.policy(), str(FIXTURES_DIR))
    assert FIXTURE in coverage["FEP-1.rides"]
    assert "16a_marketing_template_to_a_us_number_is_denied" in coverage["MKT-4"]


def test_try_page_loads_a_fixture_into_the_textarea(client):
    """Picking a fixture fills the textarea with its request and shows its description."""
    html = client.get(f"/ui/try?fixture={FIXTURE}").get_data(as_text=True)
    assert "&#34;marketing_notice&#34;" in html
    assert "the next day at 12:00 a marketing template is free" in html
    assert html.count("<option") == len(discover([FIXTURES_DIR])) + 1


def test_try_page_decides_and_draws_the_timeline(client):
    """Submitting fixture 15b shows the decision, the determining rule and the timeline's segments."""
    response = submit(client, fixture_request(FIXTURE))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<span class="verdict" id="verdict">allow</span>' in html
    assert re.search(r'class="reason determining[^"]*" data-rule="FEP-1.rides"', html)
    assert "segment segment-free_entry_point_conversation covers-send" in html
    assert "window 2024-05-01 10:00 → 2024-05-02 10:00" in html
    assert "send 2024-05-02 12:00" in html


def test_decision_page_shows_a_logged_decision_with_masked_number(client):
    """The logged decision's page replays its masked request into the same timeline."""
    body = submit(client, fixture_request("16a_marketing_template_to_a_us_number_is_denied")).get_data(as_text=True)
    decision_id = re.search(r'id="decision-link" href="/ui/decisions/([0-9a-f]+)"', body).group(1)
    html = client.get(f"/ui/decisions/{decision_id}").get_data(as_text=True)
    assert '<span class="verdict" id="verdict">deny</span>' in html
    assert "131049" in html and "Phone numbers in the log are masked" in html
    assert "+12125550123" not in html and " by-send\"" not in html
    assert "send 2025-05-15 15:00" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in html


def test_try_and_decision_pages_take_a_bsuid_and_mask_it(client):
    """A send to a BSUID with a call in its history decides on /ui/try; the logged page masks the BSUID."""
    request = fixture_request("freeform_after_a_missed_user_call_is_allowed_and_free")
    request["send"]["to"] = "US.93737000000000000001"
    body = submit(client, request).get_data(as_text=True)
    assert '<span class="verdict" id="verdict">allow</span>' in body
    decision_id = re.search(r'id="decision-link" href="/ui/decisions/([0-9a-f]+)"', body).group(1)
    html = client.get(f"/ui/decisions/{decision_id}").get_data(as_text=True)
    assert '<span class="verdict" id="verdict">allow</span>' in html and "CSW-8.call" in html
    assert "93737000000000000001" not in html and "US.*****" in html


def test_decision_page_for_an_unknown_id_is_a_404_page(client):
    """An unknown id gets an HTML 404 page naming it, not a stack trace."""
    response = client.get("/ui/decisions/<nope>")
    assert response.status_code == 404
    assert "&lt;nope&gt;" in response.get_data(as_text=True)


def test_invalid_json_shows_where_it_breaks(client):
    """A body that is not JSON is answered with the parse error's line and column."""
    response = submit(client, '{"send": ')
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not valid JSON" in html and "line 1, column 10" in html


def test_invalid_request_lists_each_field_error_escaped(client):
    """Each invalid field is listed with its message, and submitted text is escaped."""
    response = submit(client, {"send": {"at": "<script>", "to": "1", "type": "text"}, "history": 3})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<code>send.at</code>: Not a valid datetime." in html
    assert "<code>send.to</code>: must be an E.164 number" in html
    assert "<code>history</code>: Not a valid list." in html
    assert "<script>" not in html.split("<textarea")[1].split("</textarea>")[0]
    assert 'id="verdict"' not in html


def test_pages_use_only_local_assets(client):
    """No page loads a script or stylesheet from another host."""
    for path in ("/ui/rules", "/ui/try", f"/ui/try?fixture={FIXTURE}"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html)
    for asset in ("/static/ui/style.css", "/static/ui/try.js"):
        with client.get(asset) as response:
            assert response.status_code == 200


def test_decision_page_without_a_replayable_request_still_shows_the_decision(app, client):
    """A logged request that no longer loads (e.g. written by an older schema) shows the decision, no timeline."""
    response = {"decision_id": "old", "decision": "deny", "status": "error", "required_message_type": "template",
                "trace": [], "error": "internal error: KeyError", "rulebook_version": "sha256:0"}
    with app.app_context():
        decision_log.DecisionRecord.create(
            decision_id="old", logged_at=datetime.now(UTC), send_at="", decision="deny", status="error",
            required_message_type="template", rulebook_version="sha256:0", determining_rules="",
            request=json.dumps({"send": {"at": "not a time"}}), response=json.dumps(response))
    html = client.get("/ui/decisions/old").get_data(as_text=True)
    assert '<span class="verdict" id="verdict">deny</span>' in html
    assert "internal error: KeyError" in html and "cannot be replayed" in html and "<svg" not in html


def test_only_http_citations_become_links():
    """A citation that is not http(s) (say javascript:) is rendered as a dead link, never a script."""
    assert pages.http_url("https://developers.facebook.com/x") == "https://developers.facebook.com/x"
    assert pages.http_url("javascript:alert(1)") == "#" and pages.http_url("") == "#"

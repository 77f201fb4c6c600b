"""The reviewer pages through Flask's test client: status codes, content, escaping and error display."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from policy_service.contract.schemas import DECISION_REQUEST_EXAMPLE
from policy_service.review.fixtures import discover
from policy_service.store import decision_log
from policy_service.web import pages

from ..conftest import BROWSER, FIXTURES_DIR, as_browser, assert_error_shape, csrf_token

FIXTURE = "15b_marketing_template_rides_the_free_entry_point_conversation"
JSON = {"Accept": "application/json"}


@pytest.fixture
def client(app):
    """A reviewer's browser: every request says Accept: text/html (the pages answer other clients in JSON)."""
    return as_browser(app.test_client())


def fixture_request(name):
    (fixture,) = [f for f in discover([FIXTURES_DIR]) if f.name == name]
    return fixture.request


def submit(client, body, **options):
    """Post the try page's form as a browser would, with the CSRF token of the client's session."""
    return client.post("/ui/try", data={"request": body if isinstance(body, str) else json.dumps(body),
                                        "csrf_token": csrf_token(client)}, **options)


def rule_ids(html):
    return re.findall(r'<li class="rule [^"]*" id="rule-([^"]+)"', html)


def test_index_redirects_to_the_home_page(client):
    """/ui/ sends a reviewer to the home page, which links every reviewer page."""
    response = client.get("/ui/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
    html = client.get("/").get_data(as_text=True)
    for path in ("/ui/rules", "/ui/decisions", "/ui/try", "/ui/reconciliation"):
        assert f'href="{path}"' in html, path


def test_index_redirects_with_its_query_string_and_the_home_page_judges_it(client):
    """/ui/?x=1 was redirected to / with the query dropped, so a parameter no page takes was silently ignored where
    every page refuses one. The redirect keeps the query string as sent (repeats, order, escapes; a raw byte is
    percent-encoded), and the home page refuses what it does not take as every page does: 422 naming query.x."""
    response = client.get("/ui/?x=1&x=2&y=a%20b")
    assert response.status_code == 302 and response.headers["Location"] == "/?x=1&x=2&y=a%20b", response.headers
    refused = assert_error_shape(client.get("/ui/?x=1", headers=JSON, follow_redirects=True), 422)
    assert set(refused["errors"]) == {"query.x"}, refused
    raw = client.get("/ui/", environ_overrides={"QUERY_STRING": "q=\xc3\xa9<"})  # WSGI: the bytes as latin-1
    assert raw.headers["Location"] == "/?q=%C3%A9%3C", raw.headers
    assert client.get("/ui/").headers["Location"] == "/"


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
    # the area as the page's anchors spell it (#area-customer-service-window)
    ("area=customer-service-window", lambda rule, book: rule.file == "customer-service-window.yaml"),
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


def test_try_page_starts_with_the_sample_request_and_groups_fixtures_by_folder(client):
    """An empty try page holds a valid sample request; fixtures sit in one optgroup per folder."""
    html = client.get("/ui/try").get_data(as_text=True)
    text = html.split('<textarea id="request"')[1].split(">", 1)[1].split("</textarea>")[0]
    assert json.loads(text.replace("&#34;", '"')) == DECISION_REQUEST_EXAMPLE
    folders = re.findall(r'<optgroup label="([^ "]+) \((\d+)\)">', html)
    assert {name for name, _ in folders} >= {"scenarios", "boundaries"}
    assert sum(int(count) for _, count in folders) == len(discover([FIXTURES_DIR]))


def test_try_page_decides_and_draws_the_timeline(client):
    """Submitting fixture 15b redirects to its decision page: the decision, determining rule and timeline."""
    posted = submit(client, fixture_request(FIXTURE))
    assert posted.status_code == 303
    assert re.fullmatch(r"/ui/decisions/[0-9a-f]{32}", posted.headers["Location"])
    response = client.get(posted.headers["Location"])
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<span class="verdict" id="verdict">allow</span>' in html
    assert re.search(r'class="reason determining[^"]*" data-rule="FEP-1.rides"', html)
    assert "segment segment-free_entry_point_conversation covers-send" in html
    # The full label would cross the send line, so the bar carries its dates without the year.
    assert re.search(r"<text class=\"label\" [^>]+>05-01 10:00 → 05-02 10:00</text>", html)
    assert "send 2024-05-02 12:00" in html


def test_decision_page_shows_a_logged_decision_with_masked_number(client):
    """The logged decision's page replays its masked request into the same timeline."""
    posted = submit(client, fixture_request("16a_marketing_template_to_a_us_number_is_denied"))
    html = client.get(posted.headers["Location"]).get_data(as_text=True)
    assert '<span class="verdict" id="verdict">deny</span>' in html
    assert "131049" in html and "Phone numbers in the log are masked" in html
    assert "+12125550123" not in html and 'data-legend="conversation by-send"' not in html
    assert "send 2025-05-15 15:00" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" role="img"' in html


def test_try_and_decision_pages_take_a_bsuid_and_mask_it(client):
    """A send to a BSUID with a call in its history decides on /ui/try; the logged page masks the BSUID."""
    request = fixture_request("freeform_after_a_missed_user_call_is_allowed_and_free")
    request["send"]["to"] = "US.93737000000000000001"
    response = submit(client, request)
    # Decide leads to the decision's own page (POST-redirect-GET).
    assert response.status_code == 303
    decision_id = re.search(r"/ui/decisions/([0-9a-f]+)$", response.headers["Location"]).group(1)
    html = client.get(f"/ui/decisions/{decision_id}").get_data(as_text=True)
    assert '<span class="verdict" id="verdict">allow</span>' in html and "CSW-8.call" in html
    assert "93737000000000000001" not in html and "US.*****" in html


@pytest.mark.parametrize("method, path, body, status, says", [
    ("post", "/ui/try", {"request": "{}"}, 403, "The CSRF token is missing"),
    ("post", "/ui/try", {"request": "x" * 5_000_000}, 413, "POLICY_MAX_CONTENT_LENGTH"),
    ("delete", "/ui/rules", None, 405, "not allowed"),
])
def test_http_errors_on_pages_are_html_pages(client, method, path, body, status, says):
    """A browser meeting an HTTP error on a page (a form without its CSRF token, a body over the limit, a method
    the page does not take) gets an HTML page saying what is wrong and linking back, not raw JSON; the same error
    outside /ui/ stays the API's JSON shape."""
    browser = BROWSER
    response = getattr(client, method)(path, data=body, headers=browser)
    html = response.get_data(as_text=True)
    assert response.status_code == status and response.mimetype == "text/html", (response.status_code, html[:200])
    assert says in html and 'id="back"' in html
    if status == 405:
        assert "GET" in response.headers["Allow"]
    # a client that does not ask for HTML (an API key calling a page) reads the JSON error shape
    assert getattr(client, method)(path, data=body, headers=JSON).json["code"] == status
    assert client.delete("/v1/decisions", headers=browser).json["code"] == 405


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


def test_a_template_nobody_knows_the_category_of_is_shown_in_the_form(client):
    """The pipeline's refusal (service.ServiceError) is a 422 page naming the field, like a schema error."""
    response = submit(client, {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+5511987654321",
                                        "type": "template", "template": {"name": "x", "language": "en"}}})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert "<code>send.template.category</code>: required" in html and 'id="verdict"' not in html


def test_invalid_request_lists_each_field_error_escaped(client):
    """Each invalid field is listed with its message, and submitted text is escaped."""
    response = submit(client, {"send": {"at": "<script>", "to": "1", "type": "text"}, "history": 3})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<code>send.at</code>: Not an RFC 3339 date-time with offset" in html
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


def test_a_denied_send_reads_not_sent_not_charged_and_times_read_one_way(client):
    """Fixture 02 (denied) shows "not sent, not charged", its trace times as `2024-03-06 10:00`, no ISO times."""
    posted = submit(client, fixture_request("02_freeform_at_exactly_24_hours_is_denied"))
    html = client.get(posted.headers["Location"]).get_data(as_text=True)
    assert re.search(r'<dd id="charge">not sent, not charged\s', html)
    main = html.split("<details>")[0]  # the logged request's JSON below keeps the API's own format
    assert "2024-03-06 10:00" in main and not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", main)
    assert 'id="page-zone">UTC+00:00<' in html


def test_a_charged_send_names_meta_ids_in_words(client):
    """A free entry point conversation is named in words, and Meta's own field values are shown beside them."""
    posted = submit(client, fixture_request(FIXTURE))
    html = client.get(posted.headers["Location"]).get_data(as_text=True)
    charge = html.split('<dd id="charge">')[1].split("</dd>")[0]
    assert charge.startswith("not charged: free entry point conversation, free entry point; rides one open until "
                             "2024-05-04 22:00 (conversation-based pricing; rule FEP-1.rides)")
    assert "<code>category referral_conversion</code>" in charge


def test_rules_page_has_contents_by_area_and_version_and_orders_rules_by_area_and_id(client, rulebook):
    """The contents link each area's section and each version; rules run by area, then id (CSW-2 before CSW-10);
    covering fixtures are a count that opens into the list."""
    html = client.get("/ui/rules").get_data(as_text=True)
    areas = sorted({rule.area for rule in rulebook.rules})
    toc = html.split('id="toc-by-area"')[1].split("</ul>")[0]
    assert re.findall(r'<a href="#area-([a-z0-9-]+)">', toc) == [pages._slug(a) for a in areas]
    assert all(f'id="area-{pages._slug(a)}"' in html for a in areas)
    by_version = html.split('id="toc-by-version"')[1].split("</ul>")[0]
    assert all(f'href="/ui/rules?version={v.id}"' in by_version for v in rulebook.versions)
    expected = sorted(rulebook.rules, key=lambda r: (r.area, pages._natural(r.id)))
    assert rule_ids(html) == [r.id for r in expected]
    assert re.search(r'<details class="covering">\s*<summary>\d+ fixtures</summary>', html)


def make_logged(app, decision_id, *, logged_at, decision="deny", rules="CSW-2.closed", policy_version="V3",
                recipient="+55***********"):
    """A decision log row with a chosen time, as if the service had logged it then."""
    response = {"decision_id": decision_id, "decision": decision, "status": "decided", "required_message_type": "any",
                "trace": [], "charge": None, "policy_version": policy_version, "rulebook_version": "sha256:0"}
    with app.app_context():
        decision_log.DecisionRecord.create(
            decision_id=decision_id, logged_at=logged_at.replace(tzinfo=None), send_at="", decision=decision,
            status="decided", required_message_type="any", rulebook_version="sha256:0", determining_rules=rules,
            policy_version=policy_version, recipient=recipient,
            request=json.dumps({"send": {"at": "2025-08-12T12:00:00+00:00", "to": recipient}}),
            response=json.dumps(response))


def test_decision_log_page_filters_by_day_outcome_rule_recipient_and_version(app, client):
    """Yesterday's denials for one rule are found by the filters; each row links to its decision page."""
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    make_logged(app, "a-yesterday-csw", logged_at=yesterday)
    make_logged(app, "b-yesterday-mkt", logged_at=yesterday, rules="MKT-4", recipient="+1212*******")
    make_logged(app, "c-yesterday-allow", logged_at=yesterday, decision="allow", policy_version="V4")
    make_logged(app, "d-today-csw", logged_at=now)

    def listed(query):
        response = client.get(f"/ui/decisions?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return re.findall(r'data-decision-id="([^"]+)"', response.get_data(as_text=True))

    day = yesterday.date().isoformat()
    assert listed("") == ["d-today-csw", "c-yesterday-allow", "b-yesterday-mkt", "a-yesterday-csw"]
    assert listed(f"from={day}&to={day}&decision=deny&rule=CSW-2.closed") == ["a-yesterday-csw"]
    assert listed("contact=%2B12125550123") == ["b-yesterday-mkt"]
    assert listed("policy_version=V4") == ["c-yesterday-allow"]
    html = client.get(f"/ui/decisions?from={day}&to={day}").get_data(as_text=True)
    assert 'href="/ui/decisions/a-yesterday-csw"' in html and "not sent, not charged" in html


def test_the_version_filter_takes_sub_versions_and_says_so(app, client):
    """V3 lists V3, V3a and V3b decisions (README's "V3 (a, b)"), V3b only V3b, V30 none; the choice reads
    "V3 (with V3a, V3b)". The page listed V3 exactly (25 of the 34,000 V3-family decisions of the trial)."""
    now = datetime.now(UTC)
    for index, version in enumerate(("V3", "V3a", "V3b", "V4", "V30", "V2b")):
        make_logged(app, f"{version}-row", logged_at=now - timedelta(minutes=index), policy_version=version)

    def listed(query):
        response = client.get(f"/ui/decisions?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return re.findall(r'data-decision-id="([^"]+)"', response.get_data(as_text=True))

    assert listed("policy_version=V3") == ["V3-row", "V3a-row", "V3b-row"]
    assert listed("policy_version=V3b") == ["V3b-row"]
    assert listed("policy_version=V2") == ["V2b-row"]
    html = client.get("/ui/decisions?policy_version=V3").get_data(as_text=True)
    assert '<option value="V3" selected>V3 (with V3a, V3b)</option>' in html
    assert '<option value="V3b" >V3b</option>' in html and '<option value="V4" >V4</option>' in html


def test_decision_log_page_is_paginated_and_keeps_its_filters(app, client):
    """Past 25 rows the list pages; the next link keeps the filters."""
    now = datetime.now(UTC)
    for i in range(27):
        make_logged(app, f"row-{i:02d}", logged_at=now - timedelta(minutes=i))
    html = client.get("/ui/decisions?decision=deny").get_data(as_text=True)
    assert html.count('class="decision-row') == pages.PAGE_SIZE and "page 1 of 2" in html
    assert 'href="/ui/decisions?page=2&amp;decision=deny"' in html
    second = client.get("/ui/decisions?page=2&decision=deny").get_data(as_text=True)
    assert re.findall(r'data-decision-id="([^"]+)"', second) == ["row-25", "row-26"]


@pytest.mark.parametrize("query, field", [("from=yesterday", "from"), ("decision=maybe", "decision"),
                                          ("contact=12ab", "contact"), ("page=0", "page")])
def test_decision_log_page_lists_bad_filters_as_field_errors(client, query, field):
    """A bad filter is a 422 page naming the parameter as the API does (query.from), not a 500 or a silently
    ignored filter."""
    response = client.get(f"/ui/decisions?{query}")
    assert response.status_code == 422
    assert f"<code>query.{field}</code>" in response.get_data(as_text=True)


def test_reconciliation_page_puts_mismatches_first_with_their_causes_and_decisions(client, billed_history):
    """The authentication mismatch comes first, says what differs in words, and links to its replayed decision,
    whose page shows Meta's bill beside the decision."""
    html = client.get("/ui/reconciliation").get_data(as_text=True)
    order = re.findall(r'data-wamid="([^"]+)"', html)
    assert order == ["wamid.auth", "wamid.marketing", "wamid.utility"]
    assert "Meta billed category international authentication (authentication_international); " \
           "we predicted authentication (authentication)" in html
    assert 'href="/ui/reconciliation/wamid.auth"' in html and "<strong>1</strong> mismatch;" not in html
    page = client.get("/ui/reconciliation/wamid.auth")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "differs from the prediction" in text
    assert '<span class="verdict" id="verdict">allow</span>' in text
    # The replayed decision was never logged: its id is shown, not linked to a decision page that 404s.
    assert '<code id="decision-id">reconcile:wamid.auth</code> (replayed, not logged)' in text
    assert "/ui/decisions/reconcile:" not in text and 'id="decision-link"' not in text
    assert client.get("/ui/reconciliation/wamid.nope").status_code == 404


def test_reconciliation_page_shows_one_page_of_comparisons_with_the_counts_of_all(client, billed_history):
    """The page rendered every comparison (12.5 MB of HTML for 7,503 messages) and refused ?page=2: it now shows one
    page (?page=, ?page_size= as GET /v1/reconciliation takes them), in the same order, with links to the previous
    and next pages, while the counts stay those of every message."""
    first = client.get("/ui/reconciliation?page_size=2").get_data(as_text=True)
    assert re.findall(r'data-wamid="([^"]+)"', first) == ["wamid.auth", "wamid.marketing"]
    assert "3 delivered messages checked" in first and "Page 1 of 2 (messages 1–2)." in first
    assert 'href="/ui/reconciliation?page=2&amp;page_size=2"' in first and 'id="page-prev"' not in first
    second = client.get("/ui/reconciliation?page=2&page_size=2")
    html = second.get_data(as_text=True)
    assert second.status_code == 200 and re.findall(r'data-wamid="([^"]+)"', html) == ["wamid.utility"]
    assert "3 delivered messages checked" in html and "Page 2 of 2 (messages 3–3)." in html
    assert 'href="/ui/reconciliation?page=1&amp;page_size=2"' in html and 'id="page-next"' not in html
    # The default page holds all three: no links to other pages; one past the end says so and links back.
    whole = client.get("/ui/reconciliation").get_data(as_text=True)
    assert len(re.findall(r'data-wamid="', whole)) == 3 and 'class="pagination"' not in whole
    past = client.get("/ui/reconciliation?page=2")
    assert past.status_code == 200 and "past the last page" in past.get_data(as_text=True)
    assert 'data-wamid="' not in past.get_data(as_text=True)


@pytest.mark.parametrize("query, field", [("page=0", "page"), ("page=x", "page"), ("page_size=0", "page_size"),
                                          ("page_size=1001", "page_size"), ("page_size=2&page_size=3", "page_size"),
                                          ("contact=1", "contact")])
def test_reconciliation_page_refuses_a_bad_page_naming_it(client, query, field):
    """A bad ?page= or ?page_size= (out of GET /v1/reconciliation's bounds, not a number, given twice) or a parameter
    the page does not take is a 422 naming it (query.page_size), not a 500 or a default page."""
    response = client.get(f"/ui/reconciliation?{query}")
    assert response.status_code == 422
    assert f"<code>query.{field}</code>" in response.get_data(as_text=True)


def test_a_delivered_message_whose_wamid_holds_a_slash_has_a_replayed_page_that_is_linked(client):
    """Meta's wamids are base64, which may hold a "/": the reconciliation page linked /ui/reconciliation/wamid.a/b=,
    which no page served (404); the replayed page now serves any stored wamid and the link leads to it."""
    from ..conftest import BILLED_T0
    from ..meta_payloads import deliver, pmp, status

    wamid = "wamid.HBgL/MTU1NTEy+MzQ1=="
    deliver(client, status(wamid, "delivered", BILLED_T0, pricing=pmp("marketing", "regular", True)))
    html = client.get("/ui/reconciliation").get_data(as_text=True)
    assert f'href="/ui/reconciliation/{wamid}"' in html
    page = client.get(f"/ui/reconciliation/{wamid}")
    assert page.status_code == 200 and wamid in page.get_data(as_text=True)
    assert client.get("/ui/reconciliation/wamid.no/such").status_code == 404


def test_home_and_menu_link_a_costs_page_once_the_app_serves_one(app, client):
    """Pages other work adds are linked only once they exist: a served /ui/costs appears on home and in the menu."""
    served = {rule.rule for rule in app.url_map.iter_rules()}
    if "/ui/costs" not in served:
        app.add_url_rule("/ui/costs", "costs_page_for_this_test", lambda: "costs")
    html = client.get("/").get_data(as_text=True)
    assert html.count('href="/ui/costs"') == 2  # the menu and the home page's card
    assert ('href="/ui/templates"' in html) == ("/ui/templates" in served)


def test_reconciliation_pages_mask_numbers_as_the_log_does(app, client, billed_history):
    """Issue 22: the reconciliation page and a replayed message's page show the contact as the decision log keeps
    it (calling code only), never the full number; with masking off they show it whole."""
    for path in ("/ui/reconciliation", "/ui/reconciliation/wamid.auth"):
        html = client.get(path).get_data(as_text=True)
        assert "5511987654321" not in html and "987654321" not in html, path
    assert "<code>+55***********</code>" in client.get("/ui/reconciliation").get_data(as_text=True)
    app.config["MASK_PHONE_NUMBERS"] = False
    assert "<code>+5511987654321</code>" in client.get("/ui/reconciliation").get_data(as_text=True)


def test_pages_refuse_bad_filter_values_with_an_html_page_naming_the_parameter(client):
    """A bad or unknown filter is a 422 HTML page naming the parameter on every page (as /ui/decisions does),
    never a 200 that silently ignores it; a path under /ui/ that no page serves is an HTML 404."""
    refused = {"/ui/rules?version=ZZ": "version", "/ui/rules?area=nowhere": "area", "/ui/rules?confidence=X":
               "confidence", "/ui/rules?bogus=1": "bogus", "/ui/reconciliation?page=abc": "page",
               "/ui/reconciliation?page=-5": "page", "/ui/costs?currency=FOO": "currency",
               "/ui/decisions?outcome=maybe": "outcome", "/ui/templates?waba=1": "waba",
               "/ui/templates?waba_id=abc": "waba_id", "/ui/forecast?lines=BR+marketing+1&currencyy=BRL": "currencyy",
               "/ui/try?fixture=no-such-fixture": "fixture", "/ui/try?fixtur=x": "fixtur"}
    for url, parameter in refused.items():
        page = client.get(url)
        assert page.status_code == 422 and page.mimetype == "text/html", url
        assert f"<li><code>query.{parameter}</code>: " in page.get_data(as_text=True), url
    missing = client.get("/ui/templates/x/y")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "<code>path</code>: /ui/templates/x/y is not a page of this service" in missing.get_data(as_text=True)
    assert client.get("/v1/no-such-endpoint").get_json()["code"] == 404  # the API keeps its JSON shape


# Each kind of refusal on each page: a bad or unknown filter, a form's invalid line, an id or a path naming nothing.
REFUSALS = {
    "/ui/rules?version=ZZ": (422, {"query.version"}), "/ui/decisions?decision=maybe": (422, {"query.decision"}),
    "/ui/decisions?phone_number_id=abc": (422, {"query.phone_number_id"}),
    "/ui/forecast?currency=BRL&lines=UK+marketing+10": (422, {"query.lines.1.country"}),
    "/ui/costs?currency=FOO": (422, {"query.currency"}), "/ui/costs?from=x": (422, {"query.from"}),
    "/ui/forecast?lines=x": (422, {"query.lines.1"}), "/ui/forecast?bogus=1": (422, {"query.bogus"}),
    "/ui/templates?waba_id=abc": (422, {"query.waba_id"}), "/ui/reconciliation?page=abc": (422, {"query.page"}),
    "/ui/try?fixtur=x": (422, {"query.fixtur"}), "/ui/decisions/nope": (404, {"path.decision_id"}),
    "/ui/reconciliation/wamid.nope": (404, {"path.wamid"}), "/ui/templates/1022/nothing/en": (404, {"path.name"}),
    "/ui/templates/x1/nothing/en": (404, {"path.waba_id"}), "/ui/no-such-page": (404, {"path"}),
}


def test_every_refusal_of_a_page_is_html_to_a_browser_and_the_json_shape_to_other_clients(client):
    """Every page refuses alike, as its HTTP errors (PAGE_ERRORS) are answered: a browser (Accept: text/html) gets
    the HTML page, any other client the API's one JSON error shape with the same status, naming the parameter
    (a path parameter as path.<name>); the try form's invalid request too."""
    for url, (status, named) in REFUSALS.items():
        page = client.get(url)
        assert page.status_code == status and page.mimetype == "text/html", url
        body = assert_error_shape(client.get(url, headers=JSON), status)
        assert set(body["errors"]) == named, (url, body)
    body = assert_error_shape(submit(client, {"send": {"at": "x"}}, headers=JSON), 422)
    assert "send.at" in body["errors"] and "send.to" in body["errors"]
    # curl's Accept: */* names no type: JSON, as for a client sending no Accept (Werkzeug's accept_html said HTML).
    for accept in ("*/*", "application/json, */*;q=0.5", "text/html;q=0"):
        assert_error_shape(client.get("/ui/nope", headers={"Accept": accept}), 404)


def test_a_request_that_timed_out_on_a_page_is_a_408_page_to_a_browser(app):
    """A head or body that arrived too late (POLICY_HEADER_TIMEOUT / POLICY_BODY_TIMEOUT: the server's 408) is answered
    on a page as its other errors are: HTML to a browser, the one JSON shape to other clients."""
    from werkzeug.exceptions import RequestTimeout

    from policy_service.web.pages import PAGE_ERRORS, page_error

    assert 408 in PAGE_ERRORS
    with app.test_request_context("/ui/try", method="POST", headers={"Accept": "text/html"}):
        response = app.make_response(page_error(RequestTimeout()))
        assert response.status_code == 408 and response.mimetype == "text/html"
    with app.test_request_context("/ui/try", method="POST", headers=JSON):
        response = app.make_response(page_error(RequestTimeout()))
        assert response.status_code == 408 and response.get_json()["code"] == 408


def test_a_page_names_a_bad_query_parameter_as_the_api_does_in_html_and_json(client):
    """A page names a refused query parameter as the API names it (query.from, api.ERRORS_NAMED), in its JSON error
    and its HTML alike, never bare (from): one given (from=x), one the page defaulted (to: today, before from), one
    repeated, one unknown even when called `path`; a form sent as GET names its lines as the reviewer numbers them
    (line 3, a blank line counted, not the body's index 1). A URL no page serves stays `path`, a POST form's field
    (/ui/try's request body) stays bare."""
    api = client.get("/v1/costs?from=x&to=2026-01-01", headers=JSON).get_json()["errors"]
    page = client.get("/ui/costs?from=x&to=2026-01-01", headers=JSON).get_json()["errors"]
    assert set(page) == set(api) == {"query.from"}
    cases = {"/ui/costs?from=2999-01-01": "query.to", "/ui/decisions?page=1&page=2": "query.page",
             "/ui/rules?path=1": "query.path", "/ui/forecast?lines=BR+utility+5%0A%0ABR+nonsense+5":
             "query.lines.3.category", "/ui/templates?waba_id=1&waba_id=2": "query.waba_id"}
    for url, name in cases.items():
        assert list(assert_error_shape(client.get(url, headers=JSON), 422)["errors"]) == [name], url
        assert f"<code>{name}</code>: " in client.get(url).get_data(as_text=True), url
        assert f"<code>{name.removeprefix('query.')}</code>" not in client.get(url).get_data(as_text=True), url
    assert list(assert_error_shape(client.get("/ui/nope", headers=JSON), 404)["errors"]) == ["path"]
    assert "send.at" in assert_error_shape(submit(client, {"send": {"at": "x"}}, headers=JSON), 422)["errors"]


def test_pages_that_take_no_filter_refuse_one_and_the_try_form_refuses_two_requests(app, client):
    """A logged decision's page, a replayed message's, a template's and the home page read no query parameter: one
    given (?explain=full, a misspelt link) was ignored silently; it is a 422 naming it (query.<name>), as on every
    other page. A try form posting two `request` fields decided the first silently: neither is decided, 422."""
    decision_id = "a-logged-one"
    make_logged(app, decision_id, logged_at=datetime.now(UTC))
    for path in (f"/ui/decisions/{decision_id}", "/ui/reconciliation/wamid.any", "/ui/templates/1/t/en", "/"):
        assert client.get(path).status_code != 422, path
        body = assert_error_shape(client.get(f"{path}?explain=full", headers=JSON), 422)
        assert body["errors"] == {"query.explain": ["not a filter of this page"]}, path
        page = client.get(f"{path}?explain=full")
        assert page.status_code == 422 and "<code>query.explain</code>" in page.get_data(as_text=True), path
    one = json.dumps(fixture_request(FIXTURE))
    form = {"request": [one, one.replace("template", "text")], "csrf_token": csrf_token(client)}
    response = client.post("/ui/try", data=form)  # deciding one redirects to its page (303): nothing is decided
    assert response.status_code == 422 and "<code>request</code>: given 2 times" in response.get_data(as_text=True)
    assert client.post("/ui/try", data={"request": one, "csrf_token": csrf_token(client)}).status_code == 303


def test_a_filter_given_twice_is_refused_on_every_page(client):
    """?page=1&page=2: a page reads one value, so a repeated filter is a 422 page naming it, as the API refuses it."""
    for path in ("/ui/decisions?page=1&page=2", "/ui/rules?area=Templates&area=Delivery"):
        response = client.get(path)
        assert response.status_code == 422 and "given 2 times" in response.get_data(as_text=True), path


@pytest.mark.parametrize("logged", ["2026-12-07T10:00:00Z", "2026-12-07t10:00:00z", "2026-12-07T10:00:00+00:00"])
def test_a_logged_time_is_shown_the_one_way_in_either_case(logged):
    """A send's time as the client wrote it in the logged request (RFC 3339 allows a lowercase t and z, which the API
    takes) is shown as reviewers read times, not as the raw text."""
    assert pages.when(logged) == "2026-12-07 10:00"

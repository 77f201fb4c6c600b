"""The reviewer pages, driven in headless Chromium at desktop and phone widths, with screenshots in
test-output/ui/: every page loads without sideways scrolling and without serious accessibility violations
(axe-core), timeline labels overlap nothing (measured with getBoundingClientRect), and a reviewer's journey
from the home page to yesterday's denials and from a reconciliation mismatch to its decision works. A crawl from /
at 390 px reaches every page the menu and the pages link to (templates, costs, forecast included), and a
reviewer logs in and out from a phone."""

import base64
import os
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from policy_service import create_app
from policy_service.review.fixtures import discover
from policy_service.store import decision_log
from policy_service.web.security import hash_key

from ..conftest import BILLED_T0, FIXTURES_DIR, ROOT, deliver_billed_history
from ..meta_business_payloads import category_completed, template_status
from ..meta_payloads import APP_SECRET, VERIFY_TOKEN, deliver

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "test-output" / "ui"
# axe-core from the npm registry, pinned in package.json and installed by `npm ci` (.ci/run does it).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FIXTURE = "15b_marketing_template_rides_the_free_entry_point_conversation"
DENIED = "02_freeform_at_exactly_24_hours_is_denied"
DESKTOP, PHONE = (1200, 900), (390, 844)
LONG_TEMPLATE = "seasonal_promotion_for_returning_customers_with_a_long_name_2025"
# Pages a crawl may leave: a form's own POST answer, and the log-out button.
NOT_CRAWLED = {"ui.index", "login.login", "login.logout"}
# At most this many pages of one kind (one route) are visited: 25 decision pages prove no more than 2.
PER_ROUTE = 2

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    message = "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
    # CI sets REQUIRE_BROWSER_TESTS so a missing browser fails the run instead of skipping it.
    if os.environ.get("REQUIRE_BROWSER_TESTS"):
        raise RuntimeError(message)
    pytest.skip(message, allow_module_level=True)


def fixture_request(name):
    (fixture,) = [f for f in discover([FIXTURES_DIR]) if f.name == name]
    return fixture.request


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app logging to a temporary SQLite file, with the webhook secret so tests can store Meta's statuses."""
    database = tmp_path_factory.mktemp("db") / "browser.sqlite3"
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{database}", "WHATSAPP_APP_SECRET": APP_SECRET,
                       "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})


@pytest.fixture(scope="module")
def server(app):
    """The app on a free 127.0.0.1 port, in a background thread."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def seeded(app):
    """Decisions as a day of traffic leaves them (two denials under CSW-2.freeform-closed and one under MKT-4
    yesterday, an allow yesterday, a CSW-2.closed denial today) and Meta's priced statuses with one mismatch."""
    client = app.test_client()

    def decide(name):
        body = client.post("/v1/decisions", json=fixture_request(name)).get_json()
        assert "decision_id" in body, body
        return body["decision_id"]

    ids = {"csw": decide(DENIED), "csw-2": decide(DENIED),
           "mkt": decide("16a_marketing_template_to_a_us_number_is_denied"), "allow": decide(FIXTURE),
           "today": decide(DENIED)}
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with app.app_context():
        for key in ("csw", "csw-2", "mkt", "allow"):
            decision_log.DecisionRecord.update(logged_at=yesterday.replace(tzinfo=None)).where(
                decision_log.DecisionRecord.decision_id == ids[key]).execute()
    # Without context the rules cannot know the business pays authentication-international: wamid.auth mismatches.
    deliver_billed_history(client)
    # Templates in the registry, one with a long name (the template pages must still fit a phone).
    deliver(client, template_status("order_update", "en_US", "APPROVED", BILLED_T0, category="UTILITY"),
            template_status(LONG_TEMPLATE, "pt_BR", "APPROVED", BILLED_T0, category="MARKETING"),
            category_completed("order_update", "en_US", "UTILITY", "MARKETING", BILLED_T0 + 600))
    return {**ids, "yesterday": yesterday.date().isoformat()}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a throwaway profile and no background network traffic."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    driver.set_script_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def desktop(browser):
    at_width(browser, DESKTOP)
    return browser


def at_width(driver, size):
    """Emulate a screen of this CSS size (a phone is a mobile viewport, so the page's viewport meta applies)."""
    width, height = size
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
        "screenWidth": width, "screenHeight": height})


def screenshot(driver, name):
    """Save the whole page, beyond the viewport, under test-output/ui/ (Chromium's DevTools capture)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": clip})
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def no_sideways_scroll(driver):
    """The document is no wider than the screen (wide tables and code scroll inside their own box). Compared with
    the emulated screen's width: a mobile viewport grows to fit a page wider than the phone (innerWidth follows),
    so comparing with innerWidth alone passed pages that scroll sideways on a real phone."""
    width, viewport = driver.execute_script(
        "return [document.documentElement.scrollWidth, Math.min(window.innerWidth, screen.width)];")
    assert width <= viewport, f"{driver.current_url}: document {width} px wide in a {viewport} px viewport"


def serious_accessibility_violations(driver):
    """axe-core's violations of impact serious or critical on the loaded page (rule id, impact, first targets)."""
    if not AXE.exists():
        if os.environ.get("REQUIRE_BROWSER_TESTS"):
            raise RuntimeError(f"{AXE} is missing: run `npm ci` (.ci/run does)")
        pytest.skip("axe-core is not installed (npm ci)")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
        " targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))"
        ".catch(e => done({error: String(e)}));")
    assert not isinstance(result, dict), result
    return [v for v in result if v["impact"] in ("serious", "critical")]


# Every text, bar and mark of the visible timeline drawing, and the send line's pieces, as page rectangles.
GEOMETRY = """
const drawing = [...document.querySelectorAll('figure.timeline svg[data-layout]')]
  .find(svg => svg.getBoundingClientRect().width > 0);
if (!drawing) return null;
const box = el => { const b = el.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
const group = el => el.closest('g.mark, g.segment');
const groups = [...drawing.querySelectorAll('g.mark, g.segment')];
return {
  layout: drawing.dataset.layout,
  svg: box(drawing),
  texts: [...drawing.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => ({
    text: t.textContent, box: box(t), group: groups.indexOf(group(t)), label: t.classList.contains('label')})),
  glyphs: [...drawing.querySelectorAll('.glyph')].map(g => ({box: box(g), group: groups.indexOf(group(g))})),
  lines: [...drawing.querySelectorAll('line.send-line')].map(box),
  legend: [...document.querySelectorAll('#legend li[data-key]')].map(li => li.dataset.key),
  drawn: groups.map(g => g.dataset.legend),
};
"""
TOLERANCE = 0.5


def overlap(a, b, grow=0.0):
    return (a[0] - grow < b[2] - TOLERANCE and b[0] - grow < a[2] - TOLERANCE
            and a[1] - grow < b[3] - TOLERANCE and b[1] - grow < a[3] - TOLERANCE)


def inside(a, b):
    return a[0] >= b[0] - TOLERANCE and a[2] <= b[2] + TOLERANCE and a[1] >= b[1] - TOLERANCE and \
        a[3] <= b[3] + TOLERANCE


def assert_timeline_readable(driver):
    """Measured in the browser: no text overlaps another text or the send line; a label overlaps no bar or
    mark except its own bar, and then lies inside it; texts stay inside the drawing; every drawn style is in
    the legend. Returns the layout measured."""
    shape = driver.execute_script(GEOMETRY)
    assert shape, f"{driver.current_url}: no visible timeline"
    texts, where = shape["texts"], driver.current_url
    assert any(t["label"] for t in texts)
    for i, text in enumerate(texts):
        assert text["box"][0] >= shape["svg"][0] - TOLERANCE and text["box"][2] <= shape["svg"][2] + TOLERANCE, \
            (where, text["text"])
        for other in texts[i + 1:]:
            assert not overlap(text["box"], other["box"]), (where, text["text"], other["text"])
        for line in shape["lines"]:
            assert not overlap(text["box"], line, grow=1.0), (where, text["text"], "crosses the send line")
        for glyph in shape["glyphs"]:
            if not overlap(text["box"], glyph["box"]):
                continue
            own_bar = text["group"] >= 0 and glyph["group"] == text["group"]
            assert own_bar and inside(text["box"], glyph["box"]), (where, text["text"], "overlaps a bar or mark")
    drawn = {key for keys in shape["drawn"] for key in keys.split()}
    assert drawn <= set(shape["legend"]), (where, drawn - set(shape["legend"]))
    return shape["layout"]


def decision_page(app, request_body):
    """Log a decision through the API and return its page's path."""
    body = app.test_client().post("/v1/decisions", json=request_body).get_json()
    return f"/ui/decisions/{body['decision_id']}"


def long_history():
    """A day of back and forth: twelve inbound and eleven outbound messages, then a send."""
    start = datetime(2025, 8, 12, 6, 0, tzinfo=UTC)
    history = []
    for i in range(12):
        history.append({"direction": "inbound", "at": (start + timedelta(hours=2 * i)).isoformat(), "type": "text"})
        if i < 11:
            history.append({"direction": "outbound", "at": (start + timedelta(hours=2 * i, minutes=30)).isoformat(),
                            "type": "text"})
    return {"send": {"at": (start + timedelta(hours=23)).isoformat(), "to": "+5511987654321", "type": "text"},
            "history": history}


def test_rules_page_filters_by_version_and_confidence(server, desktop):
    """Filtering by V4 and [S] leaves only secondary-source rules in force in V4, each marked [S]."""
    browser = desktop
    browser.get(f"{server}/ui/rules")
    everything = len(browser.find_elements(By.CSS_SELECTOR, "li.rule"))
    Select(browser.find_element(By.ID, "version")).select_by_value("V4")
    Select(browser.find_element(By.ID, "confidence")).select_by_value("S")
    browser.find_element(By.ID, "apply-filters").click()
    WebDriverWait(browser, 10).until(lambda driver: "version=V4" in driver.current_url)
    rules = browser.find_elements(By.CSS_SELECTOR, "li.rule")
    assert 0 < len(rules) < everything
    assert all("[S]" in rule.find_element(By.CSS_SELECTOR, "h4 .badge").text for rule in rules)
    assert all("V4" in rule.text for rule in rules)
    screenshot(browser, "rules-v4-secondary")


def test_rules_page_contents_jump_to_an_area_and_fixtures_open_on_demand(server, desktop):
    """The contents link to an area's section; a rule's covering fixtures show as a count until opened."""
    browser = desktop
    browser.get(f"{server}/ui/rules")
    browser.find_element(By.CSS_SELECTOR, "#toc-by-area a[href='#area-templates']").click()
    assert browser.current_url.endswith("#area-templates")
    covering = browser.find_element(By.CSS_SELECTOR, "#area-templates details.covering")
    link = covering.find_element(By.CSS_SELECTOR, "ul a")
    summary = covering.find_element(By.TAG_NAME, "summary")
    assert not link.is_displayed() and re.fullmatch(r"\d+ fixtures?", summary.text)
    summary.click()
    assert link.is_displayed()


def test_try_page_decides_into_the_decisions_own_page(server, desktop):
    """Picking fixture 15b and pressing Decide opens /ui/decisions/<id>: allow, FEP-1.rides determining, timeline."""
    browser = desktop
    browser.get(f"{server}/ui/try")
    assert '"order_update"' in browser.find_element(By.ID, "request").get_attribute("value")  # the sample
    Select(browser.find_element(By.ID, "fixture")).select_by_value(FIXTURE)
    WebDriverWait(browser, 10).until(lambda driver: FIXTURE in driver.current_url)  # try.js loads on change
    assert '"marketing_notice"' in browser.find_element(By.ID, "request").get_attribute("value")
    browser.find_element(By.ID, "decide").click()
    WebDriverWait(browser, 10).until(lambda driver: "/ui/decisions/" in driver.current_url)
    decision_id = browser.current_url.rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{32}", decision_id)
    assert browser.find_element(By.ID, "decision-link").text == decision_id

    assert browser.find_element(By.ID, "verdict").text.lower() == "allow"
    assert browser.find_element(By.ID, "charge").text.startswith("not charged: free entry point conversation")
    determining = browser.find_elements(By.CSS_SELECTOR, "li.reason.determining")
    assert "FEP-1.rides" in [r.get_attribute("data-rule") for r in determining]
    svg = browser.find_element(By.CSS_SELECTOR, "figure.timeline svg[data-layout=wide]")
    window = svg.find_element(By.CSS_SELECTOR, ".segment-customer_service_window")
    assert "05-01 10:00 → 05-02 10:00" in window.text
    conversation = svg.find_element(By.CSS_SELECTOR, ".segment-free_entry_point_conversation.covers-send")
    assert "2024-05-01 22:00 → 2024-05-04 22:00" in conversation.text
    assert svg.find_element(By.CSS_SELECTOR, ".mark-send").text == "send 2024-05-02 12:00"
    assert len(svg.find_elements(By.CSS_SELECTOR, ".mark-inbound")) == 1
    assert len(svg.find_elements(By.CSS_SELECTOR, ".mark-outbound")) == 2
    assert_timeline_readable(browser)
    screenshot(browser, "try-15b-decided")
    browser.find_element(By.CSS_SELECTOR, "figure.timeline").screenshot(str(SCREENSHOTS / "timeline-15b.png"))


def test_a_denied_decision_reads_not_sent_not_charged(app, server, desktop):
    """Fixture 02's page: deny, "not sent, not charged", Meta's error code, the window closed at the send."""
    browser = desktop
    browser.get(server + decision_page(app, fixture_request(DENIED)))
    assert browser.find_element(By.ID, "verdict").text.lower() == "deny"
    assert browser.find_element(By.ID, "charge").text == "not sent, not charged"
    assert "131047" in browser.find_element(By.CSS_SELECTOR, "dl.summary").text
    window = browser.find_element(By.CSS_SELECTOR, "svg[data-layout=wide] .segment-customer_service_window")
    assert "covers-send" not in window.get_attribute("class")
    assert not browser.find_elements(By.CSS_SELECTOR, "svg[data-layout=wide] g.by-send")
    assert browser.find_element(By.CSS_SELECTOR, "svg[data-layout=wide] .mark-send").text == "send 2024-03-06 10:00"
    assert "2024-03-06 10:00" in browser.find_element(By.CSS_SELECTOR, "li.reason .because").text
    screenshot(browser, "decision-02-denied")


def test_try_page_lists_field_errors(server, desktop):
    """An invalid request shows each field's error instead of a decision."""
    browser = desktop
    browser.get(f"{server}/ui/try")
    area = browser.find_element(By.ID, "request")
    area.clear()
    area.send_keys('{"send": {"at": "yesterday", "to": "12", "type": "text"}}')
    browser.find_element(By.ID, "decide").click()
    errors = browser.find_element(By.ID, "errors").text
    assert "send.at" in errors and "send.to" in errors
    assert not browser.find_elements(By.ID, "verdict")
    screenshot(browser, "try-invalid")


@pytest.mark.parametrize("request_body", [
    pytest.param(lambda: fixture_request(FIXTURE), id="15b"),
    pytest.param(lambda: fixture_request(DENIED), id="02"),
    pytest.param(lambda: fixture_request("15a_reply_to_an_ad_opens_a_free_entry_point_conversation_and_closes_utility"),
                 id="15a"),
    pytest.param(lambda: fixture_request("13a_first_freeform_reply_to_an_ad_message_opens_a_free_entry_point_window"),
                 id="13a"),
    pytest.param(long_history, id="long-history"),
])
def test_timeline_labels_overlap_nothing_at_desktop_and_phone_width(app, server, browser, request_body, request):
    """At 1200 px the wide drawing and at 390 px the narrow one: labels clear of bars, each other and the send line."""
    path = decision_page(app, request_body())
    for size, layout in ((DESKTOP, "wide"), (PHONE, "narrow")):
        at_width(browser, size)
        browser.get(server + path)
        assert assert_timeline_readable(browser) == layout
        no_sideways_scroll(browser)
        screenshot(browser, f"timeline-{request.node.callspec.id}-{layout}")


def test_every_page_fits_a_phone_and_has_no_serious_accessibility_violation(app, server, browser, seeded):
    """Each page, a decision and a replayed delivered message, at 1200 and 390 px: no sideways scrolling, no
    serious or critical axe-core violation, and a screenshot of each."""
    paths = {"home": "/", "rules": "/ui/rules", "decisions": "/ui/decisions", "try": "/ui/try",
             "reconciliation": "/ui/reconciliation", "decision-denied": f"/ui/decisions/{seeded['csw']}",
             "decision-allowed": f"/ui/decisions/{seeded['allow']}", "replayed": "/ui/reconciliation/wamid.auth",
             "decisions-denied": "/ui/decisions?decision=deny"}
    for size in (DESKTOP, PHONE):
        at_width(browser, size)
        for name, path in paths.items():
            browser.get(server + path)
            assert browser.find_element(By.TAG_NAME, "h1").text, path
            no_sideways_scroll(browser)
            assert serious_accessibility_violations(browser) == [], (path, size)
            screenshot(browser, f"page-{name}-{size[0]}")


def test_reviewer_journey_from_yesterdays_denials_to_a_reconciliation_mismatch(server, browser, seeded):
    """A reviewer starts at /, finds yesterday's denials under CSW-2.freeform-closed, opens one, reads its timeline at
    both widths, then follows the reconciliation mismatch to the decision behind it."""
    at_width(browser, DESKTOP)
    browser.get(f"{server}/")
    browser.find_element(By.ID, "go-decisions").click()
    browser.find_element(By.ID, "quick-yesterday").click()
    assert browser.find_element(By.ID, "from").get_attribute("value") == seeded["yesterday"]
    Select(browser.find_element(By.ID, "decision")).select_by_value("deny")
    Select(browser.find_element(By.ID, "rule")).select_by_value("CSW-2.freeform-closed")
    browser.find_element(By.ID, "apply-filters").click()
    WebDriverWait(browser, 10).until(lambda driver: "rule=CSW-2.freeform-closed" in driver.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#decision-list li.decision-row")
    assert sorted(row.get_attribute("data-decision-id") for row in rows) == sorted([seeded["csw"], seeded["csw-2"]])
    screenshot(browser, "journey-1-yesterdays-denials")

    rows[0].find_element(By.CSS_SELECTOR, "a.open").click()
    WebDriverWait(browser, 10).until(lambda driver: "/ui/decisions/" in driver.current_url and "?" not in
                                     driver.current_url)
    assert browser.find_element(By.ID, "charge").text == "not sent, not charged"
    assert "CSW-2.freeform-closed" in [r.get_attribute("data-rule") for r in
                              browser.find_elements(By.CSS_SELECTOR, "li.reason.determining")]
    assert assert_timeline_readable(browser) == "wide"
    screenshot(browser, "journey-2-decision-desktop")
    at_width(browser, PHONE)
    browser.refresh()
    assert assert_timeline_readable(browser) == "narrow"
    no_sideways_scroll(browser)
    screenshot(browser, "journey-3-decision-phone")

    at_width(browser, DESKTOP)
    browser.find_element(By.LINK_TEXT, "Reconciliation").click()
    first = browser.find_element(By.CSS_SELECTOR, "#comparisons li.comparison")
    assert "mismatch" in first.get_attribute("class") and first.get_attribute("data-wamid") == "wamid.auth"
    assert "we predicted authentication (authentication)" in first.find_element(By.CSS_SELECTOR, ".causes").text
    screenshot(browser, "journey-4-reconciliation")
    first.find_element(By.CSS_SELECTOR, "a.to-decision").click()
    WebDriverWait(browser, 10).until(lambda driver: "/ui/reconciliation/wamid.auth" in driver.current_url)
    assert browser.find_element(By.ID, "verdict").text.lower() == "allow"
    assert "differs" in browser.find_element(By.ID, "comparison-verdict").text
    assert browser.find_element(By.ID, "charge").text.startswith("charged: authentication message")
    assert_timeline_readable(browser)
    screenshot(browser, "journey-5-mismatch-decision")


def test_every_page_the_menu_and_the_pages_link_to_fits_a_phone(app, server, browser, seeded):
    """From / at 390 px, follows every link to this site (menu, lists, a decision's page, a template's history,
    costs, forecast, reconciliation…), up to two pages of each kind: none scrolls sideways (the check compares
    with the phone's width), none has a serious axe-core violation, each has a heading, and every page the
    service serves is reached."""
    at_width(browser, PHONE)
    adapter = app.url_map.bind("localhost")
    queue, seen, visited, too_wide, violations = ["/"], {"/"}, {}, [], []
    while queue:
        path = queue.pop(0)
        endpoint = adapter.match(path.split("?")[0], method="GET")[0]
        page = endpoint.split(".")[0] in ("ui", "home")  # not the JSON API or the spec a page links to
        if not page or endpoint in NOT_CRAWLED or visited.get(endpoint, 0) >= PER_ROUTE:
            continue
        visited[endpoint] = visited.get(endpoint, 0) + 1
        browser.get(server + path)
        assert browser.find_element(By.TAG_NAME, "h1").text, path
        try:
            no_sideways_scroll(browser)
        except AssertionError as wide:
            too_wide.append(str(wide))
        violations += [(path, v) for v in serious_accessibility_violations(browser)]
        screenshot(browser, "crawl-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:60] or "home")
        for href in browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)"):
            if not href.startswith(server) or "#" in href:
                continue
            target = href[len(server):]
            if target not in seen and not target.startswith("/static/"):
                seen.add(target)
                queue.append(target)
    pages = {rule.endpoint for rule in app.url_map.iter_rules()
             if rule.endpoint.split(".")[0] in ("ui", "home") and "GET" in rule.methods} - NOT_CRAWLED
    assert pages <= set(visited), f"pages no link reaches: {sorted(pages - set(visited))}"
    assert too_wide == []
    assert violations == []


def test_a_reviewer_logs_in_from_a_phone_and_out_again(app, browser):
    """With keys on, a page opens the login form (fits 390 px, no serious axe violation); the reviewer's key leads
    to the page asked for, which offers Log out; logging out returns to the form."""
    keyed = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "browser-test",
                        "API_KEYS": f"ana:reviewer:{hash_key('sk-review-browser')}"})
    httpd = make_server("127.0.0.1", 0, keyed, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server = f"http://127.0.0.1:{httpd.server_port}"
    try:
        at_width(browser, PHONE)
        browser.delete_all_cookies()
        browser.get(f"{server}/ui/rules")
        assert "/ui/login?next=/ui/rules" in browser.current_url
        no_sideways_scroll(browser)
        assert serious_accessibility_violations(browser) == []
        screenshot(browser, "login-phone")
        browser.find_element(By.ID, "key").send_keys("sk-review-browser")
        browser.find_element(By.ID, "log-in").click()
        WebDriverWait(browser, 10).until(lambda driver: driver.current_url == f"{server}/ui/rules")
        assert "ana" in browser.find_element(By.ID, "log-out").text
        no_sideways_scroll(browser)
        assert serious_accessibility_violations(browser) == []
        browser.find_element(By.ID, "log-out").click()
        WebDriverWait(browser, 10).until(lambda driver: "/ui/login" in driver.current_url)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)

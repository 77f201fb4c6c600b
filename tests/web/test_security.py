"""API keys, body and history limits, the 500 handler and security headers."""

import json

import pytest

from policy_service import create_app
from policy_service.contract.schemas import MAX_HISTORY
from policy_service.store import decision_log
from policy_service.web.security import configured_keys, hash_key, key_hashes

from ..conftest import BROWSER, as_browser, assert_error_shape, csrf_token
from ..meta_payloads import APP_SECRET, VERIFY_TOKEN, inbound_text, signed

KEYS = ("first-key-7f3a", "second-key-91c2")


@pytest.fixture
def locked(tmp_path):
    """An app that accepts only KEYS, configured as a comma-separated string of digests as the environment gives it."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
                      "API_KEY_HASHES": ",".join(hash_key(k) for k in KEYS)})
    return app.test_client()


def test_keys_are_configured_as_digests():
    """Digests are read from a list or a comma-separated string, trimmed and lowercased."""
    first, second = hash_key(KEYS[0]), hash_key(KEYS[1])
    assert key_hashes(f" {first.upper()} ,{second},") == (first, second)
    assert key_hashes([first]) == (first,)
    assert key_hashes([]) == ()


def test_a_plain_key_in_the_configuration_is_refused():
    """A value that is not a sha256 hex digest stops the app from starting, naming its position."""
    with pytest.raises(ValueError, match=r"items \[1\] are not sha256 hex digests"):
        key_hashes([hash_key(KEYS[0]), KEYS[1]])


def test_without_configured_keys_the_api_is_open(client, example_request):
    """No API_KEY_HASHES: decisions need no key."""
    assert client.post("/v1/decisions", json=example_request).status_code == 200


@pytest.mark.parametrize(("authorization", "said"), [
    ("Basic clientkey", "a Bearer token is required: `Authorization: Bearer <key>`, not Basic; or the key in "
                        "`X-API-Key`"),
    ("clientkey", "a Bearer token is required: `Authorization: Bearer <key>`, not a value without the Bearer "
                  "scheme; or the key in `X-API-Key`"),
    ("Bearer ", "a Bearer token is required: `Authorization: Bearer <key>` (the token is missing), or `X-API-Key`"),
])
def test_an_authorization_header_without_a_bearer_token_is_told_what_it_lacks(locked, example_request,
                                                                              authorization, said):
    """`Authorization: Basic clientkey` was answered `headers.Authorization: ["required"]`, as if nothing had been
    sent: the 401 now says a Bearer token (or X-API-Key) is needed, and never echoes a bare value (it may be a key)."""
    response = locked.post("/v1/decisions", json=example_request, headers={"Authorization": authorization})
    body = assert_error_shape(response, 401)
    assert body["errors"] == {"headers.Authorization": [said]}
    assert "clientkey" not in response.get_data(as_text=True)


def test_missing_key_is_refused(locked, example_request):
    """With keys configured, a request without a key gets 401 in the error shape, with WWW-Authenticate."""
    response = locked.post("/v1/decisions", json=example_request)
    body = assert_error_shape(response, 401)
    assert "API key" in body["message"] and body["errors"] == {"headers.Authorization": ["required"]}
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"},
                                     {"Authorization": f"Basic {KEYS[0]}"}])
def test_wrong_key_is_refused(locked, example_request, headers):
    """A wrong key, or a right key in the wrong scheme, gets 401 naming the header that carried it."""
    body = assert_error_shape(locked.post("/v1/decisions", json=example_request, headers=headers), 401)
    assert list(body["errors"]) == ["headers.X-API-Key" if "X-API-Key" in headers else "headers.Authorization"]


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEYS[0]}"}, {"X-API-Key": KEYS[1]}])
def test_configured_key_is_accepted(locked, example_request, headers):
    """Either configured key, as a bearer token or in X-API-Key, is accepted."""
    assert locked.post("/v1/decisions", json=example_request, headers=headers).status_code == 200


def test_admin_reload_needs_a_key(locked):
    """The admin reload endpoint is behind a key, and a key of the older setting (a decision client) is refused."""
    assert_error_shape(locked.post("/v1/admin/reload-rules"), 401)
    body = assert_error_shape(locked.post("/v1/admin/reload-rules", headers={"X-API-Key": KEYS[0]}), 403)
    assert "'key-1' (client)" in body["message"] and body["message"].endswith("it needs an operator key")
    assert body["errors"] == {"headers.X-API-Key": ["the key 'key-1' has the role client; this needs operator"]}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_probes_and_spec_need_no_key(locked, path):
    """Health probes and the spec answer without a key."""
    assert locked.get(path).status_code == 200


def test_large_body_is_refused_with_413(tmp_path, example_request):
    """A body over MAX_CONTENT_LENGTH gets 413 in the error shape before it is parsed."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
                      "MAX_CONTENT_LENGTH": 2_000})
    padded = {**example_request, "history": example_request["history"] * 100}
    body = assert_error_shape(app.test_client().post("/v1/decisions", json=padded), 413)
    # The answer names the setting and its value, not Werkzeug's generic "exceeds the capacity limit".
    assert body["message"] == "the body is larger than POLICY_MAX_CONTENT_LENGTH (2,000 bytes)"
    assert body["errors"]["_request"][0].startswith("at most 2,000 bytes, got ")


def test_too_long_history_is_refused_with_a_clear_message(client, example_request):
    """More than MAX_HISTORY messages gets 422 naming the limit and what to send instead."""
    history = [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}] * (MAX_HISTORY + 1)
    body = assert_error_shape(client.post("/v1/decisions", json={**example_request, "history": history}), 422)
    assert body["errors"] == {"history": [
        f"at most {MAX_HISTORY} messages in an inline history: decide a longer one from the history stored from "
        "Meta's webhooks (history_ref instead of history: it reads all the rules can still see)"]}


def test_unexpected_error_is_a_500_without_a_stack_trace(tmp_path, example_request, monkeypatch):
    """An exception outside evaluation (here: the decision log fails) gives a 500 in the error shape, no trace."""
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}"})

    def broken_record(*_args, **_kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr("policy_service.store.decision_log.record", broken_record)
    response = app.test_client().post("/v1/decisions", json=example_request)
    body = assert_error_shape(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert body["errors"] == {}


def test_security_headers_on_decisions_and_errors(client, example_request):
    """Decisions and errors carry nosniff, no framing, no referrer and no-store."""
    for response in (client.post("/v1/decisions", json=example_request), client.get("/v1/decisions/unknown")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"


def test_method_not_allowed_names_the_allowed_methods(client):
    """A 405 is in the error shape and keeps its Allow header."""
    response = client.delete("/v1/decisions")
    assert_error_shape(response, 405)
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/decisions/batch"])
def test_deeply_nested_json_is_a_400(client, path):
    """JSON nested deeper than Python's parser goes is refused as invalid JSON, not a 500."""
    body = b"[" * 5_000 + b"]" * 5_000
    assert_error_shape(client.post(path, data=body, content_type="application/json"), 400)


def test_sends_before_any_policy_version_are_answered(client, example_request):
    """A send (and history) dated before every rule is a not_applicable deny; the process survives it."""
    old = {"send": {"at": "2005-01-01T00:00:00+00:00", "to": "+5511987654321", "type": "text"},
           "history": [{"direction": "outbound", "at": "2004-12-31T00:00:00+00:00", "type": "text"}]}
    body = client.post("/v1/decisions", json=old).get_json()
    assert (body["decision"], body["status"]) == ("deny", "not_applicable")
    # and it says why: the trace is empty, as no rule is in force
    assert body["error"].startswith("no policy version is in force on 2005-01-01: the rules begin with V1 on 20")
    assert client.post("/v1/decisions", json=example_request).get_json()["decision"] == "allow"


def test_pages_may_load_only_their_own_assets_and_json_nothing(client):
    """HTML pages get a same-origin policy for their stylesheet and script; JSON responses allow nothing."""
    page = client.get("/ui/rules").headers["Content-Security-Policy"]
    assert "style-src 'self'" in page and "script-src 'self'" in page and "frame-ancestors 'none'" in page
    api = client.get("/healthz").headers["Content-Security-Policy"]
    assert api.startswith("default-src 'none'") and "'self'" not in api


@pytest.fixture
def locked_by_environment(tmp_path, monkeypatch):
    """A deployment with keys on, configured as operators do: POLICY_API_KEY_HASHES in the environment."""
    monkeypatch.setenv("POLICY_API_KEY_HASHES", ",".join(hash_key(k) for k in KEYS))
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
                      "WHATSAPP_APP_SECRET": APP_SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})
    assert app.config["API_KEY_HASHES"], "the keys from the environment are on"
    return app.test_client()


def test_signed_webhooks_are_received_with_api_keys_on(locked_by_environment):
    """Meta sends no API key: its signed POST is stored (200) although keys are configured, and the
    API itself still refuses a keyless request."""
    raw, headers = signed(inbound_text("wamid.keys-on", 1754989200))
    response = locked_by_environment.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 200 and response.json["new"] == 1
    assert_error_shape(locked_by_environment.get("/v1/decisions/unknown"), 401)


def test_webhooks_still_need_their_signature_with_api_keys_on(locked_by_environment):
    """Skipping the API key never skips Meta's signature: unsigned or wrongly signed is 401, and a valid
    API key does not replace the signature."""
    raw, _ = signed(inbound_text("wamid.unsigned", 1754989200))
    for headers in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, {"X-API-Key": KEYS[0]}):
        response = locked_by_environment.post("/v1/webhooks/whatsapp", data=raw,
                                              headers={"Content-Type": "application/json", **headers})
        body = assert_error_shape(response, 401)
        assert "X-Hub-Signature-256" in body["message"]


def test_subscription_check_is_answered_by_verify_token_with_api_keys_on(locked_by_environment):
    """Meta's subscription GET carries no API key: the verify token alone decides (challenge or 403)."""
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = locked_by_environment.get("/v1/webhooks/whatsapp", query_string=query)
    assert response.status_code == 200 and response.get_data(as_text=True) == "1158201444"
    wrong = locked_by_environment.get("/v1/webhooks/whatsapp", query_string={**query, "hub.verify_token": "guess"})
    assert_error_shape(wrong, 403)


# Roles: decision clients, reviewers (the pages, by browser login) and operators (reload, metrics, log export).
ROLE_KEYS = {"shop-backend": ("client", "sk-client-5d1e"), "ana": ("reviewer", "sk-review-0b7c"),
             "ops": ("operator", "sk-ops-93aa")}


def key_header(name):
    return {"Authorization": f"Bearer {ROLE_KEYS[name][1]}"}


@pytest.fixture
def roles_app(tmp_path):
    """An app with one key per role, configured as the environment gives them: name:role:sha256, comma-separated."""
    setting = ",".join(f"{name}:{role}:{hash_key(key)}" for name, (role, key) in ROLE_KEYS.items())
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}", "API_KEYS": setting,
                       "SECRET_KEY": "test-secret"})


def test_keys_are_configured_by_name_role_and_digest():
    """Entries name:role:sha256 (roles joined by +) become keys; the older digests are decision clients."""
    digest = hash_key("k")
    keys = configured_keys({"API_KEYS": f"ci:client+operator:{digest.upper()}, ana:reviewer:{digest}",
                            "API_KEY_HASHES": digest})
    assert [(k.name, sorted(k.roles), k.digest) for k in keys] == [
        ("ci", ["client", "operator"], digest), ("ana", ["reviewer"], digest), ("key-1", ["client"], digest)]


@pytest.mark.parametrize(("setting", "says"), [
    ("ci:client:sk-plain-key", "item 0 (ci): the third part must be the key's sha256 hex digest"),
    (f"ci:admin:{'a' * 64}", "item 0 (ci): roles must be among client, reviewer, operator"),
    (f"bad name:client:{'a' * 64}", "item 0: the name must be"),
    (f"ci:client:{'a' * 64},ci:operator:{'b' * 64}", "names ['ci'] more than once"),
])
def test_a_bad_key_entry_stops_the_start_naming_it_without_the_secret(setting, says):
    """A malformed entry, an unknown role or a repeated name refuses to start; a plain key is never echoed."""
    with pytest.raises(ValueError) as refused:
        configured_keys({"API_KEYS": setting})
    assert says in str(refused.value) and "sk-plain-key" not in str(refused.value)


@pytest.mark.parametrize(("key", "method", "path", "status"), [
    ("shop-backend", "post", "/v1/decisions", 200),
    ("shop-backend", "post", "/v1/admin/reload-rules", 403),
    ("shop-backend", "get", "/metrics", 403),
    ("shop-backend", "get", "/v1/decisions", 403),
    ("shop-backend", "get", "/ui/rules", 403),
    ("ana", "get", "/ui/rules", 200),
    ("ana", "post", "/v1/decisions", 403),
    ("ana", "post", "/v1/admin/reload-rules", 403),
    ("ops", "post", "/v1/admin/reload-rules", 200),
    ("ops", "get", "/metrics", 200),
    ("ops", "get", "/v1/decisions", 200),
    ("ops", "post", "/v1/decisions", 403),
    # README's roles: a client reads the template registry; a WABA's write-once billing currency is an operator's.
    ("shop-backend", "get", "/v1/wabas/102290129340398/templates", 200),
    ("shop-backend", "get", "/v1/wabas/102290129340398/billing-currency", 403),
    ("ops", "get", "/v1/wabas/102290129340398/billing-currency", 404),
])
def test_each_role_reaches_its_own_endpoints_only(roles_app, example_request, key, method, path, status):
    """Clients decide, reviewers read the pages, operators reload, read metrics and export the log; any other
    call is a 403 in the error shape naming the key and the role it needs."""
    client = roles_app.test_client()
    options = {"json": example_request} if path == "/v1/decisions" and method == "post" else {}
    response = getattr(client, method)(path, headers=key_header(key), **options)
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 403:
        assert repr(key) in assert_error_shape(response, 403)["message"]


def test_a_browser_logs_in_with_a_reviewer_key_and_reads_the_pages(roles_app):
    """Without a session a page redirects to the login form (its stylesheet is open); a reviewer key starts a
    session cookie (HttpOnly, SameSite=Lax) that reaches the page asked for; logging out ends it. A client not
    asking for HTML (a script, curl's */*) gets the API's 401 naming the missing key instead of the redirect."""
    client = roles_app.test_client()
    for accept in ("application/json", "*/*"):
        refused = assert_error_shape(client.get("/ui/rules", headers={"Accept": accept}), 401)
        assert refused["errors"] == {"headers.Authorization": ["required"]}
    as_browser(client)
    response = client.get("/ui/rules?area=templates")
    assert response.status_code == 303 and response.headers["Location"] == "/ui/login?next=/ui/rules?area%3Dtemplates"
    with client.get("/static/ui/style.css") as stylesheet:
        assert stylesheet.status_code == 200
    form = client.get("/ui/login")
    assert form.status_code == 200 and 'type="password"' in form.get_data(as_text=True)

    logged_in = client.post("/ui/login", data={"key": ROLE_KEYS["ana"][1], "next": "/ui/rules?area=templates",
                                               "csrf_token": csrf_token(client, "/ui/login")})
    assert logged_in.status_code == 303 and logged_in.headers["Location"] == "/ui/rules?area=templates"
    cookie = logged_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and ROLE_KEYS["ana"][1] not in cookie
    page = client.get("/ui/rules")
    assert page.status_code == 200 and "Log out" in page.get_data(as_text=True)

    assert client.post("/ui/logout", data={"csrf_token": csrf_token(client, "/ui/rules")}).status_code == 303
    assert client.get("/ui/rules").status_code == 303


def test_the_login_form_refuses_a_repeated_next_or_key_and_a_parameter_it_does_not_take(roles_app):
    """/ui/login read the first `next` (and `key`) silently: ?next=/ui/rules&next=/ui/costs went to /ui/rules. A
    repeated one is a 422 naming it (query.next on the form's address, next or key in the posted form), as is a
    parameter the form does not take (?nxt=); no session starts."""
    client = as_browser(roles_app.test_client())
    for query, named in (("next=/ui/rules&next=/ui/costs", "query.next"), ("nxt=/ui/rules", "query.nxt")):
        body = assert_error_shape(client.get(f"/ui/login?{query}", headers={"Accept": "application/json"}), 422)
        assert list(body["errors"]) == [named], body
    for form, named in (({"next": ["/ui/rules", "/ui/costs"], "key": ROLE_KEYS["ana"][1]}, "next"),
                        ({"key": [ROLE_KEYS["ana"][1], "other"]}, "key")):
        token = csrf_token(client, "/ui/login")
        response = client.post("/ui/login", data={**form, "csrf_token": token}, headers={"Accept": "application/json"})
        assert list(assert_error_shape(response, 422)["errors"]) == [named]
        assert "Set-Cookie" not in response.headers
    assert client.get("/ui/login?next=/ui/rules").status_code == 200


@pytest.mark.parametrize("key", ["wrong-key", ROLE_KEYS["shop-backend"][1]])
def test_login_refuses_a_wrong_key_or_one_that_may_not_read_the_pages(roles_app, key):
    """A wrong key, or a decision client's, gets the form again with 401 and no session (a client not asking for
    HTML: the JSON error shape naming the key, as every page refuses)."""
    client = roles_app.test_client()
    response = client.post("/ui/login", data={"key": key, "csrf_token": csrf_token(client, "/ui/login")},
                           headers=BROWSER)
    assert response.status_code == 401 and "reviewer role" in response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert client.get("/ui/rules", headers=BROWSER).status_code == 303
    refused = client.post("/ui/login", data={"key": key, "csrf_token": csrf_token(client, "/ui/login")})
    assert assert_error_shape(refused, 401)["errors"] == {"key": [
        "This key is not valid, or may not read the pages (it needs the reviewer role)."]}


def test_login_goes_on_only_to_a_page_of_this_site(roles_app):
    """`next` naming another host (//evil.example) is ignored: no open redirect."""
    client = roles_app.test_client()
    response = client.post("/ui/login", data={"key": ROLE_KEYS["ana"][1], "next": "//evil.example/x",
                                              "csrf_token": csrf_token(client, "/ui/login")})
    assert response.headers["Location"] == "/"


def test_a_session_ends_when_its_key_is_no_longer_configured(roles_app, tmp_path):
    """The cookie names the key; once the key is removed (or rotated) the session no longer opens the pages."""
    client = roles_app.test_client()
    client.post("/ui/login", data={"key": ROLE_KEYS["ana"][1], "csrf_token": csrf_token(client, "/ui/login")})
    roles_app.config["API_KEYS"] = tuple(k for k in roles_app.config["API_KEYS"] if k.name != "ana")
    assert client.get("/ui/rules", headers=BROWSER).status_code == 303


def test_the_log_names_the_key_that_made_each_decision_never_the_secret(roles_app, example_request):
    """A client's decision is logged with its key's name; a reviewer's from the try page with theirs."""
    client = roles_app.test_client()
    decided = client.post("/v1/decisions", json=example_request, headers=key_header("shop-backend")).get_json()
    logged = client.get(f"/v1/decisions/{decided['decision_id']}", headers=key_header("shop-backend")).get_json()
    assert logged["api_key"] == "shop-backend"

    client.post("/ui/login", data={"key": ROLE_KEYS["ana"][1], "csrf_token": csrf_token(client, "/ui/login")})
    tried = client.post("/ui/try", data={"request": json.dumps(example_request), "csrf_token": csrf_token(client)})
    decision_id = tried.headers["Location"].rsplit("/", 1)[1]
    assert "API key <code>ana</code>" in client.get(f"/ui/decisions/{decision_id}").get_data(as_text=True)
    with roles_app.app_context():
        rows = {r.decision_id: r for r in decision_log.DecisionRecord.select()}
    assert (rows[decided["decision_id"]].api_key_name, rows[decision_id].api_key_name) == ("shop-backend", "ana")
    for row in rows.values():
        assert not any(key in value for _, key in ROLE_KEYS.values() for value in (row.request, row.response))


def test_without_keys_the_log_names_no_key(client, example_request):
    """Keys off: the decision is logged with api_key null."""
    decided = client.post("/v1/decisions", json=example_request).get_json()
    assert client.get(f"/v1/decisions/{decided['decision_id']}").get_json()["api_key"] is None


# CSRF, with keys off (the default): a page of another site must not decide or reload through the browser.
def count_logged(app) -> int:
    with app.app_context():
        return decision_log.DecisionRecord.select().count()


def test_a_cross_site_form_post_to_the_try_page_is_refused(app, client, example_request):
    """No CSRF token (a form on another site cannot read one): 403, and no decision is logged."""
    before = count_logged(app)
    response = client.post("/ui/try", data={"request": json.dumps(example_request)},
                           headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert_error_shape(response, 403)
    response = client.post("/ui/try", data={"request": json.dumps(example_request)})
    assert "CSRF" in assert_error_shape(response, 403)["message"]
    assert count_logged(app) == before


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}, {"Origin": "http://localhost", "Sec-Fetch-Site": "same-site"}])
def test_a_cross_site_post_to_the_admin_reload_is_refused(app, client, headers):
    """A browser's cross-site POST (form or fetch) to reload the rules: 403, nothing published."""
    body = assert_error_shape(client.post("/v1/admin/reload-rules", headers=headers), 403)
    assert "another site" in body["message"]
    # the header that decided is the one named
    assert list(body["errors"]) == ["headers.Sec-Fetch-Site" if "Sec-Fetch-Site" in headers else "headers.Origin"]
    assert client.get("/readyz").get_json()["fleet_rules_generation"] == 0


def test_a_cross_site_post_to_decisions_is_refused(client, example_request):
    """The decision API too refuses a browser's cross-site POST, whatever its content type."""
    response = client.post("/v1/decisions", json=example_request, headers={"Origin": "https://evil.example"})
    assert_error_shape(response, 403)


def test_clients_that_are_not_browsers_and_same_origin_pages_pass(client, example_request):
    """curl-like clients (no Origin) and the service's own origin are not affected."""
    assert client.post("/v1/admin/reload-rules").status_code == 200
    same = client.post("/v1/decisions", json=example_request,
                       headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200


@pytest.mark.parametrize(("headers", "named"), [
    ([("X-API-Key", KEYS[0]), ("X-API-Key", KEYS[1])], {"headers.X-API-Key"}),
    ([("X-API-Key", f"{KEYS[0]},{KEYS[1]}")], {"headers.X-API-Key"}),
    ([("Authorization", f"Bearer {KEYS[0]}"), ("Authorization", f"Bearer {KEYS[1]}")], {"headers.Authorization"}),
    ([("Authorization", f"Bearer {KEYS[0]}"), ("X-API-Key", KEYS[1])], {"headers.Authorization", "headers.X-API-Key"}),
    ([("Authorization", "Bearer wrong"), ("X-API-Key", KEYS[1])], {"headers.Authorization", "headers.X-API-Key"}),
])
def test_more_than_one_key_is_refused_naming_the_headers(locked, example_request, headers, named):
    """Two X-API-Key headers were "not a configured API key" (the server joins them with a comma), and X-API-Key
    with a different `Authorization: Bearer` key silently used the bearer one: more than one key is a 401 saying so,
    naming each header. The same key in both headers is taken, as one key in either is."""
    body = assert_error_shape(locked.post("/v1/decisions", json=example_request, headers=headers), 401)
    assert set(body["errors"]) == named and "more than one API key" in body["message"], body
    same = [("Authorization", f"Bearer {KEYS[0]}"), ("X-API-Key", KEYS[0])]
    assert locked.post("/v1/decisions", json=example_request, headers=same).status_code == 200


def test_a_configured_key_holding_a_comma_is_still_taken(tmp_path, example_request):
    """A comma inside a configured key is not taken for two headers joined."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
                      "API_KEY_HASHES": hash_key("with,comma")})
    for headers in ({"X-API-Key": "with,comma"}, {"Authorization": "Bearer with,comma"}):
        assert app.test_client().post("/v1/decisions", json=example_request, headers=headers).status_code == 200

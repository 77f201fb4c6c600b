"""API keys, body and history limits, the 500 handler and security headers."""

import pytest

from policy_service import create_app
from policy_service.contract.schemas import MAX_HISTORY
from policy_service.web.security import hash_key, key_hashes

from ..conftest import assert_error_shape
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


def test_missing_key_is_refused(locked, example_request):
    """With keys configured, a request without a key gets 401 in the error shape, with WWW-Authenticate."""
    response = locked.post("/v1/decisions", json=example_request)
    body = assert_error_shape(response, 401)
    assert "API key" in body["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"},
                                     {"Authorization": f"Basic {KEYS[0]}"}])
def test_wrong_key_is_refused(locked, example_request, headers):
    """A wrong key, or a right key in the wrong scheme, gets 401."""
    assert_error_shape(locked.post("/v1/decisions", json=example_request, headers=headers), 401)


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEYS[0]}"}, {"X-API-Key": KEYS[1]}])
def test_configured_key_is_accepted(locked, example_request, headers):
    """Either configured key, as a bearer token or in X-API-Key, is accepted."""
    assert locked.post("/v1/decisions", json=example_request, headers=headers).status_code == 200


def test_admin_reload_needs_a_key(locked):
    """The admin reload endpoint is behind the key."""
    assert_error_shape(locked.post("/v1/admin/reload-rules"), 401)
    assert locked.post("/v1/admin/reload-rules", headers={"X-API-Key": KEYS[0]}).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_probes_and_spec_need_no_key(locked, path):
    """Health probes and the spec answer without a key."""
    assert locked.get(path).status_code == 200


def test_large_body_is_refused_with_413(tmp_path, example_request):
    """A body over MAX_CONTENT_LENGTH gets 413 in the error shape before it is parsed."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
                      "MAX_CONTENT_LENGTH": 2_000})
    padded = {**example_request, "history": example_request["history"] * 100}
    assert_error_shape(app.test_client().post("/v1/decisions", json=padded), 413)


def test_too_long_history_is_refused_with_a_clear_message(client, example_request):
    """More than MAX_HISTORY messages gets 422 naming the limit and what to send instead."""
    history = [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}] * (MAX_HISTORY + 1)
    body = assert_error_shape(client.post("/v1/decisions", json={**example_request, "history": history}), 422)
    assert body["errors"] == {"history": [
        f"at most {MAX_HISTORY} messages; send only the recent history (older events cannot change the decision)"]}


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

"""The HTTP contract: valid requests get a decision; every kind of bad input gets one 4xx error shape."""

import re

import pytest

SEND = {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"}
HISTORY = [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}]
TEMPLATE = {"name": "order_update", "language": "en", "category": "utility", "status": "APPROVED"}


def assert_error_shape(response, status):
    """The one error shape: {code, status, message, errors: {field: [messages]}} and nothing else."""
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body["errors"].values())
    return body["errors"]


def test_a_decision_has_the_documented_fields(client):
    """A valid request returns every field of the contract, with a trace naming citations and confidence."""
    body = client.post("/v1/decisions", json={"send": SEND, "history": HISTORY}).get_json()
    assert {"decision_id", "decision", "required_message_type", "charge", "policy_version", "rulebook_version",
            "trace", "facts", "status", "determining_rules"} <= set(body)
    assert body["decision"] == "allow" and body["policy_version"] == "V3"
    assert set(body["charge"]) >= {"billable", "pricing_model", "category", "type", "opens_conversation",
                                   "conversation_expires_at"}
    assert all({"rule", "title", "effect", "citation", "confidence", "because"} <= set(r) for r in body["trace"])


def test_a_decision_is_logged_before_it_is_returned(client):
    """The decision_id a client sees is already retrievable from the log."""
    body = client.post("/v1/decisions", json={"send": SEND, "history": HISTORY}).get_json()
    logged = client.get(f"/v1/decisions/{body['decision_id']}").get_json()
    assert logged["response"]["decision"] == body["decision"]
    assert logged["request"]["send"]["to"] == "+55***********"


def test_a_denied_send_still_reports_the_required_type(client):
    """A free-form send after the window closed is denied, and the answer says a template is required."""
    late = {**SEND, "at": "2025-08-13T09:00:00+00:00"}
    body = client.post("/v1/decisions", json={"send": late, "history": HISTORY}).get_json()
    assert (body["decision"], body["required_message_type"], body["error_codes"]) == ("deny", "template", [131047])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"send": {**SEND, "at": "2025-08-12T12:00:00"}}, "send.at"),
        ({"send": {**SEND, "at": "yesterday"}}, "send.at"),
        ({"send": {**SEND, "to": "5511987654321"}}, "send.to"),
        ({"send": {**SEND, "to": "us.13491208655302741918"}}, "send.to"),
        ({"send": {**SEND, "to": "US."}}, "send.to"),
        ({"send": {**SEND, "marketing_messages_api": True}}, "send.marketing_messages_api"),
        ({"send": {**SEND, "type": "template", "template": TEMPLATE, "marketing_messages_api": True}},
         "send.marketing_messages_api"),
        ({"send": {**SEND, "type": "template", "template": {**TEMPLATE, "category": "marketing"},
                   "marketing_messages_api": "yes"}}, "send.marketing_messages_api"),
        ({"send": {**SEND, "category": "marketing"}}, "send.category"),
        ({"send": {**SEND, "meta_business_agent": "yes"}}, "send.meta_business_agent"),
        ({"send": SEND, "history_ref": {"phone_number_id": "1"}}, "history_ref.contact"),
        ({"send": SEND, "history": [{"direction": "inbound", "at": SEND["at"], "type": "text",
                                     "business_app": True}]}, "history.0.business_app"),
        ({"send": SEND, "history": [{"direction": "outbound", "at": SEND["at"], "type": "text",
                                     "business_app": "yes"}]}, "history.0.business_app"),
        ({"send": SEND, "history_ref": {"phone_number_id": "1", "contact": "5511987654321", "group_id": "g1"}},
         "history_ref.contact"),
        ({"send": SEND, "history_ref": {"phone_number_id": "1", "group_id": "g1"}}, "history_ref.group_id"),
        ({"send": SEND, "history_ref": {"phone_number_id": "1", "group_id": "g 1"}}, "history_ref.group_id"),
        ({"send": {**SEND, "type": "template", "template": TEMPLATE, "meta_business_agent": True}},
         "send.meta_business_agent"),
        ({"send": {**SEND, "category": "utility", "meta_business_agent": True}}, "send.meta_business_agent"),
        ({"send": {**SEND, "type": "template", "template": {**TEMPLATE, "message_send_ttl_seconds": 10}}},
         "send.template.message_send_ttl_seconds"),
        ({"send": {**SEND, "type": "template", "template": {**TEMPLATE, "message_send_ttl_seconds": "600"}}},
         "send.template.message_send_ttl_seconds"),
        ({"send": {**SEND, "type": "template", "template": TEMPLATE, "category": "utility"}}, "send.category"),
        ({"send": SEND, "context": {"direct_send_eligible": "yes"}}, "context.direct_send_eligible"),
        ({"send": SEND, "history": [{"direction": "outbound", "at": SEND["at"], "type": "call"}]}, "history.0.type"),
        ({"send": SEND, "history_ref": {"phone_number_id": "1", "contact": "US.12/34"}}, "history_ref.contact"),
        ({"send": {**SEND, "type": "fax"}}, "send.type"),
        ({"send": {**SEND, "type": "template"}}, "send.template"),
        ({"send": {**SEND, "type": "template", "template": {**TEMPLATE, "status": None}}}, "send.template.status"),
        ({"send": {**SEND, "type": "template", "template": {**TEMPLATE, "category": "promo"}}},
         "send.template.category"),
        ({"send": {**SEND, "template": TEMPLATE}}, "send.template"),
        ({"send": SEND, "extra": 1}, "extra"),
        ({"send": {**SEND, "bogus": 1}}, "send.bogus"),
        ({"send": SEND, "history": [{**HISTORY[0], "at": "2025-08-12 09:00"}]}, "history.0.at"),
        ({"send": SEND, "history": [{**HISTORY[0], "direction": "sideways"}]}, "history.0.direction"),
        ({"send": SEND, "history": [{**HISTORY[0], "status": "read"}]}, "history.0.status"),
        ({"send": SEND, "history": [{"direction": "outbound", "at": SEND["at"], "type": "template"}]},
         "history.0.template"),
        ({"send": SEND, "history": [{**HISTORY[0], "delivered_at": HISTORY[0]["at"]}]}, "history.0.delivered_at"),
        ({"send": SEND, "history": [{"direction": "outbound", "at": "2025-08-12T09:00:00+00:00", "type": "text",
                                     "delivered_at": "2025-08-12T08:59:59+00:00"}]}, "history.0.delivered_at"),
        ({"send": SEND, "history": [{"direction": "outbound", "at": "2025-08-12T09:00:00+00:00", "type": "text",
                                     "status": "failed", "delivered_at": "2025-08-12T09:01:00+00:00"}]},
         "history.0.delivered_at"),
        ({"send": SEND, "history": [{"direction": "outbound", "at": "2025-08-12T09:00:00+00:00", "type": "text",
                                     "status": "lost"}]}, "history.0.status"),
        ({"send": {**SEND, "recipient_type": "group"}}, "send.participants"),
        ({"send": {**SEND, "participants": ["+5511976540001"]}}, "send.participants"),
        ({"send": {**SEND, "recipient_type": "group", "to": "not a group id!", "participants": ["+5511976540001"]}},
         "send.to"),
        ({"send": {**SEND, "recipient_type": "group", "to": "G1", "participants": ["5511976540001"]}},
         "send.participants.0"),
        ({"send": SEND, "history": "none"}, "history"),
        ({"send": SEND, "context": {"opted_in": "yes"}}, "context.opted_in"),
        ({"send": SEND, "context": {"waba_timezone": "Mars/Olympus"}}, "context.waba_timezone"),
        ({"send": SEND, "context": {"service_messages_this_month": "12"}}, "context.service_messages_this_month"),
        ({"send": SEND, "context": {"unknown": True}}, "context.unknown"),
        ({}, "send"),
    ],
)
def test_invalid_requests_get_field_errors(client, payload, field):
    """Wrong types, naive times, unknown fields and a template send without its template are 422, field by field."""
    errors = assert_error_shape(client.post("/v1/decisions", json=payload), 422)
    assert field in errors, errors


@pytest.mark.parametrize(("member", "value"), [
    ("language", "!!"), ("language", "en US"), ("language", "en\n"), ("language", "EN"), ("language", "en_us"),
    ("language", "english"), ("name", " "), ("name", "Order Update"), ("name", "order-update"), ("name", "a" * 513),
])
def test_a_template_name_or_language_meta_would_refuse_is_a_422_naming_it(client, member, value):
    """Meta's rules: a template name is lowercase letters, digits and underscores (at most 512), a language one of
    Meta's codes (en, en_US, pt_BR, fil). "!!", "en US", "en\n" and a blank name were decided (200); they are a 422
    naming the field and saying what is expected, in a send's template and a history's alike."""
    send = {**SEND, "type": "template", "template": {**TEMPLATE, member: value}}
    errors = assert_error_shape(client.post("/v1/decisions", json={"send": send}), 422)
    assert list(errors) == [f"send.template.{member}"] and "Meta" in errors[f"send.template.{member}"][0], errors
    past = {"direction": "outbound", "at": "2025-08-12T09:00:00+00:00", "type": "template",
            "template": {**TEMPLATE, member: value}}
    errors = assert_error_shape(client.post("/v1/decisions", json={"send": SEND, "history": [past]}), 422)
    assert list(errors) == [f"history.0.template.{member}"], errors


@pytest.mark.parametrize("language", ["en", "en_US", "pt_BR", "zh_CN", "fil", "prs_AF"])
def test_metas_language_codes_are_taken(client, language):
    """Every shape of Meta's language codes is decided as before."""
    send = {**SEND, "type": "template", "template": {**TEMPLATE, "language": language, "name": "a" * 512}}
    assert client.post("/v1/decisions", json={"send": send}).status_code == 200


@pytest.mark.parametrize("body", ["{not json", "", "[1, 2]", "null", "42"])
def test_malformed_bodies_are_client_errors(client, body):
    """Malformed JSON or a body that is not an object is a 4xx in the same shape, never a 500."""
    response = client.post("/v1/decisions", data=body, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert_error_shape(response, response.status_code)


def test_unknown_decision_is_404(client):
    """Asking for a decision that was never made is a 404 in the error shape; a long id is not echoed whole."""
    assert_error_shape(client.get("/v1/decisions/nope"), 404)
    long_id = client.get("/v1/decisions/" + "a" * 10_000)
    assert_error_shape(long_id, 404)
    assert len(long_id.json["message"]) < 200 and "(10,000 characters)" in long_id.json["message"]


def test_unknown_route_is_404_in_the_error_shape(client):
    """Even a wrong URL answers in the one error shape, naming the path."""
    errors = assert_error_shape(client.get("/v1/nothing-here"), 404)
    assert errors == {"path": ["'/v1/nothing-here' is not a path of this service"]}


WABA = "102290129340398"
# (method, path, JSON body, the errors' keys): an unknown or impossible value of each path parameter.
UNKNOWN_IN_PATH = [
    ("get", "/v1/decisions/nope", None, {"path.decision_id"}),
    ("get", "/v1/wabas/not-a-waba/templates", None, {"path.waba_id"}),
    ("post", "/v1/wabas/not-a-waba/message_templates", {"data": []}, {"path.waba_id"}),
    ("get", f"/v1/wabas/{WABA}/templates/nobody/en", None, {"path.name"}),
    ("get", "/v1/wabas/not-a-waba/templates/nobody/en", None, {"path.waba_id"}),
    ("get", f"/v1/wabas/{WABA}/billing-currency", None, {"path.waba_id"}),
    ("put", "/v1/wabas/not-a-waba/billing-currency", {"currency": "USD"}, {"path.waba_id"}),
    ("get", "/v1/admin/webhooks/424242", None, {"path.payload_id"}),
    ("get", "/v1/admin/webhooks/not-a-number", None, {"path"}),
    ("get", "/static/no-such-file.css", None, {"path"}),
]


def test_an_unknown_path_parameter_is_a_404_naming_it(app, client):
    """Every path parameter of the API, given a value that names nothing, is a 404 whose errors name it as the
    API names its locations (path.decision_id, as query.from); a value the route's converter refuses (not a
    number) names the path. Every route with a path parameter is tried."""
    for method, path, body, keys in UNKNOWN_IN_PATH:
        errors = assert_error_shape(getattr(client, method)(path, json=body), 404)
        assert set(errors) == keys and all(errors[key][0] for key in keys), (path, errors)
    tried = {(method.upper(), app.url_map.bind("").match(path, method.upper())[0])
             for method, path, _, _ in UNKNOWN_IN_PATH if "not-a-number" not in path}
    served = {(method, rule.endpoint) for rule in app.url_map.iter_rules() if rule.arguments
              and not rule.endpoint.startswith(("ui.", "home.")) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served <= tried, served - tried


# Routes that take whatever query string comes: probes and documents (a load balancer's or a browser's cache-busting
# parameter must not fail them), Meta's webhook receiver (Meta's to call), the pages and the login form.
TAKE_ANY_QUERY = ("operations.healthz", "operations.readyz", "operations.prometheus_metrics", "api-docs.", "webhooks.",
                  "ui.", "home.", "login.", "static")


def test_every_api_route_refuses_a_query_parameter_it_does_not_take(app, client):
    """A misspelled or unknown query parameter is a 422 naming it (query.<name>) on every API route, not silently
    ignored (GET /v1/decisions/{id}?foo=1, the webhook payload, a WABA's billing currency and the template import
    answered as if it were not there). Every route declares its query parameters with unknown=RAISE; the GET routes
    are also called with one."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(TAKE_ANY_QUERY):
            continue
        view = app.view_functions[rule.endpoint]
        declared = [p for p in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
                    if p["in"] in ("query", "querystring")]
        assert declared, f"{rule.endpoint} declares no query arguments: unknown ones would be ignored"
        if "GET" in rule.methods:
            path = rule.rule
            for name, converter in rule._converters.items():
                path = re.sub(rf"<[^>]*{name}>", "1" if "Integer" in type(converter).__name__ else "x", path)
            errors = assert_error_shape(client.get(f"{path}?zz_unknown=1"), 422)
            assert "query.zz_unknown" in errors, (path, errors)
    for method, path, body in [("put", "/v1/wabas/102290129340398/billing-currency", {"currency": "USD"}),
                               ("post", "/v1/wabas/102290129340398/message_templates", {"data": []}),
                               ("post", "/v1/costs/forecast", {"currency": "USD", "at": "2026-08-12T12:00:00Z",
                                                              "lines": [{"country": "BR", "category": "utility",
                                                                         "count": 1}]}),
                               ("post", "/v1/admin/reload-rules", None)]:
        errors = assert_error_shape(getattr(client, method)(f"{path}?zz_unknown=1", json=body), 422)
        assert "query.zz_unknown" in errors, (path, errors)


def test_a_method_a_route_does_not_take_is_a_405_naming_it_and_the_allowed_ones(app, client):
    """On every route, a method it does not take is a 405 whose errors name the method and the methods the route
    takes, which the Allow header also lists (pages answer a client that does not ask for HTML the same way)."""
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name, converter in rule._converters.items():
            path = re.sub(rf"<[^>]*{name}>", "1" if "Integer" in type(converter).__name__ else "x", path)
        wrong = next(method for method in ("PATCH", "DELETE", "PUT") if method not in rule.methods)
        response = client.open(path, method=wrong)
        errors = assert_error_shape(response, 405)
        allowed = sorted(method.strip() for method in response.headers["Allow"].split(","))
        assert errors == {"method": [f"{wrong} is not allowed here; allowed: {', '.join(allowed)}"]}, path
        assert wrong in response.json["message"] and "not allowed" in response.json["message"]


def test_a_method_the_batch_path_does_not_take_is_its_405_not_a_decision_lookup(client):
    """GET /v1/decisions/batch was read as the decision id 'batch' (a 404 "no decision with id 'batch'") and a PUT
    there listed GET among the path's methods. Every method the batch route does not take (GET, HEAD, PUT, DELETE)
    is now a 405 naming only what it takes (OPTIONS, POST); ids that merely start or end with "batch" still look a
    decision up."""
    for method in ("GET", "HEAD", "PUT", "DELETE", "PATCH"):
        response = client.open("/v1/decisions/batch", method=method)
        assert response.status_code == 405, method
        assert sorted(m.strip() for m in response.headers["Allow"].split(",")) == ["OPTIONS", "POST"], method
        if method != "HEAD":
            errors = assert_error_shape(response, 405)
            assert errors == {"method": [f"{method} is not allowed here; allowed: OPTIONS, POST"]}, method
    for other in ("batch2", "xbatch", "Batch"):
        assert "path.decision_id" in assert_error_shape(client.get(f"/v1/decisions/{other}"), 404), other


def test_engine_failure_fails_closed_over_http(client, app, monkeypatch):
    """If the engine fails, the service answers deny with status error (HTTP 200), never allow or a 500."""
    from policy_service.core.errors import EngineError

    def broken(_facts):
        raise EngineError("engine down")

    monkeypatch.setattr(app.extensions["policy_service"].engine, "match", broken)
    body = client.post("/v1/decisions", json={"send": SEND, "history": HISTORY}).get_json()
    assert (body["decision"], body["status"]) == ("deny", "error")
    assert "engine down" in body["error"]


def test_explain_full_says_why_other_rules_did_not_apply(client):
    """With ?explain=full, each rule in force that did not apply lists the failed tests and actual values."""
    body = client.post("/v1/decisions?explain=full", json={"send": SEND, "history": HISTORY}).get_json()
    closed = next(w for w in body["why_not"] if w["rule"] == "CSW-2.freeform-closed")
    assert {"fact": "csw_open", "test": "eq", "wanted": False, "actual": True} in closed["failed"]
    assert all(w["rule"] not in body["determining_rules"] for w in body["why_not"])


def test_explain_is_off_by_default_and_validated(client):
    """Without the parameter no why_not is computed; an unknown value is a 422 field error."""
    assert client.post("/v1/decisions", json={"send": SEND, "history": HISTORY}).get_json()["why_not"] == []
    assert "query.explain" in assert_error_shape(client.post("/v1/decisions?explain=yes", json={"send": SEND}), 422)


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1999-12-31T23:59:59+00:00"])
def test_timestamps_outside_the_supported_range_are_field_errors(client, at):
    """A time no WhatsApp send can have (it would overflow in a WABA's zone) is a 422, not an error-deny."""
    errors = assert_error_shape(client.post("/v1/decisions", json={"send": {**SEND, "at": at}}), 422)
    assert "send.at" in errors


def test_a_nul_character_in_a_request_is_a_field_error(client):
    """A NUL in a stored-history reference (looked up in the database) is a 422 on that field."""
    payload = {"send": SEND, "history_ref": {"phone_number_id": "10654\u0000", "contact": "5511987654321"}}
    errors = assert_error_shape(client.post("/v1/decisions", json=payload), 422)
    assert errors == {"history_ref.phone_number_id": ["must not contain a NUL character"]}


def test_a_decision_id_with_a_nul_character_is_unknown(client):
    """An id holding a NUL (which PostgreSQL cannot compare) is a 404 on the API and on the page, not a 500."""
    assert_error_shape(client.get("/v1/decisions/ab%00c"), 404)
    assert client.get("/ui/decisions/ab%00c").status_code == 404


def test_a_billable_send_returns_its_price_and_a_bad_pricing_context_is_a_field_error(client):
    """charge.price names amount, card, market and tier; an unknown currency code or a negative volume is a 422."""
    send = {"at": "2026-05-12T10:00:00+00:00", "to": "+5511987654321", "type": "template", "template": TEMPLATE}
    body = client.post("/v1/decisions", json={"send": send, "context": {"volume_messages_this_month": 250_000}})
    price = body.get_json()["charge"]["price"]
    assert (price["amount"], price["currency"], price["market"], price["basis"]) == (
        "0.0065", "USD", "Brazil", "per delivered message")
    assert price["rate_card"]["id"] == "meta-usd-2026-04-01" and price["tier"]["number"] == 2
    for context, field in (({"currency": "usd"}, "context.currency"),
                           ({"volume_messages_this_month": -1}, "context.volume_messages_this_month"),
                           ({"marketing_max_price": "-1"}, "context.marketing_max_price")):
        assert field in assert_error_shape(client.post("/v1/decisions", json={"send": send, "context": context}), 422)


def test_rate_cards_setting_prices_with_the_business_csv(database_url, tmp_path):
    """With POLICY_RATE_CARDS naming Meta's CSV, prices come from it (the card id says so)."""
    from policy_service import create_app, store

    from ..core.test_rates import META_CSV

    (tmp_path / "USD.csv").write_text(META_CSV.replace("Brazil,USD,0.0625", "Brazil,USD,0.0700"))
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "RATE_CARDS": str(tmp_path / "USD.csv")})
    try:
        send = {"at": "2026-05-12T10:00:00+00:00", "to": "+5511987654321", "type": "template",
                "template": {**TEMPLATE, "category": "marketing"}}
        price = app.test_client().post("/v1/decisions", json={"send": send}).get_json()["charge"]["price"]
        assert (price["amount"], price["rate_card"]["id"]) == ("0.0700", "csv-usd-2026-04-01")
    finally:
        store.database_proxy.close()


def test_a_group_send_reports_the_participants_it_would_bill(client):
    """A marketing template to a group of three: billed per participant at each one's market, line by line."""
    group = {"at": "2026-05-10T12:00:00+00:00", "to": "Y2FwaV9ncm91cDpHMQ", "recipient_type": "group",
             "participants": ["+5511976540001", "+5511976540002", "+4915112345678"], "type": "template",
             "template": {**TEMPLATE, "category": "marketing"}}
    body = client.post("/v1/decisions", json={"send": group, "history": []}).get_json()
    assert body["decision"] == "allow", body
    assert (body["charge"]["category"], body["charge"]["participants"]) == ("group_marketing", 3)
    assert (body["charge"]["price"]["amount"], body["charge"]["price"]["market"]) == ("0.2615", None)
    assert [(line["country"], line["market"], line["amount"]) for line in body["charge"]["price_lines"]] == [
        ("BR", "Brazil", "0.0625"), ("BR", "Brazil", "0.0625"), ("DE", "Germany", "0.1365")]
    assert any(entry["rule"] == "PMP-9.group-marketing" or "per participant" in entry["because"]
               for entry in body["trace"] if entry["effect"] == "price")
    earlier = client.post("/v1/decisions", json={"send": {**group, "at": "2025-11-10T12:00:00+00:00"},
                                                 "history": []}).get_json()
    assert earlier["charge"]["price"] is None
    assert earlier["charge"]["price_reason"].startswith("3 of 3 participants have no price")
    assert earlier["charge"]["price_lines"][0]["reason"].startswith("no USD rate card for 2025-11-10")
    individual = client.post("/v1/decisions", json={"send": SEND, "history": HISTORY}).get_json()
    assert individual["charge"]["participants"] is None


def test_a_repeated_group_participant_is_a_422_naming_the_repeat(client):
    """A participant named twice was billed twice (allow, participants 3, three price lines for one number): the
    repeat is a 422 naming it and the entry it repeats, on a single decision and in a batch (requests.N)."""
    group = {"at": "2026-05-10T12:00:00+00:00", "to": "Y2FwaV9ncm91cDpHMQ", "recipient_type": "group",
             "participants": ["+5511987654321", "+4915112345678", "+5511987654321", "+5511987654321"],
             "type": "template", "template": {**TEMPLATE, "category": "marketing"}}
    refused = client.post("/v1/decisions", json={"send": group, "history": []})
    assert refused.status_code == 422, refused.get_json()
    assert {key: value for key, value in refused.json["errors"].items() if "participants" in key} == {
        "send.participants.2": ["repeats participants.0"], "send.participants.3": ["repeats participants.0"]}
    batch = client.post("/v1/decisions/batch", json={"requests": [{"send": group}]})
    assert batch.status_code == 422 and "requests.0.send.participants.2" in batch.json["errors"], batch.json
    distinct = {**group, "participants": ["+5511987654321", "+4915112345678"]}
    assert client.post("/v1/decisions", json={"send": distinct}).json["charge"]["participants"] == 2


def test_a_meta_business_agent_reply_has_no_price_it_is_billed_per_token(client):
    """Issue 23: a reply written by Meta Business Agent (from 2026-08-01) is billable but priced per token:
    price null with that reason (rules/rates/categories.yaml PMP26-4.business-agent), never a card rate."""
    send = {"at": "2026-11-10T10:00:00+00:00", "to": "+5511987654321", "type": "text", "meta_business_agent": True}
    history = [{"direction": "inbound", "at": "2026-11-10T09:00:00+00:00", "type": "text"}]
    body = client.post("/v1/decisions", json={"send": send, "history": history,
                                              "context": {"currency": "BRL"}}).get_json()
    assert (body["charge"]["category"], body["charge"]["billable"], body["charge"]["price"]) == (
        "business_agent", True, None)
    assert body["charge"]["price_reason"].startswith("a Meta Business Agent reply is billed per token")


def test_an_empty_query_string_is_loaded_once_per_schema_and_answered_as_marshmallow_would(app):
    """Most requests send no query parameter: the arguments parser answers an empty query string from what the
    schema loaded the first time (a fresh copy each time), where that is a constant; a schema with a required
    parameter, a hook or a mutable default is loaded by marshmallow every time (its 422 included)."""
    from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load

    from policy_service.contract.schemas import EXPLAIN
    from policy_service.web.api import JsonBodyParser

    class Required(Schema):
        day = fields.String(required=True)

    class Hooked(Schema):
        day = fields.String()

        @pre_load
        def stamp(self, data, **_):
            return {**data, "day": "hooked"}

    class Listed(Schema):
        days = fields.List(fields.String(), load_default=list)

    class Made(Schema):
        day = fields.String(load_default="today")

        @post_load
        def make(self, data, **_):
            return tuple(data.items())

    def reraise(error, *_, **__):
        raise error

    parser = JsonBodyParser(error_handler=reraise)
    with app.test_request_context("/v1/decisions", method="POST"):
        first = parser.parse(EXPLAIN, location="query", unknown=RAISE)
        again = parser.parse(EXPLAIN, location="query", unknown=RAISE)
        assert first == again == EXPLAIN.load({}) and first is not again
        again["explain"] = "changed"
        assert parser.parse(EXPLAIN, location="query", unknown=RAISE) == EXPLAIN.load({})
        assert parser.parse(Hooked, location="query") == {"day": "hooked"}
        one, two = parser.parse(Listed, location="query"), parser.parse(Listed, location="query")
        assert one == two == {"days": []} and one["days"] is not two["days"]
        assert parser.parse(Made, location="query") == parser.parse(Made, location="query") == (("day", "today"),)
        for _ in range(2):
            with pytest.raises(ValidationError):
                parser.parse(Required, location="query")
    with app.test_request_context("/v1/decisions?explain=full", method="POST"):
        assert parser.parse(EXPLAIN, location="query", unknown=RAISE) == {"explain": "full"}
    with app.test_request_context("/v1/decisions?explian=full", method="POST"), pytest.raises(ValidationError):
        parser.parse(EXPLAIN, location="query", unknown=RAISE)


# Meta's phone number ids are digits: each of these named no stored number, so the business's stored state (a
# marketing opt-out, a paused template) was silently not applied and the send was allowed.
NOT_PHONE_NUMBER_IDS = (" 106540352242922", "106540352242922\n", "106540352242922\u200b", "abc", "1065-4035",
                        "\u0661\u0660\u0666\u0665", "+106540352242922", "1" * 65)


@pytest.mark.parametrize("value", NOT_PHONE_NUMBER_IDS)
def test_a_phone_number_id_that_is_not_digits_is_a_422_naming_it(client, value):
    """send.phone_number_id and history_ref.phone_number_id, alone and in a batch: a 422 naming the field and
    saying what Meta's ids are, never a decision made without the stored state."""
    for payload, field in (
            ({"send": {**SEND, "phone_number_id": value}, "history": HISTORY}, "send.phone_number_id"),
            ({"send": SEND, "history_ref": {"phone_number_id": value, "contact": "5511987654321"}},
             "history_ref.phone_number_id")):
        errors = assert_error_shape(client.post("/v1/decisions", json=payload), 422)
        assert list(errors) == [field] and "digits" in errors[field][0], errors
        errors = assert_error_shape(client.post("/v1/decisions/batch", json={"requests": [
            {"send": SEND, "history": HISTORY}, payload]}), 422)
        assert list(errors) == [f"requests.1.{field}"], errors


@pytest.mark.parametrize("url", [
    "/v1/decisions?phone_number_id={}",
    "/v1/reconciliation?phone_number_id={}",
    "/v1/counts?phone_number_id={}&categories=service&from=2025-08-01T00:00:00Z&to=2025-09-01T00:00:00Z",
])
def test_a_phone_number_id_filter_that_is_not_digits_is_a_422_naming_it(client, url):
    """The stored-data queries take the same digits: a mistyped filter is a 422 on query.phone_number_id, not an
    empty answer that reads as "nothing happened"."""
    from urllib.parse import quote

    for value in NOT_PHONE_NUMBER_IDS:
        errors = assert_error_shape(client.get(url.format(quote(value))), 422)
        assert list(errors) == ["query.phone_number_id"] and "digits" in errors["query.phone_number_id"][0], errors
    assert client.get(url.format("106540352242922")).status_code == 200


def test_a_number_with_no_country_calling_code_is_a_422_on_every_path(client):
    """"+99912345678" was decided (marketing allowed, price null, "the recipient's country is unknown"): a number a
    client writes begins with an assigned calling code (core.identities.not_dialable), as a BSUID with a country, in
    send.to, history_ref.contact, a group's participants, a forecast line's `to` and the contact filters."""
    template = {**SEND, "type": "template", "template": {**TEMPLATE, "category": "marketing"}}
    for payload, field in (
            ({"send": {**template, "to": "+99912345678"}}, "send.to"),
            ({"send": SEND, "history_ref": {"phone_number_id": "1", "contact": "99912345678"}},
             "history_ref.contact"),
            ({"send": {**SEND, "recipient_type": "group", "to": "G1", "participants": ["+5511976540001",
                                                                                      "+99912345678"]}},
             "send.participants.1")):
        errors = assert_error_shape(client.post("/v1/decisions", json=payload), 422)
        assert list(errors) == [field] and "calling code" in errors[field][0], errors
    forecast = client.post("/v1/costs/forecast", json={"currency": "BRL", "at": "2026-11-10T12:00:00Z", "lines": [
        {"to": "+99912345678", "category": "marketing", "count": 1}]})
    assert list(assert_error_shape(forecast, 422)) == ["lines.0.to"]
    for url in ("/v1/decisions?contact=%2B99912345678",
                "/v1/counts?phone_number_id=1&categories=service&from=2025-08-01T00:00:00Z"
                "&to=2025-09-01T00:00:00Z&contact=99912345678",
                "/v1/reconciliation?contact=99912345678"):
        errors = assert_error_shape(client.get(url), 422)
        assert list(errors) == ["query.contact"], (url, errors)


def test_what_parsing_kept_of_a_body_is_let_go_when_its_request_ends(client):
    """A history parse_json kept for the log (its typed messages and JSON text) is let go at the end of the request,
    also when the request is refused after parsing (here: an unknown template category), so no thread holds its last
    body (up to ~6 MB for 10,000 events) until it parses the next."""
    from policy_service.contract import fastload, parsing

    history = [{"direction": "inbound", "at": "2026-09-15T09:00:00Z", "type": "text"}] * 300
    body = {"send": {"at": "2026-09-15T12:00:00Z", "to": "+5511987654321", "type": "template",
                     "template": {"name": "x", "language": "en", "category": "no_such_category", "status": "APPROVED"}},
            "history": history}
    answer = client.post("/v1/decisions", json=body)
    assert answer.status_code == 422, answer.get_json()
    assert parsing._DUMPED.get() is None and fastload._TYPED.get() is None
    body["send"]["template"]["category"] = "utility"
    assert client.post("/v1/decisions", json=body).status_code == 200
    assert parsing._DUMPED.get() is None and fastload._TYPED.get() is None


def test_a_path_with_a_doubled_slash_is_a_404_in_the_error_shape(client, example_request):
    """GET /v1//decisions was Werkzeug's 308 redirect with an HTML body: a doubled slash names no path, a 404 in the
    one JSON error shape naming `path` (an HTML page to a browser under /ui/), for every method."""
    from ..conftest import BROWSER, assert_error_shape

    for answer in (client.get("/v1//decisions"), client.post("/v1//decisions", json=example_request),
                   client.get("/v1/wabas//templates"), client.get("/ui//decisions")):
        assert list(assert_error_shape(answer, 404)["errors"]) == ["path"]
    page = client.get("/ui//decisions", headers=BROWSER)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert all(rule.merge_slashes is False for rule in client.application.url_map.iter_rules())

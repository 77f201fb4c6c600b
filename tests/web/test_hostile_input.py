"""Every class of hostile body against every input path: a clear 4xx naming the field, before any schema loads it.

The paths are POST /v1/decisions, POST /v1/decisions/batch, the /ui/try form, Meta's signed webhook and
`policy-service check`; the classes are the reproductions of issue 12 (deep nesting, a 5,000-digit integer, a
lone surrogate, a NUL, 300,000 and 1,000,000 history items) and 1,000 wrong items (a bounded error list).
`marshmallow.Schema.load` is made to fail while the hostile body is sent, which proves each refusal happens
before deserialization.
"""

import json
import re
from html import unescape

import marshmallow
import pytest
from click.testing import CliRunner

from policy_service import cli
from policy_service.contract.parsing import MAX_ERRORS

from ..conftest import BROWSER, assert_error_shape, csrf_token
from ..meta_payloads import inbound_text, signed

HOLE = "@@hole@@"
SEND = {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"}
# Each path's body with a string field and an array field the hostile fragment replaces, and their names.
DECISION = {"send": SEND, "history_ref": {"phone_number_id": HOLE, "contact": "5511987654321"}}
DECISION_ITEMS = {"send": SEND, "history": HOLE}
WEBHOOK = inbound_text(HOLE, 1754989200)
WEBHOOK_ITEMS = {**WEBHOOK, "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
    "metadata": {"phone_number_id": "1"}, "messages": HOLE}}]}]}
PATHS = {
    "decisions": (DECISION, DECISION_ITEMS, "history_ref.phone_number_id", "history"),
    "batch": ({"requests": [DECISION]}, {"requests": [DECISION_ITEMS]}, "requests.0.history_ref.phone_number_id",
              "requests.0.history"),
    "ui_try": (DECISION, DECISION_ITEMS, "history_ref.phone_number_id", "history"),
    "webhook": (WEBHOOK, WEBHOOK_ITEMS, "entry.0.changes.0.value.messages.0.id", "entry.0.changes.0.value.messages"),
    "cli_check": (DECISION, DECISION_ITEMS, "history_ref.phone_number_id", "history"),
}
# class -> (fragment, whether it replaces the array, expected status, words the error must contain)
CLASSES = {
    "nested_600": ("[" * 600 + "]" * 600, False, 400, "nested deeper than"),
    "nested_200000": ("[" * 200_000 + "]" * 200_000, False, 400, "nested deeper than"),
    "integer_5000_digits": ("9" * 5_000, False, 422, "a number of at most"),
    "lone_surrogate": ('"\\ud800"', False, 422, "lone surrogate"),
    "nul": ('"a\\u0000b"', False, 422, "NUL"),
    "items_300000": ("[" + ",".join(["0"] * 300_000) + "]", True, 422, "at most"),
    "items_1000000": ("[" + ",".join(["0"] * 1_000_000) + "]", True, 422, "at most"),
}


def body_with(document, fragment):
    return json.dumps(document).replace(json.dumps(HOLE), fragment)


def send(path, client, body):
    """(status, errors {field: [messages]}) as each path reports them."""
    if path in ("decisions", "batch"):
        url = "/v1/decisions" if path == "decisions" else "/v1/decisions/batch"
        response = client.post(url, data=body, content_type="application/json")
        return response.status_code, assert_error_shape(response, response.status_code)["errors"], response
    if path == "webhook":
        raw, headers = signed(body.encode())
        response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
        return response.status_code, assert_error_shape(response, response.status_code)["errors"], response
    if path == "ui_try":
        response = client.post("/ui/try", data={"request": body, "csrf_token": csrf_token(client)}, headers=BROWSER)
        html = response.get_data(as_text=True)
        items = re.findall(r"<li><code>([^<]*)</code>: ([^<]*)</li>", html)
        errors = {}
        for field, message in items:
            errors.setdefault(unescape(field), []).append(unescape(message))
        return response.status_code, errors, response
    # --json: the CLI prints the API's error body (field paths as the API names them) and exits 1.
    result = CliRunner().invoke(cli.main, ["check", "--json", "-"], input=body)
    assert result.exit_code == 1, result.output
    refusal = json.loads(result.output)
    assert set(refusal) == {"code", "status", "message", "errors"}, refusal
    return None, refusal["errors"], result


@pytest.fixture
def no_deserialization(monkeypatch):
    """While it is active, any schema load fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a hostile body reached deserialization")

    def activate():
        monkeypatch.setattr(marshmallow.Schema, "load", refuse)
    return activate


@pytest.mark.parametrize("kind", CLASSES)
@pytest.mark.parametrize("path", PATHS)
def test_hostile_body_is_refused_before_deserialization(client, no_deserialization, path, kind):
    """Each class of hostile body gets its 4xx naming the field (400 for nesting), on every input path; in a
    webhook, a hostile value only makes its event unreadable, and a too long array its change."""
    fragment, replaces_array, status, words = CLASSES[kind]
    string_body, array_body, field, array_field = PATHS[path]
    body = body_with(array_body if replaces_array else string_body, fragment)
    if path == "webhook" and kind in ("integer_5000_digits", "lone_surrogate", "nul"):
        # A webhook's bad value costs only the event holding it (Meta retries a refused payload whole): the
        # payload is stored, the event skipped and listed naming the field.
        raw, headers = signed(body.encode())
        response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
        assert response.status_code == 200 and response.json["new"] == 0
        [skipped] = response.json["skipped"]
        assert skipped["path"] == "entry.0.changes.0.value.messages.0"
        assert any(words in message for message in skipped["reason"]["id"])
        return
    if path == "webhook" and replaces_array:
        # An array too long for one change costs only that change (it refused the payload whole, losing the good
        # events of its other changes): stored, the change skipped and listed, the answer small.
        raw, headers = signed(body.encode())
        response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
        assert response.status_code == 200 and response.json["new"] == 0, response.json
        [skipped] = response.json["skipped"]
        assert skipped["path"] == "entry.0.changes.0" and words in skipped["reason"]["_"][0], skipped
        assert len(response.get_data()) < 2_000
        return
    no_deserialization()
    code, errors, response = send(path, client, body)
    if code is not None:
        assert code == (status if path != "ui_try" else 422)
    expected_field = array_field if replaces_array else ("_request" if status == 400 else field)
    assert expected_field in errors, errors
    assert any(words in message for message in errors[expected_field])
    if path in ("decisions", "batch", "webhook"):
        # The error body stays small whatever the body's size (the 300,000-item one was 17.7 MB).
        assert len(response.get_data()) < 2_000


def test_a_thousand_unreadable_webhook_events_give_a_bounded_skipped_list(client):
    """A webhook's unreadable events are skipped (200, issue 16: Meta retries whole payloads on errors);
    the answer lists the first MAX_ERRORS and counts the rest, so it stays small."""
    item = {"from": "1", "id": "w", "timestamp": "not a time", "type": "text"}
    raw, headers = signed(body_with(WEBHOOK_ITEMS, json.dumps([item] * 1_000)).encode())
    response = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 200
    assert len(response.json["skipped"]) == MAX_ERRORS and response.json["skipped_not_listed"] == 1_000 - MAX_ERRORS
    assert len(response.get_data()) < 10_000


@pytest.mark.parametrize("path", ["decisions", "batch", "ui_try"])
def test_a_thousand_wrong_items_give_a_bounded_error_list(client, path):
    """Schema errors on every item of a long array list the first MAX_ERRORS fields and count the rest."""
    body = body_with(PATHS[path][1], json.dumps([{"direction": "sideways"}] * 1_000))
    code, errors, response = send(path, client, body)
    assert code == 422
    assert len(errors) == MAX_ERRORS + 1 and "more fields with errors are not listed" in errors["_more"][0]
    if path != "ui_try":  # the page shows the submitted text back in its form
        assert len(response.get_data()) < 10_000


def test_a_json_array_body_is_a_422_saying_an_object_is_expected(client):
    """Not marshmallow's "_schema: Invalid input type.": the one error shape, saying what the body must be."""
    for path, body in (("/v1/decisions", b"[1]"), ("/v1/decisions/batch", b"[]"), ("/v1/decisions", b'"send"')):
        answer = client.post(path, data=body, content_type="application/json")
        assert answer.status_code == 422 and answer.json["errors"] == {"_schema": ["must be a JSON object"]}
    raw, headers = signed(b"[]")  # a signed webhook body that is a list: worded alike
    answer = client.post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert answer.status_code == 422 and answer.json["errors"] == {"_schema": ["must be a JSON object"]}


# Query values at the edges: days a report moves past (year 9999 + 1 day overflowed: a 500 on /v1/costs and the
# decision log page), numbers past every bound, a NUL, a long text.
EDGE_VALUES = ("9999-12-31", "0001-01-01", "2026-02-30", "99999999999999999999999999", "-1", "1e30", "\x00",
               "a" * 5_000)
QUERY_KEYS = ("from", "to", "page", "page_size", "contact", "phone_number_id", "group_by", "currency", "decision",
              "rule", "policy_version")


def test_no_query_value_at_the_edge_is_a_500(app, client):
    """Every GET route of the app (API, pages, operations) given each query key the app reads, alone and as a
    from/to pair, with each edge value: never a server error (the test app raises instead of answering 500)."""
    routes = sorted({rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and "<" not in rule.rule})
    assert {"/v1/costs", "/ui/decisions", "/v1/reconciliation", "/ui/costs"} <= set(routes)
    statuses = set()
    for route in routes:
        for value in EDGE_VALUES:
            for query in ({"from": value, "to": value}, *({key: value} for key in QUERY_KEYS)):
                status = client.get(route, query_string=query).status_code
                assert status < 500, (route, query, status)
                statuses.add(status)
    assert 422 in statuses  # the values reached the schemas (not all refused before them)


@pytest.mark.parametrize("route", ["/v1/costs", "/ui/costs", "/ui/decisions"])
def test_a_day_past_every_report_is_refused_naming_it(client, route):
    """from/to of year 9999 (a day after it overflows) is a 422 naming the parameter, on the API and the pages."""
    response = client.get(route, query_string={"from": "2026-01-01", "to": "9999-12-31"})
    assert response.status_code == 422
    assert "2000-01-01 and 2999-12-31" in response.get_data(as_text=True)


COUNTS = {"phone_number_id": "106540352242922", "categories": "marketing"}


@pytest.mark.parametrize("route, base, early, late, wrong", [
    ("/v1/decisions", {}, "2026-01-02T00:00:00+00:00", "2026-01-01T00:00:00+00:00", "0001-01-01T00:00:00+00:00"),
    ("/v1/counts", COUNTS, "2026-01-02T00:00:00+00:00", "2026-01-01T00:00:00+00:00", "9999-12-31T00:00:00+00:00"),
    ("/ui/decisions", {}, "2026-01-02", "2026-01-01", "0001-01-01"),
])
def test_a_to_before_from_or_a_time_past_the_years_is_a_422_naming_it(client, route, base, early, late, wrong):
    """GET /v1/decisions answered to-before-from with 200 [] (as if nothing was logged) and took the year 1 and
    9999, while /v1/costs refused both: every time filter refuses them alike, naming the parameter."""
    reversed_range = client.get(route, query_string={**base, "from": early, "to": late})
    assert reversed_range.status_code == 422 and "must not be before from" in reversed_range.get_data(as_text=True)
    for key in ("from", "to"):
        outside = client.get(route, query_string={**base, "from": early, "to": early, key: wrong})
        assert outside.status_code == 422 and "2000-01-01 and 2999-12-31" in outside.get_data(as_text=True), key
    if route.startswith("/v1/"):
        assert list(reversed_range.get_json()["errors"]) == ["query.to"]


def test_a_key_given_twice_cannot_turn_a_deny_into_an_allow(client):
    """`marketing_opt_out` true then false in one object: JSON parsers keep the last (allow) where something in
    front of the service may read the first (deny). A 422 naming the key, on the decision endpoint, the batch and
    the pages' form alike; the same request with the key once is decided."""
    once = ('{"send": {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "template", '
            '"template": {"name": "promo", "language": "en", "category": "marketing", "status": "APPROVED"}}, '
            '"context": {"marketing_opt_out": true}}')
    twice = once.replace('"marketing_opt_out": true', '"marketing_opt_out": true, "marketing_opt_out": false')
    headers = {"Content-Type": "application/json"}
    assert client.post("/v1/decisions", data=once, headers=headers).json["decision"] == "deny"
    body = assert_error_shape(client.post("/v1/decisions", data=twice, headers=headers), 422)
    assert body["errors"] == {"context.marketing_opt_out": ["given 2 times in one object; give it once"]}
    batch = assert_error_shape(client.post("/v1/decisions/batch", data=f'{{"requests": [{twice}]}}',
                                           headers=headers), 422)
    assert list(batch["errors"]) == ["requests.0.context.marketing_opt_out"]
    page = client.post("/ui/try", data={"request": twice, "csrf_token": csrf_token(client, "/ui/try")},
                       headers=BROWSER)
    assert page.status_code == 422 and "given 2 times in one object" in unescape(page.get_data(as_text=True))


@pytest.mark.parametrize(("path", "typo"), [
    ("/v1/reconciliation?phone_numer_id=1", "phone_numer_id"),
    ("/v1/counts?phone_number_id=1&categories=utility&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&contcat=1",
     "contcat"),
    ("/v1/costs?from=2026-01-01&to=2026-01-31&grop_by=market", "grop_by"),
    ("/v1/wabas/102290129340398/templates?att=2026-01-01T00:00:00Z", "att"),
    ("/v1/decisions?decison=deny", "decison"),
])
def test_a_misspelled_query_parameter_is_refused_naming_it(client, path, typo):
    """A filter whose name is misspelled would be ignored: the report of everything, counted as if filtered. Every
    listing and report refuses a parameter it does not take, naming it, as GET /v1/decisions always has."""
    body = assert_error_shape(client.get(path), 422)
    assert f"query.{typo}" in body["errors"] or typo in body["errors"].get("query", {}), body


def test_a_compressed_body_is_a_415_naming_content_encoding(client):
    """A gzip body would be read as text and refused as "not UTF-8": the 415 says what to change."""
    import gzip

    body = gzip.compress(b'{"send": {}}')
    response = client.post("/v1/decisions", data=body, headers={"Content-Type": "application/json",
                                                                 "Content-Encoding": "gzip"})
    assert assert_error_shape(response, 415)["errors"] == {
        "headers.Content-Encoding": ["must be absent (identity), got gzip"]}


@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/decisions/batch", "/v1/webhooks/whatsapp"])
def test_a_json_body_in_another_charset_than_utf8_is_a_415_naming_content_type(client, example_request, path):
    """`application/json; charset=latin-1` was decided as if UTF-8: JSON is UTF-8 (RFC 8259), so a charset other
    than utf-8 is a 415 naming headers.Content-Type; utf-8 (any case) and +json types (application/vnd.api+json,
    RFC 6839: JSON too, as README says) are read."""
    body = json.dumps({"requests": [example_request]} if path.endswith("batch") else example_request)
    for charset in ("latin-1", "ISO-8859-1", "utf-16"):
        response = client.post(path, data=body, headers={"Content-Type": f"application/json; charset={charset}"})
        errors = assert_error_shape(response, 415)["errors"]
        assert list(errors) == ["headers.Content-Type"] and charset[:5] in errors["headers.Content-Type"][0], errors
    if path.startswith("/v1/decisions"):
        for content_type in ("application/json; charset=UTF-8", "application/vnd.api+json"):
            assert client.post(path, data=body, headers={"Content-Type": content_type}).status_code == 200

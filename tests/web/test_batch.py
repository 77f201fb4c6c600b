"""POST /v1/decisions/batch decides and logs each request in order, and reports errors by item index; a refused
batch logs nothing."""

import json

import pytest

from policy_service import create_app

from ..conftest import assert_error_shape


def _deny_request(example_request):
    """A free-form text two days after the user last wrote: outside the window, so denied."""
    return {**example_request, "send": {"at": "2025-08-14T12:00:00+00:00", "to": "+5511987654321", "type": "text"}}


def test_batch_answers_in_order_and_logs_each(client, example_request):
    """Each item gets its own decision, in request order, each readable from the decision log."""
    batch = [example_request, _deny_request(example_request), example_request]
    response = client.post("/v1/decisions/batch", json={"requests": batch})
    assert response.status_code == 200
    decisions = response.get_json()["decisions"]
    assert [d["decision"] for d in decisions] == ["allow", "deny", "allow"]
    assert len({d["decision_id"] for d in decisions}) == 3
    for decision in decisions:
        logged = client.get(f"/v1/decisions/{decision['decision_id']}").get_json()
        assert logged["response"]["decision"] == decision["decision"]


def test_batch_item_equals_a_single_decision(client, example_request):
    """A batch item is answered exactly as POST /v1/decisions answers it, but for its id."""
    single = client.post("/v1/decisions", json=example_request).get_json()
    (batched,) = client.post("/v1/decisions/batch", json={"requests": [example_request]}).get_json()["decisions"]
    assert {**batched, "decision_id": None} == {**single, "decision_id": None}


def test_invalid_item_is_reported_by_index(client, example_request):
    """An invalid second item is named requests.1.<field>, and nothing is decided."""
    bad = {**example_request, "send": {**example_request["send"], "to": "12"}}
    body = assert_error_shape(client.post("/v1/decisions/batch", json={"requests": [example_request, bad]}), 422)
    assert list(body["errors"]) == ["requests.1.send.to"]


def test_empty_or_missing_requests_are_refused(client):
    """A batch needs at least one request (said without naming a setting the caller cannot see)."""
    body = assert_error_shape(client.post("/v1/decisions/batch", json={"requests": []}), 422)
    assert body["errors"] == {"requests": ["must hold at least one request"]}
    assert_error_shape(client.post("/v1/decisions/batch", json={}), 422)


def test_batch_size_is_limited_by_configuration(tmp_path, example_request):
    """More requests than MAX_BATCH_SIZE are refused with 422 stating the limit."""
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}", "MAX_BATCH_SIZE": 2})
    body = assert_error_shape(app.test_client().post("/v1/decisions/batch",
                                                     json={"requests": [example_request] * 3}), 422)
    assert body["errors"] == {"requests": ["at most 2 requests per batch, got 3"]}


def test_query_parameters_the_decision_endpoints_do_not_take_are_refused_naming_them(client):
    """A misspelled ?explian=full, or ?explain on the batch (which offers none), is a 422 naming the parameter,
    never a decision silently made without it."""
    request = {"send": {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "text"}}
    one = client.post("/v1/decisions?explian=full", json=request)
    assert one.status_code == 422 and "query.explian" in one.json["errors"], one.json
    batch = client.post("/v1/decisions/batch?explain=full", json={"requests": [request]})
    assert batch.status_code == 422 and "query.explain" in batch.json["errors"], batch.json
    assert client.post("/v1/decisions?explain=full", json=request).status_code == 200
    # given twice, one value would be read and the other dropped unseen
    twice = client.post("/v1/decisions?explain=full&explain=none", json=request)
    assert twice.status_code == 422 and twice.json["errors"] == {"query.explain": ["given 2 times; give it once"]}
    listing = client.get("/v1/decisions?from=2026-01-01&from=2026-02-01")
    assert listing.status_code == 422 and "query.from" in listing.json["errors"], listing.json
    assert client.post("/v1/decisions/batch", json={"requests": [request]}).status_code == 200


def _logged_total(client) -> int:
    """How many decisions the log holds (GET /v1/decisions' X-Pagination total)."""
    return json.loads(client.get("/v1/decisions").headers["X-Pagination"])["total"]


OK = {"send": {"at": "2026-08-12T12:00:00Z", "to": "+5511987654321", "type": "text"}}
# history_ref.contact names another user than send.to: refused after the request's schema has passed.
STRANGER = {"send": {"at": "2026-08-12T12:00:00Z", "to": "+14155550100", "type": "text"},
            "history_ref": {"phone_number_id": "106540352242922", "contact": "5511987654321"}}
# A name-only template nobody knows the category of: refused when the stored state is read.
NAME_ONLY = {"send": {"at": "2026-08-12T12:00:00Z", "to": "+14155550100", "type": "template",
                      "template": {"name": "never_heard_of", "language": "en"}}}


@pytest.mark.parametrize("batch, named", [
    ([OK, STRANGER], "requests.1.history_ref.contact"),
    ([OK, OK, NAME_ONLY], "requests.2.send.template.category"),
])
def test_a_batch_refused_for_a_later_request_logs_nothing_and_names_the_request(client, batch, named):
    """All or nothing: a request the service refuses once its stored state is read (another user's history_ref,
    a template nobody knows the category of) refuses the whole batch with its errors named requests.<i>.<field>
    (message too), and the requests before it are not logged either."""
    before = _logged_total(client)
    body = assert_error_shape(client.post("/v1/decisions/batch", json={"requests": batch}), 422)
    index = ".".join(named.split(".")[:2]) + "."  # requests.<i>.
    assert named in body["errors"] and all(key.startswith(index) for key in body["errors"]), body
    assert body["message"].startswith(f"invalid request: {named}: "), body
    assert _logged_total(client) == before
    # The same batch with an Idempotency-Key is refused alike, and nothing is remembered: a corrected batch with
    # that key is decided.
    keyed = client.post("/v1/decisions/batch", json={"requests": batch}, headers={"Idempotency-Key": "b-1"})
    assert keyed.status_code == 422 and named in keyed.get_json()["errors"]
    assert _logged_total(client) == before
    good = client.post("/v1/decisions/batch", json={"requests": [OK, OK]}, headers={"Idempotency-Key": "b-1"})
    assert good.status_code == 200 and _logged_total(client) == before + 2
    again = client.post("/v1/decisions/batch", json={"requests": [OK, OK]}, headers={"Idempotency-Key": "b-1"})
    assert again.get_data() == good.get_data() and again.headers["Idempotent-Replayed"] == "true"
    assert _logged_total(client) == before + 2


def test_every_request_refused_once_the_store_is_read_is_named_in_one_answer(client):
    """history_ref.contact of another user at request 0 and an unknown name-only template at request 1: only
    requests.0 was named, so a client fixed one request per round trip. Both are named in one 422 (README's
    example), the message counts the other, and nothing is logged."""
    before = _logged_total(client)
    body = assert_error_shape(client.post("/v1/decisions/batch", json={"requests": [STRANGER, NAME_ONLY, OK]}), 422)
    assert set(body["errors"]) == {"requests.0.history_ref.contact", "requests.1.send.template.category",
                                   "requests.1.send.template.status"}, body
    assert body["message"].startswith("invalid request: requests.0.history_ref.contact: ") and \
        body["message"].endswith(" (and 2 more)"), body
    assert _logged_total(client) == before


def test_refusals_of_many_requests_stay_bounded_and_counted(client):
    """25 refused requests of 2 fields each: 19 fields listed and `_more` counting the other 31 (an error body stays
    small), the message counting all 49 others."""
    body = assert_error_shape(client.post("/v1/decisions/batch", json={"requests": [NAME_ONLY] * 25}), 422)
    assert len(body["errors"]) == 20 and body["errors"]["_more"] == ["31 more fields with errors are not listed"]
    assert "requests.9.send.template.category" in body["errors"] and body["message"].endswith(" (and 49 more)")


def test_a_request_that_is_no_object_is_named_by_its_index_alone(client):
    """A batch item that is not a JSON object was named requests.1._schema (marshmallow's key leaking) where a request
    refused whole once the store is read is requests.<i>: an object's own error is named by its path, requests.1 (and
    send, not send._schema, for a send that is no object)."""
    body = assert_error_shape(client.post("/v1/decisions/batch", json={"requests": [OK, "x", {"send": "x"}]}), 422)
    assert body["errors"] == {"requests.1": ["must be a JSON object"], "requests.2.send": ["must be a JSON object"]}
    assert body["message"].startswith("invalid request: requests.1: must be a JSON object"), body
    single = assert_error_shape(client.post("/v1/decisions", json={"send": "x"}), 422)
    assert single["errors"] == {"send": ["must be a JSON object"]}
    assert not any("_schema" in key for key in single), single

"""Idempotency-Key on POST /v1/decisions and /v1/decisions/batch (issue 22: the header was ignored, so a
retried request was decided and logged twice). Same key and body: the first answer again, same
decision_id, no second log row; same key, another body: 422 in the one error shape. On SQLite and PostgreSQL."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from policy_service import create_app
from policy_service.store.decision_log import DecisionRecord
from policy_service.web.security import hash_key

from ..conftest import assert_error_shape

KEY = {"Idempotency-Key": "5f1c2a9e-order-77"}


def logged_rows(app) -> int:
    with app.app_context():
        return DecisionRecord.select().count()


def test_a_retry_with_the_same_key_gets_the_same_decision_and_logs_nothing(app, client, example_request):
    first = client.post("/v1/decisions", json=example_request, headers=KEY)
    rows = logged_rows(app)
    again = client.post("/v1/decisions", json=example_request, headers=KEY)
    assert again.status_code == 200 and again.get_data() == first.get_data()
    assert again.json["decision_id"] == first.json["decision_id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert logged_rows(app) == rows


def test_the_same_request_spelt_differently_is_the_same_request(client, example_request):
    """Key order and spacing do not make another request: the fingerprint is of the JSON's content."""
    first = client.post("/v1/decisions", json=example_request, headers=KEY).json
    reordered = json.dumps(dict(reversed(list(example_request.items()))), indent=3)
    again = client.post("/v1/decisions", data=reordered, content_type="application/json", headers=KEY)
    assert again.json["decision_id"] == first["decision_id"]


def test_the_same_key_with_another_body_is_a_422(app, client, example_request):
    client.post("/v1/decisions", json=example_request, headers=KEY)
    rows = logged_rows(app)
    other = {**example_request, "send": {**example_request["send"], "to": "+5511912345678"}}
    body = assert_error_shape(client.post("/v1/decisions", json=other, headers=KEY), 422)
    assert list(body["errors"]) == ["headers.Idempotency-Key"]
    assert "already used with another request" in body["message"]
    explained = client.post("/v1/decisions?explain=full", json=example_request, headers=KEY)
    # Asking for the why-not trace is another request too, with the same body: the error says options count.
    assert assert_error_shape(explained, 422)["errors"] == {
        "headers.Idempotency-Key": ["already used with another request (another body or other options)"]}
    assert logged_rows(app) == rows


def test_without_a_key_every_request_is_decided(app, client, example_request):
    ids = {client.post("/v1/decisions", json=example_request).json["decision_id"] for _ in range(2)}
    assert len(ids) == 2


# "g1,g2": two Idempotency-Key headers, as a server joins them into one value.
@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9", "g1,g2"])
def test_an_unusable_key_is_a_422_naming_the_header(client, example_request, key):
    response = client.post("/v1/decisions", json=example_request, headers={"Idempotency-Key": key})
    assert assert_error_shape(response, 422)["errors"] == {"headers.Idempotency-Key": [
        "must be 1 to 255 printable ASCII characters without spaces or commas (one Idempotency-Key header)"]}


def test_a_batch_retry_gets_the_same_decisions(app, client, example_request):
    batch = {"requests": [example_request, example_request]}
    first = client.post("/v1/decisions/batch", json=batch, headers=KEY)
    rows = logged_rows(app)
    again = client.post("/v1/decisions/batch", json=batch, headers=KEY)
    assert again.get_data() == first.get_data() and logged_rows(app) == rows
    assert_error_shape(client.post("/v1/decisions/batch", json={"requests": [example_request]}, headers=KEY), 422)
    # A key is scoped by endpoint: the single-decision endpoint has not seen it.
    assert "Idempotent-Replayed" not in client.post("/v1/decisions", json=example_request, headers=KEY).headers


def test_concurrent_retries_decide_once(app, example_request):
    """Eight simultaneous requests with one key: one decision, one log row, the same answer for all."""
    rows = logged_rows(app)

    def post(_):
        return app.test_client().post("/v1/decisions", json=example_request, headers=KEY)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json["decision_id"] for r in responses}) == 1
    assert logged_rows(app) == rows + 1


@pytest.mark.parametrize("keys", [
    {"API_KEY_HASHES": f"{hash_key('client-a')},{hash_key('client-b')}"},
    # Named keys, the current setting: scoped alike (they were not: the second client got the first one's answer).
    {"API_KEYS": f"a:client:{hash_key('client-a')},b:client:{hash_key('client-b')}"},
])
def test_keys_of_two_clients_never_meet(database_url, example_request, keys):
    """With API keys on, a key is the client's own: another client's same key decides anew."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, **keys})
    client = app.test_client()
    first = client.post("/v1/decisions", json=example_request, headers={**KEY, "X-API-Key": "client-a"})
    other = client.post("/v1/decisions", json=example_request, headers={**KEY, "X-API-Key": "client-b"})
    assert other.status_code == 200 and other.json["decision_id"] != first.json["decision_id"]
    assert "Idempotent-Replayed" not in other.headers
    again = client.post("/v1/decisions", json=example_request, headers={**KEY, "Authorization": "Bearer client-a"})
    assert again.json["decision_id"] == first.json["decision_id"]


def test_pruned_keys_are_answered_as_new_requests(app, client, example_request):
    """`db prune --table idempotency` removes remembered answers; the key then decides anew."""
    from datetime import UTC, datetime, timedelta

    from policy_service.store import retention

    first = client.post("/v1/decisions", json=example_request, headers=KEY).json
    with app.app_context():
        assert retention.prune(retention.BY_NAME["idempotency"], datetime.now(UTC) + timedelta(seconds=1)) == 1
    again = client.post("/v1/decisions", json=example_request, headers=KEY)
    assert "Idempotent-Replayed" not in again.headers and again.json["decision_id"] != first["decision_id"]

"""JSON logs and request ids: the access log is one parseable JSON line per request (python-json-logger via
gunicorn's logconfig_dict) with a timestamp and the request's id, which is also echoed and on the decision's
line — under gunicorn a single decision's fields are on its access line (issue 22: a user agent with `"` or `\\`
made the format-string access log unparseable; no timestamp; X-Request-ID neither echoed nor logged)."""

import json
import logging
import re
import time

import flask
import requests

from policy_service.web import logs

from ..conftest import start_gunicorn, stop_gunicorn

HOSTILE_AGENT = 'curl/8 "quoted" back\\slash \\" {"json": 1}\tend'


def test_a_given_request_id_is_echoed_and_on_the_decision_line(client, example_request, caplog):
    with caplog.at_level(logging.INFO, logger="policy_service.decisions"):
        response = client.post("/v1/decisions", json=example_request, headers={"X-Request-ID": "order-42.retry:1"})
    assert response.headers["X-Request-ID"] == "order-42.retry:1"
    (record,) = [r for r in caplog.records if r.name == "policy_service.decisions"]
    assert record.request_id == "order-42.retry:1"


def test_a_request_id_is_generated_when_missing_or_unusable(client):
    """No header, or one that is too long or holds spaces or control characters: a fresh 32-hex id,
    different on each request, also on error responses."""
    seen = set()
    for headers in ({}, {"X-Request-ID": "x" * 129}, {"X-Request-ID": "two words"},
                    {"X-Request-ID": "bad\x7fid"}):
        response = client.get("/v1/decisions/unknown", headers=headers)
        assert response.status_code == 404
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
        seen.add(response.headers["X-Request-ID"])
    assert len(seen) == 4


def test_app_lines_have_a_utc_timestamp_and_the_request_id(client, example_request, caplog):
    with caplog.at_level(logging.INFO, logger="policy_service.decisions"):
        client.post("/v1/decisions", json=example_request, headers={"X-Request-ID": "abc"})
    (record,) = [r for r in caplog.records if r.name == "policy_service.decisions"]
    line = json.loads(logs.formatter().format(record))
    assert line["request_id"] == "abc" and line["timestamp"].endswith("+00:00")


def test_access_log_under_gunicorn_is_json_with_timestamp_and_request_id(tmp_path, example_request):
    """Served as documented: every line gunicorn writes is JSON; the access line of a request whose user
    agent holds quotes and backslashes keeps it exactly, with status, duration, timestamp and the request
    id, which is the one echoed. A request deciding one send writes one line: its access line carries the
    decision's fields (no second line); a batch's decisions each have a line of their own, with the request id."""
    server = start_gunicorn(tmp_path, workers=1)
    try:
        response = requests.post(f"{server.url}/v1/decisions", json=example_request, timeout=30,
                                 headers={"User-Agent": HOSTILE_AGENT, "X-Request-ID": "req-7f3a"})
        assert response.headers["X-Request-ID"] == "req-7f3a"
        batch = requests.post(f"{server.url}/v1/decisions/batch", json={"requests": [example_request] * 2},
                              timeout=30, headers={"X-Request-ID": "batch-1"})
        assert batch.status_code == 200
        generated = requests.get(f"{server.url}/healthz", timeout=30).headers["X-Request-ID"]
        time.sleep(0.5)
    finally:
        stop_gunicorn(server)
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    access = [line for line in lines if line.get("name") == "gunicorn.access"]
    (decided,) = [line for line in access if line["path"] == "/v1/decisions"]
    assert decided["user_agent"] == HOSTILE_AGENT
    assert (decided["method"], decided["status"], decided["request_id"]) == ("POST", 200, "req-7f3a")
    assert decided["duration_ms"] > 0 and re.match(r"\d{4}-\d\d-\d\dT", decided["timestamp"])
    body = response.json()
    assert (decided["decision_id"], decided["decision"], decided["decision_status"]) == (
        body["decision_id"], body["decision"], body["status"])
    assert decided["determining_rules"] and decided["rulebook_version"] and decided["latency_ms"] > 0
    assert any(line["path"] == "/healthz" and line["request_id"] == generated and "decision_id" not in line
               for line in access)
    decision_lines = [line for line in lines if line.get("name") == "policy_service.decisions"]
    assert sorted(line["decision_id"] for line in decision_lines) == sorted(
        each["decision_id"] for each in batch.json()["decisions"])
    assert {line["request_id"] for line in decision_lines} == {"batch-1"}
    (batch_access,) = [line for line in access if line["path"] == "/v1/decisions/batch"]
    assert "decision_id" not in batch_access


def test_a_line_orjson_refuses_is_written_by_the_json_formatter_instead():
    """The formatter writes with orjson, which refuses integers beyond 64 bits: such a line is still written,
    whole, by python-json-logger's json formatter (a log call must never lose its line)."""
    record = logging.getLogger("policy_service").makeRecord(
        "policy_service", logging.INFO, __file__, 1, "big", (), None, extra={"count": 2**70, "rules": ["A"]})
    line = json.loads(logs.formatter().format(record))
    assert (line["message"], line["count"], line["rules"], line["level"]) == ("big", 2**70, ["A"], "INFO")
    plain = logging.getLogger("policy_service").makeRecord(
        "policy_service", logging.INFO, __file__, 1, "small", (), None, extra={"count": 3})
    assert logs.formatter().format(plain).startswith('{"level":"INFO","name":"policy_service","message":"small"')


def test_a_lone_decision_waits_for_the_access_line_only_when_decisions_are_logged(client, example_request, caplog,
                                                                                  monkeypatch):
    """Where access lines carry decisions (gunicorn, logs.AccessLogger.setup), a lone decision's fields go into the
    request's environ for its access line, not on a line of their own; with the decisions' logger above INFO
    (POLICY_LOG_LEVEL=WARNING) they go nowhere, as a batch's lines do not."""
    monkeypatch.setattr(logs, "_access_lines_carry_decisions", True)
    seen = []

    @client.application.after_request
    def keep(response):
        seen.append(flask.request.environ.get(logs.DECISION_ENVIRON_KEY))
        return response

    with caplog.at_level(logging.INFO, logger="policy_service.decisions"):
        body = client.post("/v1/decisions", json=example_request).get_json()
    assert not [r for r in caplog.records if r.name == "policy_service.decisions"]
    assert seen[-1]["decision_id"] == body["decision_id"] and seen[-1]["decision_status"] == body["status"]
    with caplog.at_level(logging.WARNING, logger="policy_service.decisions"):
        client.post("/v1/decisions", json=example_request)
    assert seen[-1] is None
    assert not [r for r in caplog.records if r.name == "policy_service.decisions"]

"""Liveness, readiness, Prometheus metrics, JSON decision logs and the rules hot-reload."""

import json
import logging
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from policy_service import create_app
from policy_service.web import logs
from policy_service.web.api import Policy

from ..conftest import RULES_DIR, assert_error_shape


def test_healthz(client):
    """/healthz answers 200 while the process runs."""
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_names_the_active_rulebook(app, client):
    """/readyz answers 200 with the loaded rulebook's version and rule count."""
    body = client.get("/readyz").get_json()
    loaded: Policy = app.extensions["policy_service"]
    assert body["status"] == "ready"
    assert body["rulebook_version"] == loaded.rulebook.version
    assert body["rules"] == len(loaded.rulebook.rules) > 0
    assert body["database"] == "ok"


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    """With the decision log's directory gone, /readyz answers 503 in the error shape, naming the database."""
    folder = tmp_path / "db"
    folder.mkdir()
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder / 'log.sqlite3'}"})
    shutil.rmtree(folder)
    body = assert_error_shape(app.test_client().get("/readyz"), 503)
    assert list(body["errors"]) == ["database"]


def test_readyz_is_503_without_rules(app, client):
    """With no rule set loaded, /readyz answers 503 naming the rules."""
    del app.extensions["policy_service"]
    body = assert_error_shape(client.get("/readyz"), 503)
    assert list(body["errors"]) == ["rules"]


def test_metrics_count_decisions_rules_latency_and_errors(client, example_request):
    """A decision and a refused request move the outcome, rule, latency and error series."""
    before = _samples(client)
    decision = client.post("/v1/decisions", json=example_request).get_json()
    client.post("/v1/decisions", json={"send": {}})
    after = _samples(client)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("policy_decisions_total", decision="allow", status="decided") == 1
    for rule in decision["determining_rules"]:
        assert delta("policy_decision_rules_total", rule=rule) == 1
    assert delta("policy_http_request_duration_seconds_count", endpoint="decisions.create_decision",
                 method="POST") == 2
    assert delta("policy_http_errors_total", endpoint="decisions.create_decision", code="422") == 1


def test_one_json_log_line_per_decision(client, example_request, caplog):
    """Each decision logs one record with its id, outcome, status, rules and latency, formatted as JSON."""
    with caplog.at_level(logging.INFO, logger="policy_service.decisions"):
        body = client.post("/v1/decisions", json=example_request).get_json()
    records = [r for r in caplog.records if r.name == "policy_service.decisions"]
    assert len(records) == 1
    handler = next(h for h in logging.getLogger("policy_service").handlers if isinstance(h, logs._JsonHandler))
    line = json.loads(handler.format(records[0]))
    assert line["decision_id"] == body["decision_id"]
    assert (line["decision"], line["status"], line["level"]) == ("allow", "decided", "INFO")
    assert line["determining_rules"] == body["determining_rules"]
    assert line["latency_ms"] > 0


@pytest.fixture
def rules_copy(tmp_path):
    """A writable copy of rules/ and an app that loads it."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
                      "RULES_DIR": str(rules)})
    return rules, app


def test_reload_swaps_in_a_new_engine(rules_copy, example_request):
    """POST /v1/admin/reload-rules loads changed rules into a new engine; the next decision uses it."""
    rules, app = rules_copy
    client = app.test_client()
    old: Policy = app.extensions["policy_service"]
    (rules / "templates.yaml").write_text((rules / "templates.yaml").read_text() + "\n# reviewed\n")

    body = client.post("/v1/admin/reload-rules").get_json()
    new: Policy = app.extensions["policy_service"]
    assert body["previous_rulebook_version"] == old.rulebook.version
    assert body["rulebook_version"] == new.rulebook.version != old.rulebook.version
    assert new.engine is not old.engine
    assert client.post("/v1/decisions", json=example_request).get_json()["rulebook_version"] == new.rulebook.version


def test_failed_reload_keeps_the_last_good_rules(rules_copy, example_request):
    """Broken rules are refused with 409 naming the file; decisions go on with the previous rules, /readyz says why."""
    rules, app = rules_copy
    client = app.test_client()
    old: Policy = app.extensions["policy_service"]
    (rules / "templates.yaml").write_text("rules:\n  - id: TPL-1.approved\n    bogus: true\n")

    body = assert_error_shape(client.post("/v1/admin/reload-rules"), 409)
    assert "templates.yaml" in body["message"] and old.rulebook.version in body["message"]
    assert app.extensions["policy_service"] is old
    decided = client.post("/v1/decisions", json=example_request).get_json()
    assert (decided["status"], decided["rulebook_version"]) == ("decided", old.rulebook.version)
    assert "templates.yaml" in client.get("/readyz").get_json()["last_reload_error"]


def _samples(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}

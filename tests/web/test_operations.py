"""Liveness, readiness, Prometheus metrics, JSON decision logs and the rules hot-reload."""

import json
import logging
import shutil
import time

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
    """Outside gunicorn each decision logs one record with its id, outcome, decision_status, rules and latency,
    formatted as JSON (under gunicorn the access line carries them: tests/web/test_logs.py)."""
    with caplog.at_level(logging.INFO, logger="policy_service.decisions"):
        body = client.post("/v1/decisions", json=example_request).get_json()
    records = [r for r in caplog.records if r.name == "policy_service.decisions"]
    assert len(records) == 1
    handler = next(h for h in logging.getLogger("policy_service").handlers if isinstance(h, logs._JsonHandler))
    line = json.loads(handler.format(records[0]))
    assert line["decision_id"] == body["decision_id"]
    assert (line["decision"], line["decision_status"], line["level"]) == ("allow", "decided", "INFO")
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


def touch_rules(rules) -> None:
    """Change the rule files' bytes (a comment), so the rulebook version changes."""
    (rules / "templates.yaml").write_text((rules / "templates.yaml").read_text() + "\n# reviewed\n")


def test_reload_swaps_in_a_new_engine(rules_copy, example_request):
    """POST /v1/admin/reload-rules loads changed rules into a new engine and publishes them as generation 1;
    the next decision uses them and is logged under the new rulebook."""
    rules, app = rules_copy
    client = app.test_client()
    old: Policy = app.extensions["policy_service"]
    touch_rules(rules)

    body = client.post("/v1/admin/reload-rules").get_json()
    new: Policy = app.extensions["policy_service"]
    assert body["previous_rulebook_version"] == old.rulebook.version
    assert body["rulebook_version"] == new.rulebook.version != old.rulebook.version
    assert (body["generation"], body["fleet_follows_within_seconds"]) == (1, 2.0)
    assert new.engine is not old.engine
    decided = client.post("/v1/decisions", json=example_request).get_json()
    assert decided["rulebook_version"] == new.rulebook.version
    assert client.get(f"/v1/decisions/{decided['decision_id']}").get_json()["rulebook_version"] == \
        new.rulebook.version
    ready = client.get("/readyz").get_json()
    assert (ready["rules_generation"], ready["fleet_rules_generation"], ready["fleet_rulebook_version"],
            ready["follows_fleet"]) == (1, 1, new.rulebook.version, True)


def test_failed_reload_keeps_the_last_good_rules(rules_copy, example_request):
    """Broken rules are refused with 409 naming the file; decisions go on with the previous rules, /readyz says why."""
    rules, app = rules_copy
    client = app.test_client()
    old: Policy = app.extensions["policy_service"]
    (rules / "templates.yaml").write_text("rules:\n  - id: TPL-1.approved\n    bogus: true\n")

    body = assert_error_shape(client.post("/v1/admin/reload-rules"), 409)
    assert "templates.yaml" in body["message"] and old.rulebook.version in body["message"]
    assert "templates.yaml" in body["errors"]["rules"][0]
    assert app.extensions["policy_service"] is old
    decided = client.post("/v1/decisions", json=example_request).get_json()
    assert (decided["status"], decided["rulebook_version"]) == ("decided", old.rulebook.version)
    ready = client.get("/readyz").get_json()
    assert "templates.yaml" in ready["last_reload_error"]
    assert ready["fleet_rules_generation"] == 0  # nothing was published


def test_a_reload_on_one_instance_reaches_another_on_the_same_database(tmp_path, example_request):
    """Two instances on one database, checking every 0.3 s: after a reload on the first, the second decides with
    the new rulebook within 0.3 s plus the time to load the rules (stated: 2 s), and its /readyz and /metrics
    name the rulebook and generation it serves."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    settings = {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}", "RULES_DIR": str(rules),
                "RULES_CHECK_SECONDS": 0.3}
    first, second = create_app(settings).test_client(), create_app(settings).test_client()
    old = second.post("/v1/decisions", json=example_request).get_json()["rulebook_version"]
    touch_rules(rules)

    new = first.post("/v1/admin/reload-rules").get_json()["rulebook_version"]
    reloaded = time.monotonic()
    served = old
    while served == old and time.monotonic() - reloaded < 10:
        served = second.post("/v1/decisions", json=example_request).get_json()["rulebook_version"]
    assert served == new != old
    assert time.monotonic() - reloaded < 2.0
    ready = second.get("/readyz").get_json()
    assert (ready["rulebook_version"], ready["rules_generation"], ready["follows_fleet"]) == (new, 1, True)
    samples = _samples(second)
    assert samples[("policy_rulebook_served", (("generation", "1"), ("rulebook_version", new)))] == 1
    assert samples[("policy_rulebook_served", (("generation", "0"), ("rulebook_version", old)))] == 0


def _samples(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_content_type_names_its_charset_once(client):
    """/metrics is Prometheus' text format with one charset parameter (not `charset=utf-8` twice)."""
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain") and content_type.count("charset=") == 1


def test_readyz_is_503_while_this_instance_serves_other_rules_than_the_fleet(tmp_path):
    """Two instances on one database with different rule files: after the first publishes its rules, the second
    follows the generation but can only load its own files, so its /readyz is 503 naming both rulebook versions
    (a fresh instance started with those files likewise); once the published files are deployed there and
    reloaded, it answers 200 again (issue: /readyz said 200 whatever the fleet served)."""
    published_rules, other_rules = tmp_path / "published", tmp_path / "other"
    shutil.copytree(RULES_DIR, published_rules)
    shutil.copytree(RULES_DIR, other_rules)
    (other_rules / "templates.yaml").write_text((other_rules / "templates.yaml").read_text() + "\n# not yet\n")
    database = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    first = create_app({"TESTING": True, "DATABASE_URL": database, "RULES_DIR": str(published_rules)}).test_client()
    second = create_app({"TESTING": True, "DATABASE_URL": database, "RULES_DIR": str(other_rules)}).test_client()
    here = second.get("/readyz").get_json()["rulebook_version"]
    touch_rules(published_rules)
    fleet_version = first.post("/v1/admin/reload-rules").get_json()["rulebook_version"]
    assert first.get("/readyz").status_code == 200

    body = assert_error_shape(second.get("/readyz"), 503)
    reason = body["errors"]["rules"][0]
    assert f"serves rulebook {here} (generation 1)" in reason and f"published {fleet_version} (generation 1)" in reason
    assert list(body["errors"]) == ["rules"] and here in body["message"] and fleet_version in body["message"]
    fresh = create_app({"TESTING": True, "DATABASE_URL": database, "RULES_DIR": str(other_rules)}).test_client()
    assert here in assert_error_shape(fresh.get("/readyz"), 503)["errors"]["rules"][0]

    shutil.rmtree(other_rules)
    shutil.copytree(published_rules, other_rules)
    assert second.post("/v1/admin/reload-rules").get_json()["rulebook_version"] == fleet_version
    for client in (first, second, fresh):
        ready = client.get("/readyz").get_json()
        assert (ready["rulebook_version"], ready["rules_generation"], ready["follows_fleet"]) == \
            (fleet_version, 2, True)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_a_query_parameter_the_operations_routes_do_not_take_is_a_422_naming_it(client, path):
    """/readyz?x=1 and /openapi.json?x=1 answered 200, ignoring x, where README says a misspelled parameter is a
    422 on every route: each names query.x now, and answers as before without it."""
    body = assert_error_shape(client.get(f"{path}?x=1"), 422)
    assert body["errors"] == {"query.x": ["Unknown field."]}, body
    assert client.get(path).status_code == 200


def test_a_reload_with_a_body_is_refused_naming_it_and_reloads_nothing(rules_copy):
    """POST /v1/admin/reload-rules with {"x": 1} answered 200 and reloaded: the route takes no body, so a member is a
    422 naming it, another JSON value a 422 naming the request, a non-JSON body a 415, broken JSON a 400 — and the
    rules are not published. No body, or an empty object, reloads as before."""
    rules, app = rules_copy
    client = app.test_client()
    touch_rules(rules)
    before = app.extensions["policy_service"]
    for kwargs, code, named in (({"json": {"x": 1}}, 422, "x"), ({"json": [1]}, 422, "_request"),
                                ({"data": "x=1", "content_type": "text/plain"}, 415, "headers.Content-Type"),
                                ({"data": "{", "content_type": "application/json"}, 400, "_request")):
        body = assert_error_shape(client.post("/v1/admin/reload-rules", **kwargs), code)
        assert list(body["errors"]) == [named], body
        assert app.extensions["policy_service"] is before
    assert client.post("/v1/admin/reload-rules", json={}).json["generation"] == 1
    assert client.post("/v1/admin/reload-rules").json["generation"] == 2

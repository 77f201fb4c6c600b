"""The OpenAPI document is valid, lists the app's routes, documents errors and examples, and makes a working client."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from policy_service.contract.schemas import DECISION_RESPONSE_EXAMPLE

UNDOCUMENTED = {"static", "api-docs.openapi_json"}


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_spec_validates(spec):
    """openapi-spec-validator accepts the document as OpenAPI 3.0."""
    validate(spec)
    assert spec["openapi"].startswith("3.0")


def test_paths_and_methods_match_the_routes(app, spec):
    """Every route (but the spec itself and static files) is documented with its methods, and nothing else is."""
    routes = set()
    for rule in app.url_map.iter_rules():
        # The reviewer pages and their home at / are HTML for people (README), not part of the JSON API.
        if rule.endpoint in UNDOCUMENTED or rule.endpoint.split(".")[0] in ("ui", "home"):
            continue
        path = rule.rule.replace("<string:", "{").replace("<", "{").replace(">", "}")
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert documented == routes


def test_errors_share_one_documented_shape(spec):
    """Every operation documents a default error response in the {code, status, message, errors} shape."""
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "status", "message", "errors"}
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                assert "default" in operation["responses"]


def test_decision_examples_are_real(client, spec, example_request):
    """The request example of POST /v1/decisions is answered as its response example says."""
    operation = spec["paths"]["/v1/decisions"]["post"]
    request_example = operation["requestBody"]["content"]["application/json"]["example"]
    response_example = operation["responses"]["200"]["content"]["application/json"]["example"]
    assert request_example == example_request
    assert response_example == DECISION_RESPONSE_EXAMPLE
    actual = client.post("/v1/decisions", json=request_example).get_json()
    assert set(actual) == set(response_example)
    for field in ("decision", "status", "required_message_type", "policy_version", "determining_rules", "charge"):
        assert actual[field] == response_example[field], field


def test_spec_generates_a_working_client(app, spec, tmp_path, example_request):
    """openapi-python-client generates a client from the spec that decides, and reads the decision back."""
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "config.yaml").write_text("post_hooks: []\n")
    package = tmp_path / "policy_service_client"
    subprocess.run(
        [str(Path(sys.executable).parent / "openapi-python-client"), "generate", "--path", "spec.json",
         "--meta", "none", "--config", "config.yaml", "--output-path", str(package)],
        cwd=tmp_path, check=True, capture_output=True, timeout=120,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module("policy_service_client")
        post = importlib.import_module("policy_service_client.api.decisions.post_v1_decisions")
        get = importlib.import_module("policy_service_client.api.decisions.get_v1_decisions_decision_id")
        models = importlib.import_module("policy_service_client.models")
        client = generated.Client(base_url="http://policy.test", httpx_args={"transport": httpx.WSGITransport(app=app)})

        decided = post.sync(client=client, body=models.DecisionRequest.from_dict(example_request))
        assert isinstance(decided, models.DecisionResponse)
        assert (decided.decision, decided.status, decided.required_message_type) == ("allow", "decided", "any")
        assert decided.determining_rules == DECISION_RESPONSE_EXAMPLE["determining_rules"]

        logged = get.sync(client=client, decision_id=decided.decision_id)
        assert isinstance(logged, models.LoggedDecision)
        assert logged.decision_id == decided.decision_id
        assert logged.response["decision"] == "allow"

        refused = post.sync(client=client, body=models.DecisionRequest.from_dict(
            {**example_request, "send": {**example_request["send"], "to": "0"}}))
        assert isinstance(refused, models.Error)
        assert refused.code == 422
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("policy_service_client")]:
            del sys.modules[name]

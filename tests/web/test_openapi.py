"""The OpenAPI document is valid, lists the app's routes, documents errors and examples, and makes a working client."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from policy_service.contract.schemas import DECISION_RESPONSE_EXAMPLE, DecisionResponseSchema, ReconciliationSchema

from ..conftest import FIXTURES_DIR

UNDOCUMENTED = {"static", "api-docs.openapi_json"}


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_spec_validates(spec):
    """openapi-spec-validator accepts the document as OpenAPI 3.1 (nullable objects as anyOf [$ref, null])."""
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def operations(spec):
    return [(path, method, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method != "parameters"]


def test_every_operation_has_a_unique_operation_id(spec):
    """Generated clients name their functions after operationIds: each operation has one, none repeats."""
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert None not in ids and len(set(ids)) == len(ids), ids
    assert {"createDecision", "createDecisions", "getDecision", "listDecisions", "readyz"} <= set(ids)


def test_every_status_a_route_can_answer_is_documented(spec):
    """401 wherever a key is checked (and no key requirement on probes and Meta's webhooks, which Meta
    authenticates by signature and verify token), 413 and 415 wherever a JSON body is read, 503 on
    readiness, and the X-Pagination header on the paginated list."""
    keyless = {("/healthz", "get"), ("/readyz", "get"), ("/v1/webhooks/whatsapp", "get"),
               ("/v1/webhooks/whatsapp", "post")}
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        assert all(code in responses for code in ("200", "default")), (path, method)
        if (path, method) in keyless:
            assert operation["security"] == [], (path, method)
        else:
            assert "401" in responses and "security" not in operation, (path, method)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(responses), (path, method)
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
    assert "X-Pagination" in spec["paths"]["/v1/decisions"]["get"]["responses"]["200"]["headers"]
    for path, method, operation in operations(spec):
        if path != "/metrics":
            assert "content" in operation["responses"]["200"], f"{method} {path} documents no 200 body"


def test_the_timeouts_408_is_documented_where_the_server_answers_it(spec):
    """A request whose head does not arrive within POLICY_HEADER_TIMEOUT is answered 408 on every path (gunicorn's
    worker, before any route), and one whose body stops arriving for POLICY_BODY_TIMEOUT where a body is read: each
    operation lists the 408 in the one error shape, naming the settings that apply to it."""
    for path, method, operation in operations(spec):
        late = operation["responses"]["408"]
        assert late["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method)
        assert "POLICY_HEADER_TIMEOUT" in late["description"], (path, method)
        reads_body = "requestBody" in operation or "415" in operation["responses"]
        assert ("POLICY_BODY_TIMEOUT" in late["description"]) == reads_body, (path, method, late["description"])


def response_schemas(spec):
    """Every component schema some response refers to, transitively."""
    schemas, seen = spec["components"]["schemas"], set()
    pending = [json.dumps(operation["responses"]) for _, _, operation in operations(spec)]
    while pending:
        for name in re.findall(r"#/components/schemas/(\w+)", pending.pop()):
            if name not in seen:
                seen.add(name)
                pending.append(json.dumps(schemas[name]))
    return {name: schemas[name] for name in seen}


def test_responses_are_complete_and_open(spec):
    """Response objects list every always-present field as required and never close themselves with
    additionalProperties: false (a field added later must not break a strict client)."""
    found = response_schemas(spec)
    assert {"DecisionResponse", "Charge", "Reason", "LoggedDecision", "Error", "Reconciliation"} <= set(found)
    for name, schema in found.items():
        assert schema.get("additionalProperties") is not False, name
        optional = set({"DecisionResponse": DecisionResponseSchema.OPTIONAL,
                        "Reconciliation": ReconciliationSchema.OPTIONAL}.get(name, ()))
        assert set(schema.get("required", [])) | optional == set(schema["properties"]), name


def test_outputs_that_are_closed_sets_are_enums(spec):
    """decision === "alow" must not compile in a typed client: the closed outputs are enums."""
    schemas = spec["components"]["schemas"]
    assert schemas["DecisionResponse"]["properties"]["decision"]["enum"] == ["allow", "deny"]
    assert schemas["DecisionResponse"]["properties"]["status"]["enum"] == ["decided", "not_applicable", "error"]
    assert schemas["DecisionResponse"]["properties"]["required_message_type"]["enum"] == ["template", "any"]
    assert schemas["Reason"]["properties"]["confidence"]["enum"] == ["C", "S", "R"]
    assert schemas["Charge"]["properties"]["pricing_model"]["enum"] == ["CBP", "PMP"]
    assert schemas["DecisionResponse"]["properties"]["charge"]["anyOf"] == [
        {"$ref": "#/components/schemas/Charge"}, {"type": "null"}]


def test_every_charge_the_rules_can_state_is_in_the_contract(rulebook):
    """A rule file naming a charge category, type or pricing model the contract's enums lack fails here."""
    from policy_service.contract import schemas

    for rule in rulebook.rules:
        if rule.charge is None:
            continue
        assert rule.charge.pricing_model in schemas.PRICING_MODELS, rule.id
        assert rule.charge.type in schemas.CHARGE_TYPES, rule.id
        # A category named by a fact ({fact: template_category}) is checked by the fixtures' responses below.
        if not isinstance(rule.charge.category, dict):
            assert rule.charge.category in schemas.CHARGE_CATEGORIES, rule.id


def validator(spec, name):
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for a component schema, refs resolved."""
    resource = Resource.from_contents({**spec, "$schema": "https://json-schema.org/draft/2020-12/schema"})
    registry = Registry().with_resource("urn:openapi", resource)
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{name}"}, registry=registry)


def test_every_fixture_response_matches_the_documented_schema(client, spec):
    """Every fixture's decision (with ?explain=full) validates against DecisionResponse: required, enums, nulls."""
    from policy_service.review.fixtures import discover

    check = validator(spec, "DecisionResponse")
    fixtures = discover([FIXTURES_DIR])
    assert len(fixtures) > 50
    for fixture in fixtures:
        body = client.post("/v1/decisions?explain=full", json=fixture.request).get_json()
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in check.iter_errors(body)]
        assert not errors, (fixture.name, errors[:3])


def test_errors_and_other_responses_match_their_schemas(client, spec, example_request):
    """The error shape (415 without Content-Type, 422, 404), a logged decision and a list page validate."""
    error = validator(spec, "Error")
    no_type = client.post("/v1/decisions", data=json.dumps(example_request))
    assert no_type.status_code == 415 and error.is_valid(no_type.get_json())
    assert error.is_valid(client.post("/v1/decisions", json={}).get_json())
    assert error.is_valid(client.get("/v1/decisions/unknown").get_json())
    decided = client.post("/v1/decisions", json=example_request).get_json()
    validator(spec, "LoggedDecision").validate(client.get(f"/v1/decisions/{decided['decision_id']}").get_json())
    page = client.get("/v1/decisions")
    assert json.loads(page.headers["X-Pagination"])["total"] == 1
    for item in page.get_json():
        validator(spec, "LoggedDecision").validate(item)
    validator(spec, "Reconciliation").validate(client.get("/v1/reconciliation").get_json())


def test_paths_and_methods_match_the_routes(app, spec):
    """Every route (but the spec itself and static files) is documented with its methods, and nothing else is."""
    routes = set()
    for rule in app.url_map.iter_rules():
        # The reviewer pages, their home at / and their login form are HTML for people (README), not the JSON API.
        if rule.endpoint in UNDOCUMENTED or rule.endpoint.split(".")[0] in ("ui", "home", "login"):
            continue
        path = re.sub(r"<(?:[^:>]*:)?([^>]*)>", r"{\1}", rule.rule)  # <converter:name> -> {name}
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert documented == routes


def test_every_path_parameter_has_its_404_documented(spec):
    """An operation with a path parameter documents the 404 a value naming nothing gets, and that its errors name
    path.<parameter>; the Error schema says how errors name what was wrong (path, method with the Allow header)."""
    for path, method, operation in operations(spec):
        for parameter in re.findall(r"{(\w+)}", path):
            assert f"path.{parameter}" in operation["responses"]["404"]["description"], (path, method)
    described = spec["components"]["schemas"]["Error"]["description"]
    assert all(word in described for word in ("path.decision_id", "query.from", "`method`", "Allow", "`path`"))


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
        post = importlib.import_module("policy_service_client.api.decisions.create_decision")
        get = importlib.import_module("policy_service_client.api.decisions.get_decision")
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


def documented_schema(spec, path, method, status):
    """A JSON Schema 2020-12 validator for the JSON body an operation documents for a status."""
    content = spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
    # The document's components beside the schema, so its #/components/schemas/... references resolve.
    return Draft202012Validator({**content["schema"], "components": spec["components"]})


def test_real_answers_of_every_operation_match_the_served_document(app, client, spec, example_request):
    """Each documented JSON operation (but the slow rules reload) is called on a store holding webhooks of every
    kind of delivered status (a category the rules do not model among them), a decision, templates, a currency
    and pricing analytics; each answer's body validates against the schema the served document gives for its status.
    GET /v1/reconciliation answered `"decision": "not_modelled"` where Comparison.decision allowed allow/deny/null."""
    from datetime import UTC, datetime

    from policy_service.store import business_state

    from ..conftest import BILLED_T0, deliver_billed_history
    from ..meta_business_payloads import message_templates_response
    from ..meta_payloads import PHONE_NUMBER_ID, WABA_ID, deliver, pmp, status

    deliver_billed_history(client)
    deliver(client, status("wamid.new-category", "delivered", BILLED_T0 + 14000,
                           pricing=pmp("brand_new_category", "regular", True)))
    with app.app_context():
        business_state.learn_number(PHONE_NUMBER_ID, WABA_ID, datetime(2025, 1, 1, tzinfo=UTC))
    decided = client.post("/v1/decisions", json=example_request)
    templates = message_templates_response(("order_update", "en_US", "UTILITY", "APPROVED"))
    day = 1793577600  # 2026-11-02T00:00:00Z
    analytics = {"id": WABA_ID, "pricing_analytics": {"data": [{"data_points": [
        {"start": day, "end": day + 86_400, "country": "BR", "phone_number": "15550783881",
         "pricing_category": "MARKETING", "pricing_type": "REGULAR", "tier": "0:100000", "volume": 10,
         "cost": 0.6}]}]}}
    forecast = {"currency": "BRL", "at": "2026-11-10T12:00:00Z",
                "lines": [{"country": "BR", "category": "marketing", "count": 10}]}
    calls = [
        ("post", "/v1/decisions", "/v1/decisions?explain=full", example_request),
        ("post", "/v1/decisions/batch", "/v1/decisions/batch", {"requests": [example_request]}),
        ("get", "/v1/decisions", "/v1/decisions", None),
        ("get", "/v1/decisions/{decision_id}", f"/v1/decisions/{decided.get_json()['decision_id']}", None),
        ("get", "/v1/reconciliation", f"/v1/reconciliation?phone_number_id={PHONE_NUMBER_ID}", None),
        ("post", "/v1/webhooks/whatsapp", None, None),
        ("get", "/v1/admin/webhooks/backlog", "/v1/admin/webhooks/backlog", None),
        ("get", "/v1/admin/webhooks/{payload_id}", "/v1/admin/webhooks/1", None),
        ("post", "/v1/wabas/{waba_id}/message_templates", f"/v1/wabas/{WABA_ID}/message_templates", templates),
        ("get", "/v1/wabas/{waba_id}/templates", f"/v1/wabas/{WABA_ID}/templates", None),
        ("get", "/v1/wabas/{waba_id}/templates/{name}/{language}",
         f"/v1/wabas/{WABA_ID}/templates/order_update/en_US", None),
        ("get", "/v1/counts", f"/v1/counts?phone_number_id={PHONE_NUMBER_ID}&categories=marketing,utility"
         "&from=2025-08-01T00:00:00Z&to=2025-09-01T00:00:00Z", None),
        ("get", "/healthz", "/healthz", None),
        ("get", "/readyz", "/readyz", None),
        ("put", "/v1/wabas/{waba_id}/billing-currency", f"/v1/wabas/{WABA_ID}/billing-currency", {"currency": "BRL"}),
        ("get", "/v1/wabas/{waba_id}/billing-currency", f"/v1/wabas/{WABA_ID}/billing-currency", None),
        ("get", "/v1/costs", "/v1/costs?from=2025-08-01&to=2025-09-01&group_by=category", None),
        ("post", "/v1/costs/forecast", "/v1/costs/forecast", forecast),
        ("post", "/v1/pricing-analytics", f"/v1/pricing-analytics?waba_id={WABA_ID}", analytics),
    ]
    documented = {(method, path) for path, method, operation in operations(spec)
                  if any(status.startswith("2") and "application/json" in (answer.get("content") or {})
                         for status, answer in operation["responses"].items())}
    assert documented - {(method, path) for method, path, *_ in calls} == {("post", "/v1/admin/reload-rules")}
    for method, path, url, body in calls:
        if url is None:  # the webhooks delivered above were answered through this operation
            continue
        answer = getattr(client, method)(url, json=body)
        assert answer.status_code < 300, (url, answer.get_json())
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in
                  documented_schema(spec, path, method, answer.status_code).iter_errors(answer.get_json())]
        assert not errors, (method, url, errors[:3])
    comparisons = client.get("/v1/reconciliation").get_json()["comparisons"]
    assert {c["decision"] for c in comparisons} >= {"allow", "not_modelled"}


def test_every_query_parameter_a_view_takes_is_documented(app, spec):
    """The document listed none of POST /v1/decisions' query parameters (`?explain=full` works): a view's
    @blp.doc(parameters=[...]) replaced the list its @blp.arguments(location="query") documented. Every field of
    every query schema a view loads (flask-smorest arguments and pagination) is a documented parameter of its
    operation, and the webhook verification lists the hub.* parameters it reads from request.args."""
    checked = 0
    for rule in app.url_map.iter_rules():
        apidoc = getattr(app.view_functions[rule.endpoint], "_apidoc", {})
        schemas = [item["schema"] for item in apidoc.get("arguments", {}).get("parameters", [])
                   if item.get("in") == "query"]
        if "pagination" in apidoc:
            schemas.append(apidoc["pagination"]["parameters"]["schema"])
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if path not in spec["paths"]:
                continue
            documented = {item["name"] for item in spec["paths"][path][method.lower()].get("parameters", [])
                          if item["in"] == "query"}
            for schema in schemas:
                instance = schema() if isinstance(schema, type) else schema
                names = {field.data_key or name for name, field in instance.fields.items() if not field.dump_only}
                assert names <= documented, (method, path, names - documented)
                checked += 1
    assert checked >= 8
    verify = spec["paths"]["/v1/webhooks/whatsapp"]["get"]["parameters"]
    assert [(item["name"], item["required"]) for item in verify] == [
        ("hub.mode", True), ("hub.verify_token", True), ("hub.challenge", True)]

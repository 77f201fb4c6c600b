"""The public Python API (PolicyService) answers exactly as the HTTP API: every fixture decided both ways gives
the same body (decision ids aside) and the same logged row; batches, reconciliation and the cost report are the
same bodies; a bad request raises ServiceError carrying the HTTP error body, a storage fault the HTTP 503 (and
the same PolicyService recovers); an idempotency key works as the HTTP Idempotency-Key; and none of it loads Flask."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from policy_service import PolicyService, ServiceError, configured_app, create_app, store
from policy_service.config import DatabaseUrlRefused
from policy_service.review.fixtures import discover
from policy_service.service.python_api import instance_path
from policy_service.store.decision_log import DecisionRecord

from ..conftest import FIXTURES_DIR, ROOT, upgraded
from ..meta_business_payloads import message_templates_response
from ..meta_payloads import APP_SECRET, CONTACT, PHONE_NUMBER_ID, deliver, inbound_text, pmp, signed, status

FIXTURES = discover([FIXTURES_DIR])
VARYING = ("decision_id", "logged_at")
# What differs between two webhook receipts of equal payloads: the stored payload's id and its times.
RECEIPT_VARYING = ("id", "received_at", "processed_at")
T0 = 1756717200  # 2025-09-01T09:00:00Z


def steady(value):
    """A body without the values that differ between two decisions of one request (its id, when it was logged)."""
    if isinstance(value, dict):
        return {key: steady(item) for key, item in value.items() if key not in VARYING}
    if isinstance(value, list):
        return [steady(item) for item in value]
    return value


@pytest.fixture
def service(app, database_url):
    """The Python API on the database the HTTP app of the test uses."""
    svc = PolicyService(database_url=database_url, whatsapp_app_secret=app.config["WHATSAPP_APP_SECRET"])
    yield svc
    svc.close()


ARGUMENTS = {"from": "start", "to": "end"}  # cost_report(start, end) for GET /v1/costs?from=&to=


def as_arguments(error: dict, arguments: dict | None = None) -> dict:
    """An HTTP error body with its query and path parameters named as the Python API's keyword arguments (HTTP
    says `query.explain` and `path.decision_id`, Python `explain` and `decision_id`; `from` is `start`); body
    fields are named alike both ways."""
    named = ARGUMENTS if arguments is None else arguments

    def argument(path: str) -> str:
        path = path.removeprefix("query.").removeprefix("path.")
        return named.get(path, path)

    message = error["message"].replace("invalid request: query.", "invalid request: ")
    for parameter, name in named.items():
        message = message.replace(f"invalid request: {parameter}:", f"invalid request: {name}:")
    return {**error, "message": message,
            "errors": {argument(path): messages for path, messages in error["errors"].items()}}


def test_there_are_fixtures_to_compare():
    assert len(FIXTURES) > 100


def test_python_and_http_give_the_same_decision_and_log_on_every_fixture(client, service):
    """Each fixture's request, decided over HTTP and in Python: equal bodies and equal logged rows."""
    differing = []
    for fixture in FIXTURES:
        request = copy.deepcopy(fixture.request)
        over_http = client.post("/v1/decisions", json=fixture.request)
        in_python = service.decide(request)
        assert request == fixture.request, f"{fixture.name}: the caller's request was modified"
        assert over_http.status_code == 200, (fixture.name, over_http.json)
        if steady(over_http.json) != steady(in_python):
            differing.append(fixture.name)
            continue
        logged_http = client.get(f"/v1/decisions/{over_http.json['decision_id']}").json
        assert steady(logged_http) == steady(service.decision(in_python["decision_id"])), fixture.name
    assert differing == []


def test_explain_full_is_the_same_both_ways(client, service):
    request = FIXTURES[0].request
    over_http = client.post("/v1/decisions?explain=full", json=request).json
    assert steady(service.decide(request, explain="full")) == steady(over_http)
    assert steady(service.decide(request, explain=True)) == steady(over_http)
    assert steady(service.decide(request)) == steady(client.post("/v1/decisions", json=request).json)


def test_a_batch_is_the_same_both_ways(client, service):
    requests = [fixture.request for fixture in FIXTURES[:20]]
    over_http = client.post("/v1/decisions/batch", json={"requests": requests})
    assert over_http.status_code == 200
    assert steady(service.decide_batch(requests)) == steady(over_http.json)
    assert steady(service.decide_batch({"requests": requests})) == steady(over_http.json)


def test_history_ref_reads_the_same_stored_history_both_ways(client, service):
    deliver(client, inbound_text("wamid.in1", T0))
    request = {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+" + CONTACT, "type": "text"},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}
    in_python = service.decide(request)
    assert in_python["history_source"]["events"] == 1 and in_python["decision"] == "allow"
    assert steady(in_python) == steady(client.post("/v1/decisions", json=request).json)


def test_reconciliation_and_costs_are_the_same_both_ways(client, service):
    deliver(client, inbound_text("wamid.in1", T0),
            status("wamid.out1", "delivered", T0 + 60, pricing=pmp("utility", "free_customer_service", False)))
    over_http = client.get(f"/v1/reconciliation?phone_number_id={PHONE_NUMBER_ID}").json
    assert over_http["checked"] == 1
    assert service.reconcile(phone_number_id=PHONE_NUMBER_ID) == over_http
    assert service.reconcile(contact="+" + CONTACT, page_size=1) == client.get(
        f"/v1/reconciliation?contact=%2B{CONTACT}&page_size=1").json
    costs = client.get("/v1/costs?from=2025-09-01&to=2025-09-30&group_by=category,market").json
    assert service.cost_report("2025-09-01", "2025-09-30", group_by=("category", "market")) == costs


BAD = [
    ("a required field missing", "/v1/decisions", {"send": {"to": "+14155550123", "type": "text"}}, {}),
    ("a wrong type", "/v1/decisions", {"send": {"at": "yesterday", "to": "+14155550123", "type": "text"}}, {}),
    ("an unknown template", "/v1/decisions", {"send": {
        "at": "2025-09-01T10:00:00+00:00", "to": "+14155550123", "type": "template",
        "template": {"name": "nobody_knows", "language": "en_US"}}}, {}),
    ("a NUL in a string", "/v1/decisions", {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+1415\x00",
                                                     "type": "text"}}, {}),
    ("an explain that is not full", "/v1/decisions?explain=yes", FIXTURES[0].request, {"explain": "yes"}),
    ("a bad request in a batch", "/v1/decisions/batch", {"requests": [FIXTURES[0].request, {"send": {}}]}, {}),
    ("too many in a batch", "/v1/decisions/batch", {"requests": [FIXTURES[0].request] * 101}, {}),
]


@pytest.mark.parametrize("what, path, body, options", BAD, ids=[case[0] for case in BAD])
def test_a_bad_request_raises_the_error_the_http_api_answers(client, service, what, path, body, options):
    """ServiceError carries exactly the HTTP 4xx body: code, status, message, errors naming the field."""
    over_http = client.post(path, json=body)
    assert 400 <= over_http.status_code < 500
    with pytest.raises(ServiceError) as raised:
        if path.startswith("/v1/decisions/batch"):
            service.decide_batch(body)
        else:
            service.decide(body, **options)
    assert raised.value.as_dict() == (as_arguments(over_http.json) if options else over_http.json)
    assert raised.value.code == over_http.status_code and raised.value.errors


@pytest.mark.parametrize(("path", "request_body"), [
    ("send.to", {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "ZZ.13491208655302741918", "type": "text"}}),
    ("history_ref.contact", {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+14155550123", "type": "text"},
                             "history_ref": {"phone_number_id": "1", "contact": "UK.13491208655302741918"}}),
])
def test_a_bsuid_of_no_country_is_a_422_naming_its_prefix_both_ways(client, service, path, request_body):
    """A BSUID starts with the user's ISO 3166 country (Meta's business-scoped user IDs page): ZZ (decided as "the
    BSUID's country prefix ZZ") or UK is a 422 naming the field and the prefix, over HTTP and in Python alike."""
    over_http = client.post("/v1/decisions", json=request_body)
    prefix = (request_body.get("history_ref") or request_body["send"]).get("contact", request_body["send"]["to"])[:2]
    assert over_http.status_code == 422 and over_http.json["errors"] == {path: [
        f"{prefix} is not an ISO 3166 country code: a BSUID starts with the user's country, like "
        "US.13491208655302741918"]}
    with pytest.raises(ServiceError) as raised:
        service.decide(request_body)
    assert raised.value.as_dict() == over_http.json


def test_a_bad_body_and_a_bad_explain_report_the_body_first_both_ways(client, service):
    body = {"send": {"to": "+14155550123", "type": "text"}}
    over_http = client.post("/v1/decisions?explain=yes", json=body)
    with pytest.raises(ServiceError) as raised:
        service.decide(body, explain="yes")
    assert raised.value.as_dict() == over_http.json and "send.at" in over_http.json["errors"]


def test_json_text_that_is_not_json_is_the_same_400(client, service):
    over_http = client.post("/v1/decisions", data=b'{"send": ', content_type="application/json")
    with pytest.raises(ServiceError) as raised:
        service.decide(b'{"send": ')
    assert over_http.status_code == 400 and raised.value.as_dict() == over_http.json


@pytest.mark.parametrize("value, literal", [(float("nan"), "NaN"), (float("inf"), "Infinity"),
                                            (float("-inf"), "-Infinity")])
def test_a_float_nan_or_infinity_is_refused_naming_the_field_as_over_http(client, service, value, literal):
    """orjson would write NaN/infinity as null ("may not be null", or worse, a silent default): the Python
    API refuses it by field path with the error HTTP gives for the same JSON literal."""
    send = {"at": "2025-09-01T10:00:00+00:00", "to": "+14155550123", "type": "text"}
    text = f'{{"send": {json.dumps(send)}, "context": {{"conversations_this_month": {literal}}}}}'
    over_http = client.post("/v1/decisions", content_type="application/json", data=text)
    with pytest.raises(ServiceError) as raised:
        service.decide({"send": send, "context": {"conversations_this_month": value}})
    assert over_http.status_code == 422 and raised.value.as_dict() == over_http.json
    assert list(raised.value.errors) == ["context.conversations_this_month"]


@pytest.mark.parametrize("value", [object(), {1, 2}, b"2025-09-01"])
def test_a_value_json_cannot_hold_is_a_422_naming_its_field(service, value):
    """A set, bytes or an object in a request was a 400 naming only "_request" ("Object of type set is not JSON
    serializable"): the field holding it is named."""
    with pytest.raises(ServiceError) as raised:
        service.decide({"send": {"to": "+14155550123", "at": value}})
    assert raised.value.code == 422 and list(raised.value.errors) == ["send.at"], raised.value.as_dict()
    assert type(value).__name__ in raised.value.errors["send.at"][0]


def test_an_integer_python_will_not_write_is_the_http_422(client, service):
    """10**5000 in a request (past the 4,300 digits Python writes) was a 400 quoting Python's int limit: it is the
    422 HTTP gives for the same 5,001-digit literal, at its field."""
    send = {"at": "2025-09-01T10:00:00+00:00", "to": "+14155550123", "type": "text"}
    text = f'{{"send": {json.dumps(send)}, "context": {{"conversations_this_month": 1{"0" * 5000}}}}}'
    over_http = client.post("/v1/decisions", content_type="application/json", data=text)
    with pytest.raises(ServiceError) as raised:
        service.decide({"send": send, "context": {"conversations_this_month": 10**5000}})
    assert over_http.status_code == 422 and raised.value.as_dict() == over_http.json


def test_a_request_nested_past_the_limits_is_the_http_400_not_a_recursion_error(client, service):
    """A list nested 5,000 deep raised a bare RecursionError from the standard library's writer: it is the 400
    HTTP gives for a body nested deeper than its limits."""
    deep: list = []
    for _ in range(5_000):
        deep = [deep]
    send = {"at": "2025-09-01T10:00:00+00:00", "to": "+14155550123", "type": "text"}
    over_http = client.post("/v1/decisions", content_type="application/json",
                            data=f'{{"send": {json.dumps(send)}, "context": {{"x": {"[" * 5000}{"]" * 5000}}}}}')
    with pytest.raises(ServiceError) as raised:
        service.decide({"send": send, "context": {"x": deep}})
    assert over_http.status_code == 400 and raised.value.as_dict() == over_http.json


def test_bad_report_filters_are_the_http_422(client, service):
    with pytest.raises(ServiceError) as raised:
        service.cost_report("2025-09-30", "2025-09-01")
    assert raised.value.as_dict() == as_arguments(client.get("/v1/costs?from=2025-09-30&to=2025-09-01").json)
    with pytest.raises(ServiceError) as raised:
        service.reconcile(contact="5511")  # digits are a wa_id's, never a group id: refused as decisions() refuses it
    assert raised.value.as_dict() == as_arguments(client.get("/v1/reconciliation?contact=5511").json)
    with pytest.raises(ServiceError) as raised:
        service.reconcile(page_size=0)
    assert raised.value.as_dict() == as_arguments(client.get("/v1/reconciliation?page_size=0").json)
    assert list(raised.value.errors) == ["page_size"]


@pytest.mark.parametrize("value", [" 106540352242922", "106540352242922\n", "abc"])
def test_a_phone_number_id_that_is_not_digits_is_the_http_422_on_every_call(client, service, example_request, value):
    """decide(), decisions(), count_messages() and reconcile() refuse a phone_number_id Meta never gives (digits
    only) with the HTTP API's 422 naming it, instead of answering without the number's stored state."""
    from urllib.parse import quote

    window = {"from": "2025-09-01T00:00:00Z", "to": "2025-10-01T00:00:00Z"}
    calls = (
        (lambda: service.decide({**example_request, "send": {**example_request["send"], "phone_number_id": value}}),
         "send.phone_number_id"),
        (lambda: service.decisions(phone_number_id=value), "phone_number_id"),
        (lambda: service.count_messages(value, "utility", window["from"], window["to"]), "phone_number_id"),
        (lambda: service.reconcile(phone_number_id=value), "phone_number_id"),
    )
    for call, field in calls:
        with pytest.raises(ServiceError) as raised:
            call()
        assert raised.value.code == 422 and list(raised.value.errors) == [field], raised.value
    with pytest.raises(ServiceError) as raised:
        service.reconcile(phone_number_id=value)
    assert raised.value.as_dict() == as_arguments(client.get(f"/v1/reconciliation?phone_number_id={quote(value)}").json)


def test_an_unknown_decision_is_the_http_404(client, service):
    with pytest.raises(ServiceError) as raised:
        service.decision("nope")
    assert raised.value.as_dict() == as_arguments(client.get("/v1/decisions/nope").json)
    assert raised.value.errors == {"decision_id": ["no decision with this id"]}


def test_several_threads_decide_and_every_decision_is_logged(service):
    """One PolicyService shared by threads (a worker pool): every answer is right and logged once."""
    from concurrent.futures import ThreadPoolExecutor

    requests = [fixture.request for fixture in FIXTURES[:40]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(service.decide, requests))
    alone = [service.decide(request) for request in requests]
    assert [steady(answer) for answer in answers] == [steady(answer) for answer in alone]
    assert all(service.decision(answer["decision_id"])["decision"] == answer["decision"] for answer in answers)


def test_a_webhook_ingested_in_python_is_stored_as_over_http(client, service):
    """The same receipt both ways (ids and times aside); a repeat is the same duplicate receipt; and the
    payload's messages are the history the next decision reads."""
    over_http = client.post("/v1/webhooks/whatsapp", data=signed(inbound_text("wamid.a", T0))[0],
                            headers=signed(inbound_text("wamid.a", T0))[1]).json
    body, headers = signed(inbound_text("wamid.b", T0 + 60))
    in_python = service.ingest_webhook(body, headers["X-Hub-Signature-256"])
    assert in_python["status"] == "done" and in_python["new"] == 1 and in_python["duplicate"] is False
    assert {k: v for k, v in in_python.items() if k not in RECEIPT_VARYING} == {
        k: v for k, v in over_http.items() if k not in RECEIPT_VARYING}
    again = service.ingest_webhook(body, headers["X-Hub-Signature-256"])
    assert again["duplicate"] is True and again["id"] == in_python["id"]
    assert again == client.post("/v1/webhooks/whatsapp", data=body, headers=headers).json
    request = {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+" + CONTACT, "type": "text"},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}
    decided = service.decide(request)
    assert decided["history_source"]["events"] == 2 and decided["decision"] == "allow"


@pytest.mark.parametrize("what, body, signature", [
    ("a wrong signature", signed(inbound_text("wamid.c", T0))[0], "sha256=00"),
    ("no signature", signed(inbound_text("wamid.c", T0))[0], None),
    ("not a WhatsApp webhook", signed({"object": "page"})[0], signed({"object": "page"})[1]["X-Hub-Signature-256"]),
    ("not JSON", b"{", signed(b"{")[1]["X-Hub-Signature-256"]),
])
def test_a_refused_webhook_raises_the_http_error(client, service, what, body, signature):
    headers = {"Content-Type": "application/json", **({"X-Hub-Signature-256": signature} if signature else {})}
    over_http = client.post("/v1/webhooks/whatsapp", data=body, headers=headers)
    assert 400 <= over_http.status_code < 500
    with pytest.raises(ServiceError) as raised:
        service.ingest_webhook(body, signature)
    # The same error, but what HTTP names as its header (headers.X-Hub-Signature-256) Python names as the argument.
    expected = {**over_http.json, "errors": {("signature" if key == "headers.X-Hub-Signature-256" else key): value
                                             for key, value in over_http.json["errors"].items()}}
    assert raised.value.as_dict() == expected
    if signature != signed(inbound_text("wamid.c", T0))[1]["X-Hub-Signature-256"] and "signature" in what:
        assert list(over_http.json["errors"]) == ["headers.X-Hub-Signature-256"] and list(expected["errors"]) == [
            "signature"]


def test_a_webhook_change_nested_too_deep_costs_only_itself_in_python_too(service):
    """The Python API stores a payload whose one change is nested 35 levels deep (it raised the 400 and lost the
    message beside it), listing the change in `skipped`, as the HTTP endpoint does."""
    body = inbound_text("wamid.DEEP1", T0)
    deep: dict = {}
    for _ in range(35):
        deep = {"a": deep}
    body["entry"][0]["changes"].append({"field": "phone_number_name_update", "value": deep})
    raw, headers = signed(body)
    receipt = service.ingest_webhook(raw, headers["X-Hub-Signature-256"])
    assert receipt["new"] == 1 and [part["path"] for part in receipt["skipped"]] == ["entry.0.changes.1"], receipt


def test_a_webhook_over_the_size_limit_is_a_413_naming_the_limit(database_url):
    service = PolicyService(database_url=database_url, whatsapp_app_secret=APP_SECRET, max_content_length=100)
    body, headers = signed(inbound_text("wamid.big", T0))
    with pytest.raises(ServiceError) as raised:
        service.ingest_webhook(body, headers["X-Hub-Signature-256"])
    assert raised.value.code == 413 and "100 bytes" in raised.value.message


def test_without_an_app_secret_nothing_is_stored(database_url, monkeypatch):
    monkeypatch.delenv("POLICY_WHATSAPP_APP_SECRET", raising=False)
    body, headers = signed(inbound_text("wamid.c", T0))
    with pytest.raises(ServiceError) as raised:
        PolicyService(database_url=database_url).ingest_webhook(body, headers["X-Hub-Signature-256"])
    assert raised.value.code == 503 and list(raised.value.errors) == ["POLICY_WHATSAPP_APP_SECRET"]


def test_the_embedded_database_is_the_servers(monkeypatch):
    """Without DATABASE_URL both use the SQLite file in the instance folder Flask would use."""
    assert instance_path() == configured_app().instance_path


def test_the_python_api_loads_no_flask(tmp_path):
    """`from policy_service import PolicyService` and a decision import no Flask, flask-smorest or Werkzeug (webargs'
    fields may load: contract.queries reads a comma list with its DelimitedList, which needs no web framework)."""
    script = (
        "import sys\n"
        "from policy_service import PolicyService\n"
        "from policy_service.contract.schemas import DECISION_REQUEST_EXAMPLE\n"
        f"svc = PolicyService(database_url={'sqlite:///' + str(tmp_path / 'log.sqlite3')!r})\n"
        "assert svc.decide(DECISION_REQUEST_EXAMPLE)['decision'] == 'allow'\n"
        "web = ('flask', 'flask_smorest', 'werkzeug', 'webargs.flaskparser')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in web or m in web)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(ROOT), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_settings_come_from_the_environment_and_overrides(monkeypatch, database_url):
    monkeypatch.setenv("POLICY_MAX_BATCH_SIZE", "2")
    assert PolicyService(database_url=database_url).config["MAX_BATCH_SIZE"] == 2
    assert PolicyService(database_url=database_url, max_batch_size=3).config["MAX_BATCH_SIZE"] == 3


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """README's Python example, executed as written (on a fresh SQLite file): it prints what it says."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### The same from Python"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("\n```\n")]
    monkeypatch.setenv("POLICY_DATABASE_URL", f"sqlite:///{tmp_path / 'readme.sqlite3'}")
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the documented example is the test
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["allow free_customer_service", "422 {'send.at': ['Missing data for required field.']}"]


def test_a_storage_fault_raises_the_http_503_and_the_same_service_recovers(tmp_path, example_request):
    """The database gone (its folder removed): every call raises ServiceError 503 with exactly the HTTP API's
    body and its Retry-After (not peewee's raw error); once the database is back, the same PolicyService
    decides and logs again (no new instance, no restart)."""
    folder = tmp_path / "db"
    folder.mkdir()
    url = upgraded(f"sqlite:///{folder / 'log.sqlite3'}")
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    svc = PolicyService(database_url=url)
    try:
        assert svc.decide(example_request)["decision"] == "allow"
        store.close_all()
        shutil.rmtree(folder)
        over_http = app.test_client().post("/v1/decisions", json=example_request)
        assert over_http.status_code == 503
        calls = {"decide": lambda: svc.decide(example_request),
                 "decide_batch": lambda: svc.decide_batch([example_request]),
                 "idempotent decide": lambda: svc.decide(example_request, idempotency_key="k-down"),
                 "reconcile": lambda: svc.reconcile(phone_number_id=PHONE_NUMBER_ID)}
        for name, call in calls.items():
            with pytest.raises(ServiceError) as raised:
                call()
            assert raised.value.as_dict() == over_http.json, name
            assert raised.value.retry_after == int(over_http.headers["Retry-After"]), name

        folder.mkdir()
        upgraded(url)
        decided = svc.decide(example_request)
        assert svc.decision(decided["decision_id"])["decision"] == "allow"
    finally:
        svc.close()


def test_constructing_a_service_while_the_database_is_unreachable_raises_the_503(tmp_path):
    """PolicyService() against a database it cannot reach (a PostgreSQL port nothing listens on) raises ServiceError
    503 with Retry-After, as every call does, not the driver's raw error."""
    with pytest.raises(ServiceError) as raised:
        PolicyService(database_url="postgresql://policy@127.0.0.1:9/policy")
    assert raised.value.code == 503
    assert raised.value.as_dict()["status"] == "Service Unavailable", raised.value.as_dict()
    assert raised.value.retry_after and raised.value.retry_after > 0


def test_a_sqlite_file_in_a_missing_folder_is_a_settings_error(tmp_path):
    """A SQLite file in a folder that does not exist was a 503 (retrying cannot mend it): config.SettingsError naming
    POLICY_DATABASE_URL and the folder."""
    url = f"sqlite:///{tmp_path / 'missing' / 'log.sqlite3'}"
    with pytest.raises(DatabaseUrlRefused, match=f"POLICY_DATABASE_URL='{url}': the folder {tmp_path / 'missing'} "
                                                 "does not exist"):
        PolicyService(database_url=url)


def test_a_read_only_database_raises_503_and_recovers_once_writable(tmp_path, example_request, monkeypatch):
    """Reads work, writes fail (a read-only SQLite file): a decision is a 503, never an unlogged answer; once
    the file is writable again the same PolicyService decides."""
    url = upgraded(f"sqlite:///{tmp_path / 'log.sqlite3'}")
    svc = PolicyService(database_url=url)
    try:
        sqlite = store.database_proxy.obj
        path = sqlite.database
        store.close_all()
        monkeypatch.setattr(sqlite, "database", f"file:{path}?mode=ro")
        monkeypatch.setitem(sqlite.connect_params, "uri", True)
        for _ in range(2):
            with pytest.raises(ServiceError) as raised:
                svc.decide(example_request)
            assert raised.value.code == 503 and raised.value.retry_after and "retry after" in raised.value.message
        monkeypatch.undo()
        assert svc.decide(example_request)["decision"] == "allow"
    finally:
        svc.close()


def logged_rows() -> int:
    return DecisionRecord.select().count()


def test_an_idempotency_key_gives_the_first_decision_again_and_logs_nothing(service, example_request):
    """As the HTTP Idempotency-Key: the same key and request return the first answer (same decision_id) and
    add no log row; the same key with another request, or asking the why-not trace, is a 422 naming the key."""
    first = service.decide(example_request, idempotency_key="order-77")
    rows = logged_rows()
    again = service.decide(copy.deepcopy(example_request), idempotency_key="order-77")
    assert again == first and logged_rows() == rows

    other = {**example_request, "send": {**example_request["send"], "to": "+5511912345678"}}
    for call in (lambda: service.decide(other, idempotency_key="order-77"),
                 lambda: service.decide(example_request, explain="full", idempotency_key="order-77")):
        with pytest.raises(ServiceError) as raised:
            call()
        assert raised.value.code == 422 and list(raised.value.errors) == ["idempotency_key"]
        assert "already used with another request" in raised.value.message
    assert logged_rows() == rows
    assert service.decide(example_request)["decision_id"] != first["decision_id"]  # no key: decided anew


def test_a_batch_with_an_idempotency_key_is_decided_once(service, example_request):
    first = service.decide_batch([example_request, example_request], idempotency_key="batch-1")
    rows = logged_rows()
    assert service.decide_batch({"requests": [example_request, example_request]}, idempotency_key="batch-1") == first
    assert logged_rows() == rows
    with pytest.raises(ServiceError) as raised:
        service.decide_batch([example_request], idempotency_key="batch-1")
    assert raised.value.code == 422 and list(raised.value.errors) == ["idempotency_key"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9", 42])
def test_an_unusable_idempotency_key_is_a_422_naming_the_argument(service, example_request, key):
    """Said for a Python caller (a str argument), not as the header ("(one Idempotency-Key header)" it said)."""
    with pytest.raises(ServiceError) as raised:
        service.decide(example_request, idempotency_key=key)
    assert raised.value.code == 422 and list(raised.value.errors) == ["idempotency_key"]
    usable = "a str of 1 to 255 printable ASCII characters without spaces or commas"
    assert raised.value.errors["idempotency_key"] == [f"must be {usable}" + (", not int" if key == 42 else "")]
    assert "header" not in raised.value.message


def test_python_and_http_keys_never_meet(client, service, example_request):
    """The Python API is a client of its own: an HTTP client's key does not replay into Python, nor back."""
    over_http = client.post("/v1/decisions", json=example_request, headers={"Idempotency-Key": "shared"}).json
    in_python = service.decide(example_request, idempotency_key="shared")
    assert in_python["decision_id"] != over_http["decision_id"]
    other = {**example_request, "send": {**example_request["send"], "to": "+5511912345678"}}
    assert client.post("/v1/decisions", json=other, headers={"Idempotency-Key": "shared"}).status_code == 422
    assert service.decide(example_request, idempotency_key="shared")["decision_id"] == in_python["decision_id"]


def test_arguments_of_the_wrong_type_raise_a_422_naming_them(service):
    """A decision id or webhook argument of the wrong type is a ServiceError 422 naming the argument, not a
    TypeError from deep inside; a webhook body given as JSON text (str) is read as its UTF-8 bytes."""
    for call, argument in ((lambda: service.decision(12345), "decision_id"),
                           (lambda: service.decision(None), "decision_id"),
                           (lambda: service.ingest_webhook(5, None), "body"),
                           (lambda: service.ingest_webhook(b"{}", 5), "signature")):
        with pytest.raises(ServiceError) as raised:
            call()
        assert raised.value.code == 422 and argument in raised.value.errors, raised.value.as_dict()
    with pytest.raises(ServiceError) as raised:
        service.ingest_webhook("{}", None)  # text is accepted as bytes; unsigned is then the usual refusal
    assert raised.value.code in (401, 503), raised.value.as_dict()


def test_a_decimal_max_price_is_its_exact_text_and_a_float_is_refused_naming_the_field(service, example_request):
    """marketing_max_price is a decimal string: a Python Decimal is written as its exact text (not a 400 "not
    JSON" for the whole request); a float is refused at the field, saying a string is wanted."""
    from decimal import Decimal

    marketing = {**example_request, "send": {**example_request["send"], "template": {
        **example_request["send"]["template"], "category": "marketing"}}}
    decided = service.decide({**marketing, "context": {"marketing_max_price": Decimal("0.05")}})
    assert decided["status"] == "decided"
    with pytest.raises(ServiceError) as raised:
        service.decide({**marketing, "context": {"marketing_max_price": 0.05}})
    assert list(raised.value.errors) == ["context.marketing_max_price"]
    assert "decimal string" in raised.value.errors["context.marketing_max_price"][0]


def test_cost_report_names_a_bad_date_by_its_keyword_argument(service):
    """Python callers gave start= and end=, not the HTTP parameters from= and to=."""
    with pytest.raises(ServiceError) as raised:
        service.cost_report(start="x", end="2026-13-01")
    assert raised.value.code == 422 and set(raised.value.errors) == {"start", "end"}


def test_the_decision_log_listing_is_the_same_both_ways(client, service):
    """decisions() is GET /v1/decisions: the same entries, page for page, and the X-Pagination header's metadata
    (one definition serves both); filters named as keyword arguments (`since` for ?from=)."""
    for fixture in FIXTURES[:5]:
        service.decide(fixture.request)
    for page, size in ((1, 2), (2, 2), (3, 2), (9, 2), (1, 100)):
        over_http = client.get(f"/v1/decisions?page={page}&page_size={size}")
        listed = service.decisions(page=page, page_size=size)
        assert listed["decisions"] == over_http.json
        assert listed["pagination"] == json.loads(over_http.headers["X-Pagination"])
    denied = client.get("/v1/decisions?decision=deny&from=2000-01-01T00:00:00Z").json
    assert service.decisions(decision="deny", since="2000-01-01T00:00:00Z")["decisions"] == denied
    with pytest.raises(ServiceError) as raised:
        service.decisions(since="2026-02-01T00:00:00Z", until="2026-01-01T00:00:00Z")
    assert raised.value.as_dict() == as_arguments(
        client.get("/v1/decisions?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z").json,
        {"from": "since", "to": "until"})
    for bad in ({"page": 0}, {"page_size": 101}, {"page": "2"}, {"decision": "maybe"}):
        with pytest.raises(ServiceError) as raised:
            service.decisions(**bad)
        assert raised.value.code == 422 and list(raised.value.errors) == list(bad), raised.value


def test_counts_templates_and_the_billing_currency_are_the_same_both_ways(client, service):
    """count_messages(), import_templates(), templates(), template() and billing_currency() answer the bodies of
    GET /v1/counts, POST …/message_templates, GET …/templates[/<name>/<language>] and GET …/billing-currency."""
    deliver(client, inbound_text("wamid.in1", T0),
            status("wamid.out1", "delivered", T0 + 60, pricing=pmp("utility", "free_customer_service", False)))
    window = {"from": "2025-09-01T00:00:00Z", "to": "2025-10-01T00:00:00Z"}
    over_http = client.get(f"/v1/counts?phone_number_id={PHONE_NUMBER_ID}&categories=utility,marketing"
                           f"&from={window['from']}&to={window['to']}").json
    assert over_http["count"] == 1
    assert service.count_messages(PHONE_NUMBER_ID, ["utility", "marketing"], window["from"], window["to"]) == over_http

    waba = "102290129340398"
    response = message_templates_response(("order_update", "en_US", "UTILITY", "APPROVED"))
    assert service.import_templates(waba, response) == {"imported": 1}
    at = "2030-01-01T00:00:00Z"
    assert service.templates(waba, at=at) == client.get(f"/v1/wabas/{waba}/templates?at={at}").json
    one = service.template(waba, "order_update", "en_US", at=at)
    assert one["category"]["value"] == "utility"
    assert one == client.get(f"/v1/wabas/{waba}/templates/order_update/en_US?at={at}").json
    service.set_billing_currency(waba, "EUR")
    assert service.billing_currency(waba) == client.get(f"/v1/wabas/{waba}/billing-currency").json


LISTED = ("APPROVED, ARCHIVED, DELETED, DISABLED, IN_APPEAL, LIMIT_EXCEEDED, PAUSED, PENDING, PENDING_DELETION, "
          "REJECTED")


@pytest.mark.parametrize(("template", "errors"), [
    ({"status": "APROVED"}, {"data.0.status": [f"must be one of: {LISTED}"]}),
    ({"category": "PROMOTIONAL"}, {"data.0.category": [
        "must be one of: MARKETING, MARKETING_LITE, UTILITY, AUTHENTICATION, AUTHENTICATION_INTERNATIONAL"]}),
])
def test_an_import_with_a_status_or_category_that_is_not_metas_is_a_422_naming_it_both_ways(client, service, template,
                                                                                            errors):
    """A client's import (POST …/message_templates, import_templates()) of a template whose status or category is
    not one of Meta's is refused naming the field and the values allowed (it was stored with none, silently), and
    nothing is stored; Meta's values in any case are imported as before."""
    body = message_templates_response(("order_update", "en_US", "UTILITY", "APPROVED"))
    body["data"][0].update(template)
    over_http = client.post(f"/v1/wabas/{_WABA}/message_templates", json=body)
    assert over_http.status_code == 422 and over_http.json["errors"] == errors
    with pytest.raises(ServiceError) as raised:
        service.import_templates(_WABA, body)
    assert raised.value.as_dict() == over_http.json
    assert service.templates(_WABA)["templates"] == []
    fine = message_templates_response(("order_update", "en_US", "utility", "approved"))
    assert service.import_templates(_WABA, fine) == {"imported": 1}


def test_an_imported_status_the_rules_do_not_model_is_unknown_and_named(client, service):
    """IN_APPEAL and LIMIT_EXCEEDED are Meta's statuses the rules do not model: imported, the registry says the
    status is unknown, naming Meta's value (it said nothing, as if the template had no status)."""
    service.import_templates(_WABA, message_templates_response(("order_update", "en_US", "UTILITY", "IN_APPEAL")))
    status = service.template(_WABA, "order_update", "en_US")["status"]
    assert status["value"] == "UNKNOWN" and status["source"].endswith(
        "(Meta's status IN_APPEAL is not one the rules model)"), status


@pytest.mark.parametrize(("call", "path"), [
    (lambda svc: svc.templates("not-a-waba"), "/v1/wabas/not-a-waba/templates"),
    (lambda svc: svc.template("102290129340398", "nobody", "en"), "/v1/wabas/102290129340398/templates/nobody/en"),
    (lambda svc: svc.billing_currency("102290129340398"), "/v1/wabas/102290129340398/billing-currency"),
    (lambda svc: svc.billing_currency("x1"), "/v1/wabas/x1/billing-currency"),
])
def test_an_unknown_waba_or_template_is_the_http_404(client, service, call, path):
    """An id that cannot be a WABA's, a template the registry never heard of, no currency set: the HTTP 404 body,
    naming the argument (HTTP: the path parameter)."""
    with pytest.raises(ServiceError) as raised:
        call(service)
    assert raised.value.as_dict() == as_arguments(client.get(path).json) and raised.value.code == 404
    named = {f"path.{key}" for key in raised.value.errors}
    assert named and set(client.get(path).json["errors"]) == named  # the path parameter, named as Python names it


def test_a_bad_template_import_or_count_raises_the_http_422(client, service):
    """A message_templates response with a template missing Meta's fields, or a count without categories: 422
    naming the field, as over HTTP; a WABA id that is not a string is a 422 naming waba_id."""
    waba = "102290129340398"
    body = {"data": [{"name": "order_update"}]}
    with pytest.raises(ServiceError) as raised:
        service.import_templates(waba, body)
    assert raised.value.as_dict() == client.post(f"/v1/wabas/{waba}/message_templates", json=body).json
    with pytest.raises(ServiceError) as raised:
        service.count_messages(PHONE_NUMBER_ID, [], "2025-09-01T00:00:00Z", "2025-10-01T00:00:00Z")
    assert list(raised.value.errors) == ["categories"]
    with pytest.raises(ServiceError) as raised:  # a misspelled category counted 0 silently
        service.count_messages(PHONE_NUMBER_ID, ["utilty"], "2025-09-01T00:00:00Z", "2025-10-01T00:00:00Z")
    assert raised.value.code == 422 and list(raised.value.errors) == ["categories.0"]
    with pytest.raises(ServiceError) as raised:
        service.templates(102290129340398)
    assert raised.value.code == 422 and list(raised.value.errors) == ["waba_id"]


_WABA = "102290129340398"
_SEND = {"at": "2025-09-01T10:00:00+00:00", "to": "+14155550123", "type": "text"}
_ELIGIBILITY = {"start_time": "2025-09-01T00:00:00Z"}
_FORECAST = {"currency": "USD", "at": "2026-11-10T12:00:00+00:00",
             "lines": [{"country": "BR", "category": "marketing", "count": 1}]}
# Every time a client gives, as (field path, the request over HTTP, the same through the Python API) with TIME in it.
TIME = "@@time@@"
REQUEST_TIMES = [
    ("send.at", ("post", "/v1/decisions", {"send": {**_SEND, "at": TIME}}),
     lambda svc, at: svc.decide({"send": {**_SEND, "at": at}})),
    ("history.0.at", ("post", "/v1/decisions", {"send": _SEND, "history": [
        {"direction": "inbound", "at": TIME, "type": "text"}]}),
     lambda svc, at: svc.decide({"send": _SEND, "history": [{"direction": "inbound", "at": at, "type": "text"}]})),
    ("history.0.delivered_at", ("post", "/v1/decisions", {"send": _SEND, "history": [
        {"direction": "outbound", "at": "2025-09-01T09:00:00Z", "type": "text", "delivered_at": TIME}]}),
     lambda svc, at: svc.decide({"send": _SEND, "history": [
         {"direction": "outbound", "at": "2025-09-01T09:00:00Z", "type": "text", "delivered_at": at}]})),
    ("context.authentication_international_eligibility.start_time", ("post", "/v1/decisions", {
        "send": _SEND, "context": {"authentication_international_eligibility": {"start_time": TIME}}}),
     lambda svc, at: svc.decide({"send": _SEND, "context": {
         "authentication_international_eligibility": {"start_time": at}}})),
    ("at", ("post", "/v1/costs/forecast", {**_FORECAST, "at": TIME}),
     lambda svc, at: svc.forecast({**_FORECAST, "at": at})),
    ("from", ("get", "/v1/decisions?from=" + TIME, None), lambda svc, at: svc.decisions(since=at)),
    ("to", ("get", f"/v1/counts?phone_number_id={PHONE_NUMBER_ID}&categories=utility&from=2025-09-01T00:00:00Z"
                   f"&to={TIME}", None),
     lambda svc, at: svc.count_messages(PHONE_NUMBER_ID, "utility", "2025-09-01T00:00:00Z", at)),
    ("at", ("get", f"/v1/wabas/{_WABA}/templates?at={TIME}", None), lambda svc, at: svc.templates(_WABA, at=at)),
]


def _sent(client, how, text):
    method, path, body = how
    path = path.replace(TIME, text.replace("+", "%2B"))
    if body is None:
        return client.get(path)
    return client.post(path, json=json.loads(json.dumps(body).replace(TIME, text)))


_IDS = [f"{case[1][1].split('?')[0]}:{case[0]}" for case in REQUEST_TIMES]


@pytest.mark.parametrize(("field", "how", "call"), REQUEST_TIMES, ids=_IDS)
def test_a_request_time_that_is_not_rfc3339_is_a_422_naming_it_both_ways(client, service, field, how, call):
    """Every time a client gives (a send, a history message and its delivery, Meta's eligibility start in the
    context, a forecast, the decision log's and the counts' range, the registry's `at`) is an RFC 3339 date-time
    with offset: ISO 8601 forms fromisoformat also read (a week date, the basic format, a space, no seconds, +0000)
    are a 422 naming the field over HTTP, and the same ServiceError in Python (a query parameter named as the
    keyword argument); a lowercase t and z (RFC 3339 section 5.6 allows them) are read both ways."""
    for text in ("2025-W36-1T10:00:00Z", "20250901T100000Z", "2025-09-01 10:00:00Z", "2025-09-01T10:00Z",
                 "2025-09-01T10:00:00+0000", "2025-09-01"):
        over_http = _sent(client, how, text)
        assert over_http.status_code == 422, (text, over_http.json)
        assert list(over_http.json["errors"]) in ([field], [f"query.{field}"]), over_http.json
        with pytest.raises(ServiceError) as raised:
            call(service, text)
        assert raised.value.code == 422, raised.value
        assert list(raised.value.errors.values()) == list(over_http.json["errors"].values()), raised.value
    assert _sent(client, how, "2025-09-01t10:00:00z").status_code == 200, field
    call(service, "2025-09-01t10:00:00z")


def test_a_batch_refused_for_a_later_request_logs_nothing_and_names_the_request(service, example_request):
    """As over HTTP: a request refused once the store is read (history_ref.contact naming another user) refuses
    the whole batch, its errors named requests.<i>.<field>, and the requests before it are not logged."""
    stranger = {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"},
                "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}
    rows = logged_rows()
    with pytest.raises(ServiceError) as raised:
        service.decide_batch([example_request, stranger])
    assert raised.value.code == 422 and list(raised.value.errors) == ["requests.1.history_ref.contact"]
    assert raised.value.message.startswith("invalid request: requests.1.history_ref.contact: ")
    assert logged_rows() == rows


def test_a_batch_names_every_request_refused_once_the_store_is_read(service):
    """decide_batch, as POST /v1/decisions/batch: another user's history_ref.contact at request 0 and an unknown
    name-only template at request 1 are both named in one ServiceError (only requests.0 was)."""
    stranger = {"send": {"at": "2026-08-12T12:00:00Z", "to": "+14155550100", "type": "text"},
                "history_ref": {"phone_number_id": "106540352242922", "contact": "5511987654321"}}
    name_only = {"send": {"at": "2026-08-12T12:00:00Z", "to": "+14155550100", "type": "template",
                          "template": {"name": "never_heard_of", "language": "en"}}}
    with pytest.raises(ServiceError) as raised:
        service.decide_batch([stranger, name_only])
    assert raised.value.code == 422 and "requests.0.history_ref.contact" in raised.value.errors
    assert "requests.1.send.template.category" in raised.value.errors, raised.value.errors


# A valid value of each required argument, so that one argument at a time can be given a wrong one.
VALID_ARGUMENTS = {
    "request": {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"}},
    "requests": [], "body": b"{}", "signature": None, "decision_id": "x", "phone_number_id": PHONE_NUMBER_ID,
    "categories": "marketing", "since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z",
    "waba_id": "102290129340398", "name": "n", "language": "en", "response": {"data": []}, "start": "2026-01-01",
    "end": "2026-02-01", "currency": "USD"}
WRONG_VALUES = (None, 5, 1.5, True, ["x", None], {"a": 1}, object(), b"x", "\uff11", 10**30, float("nan"))


def test_every_method_refuses_a_wrong_argument_with_a_service_error(service):
    """count_messages("1", None, ...) and cost_report(..., group_by=None / 5 / ["month", None]) raised a bare
    TypeError (str.join), and reconcile(page=None) was page 1 where decisions(page=None) is a 422: every public
    method, given a wrong value (None, a number, a list holding None, an object, bytes, other scripts' digits, ...)
    in any one argument, raises ServiceError and nothing else; the reported ones are 422s naming the argument."""
    import inspect

    calls = 0
    for name, method in inspect.getmembers(service, inspect.ismethod):
        if name.startswith("_") or name == "close":
            continue
        parameters = inspect.signature(method).parameters
        required = {p: VALID_ARGUMENTS[p] for p, info in parameters.items() if info.default is inspect.Parameter.empty}
        for parameter in parameters:
            for wrong in WRONG_VALUES:
                try:
                    method(**{**required, parameter: wrong})
                except ServiceError:
                    pass
                calls += 1
    assert calls > 300
    for call, argument in ((lambda: service.count_messages("1", None, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
                            "categories"),
                           (lambda: service.cost_report("2026-01-01", "2026-02-01", group_by=None), "group_by"),
                           (lambda: service.cost_report("2026-01-01", "2026-02-01", group_by=5), "group_by"),
                           (lambda: service.cost_report("2026-01-01", "2026-02-01", group_by=["month", None]),
                            "group_by"),
                           (lambda: service.reconcile(page=None), "page"),
                           (lambda: service.decisions(page=None), "page")):
        with pytest.raises(ServiceError) as raised:
            call()
        assert raised.value.code == 422 and list(raised.value.errors) == [argument], raised.value.errors
    assert service.cost_report("2026-01-01", "2026-02-01", group_by=("month", "category"))["group_by"] == [
        "month", "category"]


def test_a_bad_rule_file_stops_the_construction_naming_the_file(tmp_path):
    """PolicyService(rules_dir=...) with a rule file that is not YAML raises core.errors.RulebookError naming the file
    (the module's docstring lists it with the other construction errors), before any database is opened."""
    from policy_service.core.errors import RulebookError

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "broken.yaml").write_text("rules: [\n")
    with pytest.raises(RulebookError, match=r"^broken\.yaml: not valid YAML"):
        PolicyService(rules_dir=str(rules), database_url=f"sqlite:///{tmp_path / 'log.sqlite3'}")
    assert not (tmp_path / "log.sqlite3").exists()

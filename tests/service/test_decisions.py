"""The decision pipeline (service.decisions) without the web layer: each step's output, the logged request
with the stored state written in, and the caller's request left untouched (no copy, no mutation)."""

import copy
import json
from datetime import UTC, datetime

import peewee
import pytest

from policy_service.contract.schemas import REQUEST
from policy_service.service import decisions, logged
from policy_service.service.errors import ServiceError
from policy_service.store import log_compression

from ..meta_business_payloads import category_completed
from ..meta_payloads import CONTACT, PHONE_NUMBER_ID, deliver, inbound_text

T0 = 1756717200  # 2025-09-01T09:00:00Z


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


@pytest.fixture
def pipeline(app):
    return decisions.Decisions(app.extensions["policy_service"], mask=True)


def name_only_send(at: int, name: str = "order_update") -> dict:
    return {"send": {"at": iso(at), "to": "+" + CONTACT, "type": "template",
                     "template": {"name": name, "language": "en_US", "status": "APPROVED"}},
            "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": "+" + CONTACT}}


def test_each_step_resolves_fills_in_evaluates_and_logs(client, pipeline):
    """history_ref becomes the stored history; the registry's category is filled in; the row is logged."""
    deliver(client, inbound_text("wamid.in1", T0), category_completed("order_update", "en_US", "UTILITY",
                                                                      "MARKETING", T0 + 600))
    raw = name_only_send(T0 + 3600)
    before = copy.deepcopy(raw)
    start = decisions.proposal(REQUEST.load(raw), raw)
    assert start.contact == CONTACT and start.phone_number_id == PHONE_NUMBER_ID

    resolved = decisions.resolve_history(start, pipeline.policy.rulebook)
    assert [message.id for message in resolved.request.history] == ["wamid.in1"]
    source = resolved.history_source
    assert source["ref"] == {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT} and source["events"] == 1
    # The log keeps the ref as asked and the range read, not the history.
    assert resolved.logged["history_ref"] == raw["history_ref"] and "history" not in resolved.logged
    assert resolved.logged["history_read"] == {key: source[key] for key in ("from", "until", "events", "digest")} | {
        "anchor": "wamid.in1"}

    filled = pipeline.fill_in_business_state(resolved)
    assert filled.request.send.template.category == "marketing"
    assert filled.logged["send"]["template"]["category"] == "marketing"
    assert "template_category" in filled.request.sources

    done = pipeline.log(pipeline.respond(pipeline.evaluate(filled)))
    assert done.body["charge"]["category"] == "marketing" and done.body["history_source"] == resolved.history_source
    row = logged.decision(done.body["decision_id"])
    assert row["request"]["send"]["template"]["category"] == "marketing"
    assert raw == before, "the caller's request is never modified"


def test_a_request_without_history_ref_passes_resolve_history_unchanged(pipeline):
    raw = {"send": {"at": iso(T0), "to": "+" + CONTACT, "type": "text"}, "history": []}
    start = decisions.proposal(REQUEST.load(raw), raw)
    assert decisions.resolve_history(start, pipeline.policy.rulebook) is start


@pytest.mark.parametrize(("to", "ref", "contact"), [
    ("+" + CONTACT, {"contact": "+" + CONTACT}, CONTACT),
    ("+Z3JvdXA=", {"group_id": "+Z3JvdXA="}, "+Z3JvdXA="),
    ("Z3JvdXA=", {"group_id": "Z3JvdXA="}, "Z3JvdXA="),
])
def test_only_a_phone_number_loses_its_plus_a_group_id_is_kept_as_given(to, ref, contact):
    """A group's history is stored under its group id, which may start with "+" (base64): it is not stripped."""
    send = {"at": iso(T0), "to": to, "type": "text"}
    if "group_id" in ref:
        send |= {"recipient_type": "group", "participants": ["+" + CONTACT]}
    raw = {"send": send, "history_ref": {"phone_number_id": PHONE_NUMBER_ID, **ref}}
    assert decisions.proposal(REQUEST.load(raw), raw).contact == contact


@pytest.mark.parametrize("send", [
    {"type": "text"},
    {"type": "template", "template": {"name": "spring_sale", "language": "en_US", "category": "marketing",
                                      "status": "APPROVED"}},
])
def test_a_request_naming_no_sending_number_passes_the_business_state_step_as_received(pipeline, send):
    """Without a sending number nothing stored can apply, and a template that gives its category and status needs
    nothing from the registry: the proposal goes on as it came, the same request and logged request. The same
    decision as a request naming a number the store knows nothing of, but for what that number's store adds."""
    raw = {"send": {"at": iso(T0), "to": "+" + CONTACT, **send}, "history": []}
    start = decisions.proposal(REQUEST.load(raw), raw)
    assert pipeline.fill_in_business_state(start) is start
    unknown = {**raw, "send": {**raw["send"], "phone_number_id": "000000000000001"}}
    filled = pipeline.fill_in_business_state(decisions.proposal(REQUEST.load(unknown), unknown))
    assert filled.request.send.template == start.request.send.template
    stored_only = set(filled.request.sources)
    assert {k: v for k, v in filled.request.context.items() if k not in stored_only} == start.request.context
    assert pipeline.preview(start).body["decision"] == pipeline.preview(filled).body["decision"]


def test_a_template_nobody_knows_the_category_of_is_a_422_naming_the_field(pipeline):
    """Neither the request nor the registry gives the category: ServiceError with the HTTP error shape."""
    raw = name_only_send(T0, name="never_heard_of")
    with pytest.raises(ServiceError) as refused:
        pipeline.decide(decisions.proposal(REQUEST.load(raw), raw))
    error = refused.value.as_dict()
    assert error["code"] == 422 and error["status"] == "Unprocessable Entity"
    assert list(error["errors"]) == ["send.template.category"]
    assert error["message"].startswith("invalid request: send.template.category: required")
    unnamed = {"send": raw["send"]}  # no history_ref: no sending number at all
    with pytest.raises(ServiceError) as without_number:
        pipeline.decide(decisions.proposal(REQUEST.load(unnamed), unnamed))
    assert list(without_number.value.as_dict()["errors"]) == ["send.template.category"]


def test_the_log_dictionary_samples_are_the_same_bytes_each_time_and_hold_no_decision_id(app, client,
                                                                                        example_request):
    """Every worker builds the decision log's dictionary itself: its sample rows must come out byte for byte the
    same (the stored dictionary is found by digest), so a sample's random decision_id is written as zeros; the
    numbers in them are masked as a logged row's are. The rows the service logs use that dictionary."""
    policy = app.extensions["policy_service"]
    first, again = decisions.dictionary_samples(policy), decisions.dictionary_samples(policy)
    assert first == again and len(first) == len(decisions.DICTIONARY_EXAMPLES)
    for sample in first:
        request, _, response = sample.partition(b"\x00")
        assert json.loads(response)["decision_id"] == "0" * 32
        assert not [raw for raw in decisions.DICTIONARY_EXAMPLES if raw["send"]["to"].encode() in sample]
        assert json.loads(request)["send"]["to"].endswith("****")
        assert json.loads(request)["send"]["at"] == "2025-08-12T12:00:00+00:00"
    decided = client.post("/v1/decisions", json=example_request).json
    with app.app_context():
        row = logged.decision_log.DecisionRecord.get(logged.decision_log.DecisionRecord.decision_id ==
                                                     decided["decision_id"])
        content = bytes(log_compression.LogDictionary.get_by_id(row.dictionary).content)
    assert content == log_compression.dictionary_content(policy.rulebook, first)


def test_history_messages_after_the_send_are_said_to_be_unread(client):
    """An inline history whose only inbound message comes after send.at is decided as if the user never wrote
    (the rules see only the past), and history_source says how many messages were not read; a history wholly
    before the send has no history_source."""
    send = {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"}
    later = {"direction": "inbound", "at": "2025-08-13T09:00:00+00:00", "type": "text"}
    earlier = {"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}
    body = client.post("/v1/decisions", json={"send": send, "history": [earlier, later, later]}).json
    assert body["decision"] == "allow"  # the earlier message opened the window
    assert body["history_source"]["after_send"] == 2 and "2 of the history's messages are" in \
        body["history_source"]["note"]
    alone = client.post("/v1/decisions", json={"send": send, "history": [later]}).json
    assert alone["decision"] == "deny" and alone["history_source"]["after_send"] == 1
    assert "history_source" not in client.post("/v1/decisions", json={"send": send, "history": [earlier]}).json


def _proposals(*raws):
    return [decisions.proposal(REQUEST.load(raw), raw) for raw in raws]


def _rows() -> int:
    return logged.decision_log.DecisionRecord.select().count()


def test_a_batch_is_logged_all_or_nothing(pipeline, example_request):
    """decide_all previews every request before logging any: a refusal of the third (a template nobody knows the
    category of) raises it named requests.2.<field> with no row logged; a row the database refuses rolls back the
    rows before it; a good batch logs every row, in order."""
    before = _rows()
    with pytest.raises(ServiceError) as refused:
        pipeline.decide_all(_proposals(example_request, example_request, name_only_send(T0, name="never_heard_of")))
    assert list(refused.value.errors) == ["requests.2.send.template.category"]
    assert refused.value.message.startswith("invalid request: requests.2.send.template.category: required")
    assert _rows() == before

    # The second row is one the log already holds (its decision_id taken): the database refuses it, and the first
    # row, committed in the same unit, is rolled back with it.
    taken = pipeline.decide_all(_proposals(example_request))[0].decision.decision_id
    before += 1
    values, calls = logged.decision_log._values, []

    def second_taken(*args):
        row = values(*args)
        calls.append(row)
        if len(calls) == 2:
            row["decision_id"] = taken
        return row

    try:
        logged.decision_log._values = second_taken
        with pytest.raises(peewee.IntegrityError):
            pipeline.decide_all(_proposals(example_request, example_request))
    finally:
        logged.decision_log._values = values
    assert len(calls) == 2 and _rows() == before

    done = pipeline.decide_all(_proposals(example_request, example_request))
    assert _rows() == before + 2
    assert [logged.decision(each.decision.decision_id)["response"]["decision_id"] for each in done] == [
        each.body["decision_id"] for each in done]


def test_in_batch_names_a_refusal_by_the_request_it_refused():
    """A request's ServiceError is named under requests.<index>: each field, the request as a whole (_request),
    and the message's first field; a message naming no field gets the index in front; a 503 (no field) is kept."""
    refused = ServiceError(422, "invalid request: send.to: bad", {"send.to": ["bad"], "_request": ["whole"]},
                           retry_after=3)
    named = decisions.in_batch(refused, 4)
    assert named.errors == {"requests.4.send.to": ["bad"], "requests.4": ["whole"]}
    assert named.message == "invalid request: requests.4.send.to: bad" and named.retry_after == 3
    other = decisions.in_batch(ServiceError(422, "template unknown", {"send.template": ["unknown"]}), 0)
    assert other.message == "requests.0: template unknown" and list(other.errors) == ["requests.0.send.template"]
    unavailable = ServiceError(503, "storage unavailable", retry_after=5)
    assert decisions.in_batch(unavailable, 1) is unavailable


@pytest.mark.parametrize("step", ["resolve_history", "business", "pricing"])
def test_an_internal_error_in_any_step_fails_closed_on_every_path(app, client, database_url, monkeypatch, tmp_path,
                                                                  step):
    """An internal error (a ValueError from a stored value the code cannot read) while resolving the stored history,
    filling in the business's stored state or pricing from the store is not a 500, a traceback or a bare exception:
    the decision is a deny with status error (logged, as the engine's own errors are) over HTTP, in a batch, from
    `policy-service check` and from the Python API. A refusal (ServiceError) still passes through as a refusal."""
    from click.testing import CliRunner

    from policy_service import PolicyService, cli
    from policy_service.service import business, pricing

    def broken(*args, **kwargs):
        raise ValueError("invalid literal for int() with base 10: '¹50001'")

    target = {"resolve_history": (decisions.history_reads, "read"), "business": (business, "enrich"),
              "pricing": (pricing, "fill_in")}[step]
    monkeypatch.setattr(*target, broken)
    raw = {"send": {"at": iso(T0), "to": "+" + CONTACT, "type": "template", "phone_number_id": PHONE_NUMBER_ID,
                    "template": {"name": "order_update", "language": "en", "category": "utility",
                                 "status": "APPROVED"}},
           "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": "+" + CONTACT}}

    def failed_closed(body):
        assert (body["decision"], body["status"], body["charge"]) == ("deny", "error", None), body
        assert body["determining_rules"] == [] and "Traceback" not in json.dumps(body)

    response = client.post("/v1/decisions", json=raw)
    assert response.status_code == 200, response.get_data(as_text=True)
    failed_closed(response.get_json())
    assert logged.decision(response.get_json()["decision_id"])["response"]["status"] == "error"
    batch = client.post("/v1/decisions/batch", json={"requests": [raw, raw]})
    assert batch.status_code == 200, batch.get_data(as_text=True)
    for body in batch.get_json()["decisions"]:
        failed_closed(body)
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(raw))
    checked = CliRunner().invoke(cli.main, ["check", "--json", str(request_file), "--database-url", database_url])
    assert checked.exception is None or isinstance(checked.exception, SystemExit), checked.output
    failed_closed(json.loads(checked.output))
    svc = PolicyService(database_url=database_url)
    try:
        failed_closed(svc.decide(raw))
    finally:
        svc.close()
    monkeypatch.setattr(*target, lambda *args, **kwargs: (_ for _ in ()).throw(ServiceError(422, "refused", {})))
    assert client.post("/v1/decisions", json=raw).status_code == 422

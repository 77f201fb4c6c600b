"""The decision log: every decision stored before it returns, masked for replay, listed with filters."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playhouse.db_url import connect

from policy_service.contract.parsing import BodyRefused
from policy_service.core.identities import recipient
from policy_service.store import decision_log

from ..conftest import ROOT
from ..core.test_masking import _REQUEST, _TYPED_MESSAGE


def request_for(to: str, category: str = "marketing", at: str = "2025-08-12T12:00:00+00:00") -> dict:
    """A template send to a number, with one inbound message three hours earlier."""
    return {
        "send": {"at": at, "to": to, "type": "template",
                 "template": {"name": "spring_sale", "language": "en", "category": category, "status": "APPROVED"}},
        "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}],
    }


@pytest.mark.parametrize(("number", "masked"), [
    ("+14155550100", "+1415*******"),
    ("+16135550100", "+1613*******"),
    ("+5511987654321", "+55***********"),
    ("+447700900123", "+44**********"),
    ("5511987654321", "55***********"),
])
def test_mask_keeps_calling_code_and_nanp_area_code(number, masked):
    """A masked number keeps only its calling code, plus the area code for +1 numbers."""
    assert decision_log.mask_number(number) == masked


def test_masking_reaches_every_phone_number_in_a_request():
    """Phone numbers are masked wherever they appear, including a history_ref contact without '+'."""
    value = {"send": {"to": "+14155550100"}, "history_ref": {"contact": "14155550100", "phone_number_id": "1065403"},
             "facts": {"recipient": "sent to +14155550100 today"}}
    assert decision_log.masked(value) == {
        "send": {"to": "+1415*******"}, "history_ref": {"contact": "1415*******", "phone_number_id": "1065403"},
        "facts": {"recipient": "sent to +1415******* today"}}


def test_masking_reaches_every_bsuid_and_keeps_its_country_prefix():
    """A BSUID is masked wherever it appears (send.to, a history_ref contact, the trace); wamids are left alone."""
    value = {"send": {"to": "US.13491208655302741918"},
             "history_ref": {"contact": "US.ENT.11815799212886844830", "phone_number_id": "1065403"},
             "trace": ["US.13491208655302741918 is in the United States"], "id": "wamid.EXAMPLE.IN.1"}
    assert decision_log.masked(value) == {
        "send": {"to": "US.********************"},
        "history_ref": {"contact": "US.ENT.********************", "phone_number_id": "1065403"},
        "trace": ["US.******************** is in the United States"], "id": "wamid.EXAMPLE.IN.1"}


def test_a_bsuid_decision_is_logged_masked_and_replays_as_a_bsuid_of_its_country(app, client):
    """The log never holds the BSUID; its replayable request has a BSUID of the same country, deciding alike."""
    request = request_for("+14155550100")
    request["send"]["to"] = "US.13491208655302741918"
    body = client.post("/v1/decisions", json=request).json
    assert "MKT-4" in body["determining_rules"]
    logged = client.get(f"/v1/decisions/{body['decision_id']}").json
    assert "13491208655302741918" not in json.dumps(logged)
    assert logged["recipient_region"] == "US"
    with app.app_context():
        row = decision_log.DecisionRecord.get(decision_log.DecisionRecord.decision_id == body["decision_id"])
        replayable = decision_log.replayable_request(row)
    assert replayable["send"]["to"] == "US.00000000000000000000"
    assert client.post("/v1/decisions", json=replayable).json["determining_rules"] == body["determining_rules"]


def test_decision_is_logged_masked_with_facts_and_rules(app, client):
    """A returned decision_id is retrievable with masked request, facts, outcome and determining rules."""
    body = client.post("/v1/decisions", json=request_for("+14155550100")).json
    logged = client.get(f"/v1/decisions/{body['decision_id']}").json
    assert logged["request"]["send"]["to"] == "+1415*******"
    assert "+14155550100" not in json.dumps(logged)
    assert logged["recipient_region"] == "US"
    assert logged["decision"] == body["decision"] == "deny"
    assert logged["determining_rules"] == body["determining_rules"]
    assert "MKT-4" in logged["determining_rules"]
    assert logged["response"]["facts"]["seen_by_rules"]["recipient_region"] == "US"
    with app.app_context():
        row = decision_log.DecisionRecord.get(decision_log.DecisionRecord.decision_id == body["decision_id"])
        assert json.loads(row.response)["facts"]["seen_by_rules"]["recipient_calling_code"] == 1
        assert row.rulebook_version == body["rulebook_version"] and row.policy_version == "V3"


def test_masking_can_be_turned_off(database_url):
    """With MASK_PHONE_NUMBERS false the request is logged as sent."""
    from policy_service import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "MASK_PHONE_NUMBERS": False})
    client = app.test_client()
    body = client.post("/v1/decisions", json=request_for("+14155550100")).json
    logged = client.get(f"/v1/decisions/{body['decision_id']}").json
    assert logged["masked"] is False and logged["request"]["send"]["to"] == "+14155550100"


@pytest.mark.parametrize(("number", "region"), [("+14155550100", "US"), ("+16135550100", "CA"),
                                                 ("+5511987654321", "BR")])
def test_masked_request_replays_to_the_same_region(app, client, number, region):
    """The replayable request of a masked log entry has a number of the recipient's region."""
    body = client.post("/v1/decisions", json=request_for(number)).json
    with app.app_context():
        row = decision_log.DecisionRecord.get(decision_log.DecisionRecord.decision_id == body["decision_id"])
        replayable = decision_log.replayable_request(row)
    assert "*" not in replayable["send"]["to"]
    assert recipient(replayable["send"]["to"])[0] == region


def test_listing_filters_by_decision_rule_and_time(client):
    """GET /v1/decisions filters by decision, determining rule and logged time."""
    denied = client.post("/v1/decisions", json=request_for("+14155550100")).json
    allowed = client.post("/v1/decisions", json=request_for("+16135550100")).json
    assert denied["decision"] == "deny" and allowed["decision"] == "allow"

    def ids(query: str) -> list[str]:
        response = client.get(f"/v1/decisions?{query}")
        assert response.status_code == 200, response.json
        return [item["decision_id"] for item in response.json]

    assert ids("") == [allowed["decision_id"], denied["decision_id"]]
    assert ids("decision=deny") == [denied["decision_id"]]
    assert ids("rule=MKT-4") == [denied["decision_id"]]
    assert ids("rule=MKT") == []
    assert ids("from=2000-01-01T00:00:00%2B00:00&to=2000-01-02T00:00:00%2B00:00") == []
    assert set(ids("from=2000-01-01T00:00:00%2B00:00")) == {allowed["decision_id"], denied["decision_id"]}


def test_listing_filters_by_policy_version_recipient_and_business_number(client):
    """policy_version, contact (compared as masked: the area code's numbers match) and phone_number_id filter."""
    us = client.post("/v1/decisions", json=request_for("+14155550100")).json
    canada = client.post("/v1/decisions", json=request_for("+16135550100", at="2024-08-12T12:00:00+00:00")).json
    by_ref = {"send": request_for("+5511987654321")["send"],
              "history_ref": {"phone_number_id": "1065403", "contact": "5511987654321"}}
    stored = client.post("/v1/decisions", json=by_ref).json
    assert "decision_id" in stored, stored

    def ids(query: str) -> list[str]:
        response = client.get(f"/v1/decisions?{query}")
        assert response.status_code == 200, response.json
        return [item["decision_id"] for item in response.json]

    assert us["policy_version"] != canada["policy_version"]
    assert ids(f"policy_version={canada['policy_version']}") == [canada["decision_id"]]
    # A version with sub-versions matches them too (V3: V3a, V3b), a sub-version only itself (V3 was exact: the
    # trial's ?policy_version=V3 counted 25 decisions beside 34,262 logged as V3b).
    later = client.post("/v1/decisions", json=request_for("+13125550199", at="2025-11-03T12:00:00+00:00")).json
    assert (us["policy_version"], canada["policy_version"], later["policy_version"]) == ("V3", "V2d", "V3b")
    assert stored["policy_version"] == "V3"
    assert ids("policy_version=V3") == [later["decision_id"], stored["decision_id"], us["decision_id"]]
    assert ids("policy_version=V3b") == [later["decision_id"]] and ids("policy_version=V3a") == []
    assert ids("policy_version=V2") == ids("policy_version=V2d") == [canada["decision_id"]]
    assert ids("contact=%2B14155550100") == ids("contact=14155559999") == [us["decision_id"]]
    assert ids("contact=%2B16135550100") == [canada["decision_id"]]
    assert ids("phone_number_id=1065403") == [stored["decision_id"]]
    assert ids("phone_number_id=1065403&decision=allow") == ([stored["decision_id"]] if stored["decision"] == "allow"
                                                             else [])


def test_a_bsuid_recipient_is_a_contact_filter_on_every_path(client, app, database_url):
    """README: a contact is a phone number or a BSUID everywhere. ?contact=US.… was a 422 ("String does not match
    expected pattern.") on GET /v1/decisions, /ui/decisions and the Python API; a decision sent to a BSUID is found
    by it (logged masked as US.*****: every BSUID of the same country and length matches, as a masked number's
    calling code does), and a contact that is neither says what is expected."""
    from policy_service.service.python_api import PolicyService

    bsuid = "US.13491208655302741918"
    to_bsuid = client.post("/v1/decisions", json=request_for(bsuid)).json
    client.post("/v1/decisions", json=request_for("+14155550100"))
    client.post("/v1/decisions", json=request_for("BR.13491208655302741918"))
    listed = client.get(f"/v1/decisions?contact={bsuid}")
    assert listed.status_code == 200, listed.json
    assert [item["decision_id"] for item in listed.json] == [to_bsuid["decision_id"]]
    assert listed.json[0]["request"]["send"]["to"] == "US.********************"
    page = client.get(f"/ui/decisions?contact={bsuid}")
    assert page.status_code == 200 and to_bsuid["decision_id"] in page.text
    svc = PolicyService(database_url=database_url, whatsapp_app_secret=app.config["WHATSAPP_APP_SECRET"])
    try:
        found = svc.decisions(contact=bsuid)["decisions"]
    finally:
        svc.close()
    assert [item["decision_id"] for item in found] == [to_bsuid["decision_id"]]
    refused = client.get("/v1/decisions?contact=US.1349-1208")
    assert refused.status_code == 422
    assert refused.json["errors"]["query.contact"] == [
        "must be a wa_id like 16505551234 or a BSUID like US.13491208655302741918"]
    assert client.get("/ui/decisions?contact=US.1349-1208").status_code == 422


def test_listing_is_paginated(client):
    """page and page_size select a slice; X-Pagination gives the total."""
    made = [client.post("/v1/decisions", json=request_for("+16135550100")).json["decision_id"] for _ in range(5)]
    response = client.get("/v1/decisions?page=2&page_size=2")
    assert [item["decision_id"] for item in response.json] == list(reversed(made))[2:4]
    assert json.loads(response.headers["X-Pagination"])["total"] == 5


@pytest.mark.parametrize("query", ["decision=maybe", "from=yesterday", "rule=a%20b", "page=0", "page_size=0",
                                   "contact=12ab", "policy_version=V%20"])
def test_bad_listing_query_is_a_422_in_the_error_shape(client, query):
    """Bad filters and pages are refused with 422 and the one error shape."""
    response = client.get(f"/v1/decisions?{query}")
    assert response.status_code == 422
    assert set(response.json) == {"code", "status", "message", "errors"} and response.json["errors"]


def test_unknown_decision_id_is_404(client):
    """An unknown id is a 404 in the error shape."""
    response = client.get("/v1/decisions/nope")
    assert response.status_code == 404 and response.json["code"] == 404


def printed_until_killed(process: subprocess.Popen, first: set[str], kill: Callable[[], None]) -> list[str]:
    """The lines a logging process printed: its first lines (`first`, in any order) checked, then ~1.5 s of
    decision_ids, then kill() and whatever it had printed before it died."""
    with process.stdout:
        try:
            assert {process.stdout.readline().strip() for _ in first} == first
            deadline, printed = time.monotonic() + 1.5, []
            while time.monotonic() < deadline:
                printed.append(process.stdout.readline().strip())
        finally:
            kill()
            process.wait()
        printed += process.stdout.read().split()
    return [line for line in printed if line]


def logged_ids(database_url: str) -> set[str]:
    """Every decision_id in the log of the database at this URL (read on a connection of its own)."""
    database = connect(database_url)
    with database.bind_ctx([decision_log.DecisionRecord]):
        record = decision_log.DecisionRecord
        logged = {row.decision_id for row in record.select(record.decision_id)}
    database.close()
    return logged


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, body: dict) -> str:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["decision_id"]


def test_concurrent_gunicorn_workers_lose_no_decision(app, database_url, tmp_path):
    """With 3 gunicorn workers writing at once, every decision_id a client received is in the log."""
    requests, port = 90, _free_port()
    env = {**os.environ, "POLICY_DATABASE_URL": database_url}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(tmp_path / "gunicorn.log", "w") as log:
        server = subprocess.Popen(
            [str(gunicorn), "--workers", "3", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
             "policy_service:create_app()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/v1/decisions"
        numbers = ["+14155550100", "+16135550100", "+5511987654321"]
        with ThreadPoolExecutor(max_workers=12) as pool:
            returned = list(pool.map(lambda i: _post(url, request_for(numbers[i % 3])), range(requests)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = logged_ids(database_url)
    assert len(set(returned)) == requests
    assert set(returned) <= logged and len(logged) == requests


def test_a_masked_recipient_becomes_an_example_number_of_its_region():
    """A masked number is swapped for a valid one of the region the rules saw; a real number is kept."""
    replayable = decision_log.with_example_recipient({"send": {"to": "+*******4321", "at": "x"}}, "IN")
    assert replayable["send"]["to"].startswith("+91") and replayable["send"]["at"] == "x"
    kept = {"send": {"to": "+5511987654321"}}
    assert decision_log.with_example_recipient(kept, "ZZ") == kept


def _preview(app):
    """A decision the service would make now, with its response body and bytes (not logged)."""
    from policy_service.contract.schemas import REQUEST
    from policy_service.service import decisions

    raw = request_for("+14155550100")
    with app.app_context():
        return app.extensions["policy_service"], decisions.Decisions(app.extensions["policy_service"]).preview(
            decisions.proposal(REQUEST.load(raw), raw))


def _log_in_threads(app, decision_ids, monkeypatch, *, hold=0.2):
    """Log the decision under each id, each from its own thread, all at once, while the first commit is held for
    `hold` seconds (a slow disk), so the rows logged meanwhile queue for the next commit. Returns
    ({id: None when logged, else the exception record raised}, the rows of each commit in order)."""
    from threading import Barrier

    from policy_service.core.records import replace
    from policy_service.store import database

    policy, decided = _preview(app)
    commits = []
    original = decision_log._GroupCommit._commit

    def held(self, sql, batch, syncer):
        commits.append(len(batch))
        if len(commits) == 1:
            time.sleep(hold)
        original(self, sql, batch, syncer)

    monkeypatch.setattr(decision_log._GroupCommit, "_commit", held)
    start = Barrier(len(decision_ids))

    def log(decision_id):
        start.wait()
        with app.app_context():
            try:
                decision_log.record(replace(decided.decision, decision_id=decision_id), decided.logged, decided.body,
                                    mask=True, response_json=decided.text, rulebook=policy.rulebook)
                # Committed when record returns: this thread's own connection (not the one that wrote) sees it.
                assert decision_log.get(decision_id) is not None
                return decision_id, None
            except Exception as error:  # noqa: BLE001 - the outcome is the result
                return decision_id, error
            finally:
                database.release()

    with ThreadPoolExecutor(max_workers=len(decision_ids)) as pool:
        outcomes = dict(pool.map(log, decision_ids))
    return outcomes, commits


def test_decisions_logged_at_once_share_a_commit_and_each_is_stored_before_it_returns(app, monkeypatch):
    """Group commit: threads that log while a commit is under way are committed together in the next one (one
    fsync for several decisions), and none returns before its own row is committed."""
    ids = [f"group-{i}" for i in range(24)]
    outcomes, commits = _log_in_threads(app, ids, monkeypatch)
    assert outcomes == dict.fromkeys(ids)
    assert sum(commits) == len(ids) and max(commits) > 1
    with app.app_context():
        assert {row.decision_id for row in decision_log.DecisionRecord.select()} == set(ids)


def test_a_row_that_cannot_be_stored_fails_alone_in_its_group(app, monkeypatch):
    """A row refused by the database (here a decision_id logged before) raises for its own caller only; the rows
    committed in the same group are stored."""
    import peewee

    _log_in_threads(app, ["taken"], monkeypatch, hold=0)
    ids = [f"group-{i}" for i in range(8)]
    outcomes, commits = _log_in_threads(app, [*ids, "taken"], monkeypatch)
    assert isinstance(outcomes.pop("taken"), peewee.IntegrityError)
    assert outcomes == dict.fromkeys(ids) and max(commits) > 1
    with app.app_context():
        assert decision_log.DecisionRecord.select().count() == len(ids) + 1


def test_a_storage_fault_fails_every_decision_of_the_group(app, monkeypatch):
    """The database failing during a group's commit fails every decision in it (each caller gets a storage fault,
    answered 503), and nothing of the group is stored."""
    import peewee

    from policy_service.store import STORAGE_FAULTS

    execute = peewee.Database.execute_sql

    def failing(self, sql, params=None):
        if sql.startswith('INSERT INTO "decision_log" '):
            raise peewee.OperationalError("disk I/O error")
        return execute(self, sql, params)

    monkeypatch.setattr(peewee.Database, "execute_sql", failing)
    ids = [f"group-{i}" for i in range(8)]
    outcomes, commits = _log_in_threads(app, ids, monkeypatch)
    assert all(isinstance(error, STORAGE_FAULTS) for error in outcomes.values()) and max(commits) > 1
    monkeypatch.undo()
    with app.app_context():
        assert decision_log.DecisionRecord.select().count() == 0


_ROUTINE = {"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}


@pytest.mark.parametrize("special", [
    None, {"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text", "id": "US.abcdefgh12"},
    {"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text",
     "referral": {"body": "call 5511987654321", "source_id": "120208839187470123"}},
    {"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text", "id": "+14155550100",
     "context": {"wa_id": "14155550100", "big": 2**70}}])
def test_a_long_history_is_logged_as_masking_the_whole_request_would(monkeypatch, special):
    """The log masks a long inline history chunk by chunk, walking only chunks that may hold something to mask:
    the stored text is byte for byte what masking and serializing the whole request gives (an integer beyond
    64 bits included, which only the standard library writes)."""
    from policy_service.core.masking import masked_request

    monkeypatch.setattr(decision_log, "HISTORY_CHUNK", 4)
    history = [dict(_ROUTINE) for _ in range(17)]
    if special is not None:
        history[9] = special
    request = {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"}, "history": history,
               "context": {"note": "+5511987654321"}}
    assert decision_log._masked_request_text(request) == decision_log.dumps(masked_request(request))


@settings(max_examples=150, deadline=None)
@given(_REQUEST)
def test_any_request_is_logged_as_masking_the_whole_request_would(request):
    """Property: for any request (numbers, BSUIDs, referrals anywhere), the chunked masking of its history
    (chunks of 2 messages here) stores the same bytes as masking and serializing the whole request."""
    from unittest import mock

    from policy_service.core.masking import masked_request

    with mock.patch.object(decision_log, "HISTORY_CHUNK", 2):
        assert decision_log._masked_request_text(request) == decision_log.dumps(masked_request(request))


@settings(max_examples=150, deadline=None)
@given(st.lists(_TYPED_MESSAGE, min_size=3, max_size=8), _REQUEST)
def test_a_parsed_history_is_logged_from_its_dumped_text_as_masking_would(history, request):
    """A body's history parse_json typed and dumped (contract.parsing.dumped_history) is written into the row from
    that text when nothing in it can change, else chunk by chunk: byte for byte what masking and serializing the
    whole parsed request gives, for histories holding numbers, BSUIDs and referrals."""
    from unittest import mock

    from policy_service.contract.parsing import decision_limits, parse_json
    from policy_service.core.masking import masked_request

    try:
        value = parse_json(orjson.dumps({**request, "history": history}), decision_limits())
    except BodyRefused:
        return  # a NUL or a lone surrogate in a generated string: refused before any log
    expected = decision_log.dumps(masked_request(value))
    with mock.patch.object(decision_log, "HISTORY_CHUNK", 2):
        assert decision_log._masked_request_text(value) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(_TYPED_MESSAGE, max_size=5), _REQUEST)
def test_an_unmasked_row_writes_a_parsed_history_from_its_dumped_text(history, request):
    """With masking off the row's request is the parsed body's text byte for byte, its history written from the text
    the parser dumped, which is then let go."""
    from policy_service.contract.parsing import decision_limits, dumped_history, parse_json

    try:
        value = parse_json(orjson.dumps({**request, "history": history}), decision_limits())
    except BodyRefused:
        return  # a NUL or a lone surrogate in a generated string: refused before any log
    expected = decision_log.dumps(value)
    assert decision_log.logged_texts(value, {}, b"{}", mask=False)[0] == expected
    assert dumped_history(value["history"]) is None


def test_a_plain_parsed_history_is_written_from_its_dumped_text(monkeypatch):
    """The point of the above: a long history with nothing to mask is not dumped or walked again (no chunk is
    searched), and still stored as masking the whole request would store it; a short history's text is taken (let
    go) too."""
    from policy_service.contract.parsing import decision_limits, dumped_history, parse_json
    from policy_service.core.masking import masked_request

    body = orjson.dumps({"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"},
                         "history": [dict(_ROUTINE, id=f"wamid.{n}") for n in range(600)]})
    value = parse_json(body, decision_limits())
    expected = decision_log.dumps(masked_request(value))
    monkeypatch.setattr(decision_log, "may_change", lambda text: pytest.fail("a chunk was searched"))
    assert decision_log._masked_request_text(value) == expected
    short = parse_json(orjson.dumps({"send": value["send"], "history": value["history"][:3]}), decision_limits())
    assert decision_log._masked_request_text(short) == decision_log.dumps(masked_request(short))
    assert dumped_history(short["history"]) is None  # taken by the log (so let go) for a short history too


def test_every_fixture_response_is_logged_as_walking_it_would_mask_it(rulebook, engine):
    """The log masks a response as the text it was sent as (masking.masked_json); for every fixture's response that
    is byte for byte the serialized walk (masking.masked) the log stored before."""
    from policy_service.contract.fastdump import dump_response
    from policy_service.contract.schemas import REQUEST
    from policy_service.core.evaluate import evaluate
    from policy_service.core.masking import masked, masked_json
    from policy_service.review.fixtures import discover

    bodies = [dump_response(evaluate(REQUEST.load(fixture.request), rulebook=rulebook, engine=engine))
              for fixture in discover([ROOT / "fixtures"])]
    assert len(bodies) > 100
    for body in bodies:
        assert masked_json(decision_log.dumps(body).decode()).encode() == decision_log.dumps(masked(body))


# Logs from 8 threads, printing each decision_id once record has returned. With "host-writer" as its second argument
# it starts the host writer (store.log_writer), prints "writer" and forks a child that logs through it.
_KILLED_WRITER = """
import os, sys, threading, uuid
from policy_service import create_app
from policy_service.core.records import replace
from policy_service.contract.schemas import REQUEST
from policy_service.service import decisions
from policy_service.store import decision_log
app = create_app({"DATABASE_URL": sys.argv[1]})
raw = {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "text"}}
policy = app.extensions["policy_service"]
with app.app_context():
    decided = decisions.Decisions(policy).preview(decisions.proposal(REQUEST.load(raw), raw))
if sys.argv[2:] in (["host-writer"], ["host-syncer"]):
    # As gunicorn.conf.py starts them: the writer (every commit forced to disk), or the syncer (the default setting:
    # the forked process commits with synchronous=NORMAL, forced to disk within 0.1 s).
    if sys.argv[2] == "host-writer":
        assert decision_log.start_host_writer()
    else:
        assert decision_log.start_host_syncer(app.config["DECISION_LOG_SYNC_SECONDS"])
    if os.fork():
        print("writer\\n", end="", flush=True)  # one write: the child prints too
        threading.Event().wait()
    assert decision_log._HOST_CLIENT[0] is not None or decision_log._HOST_SYNCER[0] is not None
printed = threading.Lock()
def log():
    with app.app_context():
        while True:
            decision_id = uuid.uuid4().hex
            try:
                decision_log.record(replace(decided.decision, decision_id=decision_id), decided.logged,
                                    decided.body, mask=True, response_json=decided.text, rulebook=policy.rulebook)
            except Exception:
                continue  # not logged, so never shown
            with printed:
                print(decision_id, flush=True)
print("ready\\n", end="", flush=True)
for _ in range(8):
    threading.Thread(target=log, daemon=True).start()
threading.Event().wait()
"""


def test_no_decision_seen_is_lost_when_a_process_logging_from_many_threads_is_killed(database_url, tmp_path):
    """Group commit keeps the promise: a process logging from 8 threads at once (rows sharing commits) is killed
    with SIGKILL; every decision_id a thread had printed after record returned (what a client would have been
    sent) is in the log."""
    import signal

    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, database_url], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    printed = printed_until_killed(writer, {"ready"}, lambda: os.kill(writer.pid, signal.SIGKILL))
    logged = logged_ids(database_url)
    assert len(printed) > 20 and set(printed) <= logged


def test_a_contact_filter_finds_sends_to_the_other_form_of_metas_wa_id(client):
    """?contact=5215512345678 (the wa_id Meta writes for +525512345678) was a 422, then found nothing: a decision
    sent to +525512345678 is found by either form, masked or not; a number of another length is not."""
    mexico = client.post("/v1/decisions", json=request_for("+525512345678")).json
    client.post("/v1/decisions", json=request_for("+5255123456"))
    for contact in ("5215512345678", "%2B525512345678"):
        listed = client.get(f"/v1/decisions?contact={contact}")
        assert listed.status_code == 200, listed.json
        assert [item["decision_id"] for item in listed.json] == [mexico["decision_id"]], contact

"""The decision log's compressed texts: every reader gets the JSON that was answered, rows stay readable after the
rules and the process change, rows logged before compression still read, and a row is small."""

import json
from dataclasses import replace
from datetime import datetime

from policy_service.contract.schemas import REQUEST, RESPONSE
from policy_service.core.evaluate import evaluate
from policy_service.review.fixtures import discover
from policy_service.service import decisions
from policy_service.store import decision_log, log_compression

from ..conftest import ROOT
from .test_decision_log import request_for


def _row(decision_id: str) -> decision_log.DecisionRecord:
    return decision_log.DecisionRecord.get(decision_log.DecisionRecord.decision_id == decision_id)


def test_a_logged_decision_reads_back_as_the_json_answered(app, client):
    """The row holds one compressed frame and no plain text; its response reads back byte for byte as the body
    the client got (masked), and the API, the replay path and the entry all see the same JSON."""
    answer = client.post("/v1/decisions", json=request_for("+5511987654321"))
    body = answer.get_data()
    with app.app_context():
        row = _row(answer.json["decision_id"])
        assert row.texts is not None and row.dictionary > 0
        assert row.__data__["request"] == row.__data__["response"] == "" and row.facts == "{}"
        assert row.response.encode() == decision_log.dumps(decision_log.masked(json.loads(body)))
        assert json.loads(row.request)["send"]["to"] == "+55***********"
        assert decision_log.replayable_request(row)["send"]["template"]["name"] == "spring_sale"
    logged = client.get(f"/v1/decisions/{answer.json['decision_id']}").json
    assert logged["response"] == json.loads(row.response) and logged["request"] == json.loads(row.request)


def test_a_row_stays_readable_by_a_fresh_process_after_the_rules_change(app, client, rulebook):
    """The dictionary is read from the database, not rebuilt: a process that never saw the rulebook (caches
    cleared) decompresses an old row, and a changed rulebook gets a dictionary of its own beside it."""
    answer = client.post("/v1/decisions", json=request_for("+14155550100")).json
    with app.app_context():
        before = _row(answer["decision_id"]).response
        log_compression._known.clear()
        assert _row(answer["decision_id"]).response == before
        changed = replace(rulebook, version="sha256:changed", rules=rulebook.rules[1:])
        other = log_compression.dictionary_for(changed)
        assert other != _row(answer["decision_id"]).dictionary
        assert log_compression.LogDictionary.select().count() == 2
        log_compression._known.clear()
        assert _row(answer["decision_id"]).response == before


def test_a_dictionary_another_process_stored_first_is_reused(app, rulebook):
    """Two workers starting together store the same dictionary once (its digest is unique); the one that lost
    the race uses the stored row."""
    with app.app_context():
        first = log_compression.dictionary_for(rulebook)
        log_compression._known.clear()
        assert log_compression._stored(log_compression.dictionary_content(rulebook), rulebook.version) == first
        assert log_compression.dictionary_for(rulebook) == first
        assert log_compression.LogDictionary.select().count() == 1


def test_rows_logged_before_compression_still_read(app, client):
    """A row of the earlier format (texts in request/response, no frame) is listed, fetched and replayed as
    before."""
    request = request_for("+1415*******")
    response = {"decision_id": "legacy-1", "decision": "allow", "facts": {}}
    with app.app_context():
        decision_log.DecisionRecord.insert(
            decision_id="legacy-1", logged_at=datetime(2026, 1, 2, 3, 4, 5),
            send_at="", decision="allow", status="decided", required_message_type="template",
            rulebook_version="sha256:old", determining_rules="", recipient_region="US",
            request=json.dumps(request), response=json.dumps(response), facts="{}").execute()
        row = _row("legacy-1")
        assert row.texts is None and json.loads(row.response) == response
        assert decision_log.replayable_request(row)["send"]["to"].startswith("+1")
    assert client.get("/v1/decisions/legacy-1").json["response"] == response


def test_texts_round_trip_whatever_they_hold():
    """compress/decompress give back both texts exactly, non-ASCII and escaped NUL included (JSON text never
    holds a raw NUL, the separator), with and without a dictionary."""
    request = decision_log.dumps({"send": {"to": "+5511987654321"}, "note": "olá \x00 ✓"})
    response = decision_log.dumps({"because": "€ 0,0081", "trace": []})
    assert b"\x00" not in request
    large = decision_log.dumps({"history": [{"direction": "inbound", "at": f"2026-01-01T00:00:{n % 60:02}+00:00"}
                                            for n in range(5000)]})
    assert len(large) > log_compression.LARGE  # compressed at LARGE_LEVEL
    codec = log_compression._Codec(b"some dictionary text " * 50)
    for used in (codec, log_compression._Codec(None)):
        for texts in ((request, response), (large, response)):
            frame = used.compress(texts[0] + b"\x00" + texts[1])
            assert used.decompress(frame).partition(b"\x00")[::2] == texts


def test_fixture_decisions_are_stored_small(rulebook, engine):
    """Measured on every fixture decision as a row stores it (masked request and response): with the rulebook's
    dictionary and the service's sample rows, a row's texts take at most 512 bytes by median (they are ~7 KB as
    JSON) and never more than 1 KB; without sample rows, at most 1 KB by median and 1.5 KB at most."""
    samples = decisions.dictionary_samples(decisions.Policy(rulebook, engine))
    with_samples = log_compression._Codec(log_compression.dictionary_content(rulebook, samples))
    rulebook_only = log_compression._Codec(log_compression.dictionary_content(rulebook))
    sizes: dict[log_compression._Codec, list[int]] = {with_samples: [], rulebook_only: []}
    for fixture in discover([ROOT / "fixtures"]):
        decision = evaluate(REQUEST.load(fixture.request), rulebook=rulebook, engine=engine)
        texts = decision_log.logged_texts(fixture.request, RESPONSE.dump(decision), None, mask=True)
        for codec, found in sizes.items():
            found.append(len(codec.compress(log_compression.frame(texts))))
    for codec, (median, largest) in ((with_samples, (512, 1024)), (rulebook_only, (1024, 1536))):
        found = sorted(sizes[codec])
        assert found[len(found) // 2] <= median and found[-1] <= largest, found


def test_a_row_compressed_without_a_dictionary_reads(app):
    """record without a rulebook (a caller outside the pipeline) compresses without a dictionary, and the row
    reads all the same."""
    with app.app_context():
        none = log_compression.dictionary_for(None)
        assert none == log_compression.DICTIONARY_NONE
        frame = log_compression.compress((b'{"a":1}', b'{"b":2}'), none)
        assert log_compression.decompress(frame, none) == ('{"a":1}', '{"b":2}')

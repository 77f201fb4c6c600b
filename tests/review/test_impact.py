"""Impact analysis: logged (masked) decisions replayed against a candidate rules directory."""

import json
import shutil

import pytest
from click.testing import CliRunner

from policy_service.cli import main

from ..conftest import RULES_DIR
from ..meta_payloads import PHONE_NUMBER_ID, deliver, inbound_text, status
from ..store.test_decision_log import request_for

NUMBERS = {"US": "+14155550100", "CA": "+16135550100", "BR": "+5511987654321"}


@pytest.fixture
def logged(client):
    """One marketing template to a US, a Canadian and a Brazilian number, logged masked."""
    return {region: client.post("/v1/decisions", json=request_for(number)).json for region, number in NUMBERS.items()}


def candidate(tmp_path, old: str | None = None, new: str | None = None):
    """A copy of rules/ with one text replaced in country-restrictions.yaml."""
    rules = tmp_path / "candidate-rules"
    shutil.copytree(RULES_DIR, rules)
    if old is not None:
        path = rules / "country-restrictions.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return rules


def impact(database_url, rules, *extra):
    result = CliRunner().invoke(main, ["impact", "--rules", str(rules), "--database-url", database_url, *extra])
    return result


def test_moving_the_us_pause_to_canada_changes_two_masked_decisions(logged, database_url, tmp_path):
    """MKT-4 edited to name CA flips the US deny to allow and the Canadian allow to deny; Brazil is unchanged."""
    assert logged["US"]["decision"] == "deny" and logged["CA"]["decision"] == "allow"
    rules = candidate(tmp_path, "      recipient_region: US\n", "      recipient_region: CA\n")
    result = impact(database_url, rules, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["summary"] == {"replayed": 3, "changed": 2, "unchanged": 1, "unreplayable": 0}
    changes = {c["decision_id"]: c for c in report["changes"]}
    us, ca = changes[logged["US"]["decision_id"]], changes[logged["CA"]["decision_id"]]
    assert (us["before"]["decision"], us["after"]["decision"]) == ("deny", "allow")
    assert "MKT-4" in us["before"]["determining_rules"] and "MKT-4" not in us["after"]["determining_rules"]
    assert (ca["before"]["decision"], ca["after"]["decision"]) == ("allow", "deny")
    assert ca["after"]["charge"]["billable"] is False and ca["before"]["charge"]["billable"] is True
    assert set(us["fields"]) >= {"decision", "determining_rules", "charge"}


def test_unchanged_rules_change_nothing(logged, database_url, tmp_path):
    """Replaying the log against an identical copy of rules/ reports no change, in words."""
    result = impact(database_url, candidate(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "0 of 3 logged decisions would change (0 could not be replayed)"


def test_text_report_names_before_and_after(logged, database_url, tmp_path):
    """The text report gives each changed field as before -> after and a summary count."""
    result = impact(database_url, candidate(tmp_path, "      recipient_region: US\n", "      recipient_region: CA\n"))
    assert f"{logged['US']['decision_id']} (" in result.output
    assert '  decision: "deny" -> "allow"' in result.output
    assert result.output.rstrip().endswith("2 of 3 logged decisions would change (0 could not be replayed)")


def test_a_candidate_that_does_not_load_is_refused(database_url, tmp_path):
    """A broken candidate rules directory is an error naming the problem, not a report."""
    rules = candidate(tmp_path, "  - id: MKT-4\n", "  - id: MKT-4\n    colour: red\n")
    result = impact(database_url, rules)
    assert result.exit_code == 1 and "the candidate rules do not load" in result.output


def test_a_history_ref_decision_replays_on_the_range_it_read_again(client, database_url, tmp_path):
    """A history_ref decision is logged with the ref and the range read (no history): the replay reads the same
    messages again (same digest) and decides as the decision did, also with the contact masked in the log."""
    deliver(client, inbound_text("wamid.in", 1754989200))
    body = client.post("/v1/decisions", json={
        "send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"},
        "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": "5511987654321"}}).json
    assert body["decision"] == "allow" and body["history_source"]["events"] == 1
    report = json.loads(impact(database_url, candidate(tmp_path), "--json").output)
    assert report["summary"] == {"replayed": 1, "changed": 0, "unchanged": 1, "unreplayable": 0}


def test_a_history_ref_decision_whose_stored_history_changed_is_reported_not_replayed(client, database_url,
                                                                                      tmp_path):
    """A webhook that arrives after the decision, inside the range it read, changes the digest: impact analysis
    says so for that decision (unreplayable, with the reason) instead of answering on another history."""
    request = {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": "5511987654321"}}
    deliver(client, inbound_text("wamid.in", 1754989200 - 2 * 86400))  # two days before: the window is closed
    decided = client.post("/v1/decisions", json=request).json
    assert decided["decision"] == "deny" and decided["history_source"]["events"] == 1
    deliver(client, inbound_text("wamid.late", 1754989200))  # written at 09:00, stored after the decision
    result = impact(database_url, candidate(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"{decided['decision_id']}: not replayed: the stored history changed since the decision" in result.output
    assert "(1 could not be replayed)" in result.output


def test_the_allowed_message_dated_at_send_at_leaves_the_decision_replayable(client, database_url, tmp_path):
    """Meta's status for the very message a history_ref decision allowed, dated exactly send.at, is stored after
    the decision: it is not history the decision read, so the decision still replays (it was "not replayed: the
    stored history changed"). A message dated send.at that was stored before the decision still counts."""
    send_at = 1754989200 + 3 * 3600  # 2025-08-12T12:00:00Z
    deliver(client, inbound_text("wamid.in", 1754989200), inbound_text("wamid.same-instant", send_at))
    decided = client.post("/v1/decisions", json={
        "send": {"at": "2025-08-12T12:00:00Z", "to": "+5511987654321", "type": "text"},
        "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": "5511987654321"}}).json
    assert decided["decision"] == "allow" and decided["history_source"]["events"] == 2
    deliver(client, status("wamid.allowed", "sent", send_at), status("wamid.allowed", "delivered", send_at + 2))
    report = json.loads(impact(database_url, candidate(tmp_path), "--json").output)
    assert report["summary"] == {"replayed": 1, "changed": 0, "unchanged": 1, "unreplayable": 0}, report
    page = client.get(f"/ui/decisions/{decided['decision_id']}")
    assert page.status_code == 200 and b"<svg" in page.data


def test_a_history_ref_decision_with_nothing_stored_replays_on_the_empty_history_it_read(client, database_url,
                                                                                         tmp_path):
    """An empty read is known from its digest alone: the decision replays on it, even after later webhooks (the
    masked contact had no stored message to find it by), and decides as it did."""
    request = {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": "5511987654321"}}
    assert client.post("/v1/decisions", json=request).json["decision"] == "deny"
    deliver(client, inbound_text("wamid.late", 1754989200))
    report = json.loads(impact(database_url, candidate(tmp_path), "--json").output)
    assert report["summary"] == {"replayed": 1, "changed": 0, "unchanged": 1, "unreplayable": 0}


def test_a_row_logged_with_its_history_inline_still_replays(client, app, database_url, tmp_path):
    """Rows logged before history_read existed carry the resolved history inline: they replay as they are."""
    from policy_service.store import decision_log

    body = client.post("/v1/decisions", json={
        "send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"},
        "history": [{"id": "wamid.in", "direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}],
    }).json
    with app.app_context():
        row = decision_log.DecisionRecord.get(decision_log.DecisionRecord.decision_id == body["decision_id"])
        assert "history_ref" not in json.loads(row.request)
    report = json.loads(impact(database_url, candidate(tmp_path), "--json").output)
    assert report["summary"] == {"replayed": 1, "changed": 0, "unchanged": 1, "unreplayable": 0}


def test_a_masked_group_decision_replays_with_distinct_numbers_of_each_participants_code(client, database_url,
                                                                                       tmp_path):
    """Participants sharing a calling code are each logged "+55***********": replay wrote both as "+5500000000000",
    which the request refused ("repeats participants.0"), so the decision was unreplayable. Each masked participant
    is now an example number of its kept calling code (and NANP area code), distinct from the others, and the
    group decision replays unchanged: the same charge per participant, the same markets."""
    send = {"at": "2025-11-10T12:00:00+00:00", "to": "Y2FwaV9ncm91cDpHUk9VUDE", "recipient_type": "group",
            "participants": ["+5511987654321", "+5521987654321", "+14155550100", "+14155550101", "+4915112345678"],
            "type": "template", "template": {"name": "club_news", "language": "en", "category": "marketing",
                                             "status": "APPROVED"}}
    decided = client.post("/v1/decisions", json={"send": send, "history": []}).json
    assert decided["charge"]["billable"] is True
    result = impact(database_url, candidate(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"] == {"replayed": 1, "changed": 0, "unchanged": 1, "unreplayable": 0}


def test_example_participants_keep_each_masked_prefix_and_are_distinct():
    """with_example_recipient: each masked participant becomes a possible number with the digits the mask kept,
    none twice; a participant logged unmasked is kept as it is."""
    from policy_service.core.identities import not_dialable
    from policy_service.store.decision_log import with_example_recipient

    masked = ["+55***********", "+55***********", "+1415*******", "+1415*******", "+49***********", "+4915112345678"]
    request = {"send": {"to": "group", "recipient_type": "group", "participants": masked}}
    replaced = with_example_recipient(request, "BR")["send"]["participants"]
    assert len(set(replaced)) == len(masked) and replaced[-1] == "+4915112345678"
    for number, mask in zip(replaced, masked, strict=True):
        assert number.startswith(mask.split("*")[0]) and len(number) == len(mask), (number, mask)
        assert not_dialable(number[1:], number) is None, number


def test_a_stored_participant_with_other_digits_is_replaced_without_an_exception():
    """A logged participant whose kept digits are not ASCII ("+¹5***": str.isdigit is true, int() refuses it) is no
    calling code: it gets no example number and is left for the replay's own check to refuse, not a ValueError."""
    from policy_service.core.identities import example_numbers

    (replaced,) = example_numbers(["+¹5**********"])
    assert replaced.startswith("+¹5")

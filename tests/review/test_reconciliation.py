"""Reconciliation: Meta's pricing of delivered messages against the charge the rules predict."""

import json

import pytest
from click.testing import CliRunner

from policy_service.cli import main
from policy_service.review.reconciliation import normalized_category


def test_report_compares_each_delivered_priced_message(client, billed_history):
    """Matches and mismatches are reported field by field; failed and undelivered messages are not checked."""
    report = client.get("/v1/reconciliation").json
    by_wamid = {item["wamid"]: item for item in report["comparisons"]}
    assert list(by_wamid) == ["wamid.utility", "wamid.marketing", "wamid.auth"]
    assert (report["checked"], report["matching"], report["mismatching"]) == (3, 2, 1)
    assert by_wamid["wamid.utility"]["matches"] and "PMP-3" in by_wamid["wamid.utility"]["determining_rules"]
    assert by_wamid["wamid.marketing"]["predicted"] == {"pricing_model": "PMP", "category": "marketing",
                                                        "type": "regular", "billable": True}
    # Without context the rules cannot know the business is eligible for authentication-international.
    assert by_wamid["wamid.auth"]["differences"] == [
        {"field": "category", "meta": "authentication_international", "predicted": "authentication"}]


def test_report_filters_by_contact(client, billed_history):
    """A contact with no delivered messages has nothing to reconcile."""
    assert client.get("/v1/reconciliation?contact=%2B14155550100").json["checked"] == 0
    assert client.get("/v1/reconciliation?contact=%2B5511987654321&phone_number_id=106540352242922").json[
        "checked"] == 3


def test_bad_filter_is_a_422(client):
    """A contact that is not a number is refused in the error shape."""
    response = client.get("/v1/reconciliation?contact=alice")
    assert response.status_code == 422 and "query.contact" in response.json["errors"]


@pytest.mark.parametrize(("meta", "ours"), [("authentication_international", "authentication-international"),
                                             ("authentication-international", "authentication-international"),
                                             ("utility", "utility")])
def test_both_spellings_of_authentication_international_match(meta, ours):
    """Meta's underscore and hyphen spellings compare equal to the rules' category."""
    assert normalized_category(meta) == normalized_category(ours)


def test_cli_reports_the_same_as_the_api(client, billed_history, database_url):
    """`policy-service reconcile` prints the mismatch field by field, and the same counts as JSON."""
    runner = CliRunner()
    text = runner.invoke(main, ["reconcile", "--database-url", database_url])
    assert text.exit_code == 0, text.output
    assert "MISMATCH wamid.auth" in text.output
    assert "category: Meta 'authentication_international', rules 'authentication'" in text.output
    assert text.output.rstrip().endswith("3 delivered messages checked: 2 match, 1 mismatch")
    as_json = runner.invoke(main, ["reconcile", "--database-url", database_url, "--json"])
    assert json.loads(as_json.output)["mismatching"] == 1

"""Commands over stored data (cli/stored.py): importing a saved message_templates response, reconcile's filters,
and any command meeting a database it cannot reach."""

import json

import pytest
from click.testing import CliRunner

from policy_service import cli, create_app
from policy_service.store import business_state

from ..meta_business_payloads import message_templates_response


def test_templates_import_fills_the_registry(tmp_path):
    """`policy-service templates import --waba-id` stores each template of a saved response."""
    response = tmp_path / "templates.json"
    response.write_text(json.dumps(message_templates_response(("order_update", "en_US", "UTILITY", "APPROVED"))))
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(cli.main, ["templates", "import", "--waba-id", "42", str(response),
                                           "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "imported 1 templates" in result.output
    with create_app({"DATABASE_URL": url}).app_context():
        assert [(t["name"], t["category"], t["status"]) for t in business_state.templates("42", _now())] == [
            ("order_update", "utility", "APPROVED")]


def test_a_file_that_is_not_a_response_is_a_usage_error(tmp_path):
    """A template without a name is refused, naming it, and nothing is written."""
    response = tmp_path / "templates.json"
    response.write_text(json.dumps({"data": [{"language": "en", "category": "UTILITY", "status": "APPROVED"}]}))
    result = CliRunner().invoke(cli.main, ["templates", "import", "--waba-id", "42", str(response),
                                           "--database-url", f"sqlite:///{tmp_path / 'db.sqlite3'}"])
    assert result.exit_code != 0 and "data" in result.output and "name" in result.output


def _now():
    from datetime import UTC, datetime
    return datetime.now(UTC)


def test_reconcile_reads_its_filters_as_the_http_api_does(tmp_path):
    """`policy-service reconcile --contact/--phone-number-id` refuses what GET /v1/reconciliation refuses (a contact
    that can be no one, an over-long id), naming the option, instead of reporting an empty reconciliation."""
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    for option, value in (("--contact", "a b"), ("--contact", "5511"), ("--contact", "ZZ.123"),
                          ("--phone-number-id", "1" * 70), ("--phone-number-id", "abc"),
                          ("--phone-number-id", " 106540352242922")):
        result = CliRunner().invoke(cli.main, ["reconcile", option, value, "--database-url", url])
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, result.output
    fine = CliRunner().invoke(cli.main, ["reconcile", "--contact", "+5511988887777", "--database-url", url])
    assert fine.exit_code == 0 and "0 delivered messages checked" in fine.output, fine.output
    assert "note:" not in fine.output
    group = CliRunner().invoke(cli.main, ["reconcile", "--contact", "abc", "--database-url", url])
    assert group.exit_code == 0 and "note: contact 'abc' is neither a wa_id nor a BSUID" in group.output, group.output


def test_templates_import_refuses_what_the_http_import_refuses(tmp_path, client):
    """The command imports through the Python API: a name holding a NUL is refused naming the field, as POST
    /v1/wabas/<waba_id>/message_templates refuses it, and nothing is stored."""
    body = {"data": [{"name": "x\u0000", "language": "en", "category": "UTILITY", "status": "APPROVED", "id": "1"}]}
    response = tmp_path / "templates.json"
    response.write_text(json.dumps(body))
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(cli.main, ["templates", "import", "--waba-id", "42", str(response),
                                           "--database-url", url])
    over_http = client.post("/v1/wabas/42/message_templates", json=body).json
    assert result.exit_code == 1 and over_http["code"] == 422, result.output
    assert over_http["message"] in result.output and "data.0.name" in result.output
    with create_app({"DATABASE_URL": url}).app_context():
        assert business_state.templates("42", _now()) == []


def test_templates_import_names_a_status_that_is_not_metas(tmp_path):
    """A saved response whose template has a status that is not Meta's: refused naming data.0.status and the values
    allowed (it was imported with no status), and nothing is stored."""
    response = tmp_path / "templates.json"
    response.write_text(json.dumps(message_templates_response(("order_update", "en_US", "UTILITY", "APROVED"))))
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = CliRunner().invoke(cli.main, ["templates", "import", "--waba-id", "42", str(response),
                                           "--database-url", url])
    assert result.exit_code == 1 and "data.0.status: must be one of: APPROVED, ARCHIVED" in result.output, \
        result.output
    with create_app({"DATABASE_URL": url}).app_context():
        assert business_state.templates("42", _now()) == []


UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing"


@pytest.mark.parametrize("command", [
    ["reconcile"], ["webhooks", "backlog"], ["db", "status"], ["waba", "currency", "1"],
    ["costs", "--from", "2026-01-01", "--to", "2026-01-02"],
])
def test_an_unreachable_database_is_one_message_not_a_traceback(command):
    """Every command meets a database it cannot reach with the API's 503 message (retry later), exit 1."""
    result = CliRunner().invoke(cli.main, [*command, "--database-url", UNREACHABLE])
    assert result.exit_code == 1, result.output
    assert "the database is unavailable" in result.output and "retry after" in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)

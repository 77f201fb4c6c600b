"""How commands reach the service (cli/services.py): every command over stored data builds its PolicyService, or
opens the database alone, through one function each, on the database --database-url names; a refusal none of
them words itself is the one message Commands.invoke gives."""

import pytest
from click.testing import CliRunner

from policy_service import cli
from policy_service.cli import services
from policy_service.service.errors import ServiceError

from ..conftest import RULES_DIR

URL = "sqlite:////nonexistent/elsewhere.sqlite3"
REFUSED = ServiceError(404, "nothing here", {"waba_id": ["no such account"]})
SAID = 'nothing here {"waba_id": ["no such account"]}'


@pytest.mark.parametrize(("command", "prefix"), [
    (["waba", "currency", "1"], ""), (["waba", "currency", "1", "BRL"], ""),
    (["costs", "--from", "2026-01-01", "--to", "2026-01-02"], ""), (["reconcile"], ""),
    (["analytics", "import", "{file}"], ""), (["forecast", "{file}"], "invalid forecast: "),
    (["templates", "import", "--waba-id", "1", "{file}"], "{file}: "),
])
def test_every_command_builds_its_service_through_one_function(monkeypatch, tmp_path, command, prefix):
    """services.service builds the PolicyService of every command on --database-url's database, and a refusal is
    one line: the service's message and fields, with the context the command adds (forecast, a file's name)
    and nothing else."""
    built = []

    def refusing(**overrides):
        built.append(overrides)
        raise REFUSED

    monkeypatch.setattr(services, "PolicyService", refusing)
    file = tmp_path / "body.json"
    file.write_text("{}")
    args = [part.replace("{file}", str(file)) for part in command]
    result = CliRunner().invoke(cli.main, [*args, "--database-url", URL])
    assert built == [{"database_url": URL}]
    assert (result.exit_code, result.stderr) == (1, f"Error: {prefix.replace('{file}', str(file))}{SAID}\n")


@pytest.mark.parametrize("command", [["impact", "--rules", str(RULES_DIR)], ["check", "{file}"]])
def test_commands_reading_the_store_alone_open_it_through_one_function(monkeypatch, tmp_path, command):
    """impact, and check for a request naming its sending number, open --database-url's database through
    services.open_database (the settings the server reads, the URL over them)."""
    opened = []

    def refusing(config):
        opened.append(config["DATABASE_URL"])
        raise REFUSED

    monkeypatch.setattr(services, "open_store", refusing)
    file = tmp_path / "request.json"
    file.write_text('{"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text", '
                    '"phone_number_id": "106540352242922"}}')
    args = [part.replace("{file}", str(file)) for part in command]
    result = CliRunner().invoke(cli.main, [*args, "--database-url", URL])
    assert opened == [URL]
    assert (result.exit_code, result.stderr) == (1, f"Error: {SAID}\n")

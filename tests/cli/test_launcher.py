"""policy-service-gunicorn (cli/launcher.py), gunicorn as the Procfile and the image start it: a start that cannot
succeed ends with the service's message alone on stderr and a non-zero status, never gunicorn's traceback."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from policy_service import cli
from policy_service.cli import launcher
from policy_service.store import SchemaBehind

from ..conftest import ROOT, RULES_DIR, free_port

NOT_A_DATABASE = "is not a database, or a damaged one (file is not a database)"


def served(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """Run the launcher as the Procfile does (gunicorn.conf.py, the app factory) on a free loopback port, with
    `env` over a clean environment, until it exits: every start here must end (at most 90 s)."""
    environment = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(free_port()),
                   "POLICY_DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}", **env}
    return subprocess.run([sys.executable, "-m", "policy_service.cli.launcher", "-c", str(ROOT / "gunicorn.conf.py"),
                           "policy_service:create_app()"], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=90)


@pytest.fixture
def junk(tmp_path):
    """A database URL naming a text file."""
    path = tmp_path / "x.db"
    path.write_text("junk\n")
    return f"sqlite:///{path}"


def test_a_file_that_is_not_a_database_is_the_message_alone(tmp_path, junk):
    """POLICY_DATABASE_URL naming a text file was gunicorn's app-load traceback ending in the settings message: with
    the app preloaded (the default) stderr is the message alone, exit status 4 (gunicorn's "App failed to load")."""
    result = served(tmp_path, POLICY_DATABASE_URL=junk)
    assert result.returncode == launcher.APP_LOAD_ERROR
    assert result.stderr == (f"policy-service settings cannot be read:\n  POLICY_DATABASE_URL='{junk}': "
                             f"{NOT_A_DATABASE}\n")


def test_workers_that_cannot_load_the_app_stop_the_master_without_a_traceback(tmp_path, junk):
    """With POLICY_PRELOAD=false each worker loads the app: each says why and exits 4, and the master stops with 4
    (gunicorn's halt, reaping the second failed worker while stopping, raised its HaltServer as a traceback)."""
    result = served(tmp_path, POLICY_DATABASE_URL=junk, POLICY_PRELOAD="false", POLICY_WORKERS="3")
    assert result.returncode == launcher.APP_LOAD_ERROR
    assert f"POLICY_DATABASE_URL='{junk}': {NOT_A_DATABASE}" in result.stderr
    assert "Traceback" not in result.stderr and "HaltServer" not in result.stderr
    assert "App failed to load." in result.stderr


@pytest.mark.parametrize("given", ["lots", "\uff12", "0"])
def test_a_web_concurrency_gunicorn_cannot_read_is_the_settings_message(tmp_path, given):
    """WEB_CONCURRENCY=lots was a ValueError traceback from gunicorn.config (it reads the variable with int() as it
    is imported, before gunicorn.conf.py): the launcher checks it first, exit status 2, the message alone."""
    result = served(tmp_path, WEB_CONCURRENCY=given)
    assert result.returncode == launcher.SETTINGS_ERROR
    assert result.stderr.startswith(f"policy-service settings cannot be read:\n  WEB_CONCURRENCY={given!r}: must be")
    assert result.stderr.count("\n") == 2


def test_an_empty_web_concurrency_means_the_default(tmp_path, junk):
    """An empty variable means the default, as for every setting (gunicorn's int("") failed): the start gets past
    gunicorn's import to the app, whose database here is a text file (exit status 4, not a traceback)."""
    result = served(tmp_path, WEB_CONCURRENCY=" ", POLICY_DATABASE_URL=junk)
    assert result.returncode == launcher.APP_LOAD_ERROR and NOT_A_DATABASE in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("given", ["99999", "http", "-1"])
def test_a_port_gunicorn_cannot_bind_is_the_settings_message(tmp_path, given):
    """PORT=99999 reached socket.bind as an OverflowError traceback: it stops the start naming PORT (exit 2)."""
    result = served(tmp_path, PORT=given)
    assert result.returncode == launcher.SETTINGS_ERROR
    assert result.stderr == (f"policy-service settings cannot be read:\n  PORT={given!r}: must be a whole number from "
                             "0 to 65535 (or unset: 8000)\n")


def test_a_metrics_directory_that_is_a_file_is_the_settings_message(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR naming a file was a FileExistsError traceback from gunicorn.conf.py's on_starting."""
    taken = tmp_path / "metrics"
    taken.write_text("")
    result = served(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(taken))
    assert result.returncode == launcher.SETTINGS_ERROR
    assert f"PROMETHEUS_MULTIPROC_DIR='{taken}': cannot be the metrics directory (File exists)" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unavailable_database_is_the_one_line_the_api_gives(tmp_path):
    """A PostgreSQL server not answering at start was psycopg2's traceback: it is the message the API gives with its
    503 (the reason in the JSON log line before it), exit status 4."""
    result = served(tmp_path, POLICY_DATABASE_URL="postgresql://u:p@127.0.0.1:1/x")
    assert result.returncode == launcher.APP_LOAD_ERROR
    assert result.stderr.endswith("\nthe database is unavailable (OperationalError); nothing was stored; retry after "
                                  "5 s\n")
    assert "Traceback" not in result.stderr and '"level":"ERROR"' in result.stderr


@pytest.mark.parametrize("where, reason", [("dirdb", "{path} is a directory, not a database file"),
                                           ("missing/log.db", "the folder {folder} does not exist")])
def test_a_database_path_sqlite_cannot_open_names_the_setting_and_why(tmp_path, where, reason):
    """A directory, or a file under a missing folder, was "the database is unavailable (OperationalError); ...;
    retry after 5 s" after an ERROR line claiming a 503: it names POLICY_DATABASE_URL, the path and what is wrong."""
    (tmp_path / "dirdb").mkdir()
    path = tmp_path / where
    url = f"sqlite:///{path}"
    result = served(tmp_path, POLICY_DATABASE_URL=url)
    assert result.returncode == launcher.APP_LOAD_ERROR
    expected = reason.format(path=path, folder=path.parent)
    assert result.stderr.startswith(f"policy-service settings cannot be read:\n  POLICY_DATABASE_URL='{url}': "
                                    f"{expected}")
    assert "answered 503" not in result.stderr and "Traceback" not in result.stderr


def test_another_applications_database_is_refused_as_not_this_services(tmp_path):
    """A valid SQLite file of another application was "schema is behind: N migration(s) not applied": it names the
    setting and says the tables are not this service's, and the file is left as it was."""
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    result = served(tmp_path, POLICY_DATABASE_URL=f"sqlite:///{path}")
    assert result.returncode == launcher.APP_LOAD_ERROR
    assert result.stderr.startswith(f"policy-service settings cannot be read:\n  POLICY_DATABASE_URL='sqlite:///"
                                    f"{path}': holds tables that are not this service's (invoices)")
    with sqlite3.connect(path) as connection:
        assert [name for (name,) in connection.execute("SELECT name FROM sqlite_master")] == ["invoices"]


def test_a_start_refused_for_an_unavailable_database_claims_no_503(tmp_path):
    """The ERROR line before an unavailable database's message said "answered 503" though nothing was answered."""
    result = served(tmp_path, POLICY_DATABASE_URL="postgresql://u:p@127.0.0.1:1/x")
    assert result.returncode == launcher.APP_LOAD_ERROR
    assert "storage fault, the service cannot start: OperationalError" in result.stderr
    assert "answered 503" not in result.stderr


def test_a_bad_rate_card_names_policy_rate_cards(tmp_path):
    """A CSV without Meta's header named by POLICY_RATE_CARDS was blamed on the rules directory ("invalid rules in
    /…/rules: x.csv: no header row"): it names the setting and the file."""
    card = tmp_path / "card.csv"
    card.write_text("just,some,cells\n")
    result = served(tmp_path, POLICY_RATE_CARDS=str(card))
    assert result.returncode == launcher.APP_LOAD_ERROR
    assert result.stderr.startswith(f"policy-service cannot start: invalid rate card in POLICY_RATE_CARDS='{card}': ")
    assert "no header row" in result.stderr and "invalid rules in" not in result.stderr


@pytest.fixture
def broken_rules(tmp_path):
    """A copy of the shipped rules with one file that is not YAML."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in RULES_DIR.glob("*.yaml"):
        (rules / path.name).write_bytes(path.read_bytes())
    (rules / "broken.yaml").write_text("rules: [\n")
    return rules


def test_a_bad_rule_file_names_the_directory_and_the_file(tmp_path, broken_rules):
    """A rule file that is not YAML was a RulebookError traceback from gunicorn's app loader."""
    result = served(tmp_path, POLICY_RULES_DIR=str(broken_rules))
    assert result.returncode == launcher.APP_LOAD_ERROR
    assert result.stderr.startswith(f"policy-service cannot start: invalid rules in {broken_rules}: broken.yaml: not "
                                    "valid YAML")
    assert "Traceback" not in result.stderr


def test_serve_ends_a_start_error_in_its_message(monkeypatch, broken_rules):
    """`policy-service serve` (scripts/serve) printed the same traceback for a bad rule file: it is the message,
    exit status 1, as for every command."""
    monkeypatch.setenv("POLICY_RULES_DIR", str(broken_rules))
    result = CliRunner().invoke(cli.main, ["serve", "--port", "0"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith(f"Error: policy-service cannot start: invalid rules in {broken_rules}: broken.yaml")


def test_start_error_keeps_the_traceback_of_a_defect():
    """Only errors a start is expected to meet have a message; any other is a defect and keeps its traceback."""
    assert launcher.start_error(SchemaBehind("behind by 2 migrations")) == "behind by 2 migrations"
    assert launcher.start_error(ValueError("a defect")) is None
    assert launcher.start_error(KeyError("DATABASE_URL")) is None

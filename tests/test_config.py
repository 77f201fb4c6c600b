"""Settings are read once, by pydantic-settings, and a value that cannot be read stops the start naming it.

The reproductions of issue 22: POLICY_MAX_CONTENT_LENGTH=4MB made every POST a 500,
POLICY_MAX_BATCH_SIZE=lots broke every batch, POLICY_MASK_PHONE_NUMBERS=False kept masking on.
"""

import re
import subprocess
import sys

import pytest

from policy_service import create_app, store
from policy_service.config import Settings, SettingsError, check_database_url, load_settings
from policy_service.store import decision_log

from .conftest import ROOT, assert_error_shape, free_port, upgraded

BATCH = "/v1/decisions/batch"


@pytest.fixture
def sqlite_url(tmp_path):
    return upgraded(f"sqlite:///{tmp_path / 'log.sqlite3'}")


def app_with(url, **overrides):
    return create_app({"TESTING": True, "DATABASE_URL": url, **overrides})


def test_a_size_with_a_unit_is_read_as_bytes(monkeypatch, sqlite_url, example_request):
    """POLICY_MAX_CONTENT_LENGTH=4MB is 4,000,000 bytes: a decision is answered, a 5 MB body gets 413."""
    monkeypatch.setenv("POLICY_MAX_CONTENT_LENGTH", "4MB")
    app = app_with(sqlite_url)
    assert app.config["MAX_CONTENT_LENGTH"] == 4_000_000
    client = app.test_client()
    assert client.post("/v1/decisions", json=example_request).status_code == 200
    padded = {**example_request, "pad": "x" * 5_000_000}
    assert_error_shape(client.post("/v1/decisions", json=padded), 413)


@pytest.mark.parametrize(("given", "size"), [("4194304", 4_194_304), ("4MiB", 4_194_304), ("512kB", 512_000),
                                             ("1 GiB", 2**30)])
def test_sizes_in_bytes_or_with_a_unit(monkeypatch, given, size):
    """A size is bytes, or a number with a decimal (kB, MB) or binary (KiB, MiB, GiB) unit."""
    monkeypatch.setenv("POLICY_MAX_CONTENT_LENGTH", given)
    assert load_settings().max_content_length == size


def test_a_batch_size_that_is_not_a_number_stops_the_start(monkeypatch, sqlite_url):
    """POLICY_MAX_BATCH_SIZE=lots: the app does not start, and the error names the variable, the value
    and what it must be."""
    monkeypatch.setenv("POLICY_MAX_BATCH_SIZE", "lots")
    with pytest.raises(SettingsError, match=r"POLICY_MAX_BATCH_SIZE='lots': must be a whole number"):
        app_with(sqlite_url)


@pytest.mark.parametrize(("given", "reason"), [("-1", "greater than or equal to 0"), ("soon", "valid number"),
                                               ("61", "less than or equal to 60")])
def test_the_decision_log_sync_interval_is_seconds_from_0_to_60(monkeypatch, given, reason):
    """POLICY_DECISION_LOG_SYNC_SECONDS: 0 (every commit forced to disk) to 60; the default 0.1; anything else
    stops the start naming the variable."""
    assert load_settings().decision_log_sync_seconds == 0.1
    monkeypatch.setenv("POLICY_DECISION_LOG_SYNC_SECONDS", "0")
    assert load_settings().decision_log_sync_seconds == 0
    monkeypatch.setenv("POLICY_DECISION_LOG_SYNC_SECONDS", given)
    with pytest.raises(SettingsError, match=rf"POLICY_DECISION_LOG_SYNC_SECONDS='{given}': .*{reason}"):
        load_settings()


@pytest.mark.parametrize("given", ["False", "false", "0", "no", "off", "NO"])
def test_masking_is_turned_off_by_any_spelling_of_false(monkeypatch, sqlite_url, example_request, given):
    """POLICY_MASK_PHONE_NUMBERS=False (or 0, no, off) logs the full recipient number."""
    monkeypatch.setenv("POLICY_MASK_PHONE_NUMBERS", given)
    app = app_with(sqlite_url)
    decision_id = app.test_client().post("/v1/decisions", json=example_request).json["decision_id"]
    with app.app_context():
        logged = decision_log.get(decision_id)
    assert logged["masked"] is False and logged["request"]["send"]["to"] == example_request["send"]["to"]
    store.database_proxy.close()


@pytest.mark.parametrize("given", ["True", "1", "yes", "on"])
def test_masking_stays_on_for_any_spelling_of_true(monkeypatch, given):
    monkeypatch.setenv("POLICY_MASK_PHONE_NUMBERS", given)
    assert load_settings().mask_phone_numbers is True


def test_a_boolean_that_is_not_one_is_refused(monkeypatch):
    monkeypatch.setenv("POLICY_MASK_PHONE_NUMBERS", "maybe")
    with pytest.raises(SettingsError, match=r"POLICY_MASK_PHONE_NUMBERS='maybe': must be true or false"):
        load_settings()


@pytest.mark.parametrize(("url", "reason"), [
    ("mysql://db/log", "must be a database URL starting sqlite://"),
    ("log.sqlite3", "must be a database URL"),
    ("postgresql://", "names no host or database"),
])
def test_a_database_url_must_name_a_database_it_can_open(monkeypatch, url, reason):
    monkeypatch.setenv("POLICY_DATABASE_URL", url)
    with pytest.raises(SettingsError, match=f"POLICY_DATABASE_URL={re.escape(repr(url))}: {reason}"):
        load_settings()


@pytest.mark.parametrize("url", ["postgresql://u:p@127.0.0.1:99999/x", "postgresql://u:p@db:abc/x",
                                 "postgresql://u:p@db:-1/x", "postgresql://u:p@db:5432/x?connect_timeout=\u00b2",
                                 "postgresql://u:p@db/x?connect_timeout=" + "9" * 5000])
def test_a_database_url_playhouse_cannot_read_is_refused_at_start(monkeypatch, url):
    """A port out of 0-65535 or not a number, or a query value of digits int() cannot read, was accepted and then a
    raw ValueError traceback (`Port out of range 0-65535`) where playhouse.db_url opened the database: PolicyService(),
    gunicorn, the app. It is now the one-line settings error naming POLICY_DATABASE_URL, the password masked."""
    from policy_service.service.python_api import PolicyService

    monkeypatch.setenv("POLICY_DATABASE_URL", url)
    with pytest.raises(SettingsError, match=r"POLICY_DATABASE_URL='postgresql://u:\*\*\*@[^\n]*: (has a port|query)"):
        load_settings()
    monkeypatch.delenv("POLICY_DATABASE_URL")
    with pytest.raises(SettingsError, match="POLICY_DATABASE_URL="):
        PolicyService(database_url=url)
    with pytest.raises(SettingsError, match="POLICY_DATABASE_URL="):
        app_with(url)


def test_a_file_that_is_not_a_database_stops_the_start_in_one_line(tmp_path):
    """POLICY_DATABASE_URL naming a text file was a raw `peewee.DatabaseError: file is not a database` traceback from
    PolicyService() and create_app (gunicorn): it is the settings error naming the variable (config.DatabaseUrlRefused,
    a SettingsError), not a 503 to retry: a restart does not mend the file."""
    from policy_service.config import DatabaseUrlRefused
    from policy_service.service.python_api import PolicyService

    text = tmp_path / "notadb"
    text.write_text("not a database\n")
    url = f"sqlite:///{text}"
    expected = f"POLICY_DATABASE_URL='{url}': is not a database, or a damaged one (file is not a database)"
    with pytest.raises(DatabaseUrlRefused, match=re.escape(expected)):
        PolicyService(database_url=url)
    with pytest.raises(SettingsError, match=re.escape(expected)):
        app_with(url)
    assert text.read_text() == "not a database\n"


@pytest.mark.parametrize("url", ["mysql://db/log", "log.sqlite3", "postgresql://", "sqlite:////srv/log.sqlite3",
                                 "postgresql://user:pw@db:5432/log", "sqlite:///:memory:"])
def test_check_database_url_is_the_settings_rule_in_public(monkeypatch, url):
    """config.check_database_url (what `--database-url` uses, cli.inputs.DatabaseUrl, instead of the private validator
    Settings._database_url) accepts exactly the URLs POLICY_DATABASE_URL accepts, returns them unchanged, and refuses
    the others with the reason the setting's error gives."""
    monkeypatch.setenv("POLICY_DATABASE_URL", url)
    try:
        accepted = load_settings().database_url
    except SettingsError as error:
        with pytest.raises(ValueError) as refused:
            check_database_url(url)
        assert str(refused.value) in str(error), (str(refused.value), str(error))
    else:
        assert check_database_url(url) == accepted == url


def test_errors_never_show_a_secret(monkeypatch):
    """A plain API key configured as a digest, or a database password, is not repeated in the error."""
    monkeypatch.setenv("POLICY_API_KEY_HASHES", "my-plain-secret-key")
    monkeypatch.setenv("POLICY_DATABASE_URL", "mysql://user:hunter2@db/log")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "POLICY_API_KEY_HASHES: items [0] are not sha256 hex digests" in message
    assert "my-plain-secret-key" not in message and "hunter2" not in message and ":***@" in message


def test_every_problem_is_listed_at_once(monkeypatch):
    monkeypatch.setenv("POLICY_MAX_BATCH_SIZE", "0")
    monkeypatch.setenv("POLICY_LOG_LEVEL", "loud")
    monkeypatch.setenv("POLICY_RULES_DIR", "/no/such/rules")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    lines = str(raised.value).splitlines()[1:]
    assert [line.split("=")[0].strip() for line in lines] == [
        "POLICY_RULES_DIR", "POLICY_MAX_BATCH_SIZE", "POLICY_LOG_LEVEL"]
    assert "must be an existing directory" in lines[0]


def test_api_key_digests_are_read_from_a_comma_separated_variable(monkeypatch):
    digest = "a" * 64
    monkeypatch.setenv("POLICY_API_KEY_HASHES", f" {digest.upper()} ,{'b' * 64},")
    assert load_settings().api_key_hashes == (digest, "b" * 64)


def test_an_all_digit_verify_token_stays_text(monkeypatch):
    monkeypatch.setenv("POLICY_WHATSAPP_VERIFY_TOKEN", "0042")
    assert load_settings().whatsapp_verify_token == "0042"


def test_an_empty_variable_means_the_default(monkeypatch):
    monkeypatch.setenv("POLICY_MAX_BATCH_SIZE", "")
    monkeypatch.setenv("POLICY_DATABASE_AUTO_UPGRADE", "")
    settings = load_settings()
    assert (settings.max_batch_size, settings.database_auto_upgrade) == (100, None)


def test_overrides_win_over_the_environment_and_are_validated(monkeypatch):
    """Overrides (tests, the Python API) take precedence, in either case, and are checked like the rest."""
    monkeypatch.setenv("POLICY_MAX_BATCH_SIZE", "7")
    assert load_settings({"MAX_BATCH_SIZE": 3}).max_batch_size == 3
    assert load_settings({"max_batch_size": "5"}).max_batch_size == 5
    with pytest.raises(SettingsError, match="MAX_BATCHES: not a setting"):
        load_settings({"max_batches": 5})


def test_flask_keys_pass_through_create_app(sqlite_url):
    """Test overrides that are Flask's own (TESTING, …) reach the Flask config beside the validated settings."""
    app = app_with(sqlite_url, MAX_BATCH_SIZE=2, PROPAGATE_EXCEPTIONS=False)
    assert (app.config["MAX_BATCH_SIZE"], app.config["PROPAGATE_EXCEPTIONS"], app.config["TESTING"]) == (2, False, True)
    assert app.extensions["policy_service.settings"].max_batch_size == 2


def test_an_unknown_policy_variable_is_reported(monkeypatch, caplog):
    """A misspelt variable (POLICY_MASK_PHONE_NUMBER) is logged as ignored, so a typo is not silent."""
    monkeypatch.setenv("POLICY_MASK_PHONE_NUMBER", "false")
    load_settings()
    assert "POLICY_MASK_PHONE_NUMBER is not a setting" in caplog.text


def test_the_log_writer_switch_is_a_setting(monkeypatch, caplog):
    """POLICY_LOG_WRITER (read by gunicorn.conf.py) is a setting like the others: validated, never reported as
    unknown."""
    assert load_settings().log_writer is True
    monkeypatch.setenv("POLICY_LOG_WRITER", "off")
    assert load_settings().log_writer is False
    assert "POLICY_LOG_WRITER is not a setting" not in caplog.text
    monkeypatch.setenv("POLICY_LOG_WRITER", "sometimes")
    with pytest.raises(SettingsError, match="POLICY_LOG_WRITER='sometimes': must be true or false"):
        load_settings()


def test_the_readme_documents_every_setting():
    """Each setting appears, as its POLICY_ variable, in README's settings table."""
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`POLICY_{name.upper()}`" not in readme]
    assert missing == []


def test_gunicorn_refuses_to_start_on_a_bad_setting_without_a_traceback(tmp_path):
    """Served as documented (gunicorn.conf.py), a bad value ends the start with the clear message."""
    environment = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(free_port()),
                   "POLICY_MAX_BATCH_SIZE": "lots", "POLICY_DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                             "policy_service:create_app()"], cwd=ROOT, env=environment, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "POLICY_MAX_BATCH_SIZE='lots': must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_line_reports_a_bad_setting_without_a_traceback(monkeypatch):
    from click.testing import CliRunner

    from policy_service.cli import main

    monkeypatch.setenv("POLICY_MAX_BATCH_SIZE", "lots")
    result = CliRunner().invoke(main, ["db", "status"])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "POLICY_MAX_BATCH_SIZE='lots': must be a whole number" in result.output
    assert "Traceback" not in result.output


def test_compose_and_the_readme_image_section_pass_the_role_keys_and_the_secret_key():
    """compose.yaml passes POLICY_API_KEYS (client, reviewer, operator keys) and POLICY_SECRET_KEY to the service,
    not only the client-only POLICY_API_KEY_HASHES, and README's image section tells users to set them."""
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for service in ("migrate", "web"):
        assert {"POLICY_API_KEYS", "POLICY_SECRET_KEY"} <= set(compose["services"][service]["environment"]), service
    readme = (ROOT / "README.md").read_text()
    image = readme[readme.index("### The image"):readme.index("### The wheel")]
    assert "`POLICY_API_KEYS`" in image and "`POLICY_SECRET_KEY`" in image and "operator" in image


@pytest.mark.parametrize(("given", "problem"), [("soon", "valid number"), ("0", "greater than 0"),
                                                ("-1", "greater than 0")])
def test_client_timeouts_must_be_positive_seconds(monkeypatch, given, problem):
    """POLICY_HEADER_TIMEOUT and POLICY_BODY_TIMEOUT are seconds above 0 (a fraction allowed): anything else stops
    the start naming the variable; unset, 5 s for the head and 10 s for the body."""
    assert (load_settings().header_timeout, load_settings().body_timeout) == (5.0, 10.0)
    monkeypatch.setenv("POLICY_BODY_TIMEOUT", "2.5")
    assert load_settings().body_timeout == 2.5
    for variable in ("POLICY_HEADER_TIMEOUT", "POLICY_BODY_TIMEOUT"):
        monkeypatch.setenv(variable, given)
        with pytest.raises(SettingsError, match=rf"{variable}='{re.escape(given)}': .*{problem}"):
            load_settings()
        monkeypatch.delenv(variable)


NUMBERS = {name: field for name, field in Settings.model_fields.items()
           if field.annotation in (int, float, int | None)}


def test_every_number_setting_is_finite_and_bounded(monkeypatch):
    """POLICY_HEADER_TIMEOUT=inf passed the start-up check and then every request was a 500 (socket.settimeout's
    OverflowError), POLICY_WEBHOOK_LEASE_SECONDS=inf (or 1e999) every signed webhook (timedelta). Every number
    setting now has a finite upper bound: inf, 1e999 and nan (floats) and a value past its bound (every one) stop the
    start naming the variable; the bound itself is read."""
    assert set(NUMBERS) >= {"header_timeout", "body_timeout", "webhook_lease_seconds", "webhook_poll_seconds",
                            "rules_check_seconds", "decision_log_sync_seconds", "threads", "timeout", "keepalive",
                            "workers", "webhook_batch_size", "webhook_max_attempts", "max_batch_size"}
    for name, field in NUMBERS.items():
        variable = f"POLICY_{name.upper()}"
        (most,) = [item.le for item in field.metadata if getattr(item, "le", None) is not None]
        monkeypatch.setenv(variable, str(most))
        assert getattr(load_settings(), name) == most, name
        given = ["inf", "1e999", "nan", "-inf", str(most + 1)] if field.annotation is float else [str(most + 1)]
        for text in given:
            monkeypatch.setenv(variable, text)
            with pytest.raises(SettingsError, match=rf"\n  {variable}='{re.escape(text)}': [^\n]+$"):
                load_settings()
        monkeypatch.delenv(variable)


def test_an_infinite_lease_stops_the_python_api_and_the_app_at_start(sqlite_url):
    """The Python API's ingest_webhook raised a bare OverflowError with webhook_lease_seconds=inf: the override is
    refused when the service is made, as create_app refuses it, naming the variable."""
    from policy_service.service.python_api import PolicyService

    with pytest.raises(SettingsError, match="POLICY_WEBHOOK_LEASE_SECONDS=inf: Input should be a finite number"):
        PolicyService(database_url=sqlite_url, webhook_lease_seconds=float("inf"))
    with pytest.raises(SettingsError, match="POLICY_HEADER_TIMEOUT=inf"):
        app_with(sqlite_url, HEADER_TIMEOUT=float("inf"))


@pytest.mark.parametrize("given", ["lots", "\uff12", "0", "1025", "9" * 5000])
def test_gunicorn_refuses_a_web_concurrency_it_cannot_use(tmp_path, given):
    """WEB_CONCURRENCY (the worker count when POLICY_WORKERS is unset) was read with int(): "２" (fullwidth) was two
    workers, 0 or 1025 went to gunicorn as they were. It stops the start with one line naming it, as a setting does.
    (Plain gunicorn still ends "lots" in its own traceback: gunicorn.config reads WEB_CONCURRENCY with int() when it
    is imported, before gunicorn.conf.py; the Procfile's launcher checks it first, tests/cli/test_launcher.py.)"""
    from policy_service.config import web_concurrency

    with pytest.raises(SettingsError, match=r"\n  WEB_CONCURRENCY='[^\n]*': must be a whole number of worker"):
        web_concurrency({"WEB_CONCURRENCY": given})
    assert web_concurrency({"WEB_CONCURRENCY": " 3 "}) == 3 and web_concurrency({}) is None
    if given != "0":
        return
    environment = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(free_port()), "WEB_CONCURRENCY": given,
                   "POLICY_DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                             "policy_service:create_app()"], cwd=ROOT, env=environment, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "WEB_CONCURRENCY='0': must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("given", ["99999", "65536", "lots", "-1", "8O00", "\uff18000", "9" * 5000])
def test_listen_address_refuses_a_port_gunicorn_cannot_bind(given):
    """PORT (gunicorn.conf.py's bind) was taken as given: 99999 reached socket.bind as an OverflowError traceback. It
    is a whole number in ASCII digits from 0 to 65535, else the settings error naming PORT; unset or empty, 8000."""
    from policy_service.config import listen_address

    with pytest.raises(SettingsError, match=r"\n  PORT='[^\n]*': must be a whole number from 0 to 65535"):
        listen_address({"PORT": given})
    assert listen_address({}) == "0.0.0.0:8000" and listen_address({"PORT": " ", "HOST": ""}) == "0.0.0.0:8000"
    assert listen_address({"PORT": "65535", "HOST": "127.0.0.1"}) == "127.0.0.1:65535"
    assert listen_address({"PORT": "0"}) == "0.0.0.0:0"


@pytest.mark.parametrize(("given", "bind"), [("::", "[::]:8000"), ("::1", "[::1]:8000"), ("[::1]", "[::1]:8000"),
                                             ("localhost", "localhost:8000"), ("10.0.0.2", "10.0.0.2:8000")])
def test_listen_address_brackets_an_ipv6_host(given, bind):
    """HOST=::1 went to gunicorn as "::1:8000", refused as "'' is not a valid port number": an IPv6 host is
    bracketed, with or without its brackets given."""
    from policy_service.config import listen_address

    assert listen_address({"HOST": given}) == bind


@pytest.mark.parametrize("given", ["a:b", "localhost:8000", "[::1]:80", "my host", "::g"])
def test_listen_address_refuses_a_host_gunicorn_cannot_bind(given):
    """A HOST with a colon that is no IPv6 address (a port given in HOST) or with a space stops the start naming
    HOST; with PORT bad too, both are named."""
    from policy_service.config import listen_address

    with pytest.raises(SettingsError, match=rf"\n  HOST={re.escape(repr(given))}: must be a host name or an IP "):
        listen_address({"HOST": given})
    with pytest.raises(SettingsError, match=r"\n  HOST=[^\n]+\n  PORT='x': must be a whole number"):
        listen_address({"HOST": given, "PORT": "x"})

"""`policy-service db`: upgrade and status of the schema, and pruning the tables that grow with traffic by age."""

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from playhouse.db_url import connect

from policy_service.cli import main
from policy_service.store import decision_log, retention, schema
from policy_service.store.business_state import MessageBilling
from policy_service.store.histories import StoredMessage
from policy_service.store.raw_webhooks import RawWebhook


def run(*arguments):
    return CliRunner().invoke(main, ["db", *arguments])


def test_status_lists_pending_then_applied_migrations(empty_database_url):
    """status exits 1 while a migration is pending and 0 once `db upgrade` applied them."""
    pending = run("status", "--database-url", empty_database_url)
    assert pending.exit_code == 1 and f"pending  {schema.known()[0]}" in pending.output
    assert "db upgrade" in pending.output
    assert run("upgrade", "--database-url", empty_database_url).exit_code == 0
    done = run("status", "--database-url", empty_database_url)
    assert done.exit_code == 0, done.output
    assert [line.split()[1] for line in done.output.splitlines()] == schema.known()


def test_status_reads_only_an_sqlite_file_that_does_not_exist_is_not_created(tmp_path):
    """status on an SQLite URL whose file is missing lists every migration pending and exits 1, and creates
    nothing (it created an empty database file, as if the path were right)."""
    missing = tmp_path / "nowhere.sqlite3"
    result = run("status", "--database-url", f"sqlite:///{missing}")
    assert result.exit_code == 1 and "db upgrade" in result.output, result.output
    assert [line.split()[1] for line in result.output.splitlines() if line.startswith("pending")] == schema.known()
    assert not missing.exists() and list(tmp_path.iterdir()) == []


def test_an_upgrade_with_nothing_to_apply_logs_nothing(empty_database_url, caplog):
    """Once upgraded, opening the store again (every start, every CLI command) applies nothing and writes no
    migration lines (peewee-migrate's router logged "Starting migrations" and "There is nothing to migrate")."""
    assert run("upgrade", "--database-url", empty_database_url).exit_code == 0
    caplog.clear()
    with caplog.at_level("DEBUG", logger="policy_service.schema"):
        again = run("upgrade", "--database-url", empty_database_url)
    assert again.exit_code == 0 and "0 migration(s) applied" in again.output, again.output
    assert [r.getMessage() for r in caplog.records if r.name == "policy_service.schema"] == []


def test_new_writes_nothing_while_the_models_match_the_migrations():
    """`db new` on the shipped models finds no change (the migrations already build them)."""
    shipped = set(schema.MIGRATIONS_DIR.glob("*.py"))
    try:
        result = run("new", "anything")
        assert result.exit_code == 1 and "nothing to write" in result.output, result.output
        assert schema.known() == sorted(p.stem for p in schema.MIGRATIONS_DIR.glob("*.py"))
    finally:
        # On failure `db new` has written a migration into the package: remove it, or every later test that
        # migrates a database would run it.
        for written in set(schema.MIGRATIONS_DIR.glob("*.py")) - shipped:
            written.unlink()


def log_decisions(url: str, ages: list[timedelta]) -> None:
    """One logged row per age, logged that long ago."""
    database = connect(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with database.bind_ctx([decision_log.DecisionRecord]):
        for number, age in enumerate(ages):
            decision_log.DecisionRecord.create(
                decision_id=f"dec_{number}", logged_at=now - age, send_at="", decision="allow", status="decided",
                required_message_type="any", rulebook_version="sha256:x", determining_rules="", request="{}",
                response="{}")
    database.close()


def remaining(url: str) -> list[str]:
    database = connect(url)
    with database.bind_ctx([decision_log.DecisionRecord]):
        ids = [r.decision_id for r in decision_log.DecisionRecord.select().order_by(decision_log.DecisionRecord.id)]
    database.close()
    return ids


def store_messages(url: str, ages: list[timedelta]) -> None:
    """One stored message and one priced outbound message per age, sent that long ago."""
    database = connect(url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with database.bind_ctx([StoredMessage, MessageBilling]):
        for number, age in enumerate(ages):
            StoredMessage.create(wamid=f"wamid.{number}", phone_number_id="106540352242922", contact="5511987654321",
                                 direction="outbound", at=now - age, type="template")
            MessageBilling.create(wamid=f"wamid.{number}", phone_number_id="106540352242922",
                                  contact="5511987654321", at=now - age, status="delivered", category="utility")
    database.close()


def kept(url: str, model) -> list[str]:
    database = connect(url)
    with database.bind_ctx([model]):
        keys = [r.wamid for r in model.select().order_by(model.id)]
    database.close()
    return keys


def test_prune_deletes_only_decisions_older_than_the_age(database_url):
    """--older-than 90d keeps 89 days and deletes 91 and 400; --dry-run only counts."""
    log_decisions(database_url, [timedelta(days=400), timedelta(days=89), timedelta(days=91), timedelta(hours=1)])
    dry = run("prune", "--older-than", "90d", "--table", "decisions", "--dry-run", "--database-url", database_url)
    assert dry.exit_code == 0 and dry.output.startswith("would delete 2 logged decisions"), dry.output
    assert len(remaining(database_url)) == 4
    result = run("prune", "--older-than", "90d", "--table", "decisions", "--database-url", database_url)
    assert result.exit_code == 0 and result.output.startswith("deleted 2 logged decisions"), result.output
    assert remaining(database_url) == ["dec_1", "dec_3"]


def test_prune_trims_every_table_that_grows_with_traffic(database_url):
    """Without --table: decisions, stored messages and priced messages older than the age go, younger stay."""
    log_decisions(database_url, [timedelta(days=100), timedelta(days=10)])
    store_messages(database_url, [timedelta(days=100), timedelta(days=10)])
    result = run("prune", "--older-than", "90d", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert [line.split(" older")[0] for line in result.output.splitlines()] == [
        "deleted 1 logged decisions (decision_log)", "deleted 1 stored messages (stored_message)",
        "deleted 1 priced outbound messages (message_billing)",
        "deleted 0 remembered Idempotency-Key answers (idempotency_key)",
        "deleted 0 processed raw webhook payloads (raw_webhook)"]
    assert (remaining(database_url), kept(database_url, StoredMessage), kept(database_url, MessageBilling)) == \
        (["dec_1"], ["wamid.1"], ["wamid.1"])


def test_prune_keeps_raw_webhooks_not_yet_processed(database_url):
    """Old payloads go once processed; a pending or failed one stays, however old, until it is processed."""
    database = connect(database_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    with database.bind_ctx([RawWebhook]):
        for number, (age, state) in enumerate([(100, "done"), (100, "pending"), (100, "failed"), (10, "done")]):
            RawWebhook.create(received_at=now - timedelta(days=age), digest=f"{number:064x}", body="{}", status=state)
    database.close()
    result = run("prune", "--older-than", "90d", "--table", "webhooks", "--database-url", database_url)
    assert result.output.startswith("deleted 1 processed raw webhook payloads"), result.output
    database = connect(database_url)
    with database.bind_ctx([RawWebhook]):
        assert sorted(row.status for row in RawWebhook.select()) == ["done", "failed", "pending"]
    database.close()


def test_prune_never_deletes_messages_the_rules_still_read(database_url):
    """Messages and billing younger than the rules' longest period (a calendar month: 32 days) are refused, and
    nothing is deleted; decisions alone may go younger."""
    log_decisions(database_url, [timedelta(days=10)])
    store_messages(database_url, [timedelta(days=10)])
    refused = run("prune", "--older-than", "7d", "--database-url", database_url)
    assert refused.exit_code == 2 and "Invalid value for '--older-than': " in refused.output  # a usage error
    assert "messages and billing are read by decisions up to 32 days back" in refused.output
    assert "service_messages_count_period" in refused.output
    assert (len(remaining(database_url)), kept(database_url, StoredMessage)) == (1, ["wamid.0"])
    assert run("prune", "--older-than", "7d", "--table", "decisions", "--database-url", database_url).exit_code == 0
    assert remaining(database_url) == []


def test_prune_works_through_a_backlog_in_batches(database_url):
    """More old rows than one batch: every one goes, the recent one stays."""
    log_decisions(database_url, [timedelta(days=30)] * 7 + [timedelta(minutes=5)])
    database = connect(database_url)
    with database.bind_ctx([decision_log.DecisionRecord]):
        assert retention.prune(retention.BY_NAME["decisions"], datetime.now(UTC) - timedelta(days=1),
                               batch_size=3) == 7
    database.close()
    assert remaining(database_url) == ["dec_7"]


@pytest.mark.parametrize("age", ["90", "3m", "-1d", "d", "1.5d", "\u0661\u0662d", "\uff11d", "\u00b2d"])
def test_prune_refuses_an_age_it_cannot_read(age, database_url):
    """An age that is not ASCII digits and a unit (other scripts' digits were read as a number: "١٢d" was 12 days) is a
    usage error naming the option."""
    result = run("prune", "--older-than", age, "--database-url", database_url)
    assert result.exit_code == 2 and "is not an age such as 90d" in result.output


@pytest.mark.parametrize("age", ["36501d", "999999d", "99999999999999999999d", "9999999w", "9" * 5000 + "d"])
def test_prune_refuses_an_age_past_a_century_naming_it(age, database_url):
    """An age past a hundred years (every row) is a usage error naming the option, not an OverflowError when it
    is taken from now, nor int()'s ValueError for 4,300 digits and more (a traceback)."""
    result = run("prune", "--older-than", age, "--dry-run", "--database-url", database_url)
    assert result.exit_code == 2 and "is more than 36500d" in result.output, result.output


def test_prune_refuses_a_database_behind_this_release(empty_database_url):
    """Pruning needs the current tables: on an unmigrated database it says to run `db upgrade`."""
    result = run("prune", "--older-than", "90d", "--database-url", empty_database_url)
    assert result.exit_code == 1 and "policy-service db upgrade" in result.output


def test_rebuild_counters_counts_rows_loaded_without_them(database_url):
    """Rows written around the service (here by the ORM) are in the counters once `db rebuild-counters` ran: one
    row per bucket size (day, hour, 15 minutes, minute) for each of the two days, one reached user."""
    store_messages(database_url, [timedelta(days=10), timedelta(days=11)])
    result = run("rebuild-counters", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert result.output == "rebuilt 8 counter rows and 1 reached-user rows from message_billing\n"


def test_rebuild_counters_refuses_a_database_behind(empty_database_url):
    """Before `db upgrade` there are no counters to rebuild: a clear error, exit 1."""
    result = run("rebuild-counters", "--database-url", empty_database_url)
    assert result.exit_code == 1 and "db upgrade" in result.output


@pytest.mark.parametrize("arguments", [["status"], ["prune", "--older-than", "90d", "--dry-run"]])
def test_a_database_url_with_a_port_out_of_range_is_a_usage_error(arguments):
    """`--database-url postgresql://u:p@127.0.0.1:99999/x` was a raw `ValueError: Port out of range 0-65535`
    traceback where the database opened; it is a usage error naming --database-url (exit 2), before anything runs."""
    result = run(*arguments, "--database-url", "postgresql://u:p@127.0.0.1:99999/x")
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Invalid value for '--database-url': has a port that is not a whole number 0-65535" in result.stderr


@pytest.mark.parametrize("arguments", [["status"], ["prune", "--older-than", "90d", "--dry-run"], ["upgrade"]])
def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path, monkeypatch, arguments):
    """A text file as the database gave a raw `peewee.DatabaseError: file is not a database` traceback: as
    --database-url it is a usage error naming the option (exit 2); as POLICY_DATABASE_URL the settings error naming
    the variable (exit 1); the file is left as it was."""
    text = tmp_path / "notadb"
    text.write_text("not a database\n")
    url = f"sqlite:///{text}"
    typed = run(*arguments, "--database-url", url)
    assert typed.exit_code == 2, (typed.exit_code, typed.output, typed.exception)
    assert "Invalid value for '--database-url': is not a database" in typed.stderr
    assert "Traceback" not in typed.output
    monkeypatch.setenv("POLICY_DATABASE_URL", url)
    configured = run(*arguments)
    assert configured.exit_code == 1, (configured.exit_code, configured.output, configured.exception)
    assert f"POLICY_DATABASE_URL='{url}': is not a database" in configured.stderr
    assert text.read_text() == "not a database\n"


@pytest.mark.parametrize("arguments", [["status"], ["prune", "--older-than", "90d", "--dry-run"], ["upgrade"]])
@pytest.mark.parametrize("where", ["dirdb", "missing/log.db", "other.db"])
def test_a_database_the_service_cannot_use_is_named_not_unavailable(tmp_path, monkeypatch, arguments, where):
    """A directory or a file in a missing folder was "the database is unavailable (OperationalError); ...; retry
    after 5 s", and `db upgrade` ran the migrations into another application's SQLite file: each is the settings
    error naming POLICY_DATABASE_URL and what is wrong (exit 1), as the service's start says, and nothing is made."""
    import sqlite3

    (tmp_path / "dirdb").mkdir()
    with sqlite3.connect(tmp_path / "other.db") as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    url = f"sqlite:///{tmp_path / where}"
    monkeypatch.setenv("POLICY_DATABASE_URL", url)
    result = run(*arguments)
    if arguments == ["status"] and where == "missing/log.db":
        # status reads only: a file that does not exist is a database with every migration pending, as before.
        assert result.exit_code == 1 and "pending" in result.output and "unavailable" not in result.output
        return
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    said = {"dirdb": f"{tmp_path / 'dirdb'} is a directory, not a database file",
            "missing/log.db": f"the folder {tmp_path / 'missing'} does not exist",
            "other.db": "holds tables that are not this service's (invoices)"}[where]
    assert f"POLICY_DATABASE_URL='{url}': {said}" in result.stderr
    assert "unavailable" not in result.output and not (tmp_path / "missing").exists()
    with sqlite3.connect(tmp_path / "other.db") as connection:
        assert [name for (name,) in connection.execute("SELECT name FROM sqlite_master")] == ["invoices"]

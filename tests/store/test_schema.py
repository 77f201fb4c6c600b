"""Schema migrations: they build what the models declare, upgrade the previous release's tables in place
(SQLite and PostgreSQL), and the app refuses a database whose schema is behind."""

import logging
import shutil
from datetime import datetime

import peewee
import pytest
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator, migrate

from policy_service import configured_app, create_app, store
from policy_service.store import database, schema

from ..conftest import empty_database

RELEASE_0_1_0 = "2025-08-12T12:00:00+00:00"


def describe(database: peewee.Database) -> dict[str, tuple[set, set]]:
    """Each table (but the migration history) as its columns and indexes, as the database reports them."""
    tables = {}
    for table in database.get_tables():
        if table == schema.HISTORY_TABLE:
            continue
        columns = {(c.name, c.data_type.lower(), c.null, c.primary_key) for c in database.get_columns(table)}
        indexes = {(tuple(i.columns), i.unique) for i in database.get_indexes(table)}
        tables[table] = (columns, indexes)
    return tables


def test_the_migrations_build_exactly_what_the_models_declare(empty_database_url):
    """Every model change has its migration: same tables, columns, types, nullability and indexes."""
    database = connect(empty_database_url)
    assert schema.upgrade(database) == schema.known()
    migrated = describe(database)
    database.close()
    empty_database(empty_database_url)
    database = connect(empty_database_url)
    with database.bind_ctx(store.models()):
        database.create_tables(store.models())
    declared = describe(database)
    database.close()
    assert migrated == declared, "a model changed without a migration: run `policy-service db new NAME`"


# The tables as release 0.1.0 created them (create_tables at app start, before migrations existed).
class Release010Decision(peewee.Model):
    decision_id = peewee.CharField(max_length=64, unique=True)
    logged_at = peewee.DateTimeField(index=True)
    send_at = peewee.CharField(max_length=40)
    decision = peewee.CharField(max_length=8, index=True)
    status = peewee.CharField(max_length=16)
    required_message_type = peewee.CharField(max_length=8)
    policy_version = peewee.CharField(max_length=16, null=True)
    rulebook_version = peewee.CharField(max_length=40, index=True)
    determining_rules = peewee.TextField()
    recipient_region = peewee.CharField(max_length=2, default="ZZ")
    request = peewee.TextField()
    facts = peewee.TextField(default="{}")
    response = peewee.TextField()
    masked = peewee.BooleanField(default=True)

    class Meta:
        table_name = "decision_log"


class Release010Message(peewee.Model):
    wamid = peewee.CharField(max_length=255, unique=True)
    phone_number_id = peewee.CharField(max_length=64)
    contact = peewee.CharField(max_length=64)
    direction = peewee.CharField(max_length=8)
    at = peewee.DateTimeField()
    type = peewee.CharField(max_length=32)
    status = peewee.CharField(max_length=16, null=True)
    status_at = peewee.DateTimeField(null=True)
    referral = peewee.TextField(null=True)
    conversation_id = peewee.CharField(max_length=255, null=True)
    conversation_origin = peewee.CharField(max_length=64, null=True)
    pricing = peewee.TextField(null=True)

    class Meta:
        table_name = "stored_message"
        indexes = ((("phone_number_id", "contact", "at"), False),)


RELEASE_0_1_0_MODELS = [Release010Decision, Release010Message]


def release_0_1_0_database(url: str, *, drop_columns: tuple[str, ...] = ()) -> None:
    """The previous release's tables holding one logged decision and one stored message."""
    database = connect(url)
    with database.bind_ctx(RELEASE_0_1_0_MODELS):
        database.create_tables(RELEASE_0_1_0_MODELS)
        Release010Decision.create(
            decision_id="dec_old", logged_at=datetime(2025, 8, 12, 12), send_at=RELEASE_0_1_0, decision="allow",
            status="decided", required_message_type="any", policy_version="V3", rulebook_version="sha256:old",
            determining_rules="CSW-2.open", recipient_region="BR", request='{"send": {"type": "text"}}',
            facts="{}", response='{"decision": "allow"}', masked=True)
        Release010Message.create(wamid="wamid.old", phone_number_id="106540352242922", contact="5511987654321",
                                 direction="inbound", at=datetime(2025, 8, 12, 9), type="text")
    if drop_columns:
        migrator = SchemaMigrator.from_database(database)
        migrate(*(migrator.drop_column("decision_log", column) for column in drop_columns))
    database.close()


def test_the_app_refuses_a_database_behind_this_release(empty_database_url):
    """Migrations pending and auto-upgrade off: create_app raises, naming the command that fixes it."""
    release_0_1_0_database(empty_database_url)
    with pytest.raises(store.SchemaBehind, match=r"001_initial.*policy-service db upgrade"):
        create_app({"DATABASE_URL": empty_database_url})


def test_db_upgrade_takes_the_previous_release_forward_keeping_its_data(empty_database_url):
    """`policy-service db upgrade` on 0.1.0's tables: the old decision and message remain, the app serves."""
    from click.testing import CliRunner

    from policy_service.cli import main

    release_0_1_0_database(empty_database_url)
    runner = CliRunner()
    result = runner.invoke(main, ["db", "upgrade", "--database-url", empty_database_url])
    assert result.exit_code == 0, result.output
    assert f"{len(schema.known())} migration(s) applied" in result.output
    again = runner.invoke(main, ["db", "upgrade", "--database-url", empty_database_url])
    assert "0 migration(s) applied" in again.output

    client = create_app({"DATABASE_URL": empty_database_url}).test_client()
    old = client.get("/v1/decisions/dec_old").json
    assert (old["decision"], old["recipient_region"], old["request"]) == ("allow", "BR", {"send": {"type": "text"}})
    body = client.post("/v1/decisions", json={"send": {"at": RELEASE_0_1_0, "to": "+16135550100", "type": "text"}}).json
    assert client.get(f"/v1/decisions/{body['decision_id']}").json["recipient_region"] == "CA"
    with client.application.app_context():
        assert store.histories.StoredMessage.get(wamid="wamid.old").contact == "5511987654321"
    store.database_proxy.close()


def test_a_decision_log_older_than_0_1_0_gains_its_missing_columns(empty_database_url):
    """The first decision log had no recipient_region and facts: the initial migration adds them."""
    release_0_1_0_database(empty_database_url, drop_columns=("recipient_region", "facts"))
    database = connect(empty_database_url)
    schema.upgrade(database)
    assert {"recipient_region", "facts"} <= {c.name for c in database.get_columns("decision_log")}
    assert database.execute_sql("SELECT recipient_region FROM decision_log").fetchall() == [("ZZ",)]
    database.close()


@pytest.mark.parametrize(("settings", "upgrades"), [
    ({"DATABASE_URL": None}, True),  # the embedded SQLite file: scripts/serve on a clean clone
    ({"DATABASE_URL": "postgresql://db/policy"}, False),  # a configured database: `db upgrade` per release
    ({"DATABASE_URL": "postgresql://db/policy", "DATABASE_AUTO_UPGRADE": True}, True),
    ({"DATABASE_URL": None, "DATABASE_AUTO_UPGRADE": False}, False),
])
def test_who_migrates_a_database_holding_tables(settings, upgrades):
    """By default only the embedded SQLite file is migrated at start; DATABASE_AUTO_UPGRADE overrides."""
    assert database.auto_upgrade(configured_app(settings)) is upgrades


@pytest.mark.parametrize("setting", [None, True])
def test_an_empty_database_gets_the_schema_at_first_start(empty_database_url, setting):
    """A new database (no table at all) is given the current schema by the app itself."""
    create_app({"DATABASE_URL": empty_database_url, "DATABASE_AUTO_UPGRADE": setting})
    store.database_proxy.close()
    database = connect(empty_database_url)
    assert schema.applied(database) == schema.known()
    database.close()


def test_auto_upgrade_false_refuses_even_an_empty_database(empty_database_url):
    with pytest.raises(store.SchemaBehind):
        create_app({"DATABASE_URL": empty_database_url, "DATABASE_AUTO_UPGRADE": False})


def test_concurrent_upgrades_apply_each_migration_once(empty_database_url):
    """Two processes upgrading one new database at once (gunicorn workers without preload): one waits."""
    import subprocess
    import sys

    code = ("import sys; from playhouse.db_url import connect; from policy_service.store import database, schema; "
            "db = database.open_database(sys.argv[1]); db.connect(); print(schema.upgrade(db))")
    runs = [subprocess.Popen([sys.executable, "-c", code, empty_database_url], stdout=subprocess.PIPE, text=True)
            for _ in range(3)]
    outputs = sorted(run.communicate(timeout=60)[0].strip() for run in runs)
    assert all(run.returncode == 0 for run in runs)
    assert outputs == sorted(["[]", "[]", str(schema.known())])
    database = connect(empty_database_url)
    assert schema.applied(database) == schema.known()
    database.close()


def test_auto_upgrade_can_be_turned_on_for_a_configured_database(empty_database_url):
    """POLICY_DATABASE_AUTO_UPGRADE=true: a single instance may upgrade its own database at start."""
    release_0_1_0_database(empty_database_url)
    create_app({"DATABASE_URL": empty_database_url, "DATABASE_AUTO_UPGRADE": True})
    store.database_proxy.close()
    database = connect(empty_database_url)
    assert schema.pending(database) == [] and schema.applied(database) == schema.known()
    database.close()


def test_a_database_ahead_of_this_release_serves_with_a_warning(database_url, tmp_path, caplog):
    """After a newer release's upgrade, rolling back the code still serves: migrations only add."""
    newer = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, newer)
    (newer / "999_from_a_newer_release.py").write_text("def migrate(migrator, database, *, fake=False):\n    pass\n")
    database = connect(database_url)
    assert schema.upgrade(database, newer) == ["999_from_a_newer_release"]
    with caplog.at_level(logging.WARNING, logger="policy_service.schema"):
        schema.check(database)
    database.close()
    assert "999_from_a_newer_release" in caplog.text


def test_a_failing_migration_is_not_recorded(database_url, tmp_path):
    """A migration that raises leaves no history row behind, so the next upgrade tries it again."""
    broken = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS_DIR, broken)
    (broken / "999_broken.py").write_text(
        "def migrate(migrator, database, *, fake=False):\n    migrator.sql('SELECT * FROM no_such_table')\n")
    database = connect(database_url)
    with pytest.raises(peewee.DatabaseError):
        schema.upgrade(database, broken)
    assert schema.pending(database, broken) == ["999_broken"]
    database.close()


def test_numbers_are_unique_and_a_database_of_the_old_numbering_upgrades_cleanly(empty_database_url):
    """Every shipped migration has its own number; a database that recorded the earlier release's names
    (three migrations numbered 003, one 004) counts them as applied, runs none twice, and is rewritten."""
    numbers = [name[:3] for name in schema.known()]
    assert len(numbers) == len(set(numbers)), numbers
    database = connect(empty_database_url)
    schema.upgrade(database)
    for old, new in schema.RENAMED.items():
        rename = f'UPDATE "{schema.HISTORY_TABLE}" SET name = {database.param} WHERE name = {database.param}'
        database.execute_sql(rename, (old, new))
    recorded = [name for (name,) in database.execute_sql(f'SELECT name FROM "{schema.HISTORY_TABLE}"').fetchall()]
    assert set(schema.RENAMED) <= set(recorded)
    assert schema.pending(database) == []
    assert schema.upgrade(database) == []
    recorded = [name for (name,) in database.execute_sql(f'SELECT name FROM "{schema.HISTORY_TABLE}"').fetchall()]
    assert sorted(recorded) == schema.known()
    database.close()

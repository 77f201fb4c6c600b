"""Storage: a decision log created by an older version gains the new columns in place."""

from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator, migrate

from policy_service import create_app, store
from policy_service.store import decision_log

# Columns the first version of decision_log did not have.
ADDED_COLUMNS = ("recipient_region", "facts")


def test_older_decision_log_table_gains_missing_columns(database_url):
    """A log table without recipient_region and facts is upgraded at start-up, and decisions log again."""
    database = connect(database_url)
    with database.bind_ctx(store.models()):
        database.drop_tables(store.models(), safe=True)
        database.create_tables([decision_log.DecisionRecord])
        migrator = SchemaMigrator.from_database(database)
        migrate(*(migrator.drop_column("decision_log", column) for column in ADDED_COLUMNS))
        assert not set(ADDED_COLUMNS) & {c.name for c in database.get_columns("decision_log")}
    database.close()
    client = create_app({"TESTING": True, "DATABASE_URL": database_url}).test_client()
    with client.application.app_context():
        assert set(ADDED_COLUMNS) <= {c.name for c in store.database_proxy.get_columns("decision_log")}
    body = client.post("/v1/decisions", json={"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+16135550100",
                                                       "type": "text"}}).json
    assert client.get(f"/v1/decisions/{body['decision_id']}").json["recipient_region"] == "CA"

"""Storage: a decision log created by an older version gains the new columns in place."""

import peewee
from playhouse.db_url import connect

from policy_service import create_app, decision_log, storage


class FirstDecisionRecord(peewee.Model):
    """The decision_log table as the first version created it (no recipient_region, no facts)."""

    decision_id = peewee.CharField(max_length=64, unique=True)
    logged_at = peewee.DateTimeField(index=True)
    send_at = peewee.CharField(max_length=40)
    decision = peewee.CharField(max_length=8, index=True)
    status = peewee.CharField(max_length=16)
    required_message_type = peewee.CharField(max_length=8)
    policy_version = peewee.CharField(max_length=16, null=True)
    rulebook_version = peewee.CharField(max_length=40, index=True)
    determining_rules = peewee.TextField()
    request = peewee.TextField()
    response = peewee.TextField()
    masked = peewee.BooleanField(default=True)

    class Meta:
        table_name = "decision_log"


def test_older_decision_log_table_gains_missing_columns(database_url):
    """A log table without recipient_region and facts is upgraded at start-up, and decisions log again."""
    database = connect(database_url)
    with database.bind_ctx([*storage.models(), FirstDecisionRecord]):
        database.drop_tables(storage.models(), safe=True)
        database.create_tables([FirstDecisionRecord])
    database.close()
    client = create_app({"TESTING": True, "DATABASE_URL": database_url}).test_client()
    with client.application.app_context():
        columns = {c.name for c in storage.database_proxy.get_columns("decision_log")}
    assert {"recipient_region", "facts"} <= columns
    body = client.post("/v1/decisions", json={"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+16135550100",
                                                       "type": "text"}}).json
    assert client.get(f"/v1/decisions/{body['decision_id']}").json["recipient_region"] == "CA"
    with client.application.app_context():
        assert storage.add_missing_columns(storage.database_proxy.obj, decision_log.DecisionRecord) == []

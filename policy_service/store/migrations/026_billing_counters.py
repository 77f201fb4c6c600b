"""Issue 25: billing_counter (message_billing's rows counted per phone number, pricing category, market and UTC
bucket of a day, an hour and 15 minutes) and reached_user (the latest time each number reached each user in a
category), maintained with the rows from now on (store.counters).

Backfilled here from the stored rows, as store.business_state.rebuild_counters rebuilds them (the SQL is this
migration's own, as the tables are at this migration): `policy-service db upgrade` (or the app's automatic
upgrade) leaves them equal to the rows. `policy-service db rebuild-counters` rebuilds them again at any time.
"""

import peewee as pw
from peewee_migrate import Migrator

SPANS = (86_400, 3_600, 900)
DELIVERED = "('delivered', 'read', 'played')"
REGULAR = '%"type": "regular"%'


def _bucket(database: pw.Database, column: str, span: int) -> str:
    if isinstance(database, pw.PostgresqlDatabase):
        return f"to_timestamp(floor(date_part('epoch', {column}) / {span}) * {span}) AT TIME ZONE 'UTC'"
    return f"datetime(CAST(strftime('%s', {column}) AS INTEGER) / {span} * {span}, 'unixepoch')"


def backfill(database: pw.Database) -> None:
    """Count the stored rows into the new tables (the finest buckets from message_billing, each larger size
    from the next smaller one)."""
    like = "ILIKE" if isinstance(database, pw.PostgresqlDatabase) else "LIKE"
    finest = _bucket(database, "at", SPANS[-1])
    messages = "SUM(CASE WHEN status <> 'failed' THEN 1 ELSE 0 END)"
    # The pattern as a parameter: psycopg2 reads % in the statement as a placeholder.
    billed = f"SUM(CASE WHEN status IN {DELIVERED} AND pricing {like} {database.param} THEN 1 ELSE 0 END)"
    columns = "phone_number_id, category, market, span, start, messages, billed"
    database.execute_sql(
        f"INSERT INTO billing_counter ({columns}) SELECT phone_number_id, category, market, {SPANS[-1]}, {finest}, "
        f"{messages}, {billed} FROM message_billing WHERE category IS NOT NULL "
        f"GROUP BY phone_number_id, category, market, {finest} HAVING {messages} > 0 OR {billed} > 0",
        (REGULAR, REGULAR))
    for finer, span in zip(SPANS[:0:-1], SPANS[-2::-1], strict=True):
        start = _bucket(database, "start", span)
        database.execute_sql(
            f"INSERT INTO billing_counter ({columns}) SELECT phone_number_id, category, market, {span}, {start}, "
            f"SUM(messages), SUM(billed) FROM billing_counter WHERE span = {finer} "
            f"GROUP BY phone_number_id, category, market, {start}")
    database.execute_sql(
        "INSERT INTO reached_user (phone_number_id, contact, category, last_at) SELECT phone_number_id, contact, "
        "category, MAX(at) FROM message_billing WHERE category IS NOT NULL AND status <> 'failed' "
        "GROUP BY phone_number_id, contact, category")


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create the two tables, then fill them from message_billing."""

    @migrator.create_model
    class BillingCounter(pw.Model):
        id = pw.AutoField()
        phone_number_id = pw.CharField(max_length=64)
        category = pw.CharField(max_length=32)
        market = pw.CharField(max_length=2)
        span = pw.IntegerField()
        start = pw.DateTimeField()
        messages = pw.BigIntegerField(default=0)
        billed = pw.BigIntegerField(default=0)

        class Meta:
            table_name = "billing_counter"
            indexes = ((("phone_number_id", "category", "span", "start", "market"), True),)

    @migrator.create_model
    class ReachedUser(pw.Model):
        id = pw.AutoField()
        phone_number_id = pw.CharField(max_length=64)
        contact = pw.CharField(max_length=64)
        category = pw.CharField(max_length=32)
        last_at = pw.DateTimeField()

        class Meta:
            table_name = "reached_user"
            indexes = ((("phone_number_id", "contact", "category"), True),
                       (("phone_number_id", "category", "last_at"), False))

    if not fake:
        migrator.run(backfill, database)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("reached_user")
    migrator.remove_model("billing_counter")

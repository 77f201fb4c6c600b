"""Issue 25: billing_counter gains one-minute buckets (span 60), so the partial stretch a count reads row by row at
the send's time is under a minute of the number's rows instead of under 15 minutes (store.counters.SPANS).

Backfilled here from message_billing, with this migration's own SQL (the tables as they are at this migration);
the other sizes, kept since 026, are left as they are.
"""

import peewee as pw
from peewee_migrate import Migrator

MINUTE = 60
DELIVERED = "('delivered', 'read', 'played')"
REGULAR = '%"type": "regular"%'


def backfill(database: pw.Database) -> None:
    """Count the stored rows into one-minute buckets."""
    if isinstance(database, pw.PostgresqlDatabase):
        like, minute = "ILIKE", f"to_timestamp(floor(date_part('epoch', at) / {MINUTE}) * {MINUTE}) AT TIME ZONE 'UTC'"
    else:
        like, minute = "LIKE", f"datetime(CAST(strftime('%s', at) AS INTEGER) / {MINUTE} * {MINUTE}, 'unixepoch')"
    messages = "SUM(CASE WHEN status <> 'failed' THEN 1 ELSE 0 END)"
    # The pattern as a parameter: psycopg2 reads % in the statement as a placeholder.
    billed = f"SUM(CASE WHEN status IN {DELIVERED} AND pricing {like} {database.param} THEN 1 ELSE 0 END)"
    database.execute_sql(
        "INSERT INTO billing_counter (phone_number_id, category, market, span, start, messages, billed) "
        f"SELECT phone_number_id, category, market, {MINUTE}, {minute}, {messages}, {billed} FROM message_billing "
        f"WHERE category IS NOT NULL GROUP BY phone_number_id, category, market, {minute} "
        f"HAVING {messages} > 0 OR {billed} > 0", (REGULAR, REGULAR))


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Fill the one-minute buckets from message_billing."""
    if not fake:
        migrator.run(backfill, database)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.sql(f"DELETE FROM billing_counter WHERE span = {MINUTE}")

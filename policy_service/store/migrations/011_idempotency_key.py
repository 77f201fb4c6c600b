"""idempotency_key: the answer to each request sent with an Idempotency-Key, per endpoint and client.

A new table: nothing to backfill.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create idempotency_key with its unique (scope, key) and its created_at index."""

    @migrator.create_model
    class IdempotencyRecord(pw.Model):
        scope = pw.CharField(max_length=128)
        key = pw.CharField(max_length=255)
        fingerprint = pw.CharField(max_length=64)
        response = pw.TextField()
        created_at = pw.DateTimeField(index=True)

        class Meta:
            table_name = "idempotency_key"
            indexes = ((("scope", "key"), True),)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("idempotency_key")

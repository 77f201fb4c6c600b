"""service_heartbeat: the readiness probe's write (one row per host), so /readyz proves the database takes writes.

A new table: nothing to backfill.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create service_heartbeat."""

    @migrator.create_model
    class Heartbeat(pw.Model):
        host = pw.CharField(max_length=255, primary_key=True)
        beat_at = pw.DateTimeField()

        class Meta:
            table_name = "service_heartbeat"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("service_heartbeat")

"""service_write_probe: the row each readiness probe inserts and deletes in one transaction, so /readyz needs
new space as a logged decision does (a rewrite of service_heartbeat can succeed on a full disk).

A new table, empty between probes: nothing to backfill.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create service_write_probe."""

    @migrator.create_model
    class WriteProbe(pw.Model):
        id = pw.AutoField()
        host = pw.CharField(max_length=255)
        written_at = pw.DateTimeField()
        payload = pw.BlobField()

        class Meta:
            table_name = "service_write_probe"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("service_write_probe")

"""raw_webhook: Meta's signed webhook payloads stored as received, before they are read (issue 21: stored first,
acknowledged fast, never lost), with their processing state; group_event: the Groups API's group events.

New tables only: nothing to backfill. Payloads received before this release were processed when they arrived.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create raw_webhook and group_event with their indexes."""

    @migrator.create_model
    class RawWebhook(pw.Model):
        received_at = pw.DateTimeField()
        digest = pw.CharField(max_length=64, unique=True)
        body = pw.TextField()
        status = pw.CharField(max_length=8, default="pending")
        attempts = pw.IntegerField(default=0)
        progress = pw.IntegerField(default=0)
        claimed_until = pw.DateTimeField(null=True)
        error = pw.TextField(null=True)
        processed_at = pw.DateTimeField(null=True)
        result = pw.TextField(null=True)

        class Meta:
            table_name = "raw_webhook"
            indexes = ((("status", "id"), False),)

    @migrator.create_model
    class GroupEventRecord(pw.Model):
        phone_number_id = pw.CharField(max_length=64)
        field = pw.CharField(max_length=64)
        type = pw.CharField(max_length=64)
        group_id = pw.CharField(max_length=255, null=True)
        at = pw.DateTimeField()
        payload = pw.TextField(default="{}")
        key = pw.CharField(max_length=64, unique=True)

        class Meta:
            table_name = "group_event"
            indexes = ((("phone_number_id", "group_id", "at"), False),)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("group_event")
    migrator.remove_model("raw_webhook")

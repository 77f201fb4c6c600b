"""Release 0.1.0's tables: the decision log and stored webhook messages.

Databases made before migrations existed already hold these tables (created at app start), so every
table is created only when missing, and the two columns the first decision log lacked are added to
such a table. Later migrations (002_…) change the schema step by step from here.
"""

import peewee as pw
from peewee_migrate import Migrator
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_operations

# Columns of decision_log that the app added in place before this migration existed.
LATE_DECISION_LOG_COLUMNS = {
    "recipient_region": pw.CharField(max_length=2, default="ZZ"),
    "facts": pw.TextField(default="{}"),
}


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create decision_log and stored_message unless present; complete an older decision_log."""

    @migrator.create_model
    class DecisionRecord(pw.Model):
        decision_id = pw.CharField(max_length=64, unique=True)
        logged_at = pw.DateTimeField(index=True)
        send_at = pw.CharField(max_length=40)
        decision = pw.CharField(max_length=8, index=True)
        status = pw.CharField(max_length=16)
        required_message_type = pw.CharField(max_length=8)
        policy_version = pw.CharField(max_length=16, null=True)
        rulebook_version = pw.CharField(max_length=40, index=True)
        determining_rules = pw.TextField()
        recipient_region = pw.CharField(max_length=2, default="ZZ")
        request = pw.TextField()
        facts = pw.TextField(default="{}")
        response = pw.TextField()
        masked = pw.BooleanField(default=True)

        class Meta:
            table_name = "decision_log"

    @migrator.create_model
    class StoredMessage(pw.Model):
        wamid = pw.CharField(max_length=255, unique=True)
        phone_number_id = pw.CharField(max_length=64)
        contact = pw.CharField(max_length=64)
        direction = pw.CharField(max_length=8)
        at = pw.DateTimeField()
        type = pw.CharField(max_length=32)
        status = pw.CharField(max_length=16, null=True)
        status_at = pw.DateTimeField(null=True)
        referral = pw.TextField(null=True)
        conversation_id = pw.CharField(max_length=255, null=True)
        conversation_origin = pw.CharField(max_length=64, null=True)
        pricing = pw.TextField(null=True)

        class Meta:
            table_name = "stored_message"
            indexes = ((("phone_number_id", "contact", "at"), False),)

    def add_late_columns():
        # Runs after create_table: the table exists either way; only a pre-0.1.0 one lacks these.
        present = {column.name for column in database.get_columns("decision_log")}
        missing = {name: field for name, field in LATE_DECISION_LOG_COLUMNS.items() if name not in present}
        schema = SchemaMigrator.from_database(database)
        run_operations(*(schema.add_column("decision_log", name, field) for name, field in missing.items()))

    migrator.run(add_late_columns)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Drop both tables (and so every logged decision and stored message)."""
    migrator.remove_model("stored_message")
    migrator.remove_model("decision_log")

"""decision_log gains api_key_name: the name of the API key that asked for each decision (never the key),
indexed. Null with keys off, and for decisions logged before this migration (not backfilled).
"""


import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        'decision_log',

        api_key_name=pw.CharField(index=True, max_length=64, null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields('decision_log', 'api_key_name')

"""stored_message gains errors: Meta's errors[] of a failed status or an unsupported message, as JSON.

Nullable and not backfilled: rows stored before it simply have no errors kept.
"""


import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        'stored_message',

        errors=pw.TextField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields('stored_message', 'errors')

"""stored_message gains delivered_at (the first delivered/read/played status) and group_id (Groups API).

Both are nullable and not backfilled: the code falls back to the stored status when delivered_at is null.
"""


import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        'stored_message',

        delivered_at=pw.DateTimeField(null=True),
        group_id=pw.CharField(max_length=255, null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields('stored_message', 'delivered_at', 'group_id')

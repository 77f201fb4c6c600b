"""decision_log gains recipient (the send's `to` as logged: masked when masking is on) and phone_number_id
(a history_ref's business number), indexed, for the decision log page's and GET /v1/decisions' filters.

Not backfilled: decisions logged before this migration hold "" and are not found by those two filters.
"""


import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        'decision_log',

        recipient=pw.CharField(default='', index=True, max_length=32),
        phone_number_id=pw.CharField(default='', index=True, max_length=64))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields('decision_log', 'recipient', 'phone_number_id')

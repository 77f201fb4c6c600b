"""decision_log drops the indexes on rulebook_version and api_key_name: no query filters or sorts by either (the
API's, pages', exports' and reconciliation's reads filter by time, decision, rule, policy version, recipient and
phone_number_id; impact analysis reads every row by id), and each cost every logged decision a b-tree write (a
page in the WAL and its checkpoint). The columns stay, and are read with their rows as before.

Indexes only: nothing to backfill.
"""

import peewee as pw
from peewee_migrate import Migrator

# The name the initial migration gave it (peewee names a create_table index after the model class).
RULEBOOK_VERSION_INDEX = "decisionrecord_rulebook_version"


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.sql(f'DROP INDEX "{RULEBOOK_VERSION_INDEX}"')
    # peewee-migrate's drop_index would name the index after the table; the model state is told here instead, so
    # `policy-service db new` compares the models with what the migrations really built.
    migrator.orm["decision_log"]._meta.fields["rulebook_version"].index = False
    migrator.drop_index('decision_log', 'api_key_name')


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_index('decision_log', 'api_key_name')
    migrator.sql(f'CREATE INDEX "{RULEBOOK_VERSION_INDEX}" ON "decision_log" ("rulebook_version")')
    migrator.orm["decision_log"]._meta.fields["rulebook_version"].index = True

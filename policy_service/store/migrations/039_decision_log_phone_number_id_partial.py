"""decision_log's index on phone_number_id holds only the rows that have one: `WHERE phone_number_id != ''`. The
column is filled for history_ref decisions only (a decision sent without one stores ""), so most logged decisions
wrote a page of that index for a value no query asks for (the listing's phone_number_id filter takes Meta's digits,
never "", and says so to the planner). The column stays as it is.

Index only: nothing to backfill (the new index is built from the rows that have a number).
"""

import peewee as pw
from peewee_migrate import Migrator

# The name migration 005 gave it (peewee-migrate names an index after the table and its columns).
INDEX = "decision_log_phone_number_id"


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.sql(f'DROP INDEX "{INDEX}"')
    migrator.sql(f'CREATE INDEX "{INDEX}" ON "decision_log" ("phone_number_id") WHERE "phone_number_id" != \'\'')
    # The model declares the partial index with add_index (store/decision_log.py), not on the field: the model state
    # is told the same, so `policy-service db new` compares the models with what the migrations really built.
    log = migrator.orm["decision_log"]
    log._meta.fields["phone_number_id"].index = False
    log.add_index(log.index(log.phone_number_id, name=INDEX, where=log.phone_number_id != ""))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.sql(f'DROP INDEX "{INDEX}"')
    migrator.sql(f'CREATE INDEX "{INDEX}" ON "decision_log" ("phone_number_id")')
    log = migrator.orm["decision_log"]
    log._meta.indexes = [index for index in log._meta.indexes if getattr(index, "_name", None) != INDEX]
    log._meta.fields["phone_number_id"].index = True

"""reached_user's range index also holds the user (phone_number_id, category, last_at, contact): counting the
distinct users reached in a span reads the index alone (store.business_state.count_users_reached_outside_window).

An index only: nothing to backfill.
"""

import peewee as pw
from peewee_migrate import Migrator

# The name migration 026 gave it (peewee names an index after the model class: reacheduser_...).
RANGE_INDEX = "reacheduser_phone_number_id_category_last_at"


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.sql(f'DROP INDEX "{RANGE_INDEX}"')
    # peewee-migrate's drop_index would name the index after the table; its model state is told here instead, so
    # `policy-service db new` compares the models with what the migrations really built.
    state = migrator.orm["reached_user"]._meta
    state.indexes = [(columns, unique) for columns, unique in state.indexes
                     if tuple(columns) != ("phone_number_id", "category", "last_at")]
    migrator.add_index('reached_user', 'phone_number_id', 'category', 'last_at', 'contact')


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.drop_index('reached_user', 'phone_number_id', 'category', 'last_at', 'contact')
    migrator.sql(f'CREATE INDEX "{RANGE_INDEX}" ON "reached_user" ("phone_number_id", "category", "last_at")')

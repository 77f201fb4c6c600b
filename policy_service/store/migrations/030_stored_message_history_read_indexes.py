"""stored_message gains the indexes a bounded history_ref read needs (store.history_reads): the last inbound
message of a contact before a time (phone_number_id, contact, direction, at), the last of one inbound type
(phone_number_id, contact, type, at), the last entry point (phone_number_id, contact, at over the rows with a
referral only: a partial index, on SQLite and PostgreSQL alike), and the messages delivered after a time
(phone_number_id, contact, delivered_at). Each query then seeks its row instead of walking the contact's history.
"""

import peewee as pw
from peewee_migrate import Migrator

REFERRAL_INDEX = "stored_message_referral_at"


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_index('stored_message', 'phone_number_id', 'contact', 'direction', 'at')
    migrator.add_index('stored_message', 'phone_number_id', 'contact', 'type', 'at')
    migrator.add_index('stored_message', 'phone_number_id', 'contact', 'delivered_at')
    migrator.sql(f'CREATE INDEX "{REFERRAL_INDEX}" ON "stored_message" ("phone_number_id", "contact", "at") '
                 'WHERE "referral" IS NOT NULL')
    # Raw SQL is invisible to peewee-migrate's model state: declare the index there too, as the model does
    # (store.histories), so `db new` finds the models and the migrations alike.
    model = migrator.orm["stored_message"]
    model.add_index(model.index(model.phone_number_id, model.contact, model.at, name=REFERRAL_INDEX,
                                where=model.referral.is_null(False)))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.sql(f'DROP INDEX "{REFERRAL_INDEX}"')
    migrator.drop_index('stored_message', 'phone_number_id', 'contact', 'delivered_at')
    migrator.drop_index('stored_message', 'phone_number_id', 'contact', 'type', 'at')
    migrator.drop_index('stored_message', 'phone_number_id', 'contact', 'direction', 'at')

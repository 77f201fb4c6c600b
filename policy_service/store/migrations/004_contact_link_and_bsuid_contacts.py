"""Business-scoped user IDs (BSUIDs): contact_link pairs a wa_id with a BSUID named together in a webhook,
and stored_message.contact widens from 64 to 160 characters (a BSUID is a country code, a period, an
optional ENT. and up to 128 letters and digits).
"""


import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class ContactLink(pw.Model):
        phone_number_id = pw.CharField(max_length=64)
        wa_id = pw.CharField(max_length=64)
        user_id = pw.CharField(max_length=160)

        class Meta:
            table_name = "contact_link"
            indexes = ((("phone_number_id", "wa_id", "user_id"), True), (("phone_number_id", "user_id"), False))

    migrator.change_fields("stored_message", contact=pw.CharField(max_length=160))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.change_fields("stored_message", contact=pw.CharField(max_length=64))
    migrator.remove_model("contact_link")

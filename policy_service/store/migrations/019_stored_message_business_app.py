"""stored_message gains business_app: the message was sent from the WhatsApp Business app (a coexistence echo,
Meta's smb_message_echoes), not through the API. History reads it as a business message taken as delivered
and never classified or charged as an API send (core.messages.Message.business_app).

Not null, default false: every row stored before it was an API message or an inbound one.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields(
        'stored_message',

        business_app=pw.BooleanField(default=False))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields('stored_message', 'business_app')

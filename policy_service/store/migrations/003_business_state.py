"""The business's own WhatsApp state (issue 18): business_number (a phone number's WABA), template_event (the
template registry), marketing_preference, message_billing (each outbound message's pricing, decision and
errors), account_event (account_update, business_capability_update) and contact_change (user_changed_number).

All new tables: nothing to backfill; they fill from the next webhooks (and template imports).
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create the six business-state tables with their indexes."""

    @migrator.create_model
    class BusinessNumber(pw.Model):
        phone_number_id = pw.CharField(max_length=64, unique=True)
        waba_id = pw.CharField(max_length=64, index=True)
        learned_at = pw.DateTimeField()

        class Meta:
            table_name = "business_number"

    @migrator.create_model
    class TemplateEvent(pw.Model):
        waba_id = pw.CharField(max_length=64)
        name = pw.CharField(max_length=512)
        language = pw.CharField(max_length=16)
        template_id = pw.CharField(max_length=64, null=True)
        source = pw.CharField(max_length=64)
        event = pw.CharField(max_length=32, null=True)
        status = pw.CharField(max_length=24, null=True)
        category = pw.CharField(max_length=24, null=True)
        previous_category = pw.CharField(max_length=24, null=True)
        quality = pw.CharField(max_length=24, null=True)
        reason = pw.TextField(null=True)
        effective_at = pw.DateTimeField()
        received_at = pw.DateTimeField()
        payload = pw.TextField(default="{}")

        class Meta:
            table_name = "template_event"
            indexes = ((("waba_id", "name", "language", "effective_at"), False),)

    @migrator.create_model
    class MarketingPreference(pw.Model):
        phone_number_id = pw.CharField(max_length=64)
        contact = pw.CharField(max_length=64)
        value = pw.CharField(max_length=16)
        at = pw.DateTimeField()
        source = pw.CharField(max_length=128)

        class Meta:
            table_name = "marketing_preference"
            indexes = ((("phone_number_id", "contact", "at"), False),)

    @migrator.create_model
    class MessageBilling(pw.Model):
        wamid = pw.CharField(max_length=255, unique=True)
        phone_number_id = pw.CharField(max_length=64)
        contact = pw.CharField(max_length=64)
        at = pw.DateTimeField()
        status = pw.CharField(max_length=16)
        category = pw.CharField(max_length=32, null=True)
        pricing = pw.TextField(null=True)
        decision_id = pw.CharField(max_length=255, null=True, index=True)
        errors = pw.TextField(null=True)
        market = pw.CharField(max_length=2, default="ZZ")

        class Meta:
            table_name = "message_billing"
            indexes = (
                (("phone_number_id", "category", "at"), False),
                (("phone_number_id", "contact", "category", "at"), False),
                (("phone_number_id", "market", "category", "at"), False),
            )

    @migrator.create_model
    class AccountEvent(pw.Model):
        waba_id = pw.CharField(max_length=64)
        field = pw.CharField(max_length=64)
        event = pw.CharField(max_length=64)
        at = pw.DateTimeField()
        payload = pw.TextField(default="{}")

        class Meta:
            table_name = "account_event"
            indexes = ((("waba_id", "event", "at"), False),)

    @migrator.create_model
    class ContactChange(pw.Model):
        phone_number_id = pw.CharField(max_length=64)
        old_contact = pw.CharField(max_length=64)
        new_contact = pw.CharField(max_length=64)
        at = pw.DateTimeField()

        class Meta:
            table_name = "contact_change"
            indexes = ((("phone_number_id", "new_contact", "old_contact"), True),)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Drop the business-state tables (the decisions and stored history stay)."""
    for table in ("contact_change", "account_event", "message_billing", "marketing_preference", "template_event",
                  "business_number"):
        migrator.remove_model(table)

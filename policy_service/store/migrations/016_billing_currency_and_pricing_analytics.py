"""Issue 23: waba_currency (a WABA's billing currency, set once) and pricing_point (Meta's pricing_analytics
data points, one row per WABA, bucket and dimensions).

Both new tables: nothing to backfill.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create the two tables with their unique keys."""

    @migrator.create_model
    class WabaCurrency(pw.Model):
        waba_id = pw.CharField(max_length=64, unique=True)
        currency = pw.CharField(max_length=3)
        set_at = pw.DateTimeField()
        source = pw.CharField(max_length=128)

        class Meta:
            table_name = "waba_currency"

    @migrator.create_model
    class PricingPoint(pw.Model):
        waba_id = pw.CharField(max_length=64)
        start = pw.DateTimeField()
        end = pw.DateTimeField()
        country = pw.CharField(max_length=8)
        phone_number = pw.CharField(max_length=32)
        pricing_category = pw.CharField(max_length=48)
        pricing_type = pw.CharField(max_length=48)
        tier = pw.CharField(max_length=48)
        volume = pw.BigIntegerField()
        cost = pw.CharField(max_length=40)
        imported_at = pw.DateTimeField()

        class Meta:
            table_name = "pricing_point"
            indexes = ((("waba_id", "start", "end", "country", "phone_number", "pricing_category", "pricing_type",
                         "tier"), True),)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model("pricing_point")
    migrator.remove_model("waba_currency")

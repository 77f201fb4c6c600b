"""decision_log stores a decision's request and response compressed (store.log_compression): `texts`, one zstd
frame of both JSON texts, and `dictionary`, the id of the compression dictionary in the new table
decision_log_dictionary (made from the rulebook in force, kept for as long as rows use it).

Rows logged before keep their texts in `request` and `response` (read as before; not rewritten: a migration
over a large log would hold the write lock for minutes), and `texts` and `dictionary` null. `facts` is no
longer written (it copied response["facts"]; nothing read it).
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Create decision_log_dictionary; add decision_log.texts and decision_log.dictionary."""

    @migrator.create_model
    class LogDictionary(pw.Model):
        id = pw.AutoField()
        digest = pw.CharField(max_length=64, unique=True)
        rulebook_version = pw.CharField(max_length=40)
        created_at = pw.DateTimeField()
        content = pw.BlobField()

        class Meta:
            table_name = "decision_log_dictionary"

    migrator.add_fields(
        'decision_log',

        texts=pw.BlobField(null=True),
        dictionary=pw.IntegerField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields('decision_log', 'texts', 'dictionary')
    migrator.remove_model("decision_log_dictionary")

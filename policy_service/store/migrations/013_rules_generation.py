"""rules_generation: the rulebook every worker of every instance on the database follows (one row, its
generation bumped by each rules reload; store/fleet.py).
"""


import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class RulesGeneration(pw.Model):
        id = pw.IntegerField(primary_key=True)
        generation = pw.IntegerField()
        rulebook_version = pw.CharField(max_length=40)
        published_at = pw.DateTimeField()
        published_by = pw.CharField(default='', max_length=64)

        class Meta:
            table_name = "rules_generation"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model('rules_generation')

"""Schema migrations (peewee-migrate): which ones a database has, which it lacks, and applying them.

The files in `migrations/` (NNN_name.py, shipped with the package) take the tables from one release
to the next. `policy-service db upgrade` applies the missing ones once per release, before the new
app starts. The app creates the schema of an empty database itself and otherwise only checks
(`check`), refusing a database whose schema is behind unless auto-upgrade is on (the embedded
SQLite default, for local use). `policy-service db new NAME`
writes the migration a model change needs, and tests/store/test_schema.py fails while the
migrations and the models disagree.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee
from peewee_migrate import Router

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# peewee-migrate's own bookkeeping table: one row per applied migration, by name.
HISTORY_TABLE = "migratehistory"
# Key of the PostgreSQL advisory lock that makes two concurrent upgrades run one after the other.
UPGRADE_LOCK = zlib.crc32(b"policy-service db upgrade")

logger = logging.getLogger("policy_service.schema")

# Migrations shipped under another name by an earlier release (three were numbered 003 and one 004): a
# database that recorded the old name has applied the migration, so the old name is rewritten to the new
# one before anything reads the history, and nothing runs twice.
RENAMED = {
    "003_contact_link_and_bsuid_contacts": "004_contact_link_and_bsuid_contacts",
    "003_decision_log_recipient_and_phone_number_id": "005_decision_log_recipient_and_phone_number_id",
    "004_stored_message_errors": "006_stored_message_errors",
}


class SchemaBehind(RuntimeError):
    """The database lacks migrations this release needs; `policy-service db upgrade` applies them."""


def router(database: peewee.Database, migrations_dir: Path | None = None) -> Router:
    """peewee-migrate's router over the shipped migrations (or another directory, for tests)."""
    return Router(database, migrate_dir=migrations_dir or MIGRATIONS_DIR, migrate_table=HISTORY_TABLE, logger=logger)


def known(migrations_dir: Path | None = None) -> list[str]:
    """Names of the migrations this release ships, in order (e.g. ["001_initial"])."""
    return sorted(path.stem for path in (migrations_dir or MIGRATIONS_DIR).glob("[0-9][0-9][0-9]_*.py"))


def applied(database: peewee.Database) -> list[str]:
    """Names of the migrations recorded in the database, in the order they ran; none without the table.

    Reads only: unlike peewee-migrate's router, it never creates the history table.
    """
    if not database.table_exists(HISTORY_TABLE):
        return []
    cursor = database.execute_sql(f'SELECT name FROM "{HISTORY_TABLE}" ORDER BY id')
    return [RENAMED.get(name, name) for (name,) in cursor.fetchall()]


def _rename_recorded(database: peewee.Database) -> None:
    """Rewrite migration names an earlier release recorded (RENAMED) to today's, inside the upgrade lock."""
    if not database.table_exists(HISTORY_TABLE):
        return
    for old, new in RENAMED.items():
        database.execute_sql(f'UPDATE "{HISTORY_TABLE}" SET name = {database.param} WHERE name = {database.param}',
                             (new, old))


def pending(database: peewee.Database, migrations_dir: Path | None = None) -> list[str]:
    """Shipped migrations the database has not applied, in the order they will run."""
    done = set(applied(database))
    return [name for name in known(migrations_dir) if name not in done]


def upgrade(database: peewee.Database, migrations_dir: Path | None = None) -> list[str]:
    """Apply every pending migration; the names applied, in order.

    Concurrent upgrades run one after the other (PostgreSQL: an advisory lock, each migration in its
    own transaction; SQLite: one IMMEDIATE transaction around them all), the second finding nothing
    left to do. A failing migration is rolled back and its exception propagates (on PostgreSQL the
    migrations before it stay applied; on SQLite the whole upgrade is undone).
    """
    with _upgrade_lock(database):
        _rename_recorded(database)
        if not pending(database, migrations_dir):
            # Nothing to apply: peewee-migrate's router would still log "Starting migrations" and "There is nothing
            # to migrate" on every start and every CLI command opening the store.
            return []
        return router(database, migrations_dir).run()


def check(database: peewee.Database, migrations_dir: Path | None = None) -> None:
    """Raise SchemaBehind when a shipped migration is missing; warn when the database is ahead.

    A database ahead of this release (an older release rolled out after `db upgrade` of a newer
    one) still serves: migrations only add, so the older code finds every column it reads.
    """
    missing = pending(database, migrations_dir)
    if missing:
        raise SchemaBehind(
            f"the database schema is behind this release: {len(missing)} migration(s) not applied "
            f"({', '.join(missing)}). Run `policy-service db upgrade` once (with the same POLICY_DATABASE_URL) "
            "before starting the service, or set POLICY_DATABASE_AUTO_UPGRADE=true for a single instance."
        )
    unknown = sorted(set(applied(database)) - set(known(migrations_dir)))
    if unknown:
        logger.warning("the database has migrations this release does not know (%s): a newer release "
                       "upgraded it", ", ".join(unknown))


@contextmanager
def _upgrade_lock(database: peewee.Database) -> Iterator[None]:
    """Hold the database's write lock while upgrading, so concurrent upgrades run one after the other."""
    if isinstance(database, peewee.PostgresqlDatabase):
        database.execute_sql("SELECT pg_advisory_lock(%s)", (UPGRADE_LOCK,))
        try:
            yield
        finally:
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (UPGRADE_LOCK,))
    elif isinstance(database, peewee.SqliteDatabase):
        # One IMMEDIATE transaction around every migration: the second writer waits (busy_timeout),
        # then finds nothing pending; each migration's own transaction nests inside it.
        with database.transaction("IMMEDIATE"):
            yield
    else:
        yield

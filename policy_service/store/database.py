"""The one database behind the decision log and stored histories (peewee; SQLite WAL by default).

Tables register themselves by subclassing `StoredModel`; this module imports none of them, so the
model modules can import it without a circle.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import peewee
from flask import Flask
from playhouse.db_url import connect
from playhouse.migrate import SchemaMigrator, migrate

database_proxy = peewee.DatabaseProxy()
_registered: list[type[peewee.Model]] = []


class StoredModel(peewee.Model):
    """Base of every table: bound to the database the app configures, and registered for creation."""

    class Meta:
        database = database_proxy

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _registered.append(cls)


def models() -> list[type[peewee.Model]]:
    """Every table this service stores, in creation (import) order."""
    return list(_registered)


def database_url(app: Flask) -> str:
    """The configured DATABASE_URL, or a SQLite file in the instance folder."""
    url = app.config.get("DATABASE_URL")
    if url:
        return url
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "policy-service.sqlite3")


def init_app(app: Flask) -> None:
    """Open the configured database, create missing tables, and manage connections per request."""
    url = database_url(app)
    # WAL lets several gunicorn workers write while readers read; busy_timeout makes writers queue.
    options = {"pragmas": {"journal_mode": "wal", "busy_timeout": 10_000}} if url.startswith("sqlite") else {}
    database = connect(url, **options)
    database_proxy.initialize(database)
    with database.connection_context():
        database.create_tables(models())
        for model in models():
            add_missing_columns(database, model)

    if url.startswith("sqlite"):
        # Each thread keeps its SQLite connection: closing the last one after every request forced a
        # WAL checkpoint and more than doubled the cost of a logged decision (bench/phases.py).
        # Commits still fsync (synchronous=FULL), so no decision a client has seen can be lost.
        return

    @app.teardown_appcontext
    def close(_: Any) -> None:
        # A server database may restart or drop idle connections: take a fresh one per request.
        if not database.is_closed():
            database.close()


def add_missing_columns(database: peewee.Database, model: type[peewee.Model]) -> list[str]:
    """Add columns a table created by an older version lacks (each new field has a default); their names."""
    table = model._meta.table_name
    present = {column.name for column in database.get_columns(table)}
    missing = [f for f in model._meta.sorted_fields if f.column_name not in present]
    if missing:
        migrator = SchemaMigrator.from_database(database)
        migrate(*(migrator.add_column(table, f.column_name, f) for f in missing))
    return [f.column_name for f in missing]


def stored_time(moment: datetime) -> datetime:
    """An aware time as stored: naive UTC, so SQLite and PostgreSQL compare and return the same values."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def loaded_time(stored: datetime) -> datetime:
    """A stored time back as an aware UTC time."""
    return stored.replace(tzinfo=UTC)

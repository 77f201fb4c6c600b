"""The one database behind the decision log and stored histories (peewee; SQLite WAL by default).

Tables register themselves by subclassing `StoredModel`; this module imports none of them, so the
model modules can import it without a circle. The tables themselves are made by the migrations
(`schema.py`), not by the models.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import peewee
from flask import Flask
from playhouse.db_url import connect

from . import schema

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
    """Every table this service stores, in import order."""
    return list(_registered)


def database_url(app: Flask) -> str:
    """The configured DATABASE_URL, or a SQLite file in the instance folder."""
    url = app.config.get("DATABASE_URL")
    if url:
        return url
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "policy-service.sqlite3")


def open_database(url: str) -> peewee.Database:
    """A peewee database for a URL (sqlite:///path, postgresql://user:pw@host/db), not yet connected."""
    # WAL lets several gunicorn workers write while readers read; busy_timeout makes writers queue.
    options = {"pragmas": {"journal_mode": "wal", "busy_timeout": 10_000}} if url.startswith("sqlite") else {}
    return connect(url, **options)


def auto_upgrade(app: Flask) -> bool:
    """Whether the app migrates a database that holds tables: DATABASE_AUTO_UPGRADE, by default only
    the embedded SQLite file (one local process); a configured database is upgraded once per release
    by `policy-service db upgrade`."""
    setting = app.config.get("DATABASE_AUTO_UPGRADE")
    return not app.config.get("DATABASE_URL") if setting is None else bool(setting)


def init_app(app: Flask) -> None:
    """Open the configured database, check its schema, and manage connections per request.

    An empty database (first start) gets the current schema, unless DATABASE_AUTO_UPGRADE is false
    (concurrent starts are serialised by schema.upgrade). A database holding tables is migrated only
    when auto_upgrade(app); otherwise pending migrations raise schema.SchemaBehind: the app refuses to
    start rather than fail on its first write (run `policy-service db upgrade` once per release).
    """
    url = database_url(app)
    database = open_database(url)
    database_proxy.initialize(database)
    with database.connection_context():
        if auto_upgrade(app) or (app.config.get("DATABASE_AUTO_UPGRADE") is None and not database.get_tables()):
            schema.upgrade(database)
        else:
            schema.check(database)

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


def stored_time(moment: datetime) -> datetime:
    """An aware time as stored: naive UTC, so SQLite and PostgreSQL compare and return the same values."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def loaded_time(stored: datetime) -> datetime:
    """A stored time back as an aware UTC time."""
    return stored.replace(tzinfo=UTC)

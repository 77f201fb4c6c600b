"""The one database behind the decision log and stored histories (peewee; SQLite WAL by default).

Tables register themselves by subclassing `StoredModel`; this module imports none of them, so the
model modules can import it without a circle. The tables themselves are made by the migrations
(`schema.py`), not by the models.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import peewee
from playhouse.db_url import connect, parse
from playhouse.pool import PooledDatabase, PooledPostgresqlDatabase

from ..config import DatabaseUrlRefused
from . import schema

if TYPE_CHECKING:  # the store runs without Flask (the Python API); only init_app is given a Flask app
    from flask import Flask

database_proxy = peewee.DatabaseProxy()
_registered: list[type[peewee.Model]] = []
log = logging.getLogger(__name__)


class DamagedStorage(peewee.DatabaseError):
    """The driver's bare DatabaseError — peewee.DatabaseError's own instances, none of its subclasses: a SQLite file
    that is not a database or is damaged ("file is not a database", "database disk image is malformed")."""


# peewee turns each driver error into its own class of the same name through one table (peewee.EXCEPTIONS): the bare
# DatabaseError now comes as DamagedStorage, a subclass, so a storage fault is told by class alone (`except
# STORAGE_FAULTS`, Flask's error handlers) while IntegrityError, DataError, ProgrammingError and the other subclasses
# keep theirs (a duplicate decision_id fails its own unit: decision_log.commit_rows).
peewee.EXCEPTIONS["DatabaseError"] = DamagedStorage

# Faults of the storage itself — the server down or restarted, a read-only or full disk, a dropped or closed
# connection, a file damaged under the running service — as opposed to a wrong query (IntegrityError,
# ProgrammingError: a bug, a 500). They are answered 503 with Retry-After, and the connection is dropped so the next
# request opens a new one: the service recovers by itself once the storage does (a SQLite file opened while
# read-only stays read-only for that connection's life). At start, a file that is not a database stops the start
# (open_configured).
STORAGE_FAULTS: tuple[type[Exception], ...] = (peewee.OperationalError, peewee.InterfaceError, DamagedStorage)
RETRY_AFTER_SECONDS = 5


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
    return configured_url(app.config, app.instance_path)


def configured_url(settings: Mapping[str, Any], instance_path: str) -> str:
    """DATABASE_URL of the settings (upper-case keys), or the embedded SQLite file in the instance folder."""
    url = settings.get("DATABASE_URL")
    if url:
        return url
    os.makedirs(instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(instance_path, "policy-service.sqlite3")


# WAL lets several gunicorn workers write while readers read; busy_timeout makes writers queue;
# synchronous=FULL (SQLite's default, set so no one mistakes it for a tuning knob) fsyncs every
# commit: no decision a client has seen can be lost, also on power loss.
SQLITE_PRAGMAS = {"journal_mode": "wal", "busy_timeout": 10_000, "synchronous": "full"}
# PostgreSQL: each worker process keeps its own pool (one connection per thread in use); a connection
# per request cost more than half a decision (bench/http_load.py). Idle connections older than this
# are replaced, so a restarted server or a proxy's idle cut costs one failed request at most.
POOL_STALE_SECONDS = 300
POOL_MAX_CONNECTIONS = 32
# A pooled connection given back less than this long ago is handed out without a round trip to the server. Short:
# a connection the server ended while it sat idle (a restart, pg_terminate_backend) fails the request that takes it
# within this time (one 503 with Retry-After, then a new connection); with 1 s a newcomer's trial saw one such 503
# per worker after every server-side cut, as background threads hand connections back every ~2 s. Under load a
# request's connection was given back milliseconds before, so the round trip is still saved where it counts.
POOL_PING_AFTER_IDLE_SECONDS = 0.25


class PostgresqlPool(PooledPostgresqlDatabase):
    """peewee's PostgreSQL pool, except that checking a connection out asks the server (`SELECT 1`, a round trip)
    only when the connection sat in the pool for POOL_PING_AFTER_IDLE_SECONDS or more. peewee 4 pings on every
    check-out; with a connection per request that doubled the round trips of a decision (the log's insert is its
    only statement). A connection busy a moment ago that the server dropped since fails its request like a server
    dropping mid-request does: a storage fault (503, Retry-After), and the connection leaves the pool
    (discard_connection), so the next request opens a new one. What the driver knows locally (closed, a lost or
    unfinished transaction) is still checked on every check-out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._returned: dict[int, float] = {}  # conn_key → time.monotonic() of its last check-in

    def _is_closed(self, conn: Any) -> bool:
        returned = self._returned.pop(self.conn_key(conn), None)
        if returned is None or time.monotonic() - returned >= POOL_PING_AFTER_IDLE_SECONDS or conn.closed:
            return super()._is_closed(conn)
        # The adapter's checks without its round trip: an unknown status is a lost connection; an unfinished
        # transaction is rolled back (as peewee does).
        return not self._adapter.is_connection_reusable(conn)

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        # Noted before the pool can hand it out again (another thread may take it the moment it is back).
        if close_conn:
            self._returned.pop(self.conn_key(conn), None)
        else:
            self._returned[self.conn_key(conn)] = time.monotonic()
        super()._close(conn, close_conn)


def auto_upgrade(app: Flask) -> bool:
    """Whether the app migrates a database that holds tables (upgrades_automatically of its config)."""
    return upgrades_automatically(app.config)


def upgrades_automatically(settings: Mapping[str, Any]) -> bool:
    """Whether a database that holds tables is migrated on opening: DATABASE_AUTO_UPGRADE, by default only
    the embedded SQLite file (one local process); a configured database is upgraded once per release
    by `policy-service db upgrade`."""
    setting = settings.get("DATABASE_AUTO_UPGRADE")
    return not settings.get("DATABASE_URL") if setting is None else bool(setting)


def init_app(app: Flask) -> None:
    """Open the configured database, check its schema, and manage connections per request.

    An empty database (first start) gets the current schema, unless DATABASE_AUTO_UPGRADE is false
    (concurrent starts are serialised by schema.upgrade). A database holding tables is migrated only
    when auto_upgrade(app); otherwise pending migrations raise schema.SchemaBehind: the app refuses to
    start rather than fail on its first write (run `policy-service db upgrade` once per release).
    """
    url = database_url(app)
    database = open_configured(app.config, url)
    for fault in STORAGE_FAULTS:
        app.register_error_handler(fault, storage_fault)

    if url.startswith("sqlite"):
        # Each thread keeps its SQLite connection: closing the last one after every request forced a
        # WAL checkpoint and more than doubled the cost of a logged decision (bench/phases.py).
        # Commits still fsync (synchronous=FULL), so no decision a client has seen can be lost.
        return

    @app.teardown_appcontext
    def close(_: Any) -> None:
        # Back to the pool (or closed, without one): a request never keeps a connection it is not using.
        if not database.is_closed():
            database.close()


def storage_fault(error: Exception) -> Any:
    """Answer a storage fault 503 with Retry-After in the app's error shape, and drop the connection."""
    from flask import current_app
    from werkzeug.exceptions import ServiceUnavailable

    unavailable = ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS)
    unavailable.data = {"message": unavailable_message(error)}
    return current_app.handle_http_exception(unavailable)


def unavailable_message(error: Exception, *, answered: bool = True) -> str:
    """After a storage fault (one of STORAGE_FAULTS): the connection dropped (the next query reconnects), the
    fault logged, and the one-line message every caller is given with its 503 (HTTP and the Python API).
    `answered` False (a refused start: cli.launcher.start_error) logs the fault without claiming a 503."""
    discard_connection()
    # The reason (host, path, driver message) goes to the log only: the answer may reach any client.
    log.error("storage fault, %s: %s: %s", "answered 503" if answered else "the service cannot start",
              type(error).__name__, error)
    return (f"the database is unavailable ({type(error).__name__}); nothing was stored; "
            f"retry after {RETRY_AFTER_SECONDS} s")


def write_transaction(database: peewee.Database | None = None) -> Any:
    """One transaction (a savepoint within one already open) for a unit of work that reads and then writes, on
    `database` (default: the configured one). On SQLite it takes the write lock at BEGIN (IMMEDIATE), so it waits
    its turn under busy_timeout: a deferred one that read first could not write after another connection's commit
    (SQLITE_BUSY at once, without waiting: a 503 for imports beside any other write, newcomer trial 2026-12-08)."""
    database = database_proxy if database is None else database
    if isinstance(database, peewee.DatabaseProxy):  # a model's database is the proxy: what it points to decides
        database = database.obj
    if isinstance(database, peewee.SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return database.atomic()


def background_fault(what: str, error: Exception) -> None:
    """A background thread's storage fault (one of STORAGE_FAULTS): one WARNING line naming `what` failed and the
    fault's first line, without a traceback (an outage would write one every round), and this thread's connection
    dropped so its next round reconnects."""
    reason = str(error).strip().splitlines()
    log.warning("%s: the database is unavailable (%s: %s)", what, type(error).__name__, reason[0] if reason else "")
    discard_connection()


def discard_connection(database: peewee.Database | None = None) -> None:
    """Close this thread's connection to `database` (default: the configured one) after a storage fault (a pooled
    one leaves the pool), so the next query opens a new one instead of reusing a broken or read-only connection."""
    if database is None:
        database = database_proxy.obj
    if database is None or database.is_closed():
        return
    try:
        if isinstance(database, PooledDatabase):
            database.manual_close()
        else:
            database.close()
    except peewee.PeeweeException:
        # Closing a broken connection can fail too; forget it all the same.
        with contextlib.suppress(Exception):
            database._state.conn.close()
        database._state.reset()


def prove_write() -> None:
    """Commit a write that needs new space as a logged decision does (a new row, deleted in the same
    transaction, and this host's row in service_heartbeat: store.heartbeat.beat), proving the database takes
    writes now — not only that it answers a SELECT or rewrites a row. Raises one of STORAGE_FAULTS when it
    does not (the connection is then discarded, so the next probe reconnects)."""
    from .heartbeat import beat

    try:
        beat(socket.gethostname()[:255], datetime.now(UTC))
    except STORAGE_FAULTS:
        discard_connection()
        raise


def open_configured(settings: Mapping[str, Any], url: str) -> peewee.Database:
    """Open the database at `url` as this process's database, its schema checked or migrated as the
    settings say (DATABASE_AUTO_UPGRADE; see init_app); raises schema.SchemaBehind, and config.DatabaseUrlRefused
    for a file that is not a database or is damaged (not_a_database): the start is refused, not answered 503."""
    database = open_database(url)
    if isinstance(database, peewee.SqliteDatabase):
        unusable = unusable_file(database.database)
        if unusable:
            raise DatabaseUrlRefused(url, unusable)
    database_proxy.initialize(database)
    try:
        with database.connection_context():
            refuse_foreign(url, database)
            if upgrades_automatically(settings) or (settings.get("DATABASE_AUTO_UPGRADE") is None
                                                    and not database.get_tables()):
                schema.upgrade(database)
            else:
                schema.check(database)
    except DamagedStorage as error:
        discard_connection(database)
        raise not_a_database(url, error) from None
    if isinstance(database, PooledDatabase):
        # gunicorn forks its workers after this (preload), as may a Python caller's worker pool: a
        # connection opened here would be shared by every child, and their queries would interleave on
        # one socket ("no results to fetch").
        database.close_all()
        _POOLS.add(database)
    return database


def unusable_file(path: str) -> str | None:
    """Why the SQLite file `path` (a SqliteDatabase's `database`) cannot be opened as a database, or None: it is a
    directory, or its folder does not exist (SQLite's own words are only "unable to open database file")."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    if os.path.isdir(path):
        return f"{path} is a directory, not a database file"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist (create it, or name a file in a folder that does)"
    return None


def foreign_tables(database: peewee.Database) -> list[str]:
    """The tables of `database`, sorted, when none of them is this service's (neither the migration history nor a
    model's table): another application's database, which the migrations must not be run into; else []."""
    tables = database.get_tables()
    ours = {schema.HISTORY_TABLE} | {model._meta.table_name for model in _registered}
    if not tables or ours.intersection(tables):
        return []
    return sorted(tables)


def refuse_foreign(url: str, database: peewee.Database) -> None:
    """Raise config.DatabaseUrlRefused naming `url` when `database` (connected) holds tables, none of them this
    service's (foreign_tables): the migrations must not be run into another application's database."""
    foreign = foreign_tables(database)
    if foreign:
        raise DatabaseUrlRefused(url, f"holds tables that are not this service's ({', '.join(foreign[:5])}"
                                      f"{', ...' if len(foreign) > 5 else ''}): another application's database? "
                                      "Name a new file or an empty database")


def not_a_database(url: str, error: Exception) -> DatabaseUrlRefused:
    """The settings error for opening `url` failing with DamagedStorage `error` (a file that is not a database or is
    damaged): one line naming POLICY_DATABASE_URL, as an unreadable setting is; a restart will not mend it."""
    return DatabaseUrlRefused(url, f"is not a database, or a damaged one ({error})")


def release() -> None:
    """Give this thread's connection back when a unit of work ends: to the pool (PostgreSQL), or closed.
    SQLite keeps each thread's connection open (see init_app)."""
    database = database_proxy.obj
    if database is None or isinstance(database, peewee.SqliteDatabase):
        return
    if not database.is_closed():
        database.close()


def close_all() -> None:
    """Close this process's connections to the configured database, pooled idle ones included."""
    database = database_proxy.obj
    if isinstance(database, PooledDatabase):
        database.close_all()
    elif database is not None:
        database.close()


def open_database(url: str) -> peewee.Database:
    """The database for a URL: SQLite with SQLITE_PRAGMAS, PostgreSQL through a per-process pool."""
    if url.startswith("sqlite"):
        return connect(url, pragmas=SQLITE_PRAGMAS)
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return PostgresqlPool(**parse(f"postgresql://{rest}"), max_connections=POOL_MAX_CONNECTIONS,
                              stale_timeout=POOL_STALE_SECONDS)
    return connect(url)


# Pools of this process, emptied in a forked child (see _forget_inherited_connections).
_POOLS: weakref.WeakSet[PooledDatabase] = weakref.WeakSet()
# Connections a forked child inherited. Kept, never closed or freed: closing one (also by garbage
# collection) would end the parent's session on the socket they share.
_INHERITED: list[Any] = []


def _forget_inherited_connections() -> None:
    for pool in _POOLS:
        _INHERITED.extend(pooled.connection for pooled in pool._in_use.values())
        _INHERITED.extend(entry[-1] for entry in pool._connections)
        if pool._state.conn is not None:
            _INHERITED.append(pool._state.conn)
        pool.dispose()


os.register_at_fork(after_in_child=_forget_inherited_connections)


def stored_time(moment: datetime) -> datetime:
    """An aware time as stored: naive UTC, so SQLite and PostgreSQL compare and return the same values."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def loaded_time(stored: datetime) -> datetime:
    """A stored time back as an aware UTC time."""
    return stored.replace(tzinfo=UTC)

"""store.database: the PostgreSQL pool asks the server whether a connection lives only after it sat idle."""

from __future__ import annotations

import os
import time

import peewee
import pytest

from policy_service.store import database

from ..conftest import NO_POSTGRES, POSTGRES_URL


@pytest.fixture
def pool(monkeypatch):
    """The service's pool on the test PostgreSQL, counting the round trips its check-outs make (`pings`)."""
    if not POSTGRES_URL:
        if os.environ.get("REQUIRE_POSTGRES_TESTS"):
            pytest.fail(NO_POSTGRES + ", and REQUIRE_POSTGRES_TESTS is set")
        pytest.skip(NO_POSTGRES)
    pings = []
    asked = peewee._BasePsycopgAdapter.is_connection_closed

    def counted(adapter, conn):
        pings.append(conn)
        return asked(adapter, conn)

    monkeypatch.setattr(peewee._BasePsycopgAdapter, "is_connection_closed", counted)
    opened = database.open_database(POSTGRES_URL)
    assert isinstance(opened, database.PostgresqlPool)
    opened.pings = pings
    yield opened
    opened.close_all()


def test_a_connection_given_back_a_moment_ago_is_handed_out_without_a_round_trip(pool):
    """peewee 4 pings (SELECT 1) at every check-out: with a connection per request that doubled a decision's round
    trips. Given back less than POOL_PING_AFTER_IDLE_SECONDS ago, the same connection comes back unasked."""
    pool.connect()
    first = pool.connection()
    pool.close()
    pool.connect()
    assert pool.connection() is first
    assert pool.execute_sql("SELECT 1").fetchone() == (1,)
    assert pool.pings == []


def test_a_connection_idle_for_a_while_is_asked_and_replaced_when_the_server_dropped_it(pool, monkeypatch):
    """After POOL_PING_AFTER_IDLE_SECONDS the check-out asks the server; a connection it ended in the meantime is
    discarded and a new one handed out, so the query after it works."""
    monkeypatch.setattr(database, "POOL_PING_AFTER_IDLE_SECONDS", 0.0)
    pool.connect()
    dropped = pool.connection()
    backend = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    pool.close()
    killer = database.open_database(POSTGRES_URL)
    try:
        assert killer.execute_sql("SELECT pg_terminate_backend(%s)", (backend,)).fetchone() == (True,)
    finally:
        killer.close_all()
    pool.connect()
    assert pool.pings == [dropped]
    assert pool.connection() is not dropped
    assert pool.execute_sql("SELECT 1").fetchone() == (1,)


def test_an_unfinished_transaction_is_rolled_back_at_check_out_without_a_round_trip(pool):
    """What the driver knows locally is still checked at every check-out: a connection given back inside a
    transaction is rolled back before it is handed out again (nothing of it is committed)."""
    pool.connect()
    connection = pool.connection()
    pool.execute_sql("CREATE TEMPORARY TABLE pool_probe (x int)")
    pool.execute_sql("BEGIN")
    pool.execute_sql("INSERT INTO pool_probe VALUES (1)")
    assert connection.get_transaction_status() != 0  # psycopg2: TRANSACTION_STATUS_IDLE is 0
    # Given back without commit or rollback (the pool's own check-in rolls back too; skip it to test check-out).
    pool._returned[pool.conn_key(connection)] = time.monotonic()
    with pool._pool_lock:
        pooled = pool._in_use.pop(pool.conn_key(connection))
        pool._connections.append((pooled.timestamp, 0, connection))
    pool._state.reset()
    pool.connect()
    assert pool.connection() is connection
    assert connection.get_transaction_status() == 0
    assert pool.execute_sql("SELECT count(*) FROM pool_probe").fetchone() == (0,)
    assert pool.pings == []

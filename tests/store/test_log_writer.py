"""The host's decision-log writer (store.log_writer): rows handed to it are committed before their callers return,
batched; a row's own error fails that row alone; no writer means each process writes its rows itself; forked
workers use it; and killing the writer or a worker with SIGKILL loses no decision a caller was told was logged."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import peewee
import pytest

from policy_service.core.records import replace  # a Decision is a msgspec Struct: dataclasses.replace cannot copy it
from policy_service.store import database as store_database
from policy_service.store import decision_log, log_writer

from ..conftest import ROOT, start_gunicorn, stop_gunicorn
from .test_decision_log import _KILLED_WRITER, _post, _preview, logged_ids, printed_until_killed, request_for


@pytest.fixture
def sqlite_app(app):
    if not isinstance(store_database.database_proxy.obj, peewee.SqliteDatabase):
        pytest.skip("the host writer serves the embedded SQLite file only")
    return app


def _sql() -> str:
    return decision_log._statement(store_database.database_proxy.obj)[0]


def _logged_ids(app) -> set[str]:
    with app.app_context():
        return {row.decision_id for row in decision_log.DecisionRecord.select(decision_log.DecisionRecord.decision_id)}


def _record(app, policy, decided, decision_id):
    with app.app_context():
        try:
            decision_log.record(replace(decided.decision, decision_id=decision_id), decided.logged, decided.body,
                                mask=True, response_json=decided.text, rulebook=policy.rulebook)
            return None
        except Exception as error:  # noqa: BLE001 - the outcome is the result
            return error
        finally:
            store_database.release()


def test_rows_sent_to_the_writer_are_committed_batched_and_read_back_as_written(sqlite_app, monkeypatch):
    """Rows from 16 threads go through the writer (none is written by the callers themselves), share commits, and
    read back exactly as a row its caller wrote itself."""
    app = sqlite_app
    policy, decided = _preview(app)
    assert _record(app, policy, decided, "direct") is None
    commits, sent, several_sent = [], [], threading.Event()

    def counted(database, sql, rows):
        commits.append(len(rows))
        if len(commits) == 1:
            # A slow first commit (a slow disk): the rows sent meanwhile queue for the next one.
            several_sent.wait(10)
            time.sleep(0.05)
        decision_log.commit_rows(database, sql, rows)

    class Counting(log_writer.Client):
        def write(self, params):
            sent.append(1)
            if len(sent) >= 8:
                several_sent.set()
            super().write(params)

    writer = log_writer.HostWriter(store_database.database_proxy.obj, _sql(), counted)
    client = Counting(writer.path)
    monkeypatch.setattr(decision_log, "_HOST_CLIENT", [(writer.database, client)])
    monkeypatch.setattr(decision_log._GroupCommit, "write", lambda *_: pytest.fail("written by its caller"))
    try:
        ids = [f"writer-{i}" for i in range(48)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            outcomes = list(pool.map(lambda i: _record(app, policy, decided, i), ids))
    finally:
        client.close()
        writer.stop()
    assert outcomes == [None] * len(ids)
    assert sum(commits) == len(ids) and max(commits) > 1
    assert _logged_ids(app) == {"direct", *ids}
    with app.app_context():
        rows = {row.decision_id: row for row in decision_log.DecisionRecord.select()}
        columns = [f.name for f in decision_log.DecisionRecord._meta.sorted_fields
                   if f.name not in ("id", "decision_id", "logged_at")]
        direct, sent = rows["direct"].__data__, rows["writer-0"].__data__
        assert {c: sent[c] for c in columns} == {c: direct[c] for c in columns}
        assert type(sent["logged_at"]) is type(direct["logged_at"])
        assert decision_log.get("writer-0")["response"] == decision_log.get("direct")["response"]


def test_a_row_the_database_refuses_fails_alone_and_a_storage_fault_fails_its_commit(sqlite_app, monkeypatch):
    app = sqlite_app
    policy, decided = _preview(app)
    assert _record(app, policy, decided, "taken") is None
    writer = log_writer.HostWriter(store_database.database_proxy.obj, _sql(), decision_log.commit_rows)
    client = log_writer.Client(writer.path)
    monkeypatch.setattr(decision_log, "_HOST_CLIENT", [(writer.database, client)])
    try:
        assert isinstance(_record(app, policy, decided, "taken"), peewee.IntegrityError)
        assert _record(app, policy, decided, "after") is None

        def failing(database, sql, rows):
            for row in rows:
                row.error = peewee.OperationalError("disk I/O error")

        writer._commit = failing
        error = _record(app, policy, decided, "faulted")
        assert isinstance(error, peewee.OperationalError) and "disk I/O error" in str(error)
    finally:
        client.close()
        writer.stop()
    assert _logged_ids(app) == {"taken", "after"}


def test_a_batchs_rows_reach_the_writer_as_one_unit_that_fails_alone(sqlite_app, monkeypatch):
    """record_all sends a batch's rows as one unit: a unit whose second row the database refuses keeps none of its
    rows, while another caller's row committed in the same transaction stays; a good unit keeps all of its rows."""
    app = sqlite_app
    policy, decided = _preview(app)
    assert _record(app, policy, decided, "taken") is None
    commits, release = [], threading.Event()

    def held(database, sql, units):
        # The first commit waits until both callers have sent their units, so they share the next commit.
        commits.append([len(unit.rows) for unit in units])
        if len(commits) == 1:
            release.wait(10)
        decision_log.commit_rows(database, sql, units)

    writer = log_writer.HostWriter(store_database.database_proxy.obj, _sql(), held)
    client = log_writer.Client(writer.path)
    monkeypatch.setattr(decision_log, "_HOST_CLIENT", [(writer.database, client)])

    def batch(ids):
        with app.app_context():
            try:
                decision_log.record_all([decision_log.Logged(replace(decided.decision, decision_id=i), decided.logged,
                                                             decided.body, decided.text) for i in ids],
                                        mask=True, rulebook=policy.rulebook)
                return None
            except Exception as error:  # noqa: BLE001 - the outcome is the result
                return error
            finally:
                store_database.release()

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            first = pool.submit(_record, app, policy, decided, "first")
            time.sleep(0.3)
            refused = pool.submit(batch, ["unit-a", "taken", "unit-c"])
            alone = pool.submit(_record, app, policy, decided, "beside")
            time.sleep(0.3)
            release.set()
            outcomes = first.result(10), refused.result(10), alone.result(10)
        assert batch(["good-a", "good-b", "good-c"]) is None
    finally:
        client.close()
        writer.stop()
    assert outcomes[0] is None and isinstance(outcomes[1], peewee.IntegrityError) and outcomes[2] is None
    assert sorted(commits[1]) == [1, 3], "the unit and the other caller's row shared a commit"
    assert _logged_ids(app) == {"taken", "first", "beside", "good-a", "good-b", "good-c"}


def test_the_syncer_forces_the_wal_to_disk_within_its_interval_of_a_commit_in_any_forked_process(tmp_path,
                                                                                                   monkeypatch):
    """HostSyncer: commits reported by this process or by one forked from it (shared memory) are followed by one
    fdatasync of the -wal file within the interval, several commits of an interval by one; nothing reported,
    nothing synced; a stop forces what was reported since the last sync."""
    synced = []
    real_fdatasync = os.fdatasync

    def recorded(descriptor):
        synced.append((time.monotonic(), os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fdatasync(descriptor)

    monkeypatch.setattr(log_writer.os, "fdatasync", recorded)
    path = str(tmp_path / "log.sqlite3")
    (tmp_path / "log.sqlite3-wal").write_bytes(b"")
    with pytest.raises(ValueError):
        log_writer.HostSyncer(path, 0)
    syncer = log_writer.HostSyncer(path, 0.2)
    try:
        time.sleep(0.5)
        assert synced == [], "nothing committed, nothing synced"
        started = time.monotonic()
        for _ in range(5):
            syncer.committed()
        time.sleep(0.6)
        assert len(synced) == 1 and synced[0][1] == path + "-wal" and synced[0][0] - started < 0.2 + 0.3
        child = os.fork()
        if child == 0:
            syncer.committed()
            os._exit(0)
        os.waitpid(child, 0)
        time.sleep(0.6)
        assert len(synced) == 2, "a forked process's commit is synced by the starting process's thread"
        syncer.committed()
    finally:
        syncer.stop()
    assert len(synced) == 3, "the stop forced the last commit"


def test_the_syncers_turn_lets_one_forked_process_commit_at_a_time_and_a_killed_holder_lets_go(tmp_path):
    """HostSyncer.turn is held by one process at a time among those forked after it was made: a process asking for
    it while another holds it waits until that one lets go (woken at once, not polling); a holder killed with
    SIGKILL lets go too (the kernel releases its lock)."""
    syncer = log_writer.HostSyncer(str(tmp_path / "log.sqlite3"), 30)
    try:
        for ending in ("release", "kill"):
            ready_read, ready_write = os.pipe()
            child = os.fork()
            if child == 0:  # pragma: no cover - the child's lines run in the forked process
                with syncer.turn():
                    os.write(ready_write, b"x")
                    time.sleep(0.5 if ending == "release" else 30)
                os._exit(0)
            os.close(ready_write)
            assert os.read(ready_read, 1) == b"x"
            os.close(ready_read)
            if ending == "kill":
                threading.Timer(0.5, os.kill, (child, signal.SIGKILL)).start()
            started = time.monotonic()
            with syncer.turn():
                waited = time.monotonic() - started
            os.waitpid(child, 0)
            assert 0.3 < waited < 5, (ending, waited)
        started = time.monotonic()
        with syncer.turn():
            assert time.monotonic() - started < 0.1, "a free turn is taken at once"
    finally:
        syncer.stop()


def test_under_the_syncer_rows_logged_while_the_leader_waits_for_the_turn_share_its_commit(sqlite_app, monkeypatch):
    """The leader of a process's group commit takes the queued rows once it holds the host's turn, not before: while
    another process commits (here: holds the turn for 0.5 s), every row this process's threads log joins one commit."""
    app = sqlite_app
    policy, decided = _preview(app)
    assert _record(app, policy, decided, "warm") is None
    syncer = log_writer.HostSyncer(store_database.database_proxy.obj.database, 30)
    monkeypatch.setattr(decision_log, "_HOST_SYNCER", [syncer])
    sizes, commit_rows = [], decision_log.commit_rows
    monkeypatch.setattr(decision_log, "commit_rows", lambda database, sql, units: (
        sizes.append(len(units)), commit_rows(database, sql, units))[1])
    ids = [f"waited-{index}" for index in range(6)]
    try:
        ready_read, ready_write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's lines run in the forked process
            with syncer.turn():
                os.write(ready_write, b"x")
                time.sleep(0.5)
            os._exit(0)
        os.close(ready_write)
        assert os.read(ready_read, 1) == b"x"
        os.close(ready_read)
        with ThreadPoolExecutor(len(ids)) as pool:
            outcomes = list(pool.map(lambda decision_id: _record(app, policy, decided, decision_id), ids))
        os.waitpid(child, 0)
    finally:
        syncer.stop()
    assert outcomes == [None] * len(ids)
    assert sizes == [len(ids)], f"one commit for every row queued while the turn was held, got {sizes}"
    assert set(ids) <= _logged_ids(app)


def test_with_a_syncer_a_process_commits_its_rows_with_normal_and_reports_them(sqlite_app, monkeypatch):
    """Under the host's syncer (DECISION_LOG_SYNC_SECONDS > 0) a process's own log commits run with
    synchronous=NORMAL (1) and are reported to the syncer; the connection is FULL (2) again after, for the other
    writes it makes; without a syncer the log commits with FULL."""
    app = sqlite_app
    policy, decided = _preview(app)
    seen, commit_rows = [], decision_log.commit_rows

    def commit(database, sql, units):
        seen.append(database.execute_sql("PRAGMA synchronous").fetchone()[0])
        commit_rows(database, sql, units)

    monkeypatch.setattr(decision_log, "commit_rows", commit)
    assert _record(app, policy, decided, "alone-full") is None
    syncer = log_writer.HostSyncer(store_database.database_proxy.obj.database, 30)
    reported = []
    monkeypatch.setattr(syncer, "committed", lambda: reported.append(1))
    monkeypatch.setattr(decision_log, "_HOST_SYNCER", [syncer])
    try:
        assert _record(app, policy, decided, "normal-1") is None
        assert _record(app, policy, decided, "normal-2") is None
        with app.app_context():
            assert store_database.database_proxy.obj.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        syncer.stop()
    assert seen == [2, 1, 1] and reported == [1, 1]
    assert {"alone-full", "normal-1", "normal-2"} <= _logged_ids(app)


def test_with_a_syncer_the_log_commits_on_its_own_connection_which_a_storage_fault_drops(sqlite_app, monkeypatch):
    """Under the syncer the log's rows are committed on a connection of their own to the same file (synchronous=NORMAL
    from its opening), one for the process whatever thread commits, never on the app's (FULL, untouched: no PRAGMA
    is run on it); a storage fault on the log's connection fails that decision only and closes that connection, and
    the next decision opens it again."""
    app = sqlite_app
    policy, decided = _preview(app)
    assert _record(app, policy, decided, "warm") is None  # the committer and the app's connection exist
    syncer = log_writer.HostSyncer(store_database.database_proxy.obj.database, 30)
    monkeypatch.setattr(decision_log, "_HOST_SYNCER", [syncer])
    app_statements, used, connections, commit_rows = [], [], [], decision_log.commit_rows
    app_database = store_database.database_proxy.obj
    execute_sql = app_database.execute_sql
    monkeypatch.setattr(app_database, "execute_sql", lambda sql, *a, **k: (
        app_statements.append(sql), execute_sql(sql, *a, **k))[1])
    faults = [peewee.OperationalError("disk I/O error")]

    def commit(database, sql, units):
        used.append(database)
        connections.append(database.connection())  # in the committing thread
        if faults:
            fault = faults.pop()
            # As a real fault leaves it: the statement raised inside commit_rows, which drops the connection.
            database.execute_sql = lambda *a, **k: (_ for _ in ()).throw(fault)
            try:
                commit_rows(database, sql, units)
            finally:
                del database.execute_sql  # the class's method again
            return
        commit_rows(database, sql, units)

    monkeypatch.setattr(decision_log, "commit_rows", commit)
    try:
        error = _record(app, policy, decided, "faulted")
        assert isinstance(error, peewee.OperationalError) and "disk I/O error" in str(error)
        assert used[0].is_closed(), "the log's connection is dropped after a storage fault"
        assert _record(app, policy, decided, "after") is None
        assert used[1] is used[0] and used[0] is not app_database
        other_thread = ThreadPoolExecutor(1)
        assert other_thread.submit(_record, app, policy, decided, "other-thread").result() is None
        other_thread.shutdown()
        assert used[2] is used[0] and connections[2] is connections[1], "one connection serves every thread"
        assert used[0].execute_sql("PRAGMA synchronous").fetchone()[0] == 1
        # The log's commits checkpoint as SQLite does by default, inside the commit (under the turn: no other commit
        # runs then, so the checkpoint completes and the next commit restarts the WAL). A checkpoint by another
        # process while the workers commit never caught up: the WAL grew past 55 MB in 6 s of wrk -c4.
        assert used[0].execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert not [sql for sql in app_statements if "PRAGMA" in sql.upper()]
        with app.app_context():
            assert app_database.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        syncer.stop()
    assert _logged_ids(app) >= {"warm", "after", "other-thread"} and "faulted" not in _logged_ids(app)


def test_without_a_writer_a_process_writes_its_rows_itself(sqlite_app, monkeypatch):
    """A writer that has stopped (or never ran) is not reached: the caller commits its row itself, and later rows
    of the process do not try the writer again."""
    app = sqlite_app
    policy, decided = _preview(app)
    writer = log_writer.HostWriter(store_database.database_proxy.obj, _sql(), decision_log.commit_rows)
    writer.stop()
    monkeypatch.setattr(decision_log, "_HOST_CLIENT", [(writer.database, log_writer.Client(writer.path))])
    assert _record(app, policy, decided, "alone") is None
    assert decision_log._HOST_CLIENT[0] is None
    assert _logged_ids(app) == {"alone"}


def test_a_writer_that_stops_fails_the_rows_waiting_for_it():
    """Its clients' waiting rows get a storage fault (answered 503: their fate is unknown) rather than a hang."""
    database = peewee.SqliteDatabase(":memory:")
    gate = threading.Event()

    def stuck(_database, _sql, _rows):
        gate.wait(5)
        raise RuntimeError("the writer broke")  # not an Exception a commit absorbs: the thread ends

    writer = log_writer.HostWriter(database, "INSERT INTO t VALUES (?)", stuck)
    client = log_writer.Client(writer.path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(client.write, [[1]])
        time.sleep(0.2)
        gate.set()
        with pytest.raises(peewee.OperationalError, match="did not answer"):
            waiting.result(timeout=10)
    with pytest.raises(log_writer.WriterUnavailable):
        client.write([[1]])
    client.close()


@pytest.mark.parametrize(("mode", "killed"), [("host-writer", "writer"), ("host-writer", "worker"),
                                             ("host-syncer", "writer"), ("host-syncer", "worker")])
def test_no_decision_seen_is_lost_when_the_writer_or_a_worker_is_killed(database_url, mode, killed, tmp_path):
    """A process forks a worker logging from 8 threads, through the parent's writer or committing itself with
    synchronous=NORMAL under the parent's syncer; the parent or the worker is killed with SIGKILL while rows are in
    flight: every decision_id the worker printed after record returned is in the log."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the host writer serves the embedded SQLite file only")
    # The test's own scratch folder for the writer's socket (a writer killed with SIGKILL cannot remove it).
    scratch = tmp_path / "writer"
    scratch.mkdir()
    process = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, database_url, mode],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                               start_new_session=True, env={**os.environ, "TMPDIR": str(scratch)})

    def kill():
        if killed == "writer":
            os.kill(process.pid, signal.SIGKILL)
            time.sleep(0.5)  # the worker goes on (its rows fail, then it writes them itself)
        os.killpg(process.pid, signal.SIGKILL)

    printed = printed_until_killed(process, {"writer", "ready"}, kill)
    logged = logged_ids(database_url)
    assert len(printed) > 20 and set(printed) <= logged


@pytest.mark.parametrize(("env", "line"), [
    ({}, "each worker commits its rows (SQLite), forced to disk within 0.1 s"),
    ({"POLICY_DECISION_LOG_SYNC_SECONDS": "0"}, "one writer for this host's workers (SQLite), every commit forced"),
    ({"POLICY_DECISION_LOG_SYNC_SECONDS": "0", "POLICY_LOG_WRITER": "false"}, None)])
def test_gunicorn_keeps_the_log_durable_as_the_sync_setting_says(tmp_path, env, line):
    """Under gunicorn.conf.py (preloaded app, SQLite) the master runs the syncer (the default), or with every commit
    forced to disk the writer (unless POLICY_LOG_WRITER is false), and either way every decision a client received
    is in the log."""
    server = start_gunicorn(tmp_path, env=env)
    try:
        url = f"{server.url}/v1/decisions"
        numbers = ["+14155550100", "+16135550100", "+5511987654321"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            returned = list(pool.map(lambda i: _post(url, request_for(numbers[i % 3])), range(60)))
    finally:
        stop_gunicorn(server)
    text = server.log.read_text()
    if line is None:
        assert "decision log:" not in text
    else:
        assert line in text
    logged = logged_ids(f"sqlite:///{server.database}")
    assert len(set(returned)) == 60 and set(returned) <= logged


def test_the_writers_socket_fits_a_unix_socket_path_under_a_long_tmpdir(tmp_path, monkeypatch):
    """A Unix socket's path holds at most 107 bytes: under a TMPDIR too long for one (pytest's tmp_path once its
    run counter passed 999), the writer's socket folder goes under /tmp instead of failing to bind."""
    long = tmp_path / ("d" * 60)
    long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    directory = log_writer._socket_directory()
    try:
        assert len(os.fsencode(os.path.join(directory, "socket"))) <= log_writer.SOCKET_PATH_BYTES
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(os.path.join(directory, "socket"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)

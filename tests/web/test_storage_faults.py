"""Storage faults: 503 with Retry-After in the one error shape, /readyz proves a write, and the service
recovers by itself once the storage does (issue 22: the database down gave a bare 500, /readyz said 200
while every write failed, and a read-only SQLite file once fixed stayed 500 until a SIGHUP)."""

import contextlib
import shutil
import socket
import threading
from datetime import UTC, datetime
from urllib.parse import urlsplit

import peewee
import pytest

from policy_service import create_app, store
from policy_service.store import database, heartbeat

from ..conftest import NO_POSTGRES, POSTGRES_URL, assert_error_shape, upgraded
from ..meta_payloads import APP_SECRET, inbound_text, signed


def assert_unavailable(response) -> dict:
    """A 503 in the error shape, telling the client when to retry, without the driver's message."""
    body = assert_error_shape(response, 503)
    assert response.headers["Retry-After"] == str(database.RETRY_AFTER_SECONDS)
    assert "retry after" in body["message"] and "sqlite" not in body["message"].lower()
    return body


def decide(client, example_request):
    return client.post("/v1/decisions", json=example_request)


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "db"
    path.mkdir()
    return path


@pytest.fixture
def app(folder):
    app = create_app({"TESTING": True, "DATABASE_URL": upgraded(f"sqlite:///{folder / 'log.sqlite3'}"),
                      "WHATSAPP_APP_SECRET": APP_SECRET})
    yield app
    store.close_all()


def test_a_database_that_is_gone_is_a_503_and_comes_back_without_a_restart(app, folder, example_request):
    """The database's directory removed: decisions, batches, webhooks and /readyz answer 503 with
    Retry-After; once it is back, the same app decides again (no restart, no SIGHUP)."""
    client = app.test_client()
    assert decide(client, example_request).status_code == 200
    store.close_all()
    shutil.rmtree(folder)

    assert_unavailable(decide(client, example_request))
    assert_unavailable(client.post("/v1/decisions/batch", json={"requests": [example_request]}))
    raw, headers = signed(inbound_text("wamid.while-down", 1754989200))
    assert_unavailable(client.post("/v1/webhooks/whatsapp", data=raw, headers=headers))
    readiness = assert_error_shape(client.get("/readyz"), 503)
    assert list(readiness["errors"]) == ["database"]

    folder.mkdir()
    upgraded(f"sqlite:///{folder / 'log.sqlite3'}")
    assert decide(client, example_request).status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def read_only(app, monkeypatch):
    """Make the next connection read-only, as SQLite opens a file it may not write (a chmod, a read-only
    mount; root ignores permissions, so the test opens it with mode=ro); calling the result undoes it."""
    sqlite = store.database_proxy.obj
    path = sqlite.database
    store.close_all()
    monkeypatch.setattr(sqlite, "database", f"file:{path}?mode=ro")
    monkeypatch.setitem(sqlite.connect_params, "uri", True)

    def fix():
        monkeypatch.undo()
    return fix


def test_a_read_only_database_is_not_ready_and_recovers_once_fixed(app, read_only, example_request):
    """Reads work but writes fail: /readyz says 503 (it commits a write, not a SELECT), a decision is a 503
    (never an unlogged answer), and once the file is writable again the next request succeeds."""
    client = app.test_client()
    assert store.database_proxy.execute_sql("SELECT 1").fetchone() == (1,)
    assert_error_shape(client.get("/readyz"), 503)
    assert_unavailable(decide(client, example_request))
    assert_unavailable(decide(client, example_request))

    read_only()
    response = decide(client, example_request)
    assert response.status_code == 200
    assert client.get(f"/v1/decisions/{response.json['decision_id']}").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_readyz_commits_a_heartbeat(app):
    """Each /readyz writes this host's heartbeat row: the answer proves a committed write."""
    client = app.test_client()
    before = datetime.now(UTC).replace(tzinfo=None)
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        rows = list(heartbeat.Heartbeat.select())
    assert len(rows) == 1 and rows[0].beat_at >= before
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        assert heartbeat.Heartbeat.select().count() == 1


def test_readyz_needs_new_space_as_a_decision_does(app, example_request):
    """A database at its page limit (SQLite's SQLITE_FULL, as on a full disk): rewriting the heartbeat row
    would still fit its page, but /readyz inserts a decision-sized row in its transaction, so it says 503
    no later than a decision can no longer be logged; the probe's row is deleted in the same transaction."""
    client = app.test_client()
    assert decide(client, example_request).status_code == 200
    sqlite = store.database_proxy.obj
    with app.app_context():
        heartbeat.beat("another-host", datetime.now(UTC))  # the rewrite below needs no new row
        assert heartbeat.WriteProbe.select().count() == 0
    # Decisions (each row ~1 KB, compressed) until no free page is left in the file: the next row that does
    # not fit the pages in use needs new space.
    for _ in range(100):
        assert decide(client, example_request).status_code == 200
        if sqlite.execute_sql("PRAGMA freelist_count").fetchone()[0] == 0:
            break
    assert sqlite.execute_sql("PRAGMA freelist_count").fetchone()[0] == 0
    pages = sqlite.execute_sql("PRAGMA page_count").fetchone()[0]
    sqlite.execute_sql(f"PRAGMA max_page_count = {pages}")
    with app.app_context():  # what the old probe did: a rewrite of an existing row still commits
        heartbeat.Heartbeat.update(beat_at=datetime.now(UTC).replace(tzinfo=None)).execute()
    readiness = assert_error_shape(client.get("/readyz"), 503)
    assert list(readiness["errors"]) == ["database"]
    sqlite.execute_sql(f"PRAGMA max_page_count = {pages}")  # the 503 dropped the connection; cap the new one
    # A decision may still fit the room left in the pages in use; once it does not, it is refused (503) and
    # nothing is lost: /readyz said 503 no later than the log refused.
    for _ in range(300):
        answer = decide(client, example_request)
        if answer.status_code != 200:
            break
    assert_unavailable(answer)
    assert client.get("/readyz").status_code == 200  # a new connection without the cap: room again
    with app.app_context():
        assert heartbeat.WriteProbe.select().count() == 0


def test_a_query_bug_is_not_a_storage_fault(app, example_request, monkeypatch):
    """Only faults of the storage are 503s: a wrong query (here an IntegrityError) stays a 500."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(*_args, **_kwargs):
        raise peewee.IntegrityError("bug")

    monkeypatch.setattr("policy_service.store.decision_log.record", broken)
    response = decide(app.test_client(), example_request)
    assert_error_shape(response, 500)
    assert "Retry-After" not in response.headers


class Outage:
    """A TCP forwarder to the test PostgreSQL that can be cut (the server gone, every connection dropped)
    and restored on the same port, as a database restart or a network cut looks to the service."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._serve()

    def _serve(self) -> None:
        listener = self.listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone would leave it accepting.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.connections = []

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self._serve()


def test_postgresql_going_away_is_a_503_and_the_pool_recovers(example_request):
    """PostgreSQL cut off mid-service (pooled connections dead, new ones refused): 503 with Retry-After;
    once it is back, the same app decides again without a restart."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    parts = urlsplit(upgraded(POSTGRES_URL))
    outage = Outage(parts.hostname, parts.port)
    url = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{outage.port}").geturl()
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    client = app.test_client()
    try:
        assert decide(client, example_request).status_code == 200
        outage.cut()
        assert_unavailable(decide(client, example_request))
        assert_unavailable(decide(client, example_request))
        assert_error_shape(client.get("/readyz"), 503)
        outage.restore()
        assert decide(client, example_request).status_code == 200
        assert client.get("/readyz").status_code == 200
    finally:
        store.close_all()
        outage.cut()


def test_a_full_database_is_a_503_and_takes_writes_again_once_there_is_room(app, example_request):
    """SQLite's own "database or disk is full" (SQLITE_FULL, here by capping the file's pages at what it
    has): a decision is a 503 with Retry-After, never an unlogged answer; with room again it is decided."""
    client = app.test_client()
    assert decide(client, example_request).status_code == 200
    sqlite = store.database_proxy.obj
    pages = sqlite.execute_sql("PRAGMA page_count").fetchone()[0]
    sqlite.execute_sql(f"PRAGMA max_page_count = {pages}")
    # Logged decisions (~1 KB each, compressed) fill the room left in the pages in use, then need a new page.
    for _ in range(300):
        answer = decide(client, example_request)
        if answer.status_code != 200:
            break
    assert_unavailable(answer)
    # The 503 dropped the connection; the new one has no page cap (as after freeing disk space).
    assert decide(client, example_request).status_code == 200


def test_a_damaged_database_file_is_a_503_and_comes_back_once_mended(app, folder, example_request):
    """A SQLite file damaged under a running app ("file is not a database": peewee's bare DatabaseError, left out of
    the storage faults) gave Flask's generic 500 on GET /v1/decisions and GET /v1/decisions/<id>: each answers 503
    with Retry-After in the error shape, POST /v1/decisions answers 503 (nothing answered as decided that was not
    stored), and once the file is whole again the same app decides and reads again, the earlier decision kept."""
    client = app.test_client()
    decided = decide(client, example_request)
    assert decided.status_code == 200
    decision_id = decided.get_json()["decision_id"]
    store.close_all()
    path = folder / "log.sqlite3"
    for leftover in (folder / "log.sqlite3-wal", folder / "log.sqlite3-shm"):
        leftover.unlink(missing_ok=True)  # closing the last connection checkpointed the WAL into the file
    whole = path.read_bytes()
    path.write_bytes(b"this is not a database\n" * 200)

    assert_unavailable(client.get("/v1/decisions"))
    assert_unavailable(client.get(f"/v1/decisions/{decision_id}"))
    assert_unavailable(decide(client, example_request))
    assert path.read_bytes() == b"this is not a database\n" * 200  # nothing was written into it

    path.write_bytes(whole)
    again = decide(client, example_request)
    assert again.status_code == 200, again.get_json()
    assert client.get(f"/v1/decisions/{decision_id}").status_code == 200
    listed = client.get("/v1/decisions").get_json()
    assert {decision_id, again.get_json()["decision_id"]} <= {item["decision_id"] for item in listed}


def test_only_the_bare_database_error_is_a_storage_fault():
    """peewee maps the driver's bare DatabaseError to store.database.DamagedStorage (a storage fault: 503), while its
    subclasses (IntegrityError: a duplicate decision_id fails its own unit; ProgrammingError: a bug, a 500) keep their
    classes and stay out of STORAGE_FAULTS."""
    import sqlite3

    db = peewee.SqliteDatabase(":memory:")
    db.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    db.execute_sql("INSERT INTO t VALUES (1)")
    with pytest.raises(peewee.IntegrityError) as duplicate:
        db.execute_sql("INSERT INTO t VALUES (1)")
    with pytest.raises(peewee.OperationalError):
        db.execute_sql("SELECT nothing FROM nowhere")
    with pytest.raises(database.DamagedStorage) as damaged, peewee.__exception_wrapper__:
        raise sqlite3.DatabaseError("file is not a database")
    assert isinstance(damaged.value, peewee.DatabaseError) and isinstance(damaged.value, store.STORAGE_FAULTS)
    assert not isinstance(duplicate.value, store.STORAGE_FAULTS)
    for subclass in (peewee.IntegrityError, peewee.DataError, peewee.ProgrammingError, peewee.NotSupportedError,
                     peewee.InternalError):
        assert not issubclass(subclass, store.STORAGE_FAULTS), subclass

"""How gunicorn's master keeps the embedded SQLite file's decision log durable for its workers: with every commit
forced to disk (DECISION_LOG_SYNC_SECONDS 0), one writer per host (`HostWriter`): the workers hand their rows to a
thread of the master, which commits every row waiting at that moment in one transaction, and each worker thread
returns once the commit holding its row is on disk; otherwise (the default) `HostSyncer`, below.

Why a writer when every commit is forced to disk: SQLite lets one connection write at a time. With each worker
committing its own rows with synchronous=FULL, the workers' commits met at the write lock and the loser slept in
SQLite's busy handler (1, 2, 5, 10… ms between tries; ~0.75 sleeps of ~2.4 ms per decision at wrk -c4), each commit
emptied the other connections' page caches (~15 pages read again per decision), and a commit's thread waited for its
worker's GIL while holding nothing but still delaying its reply. One writer on one connection has none of these: its
cache stays warm, nothing collides, and the rows of every worker that arrive during a commit share the next one (one
fsync).

What is promised: a worker answers a decision only after the writer has committed its row (synchronous=FULL: forced
to disk) and said so; a row the writer could not commit is an error for that decision (a storage fault: 503); a
worker that cannot reach the writer (none started, or it has stopped) writes its row itself, as before. The writer
runs when every commit is forced to disk (DECISION_LOG_SYNC_SECONDS 0), where sharing one fsync among the workers'
rows pays.

With DECISION_LOG_SYNC_SECONDS N > 0 (the default) there is no writer: each worker commits its own rows with
synchronous=NORMAL (the commit is in the file, in the operating system's cache, before the answer: it survives the
crash of any process, kill -9 included), and a `HostSyncer` thread of the master forces the write-ahead log to disk
at most N seconds after a commit (a power loss or operating-system crash may roll back the decisions of those last
N seconds, as PostgreSQL's synchronous_commit=off does within its wal_writer_delay). The workers take turns to
commit (`HostSyncer.turn`, a POSIX record lock the kernel hands to the next waiter at once) rather than meet at
SQLite's write lock, whose busy handler sleeps 1, 2, 5… ms however soon the lock is free. Measured on the reference
machine (bench/README.md): forcing each commit cost ~0.2–0.4 ms of CPU per decision, and handing a row to the
writer and waiting for its answer (a wake-up of the master and of the waiting thread per decision) cost more than
the worker committing it itself once no commit waits for the disk.

Protocol, on a Unix stream socket in a private (0700) directory: a request is a 4-byte big-endian length and a
msgpack array of rows committed all or none (one decision's, or a batch's), each row an array of parameters (str,
bytes, int, float, bool or None) for the writer's one statement (the decision log's INSERT: a client sends values,
never SQL); the answer is one byte, 0 for committed, or 1, 2 or 3 (storage fault, integrity error, other error)
followed by a 4-byte length and the error's text.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import selectors
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import msgspec
import peewee

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
OK, FAULT, INTEGRITY, OTHER = 0, 1, 2, 3
# A row's message is ~1-2 KB; a long inline history's can reach some MB. Larger is refused as a protocol error.
MAX_MESSAGE = 256 * 1024 * 1024


class WriterUnavailable(Exception):
    """The host writer could not be reached before anything was sent: the caller writes the row itself."""


def sendable(value: Any) -> Any:
    """A statement parameter as the writer receives it: a naive datetime as the text Python's sqlite3 stores for
    it (`isoformat(" ")`), anything else as it is."""
    return value.isoformat(" ") if type(value) is datetime else value


# A Unix socket's path holds at most 107 bytes on Linux (sun_path); a long TMPDIR (a CI runner's, pytest's
# tmp_path) made the writer's bind fail: "AF_UNIX path too long".
SOCKET_PATH_BYTES = 107


def _socket_directory() -> str:
    """A new private folder for the writer's socket: under TMPDIR, or under /tmp when TMPDIR's path is too long for
    a socket in it."""
    directory = tempfile.mkdtemp(prefix="policy-service-writer-")
    if len(os.fsencode(os.path.join(directory, "socket"))) <= SOCKET_PATH_BYTES or not os.path.isdir("/tmp"):
        return directory
    os.rmdir(directory)
    return tempfile.mkdtemp(prefix="policy-service-writer-", dir="/tmp")


class HostWriter:
    """The writer: a thread of this process that commits the rows sent to its socket (`path`) with `sql`, batched.
    `commit(database, sql, rows)` commits rows (objects with `params` and `error`) as one group, setting the
    `error` of each row it could not commit (store.decision_log.commit_rows)."""

    MAX_BATCH = 256

    def __init__(self, database: peewee.Database, sql: str, commit: Callable[[peewee.Database, str, list[Any]], None]) \
            -> None:
        self.database = database
        self.sql = sql
        self._commit = commit
        self._directory = _socket_directory()
        self.path = os.path.join(self._directory, "socket")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(128)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._buffers: dict[socket.socket, bytearray] = {}
        # Held while the thread is inside SQLite; a fork waits for it (no child inherits a SQLite mutex held).
        self.busy = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and remove the socket; clients then write their rows themselves."""
        self._stopped = True
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as waking:
            # Wakes the selector: a connection that closes at once.
            waking.connect(self.path)
        self._thread.join(5)

    def _close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)
        for sock in [*self._buffers, self._listener]:
            with contextlib.suppress(OSError):
                sock.close()
        with contextlib.suppress(OSError, ValueError):
            self._selector.close()

    def forget(self) -> None:
        """In a forked child: close the inherited sockets without touching the directory (the parent's)."""
        for sock in [*self._buffers, self._listener]:
            with contextlib.suppress(OSError):
                sock.close()

    def _run(self) -> None:
        try:
            while not self._stopped:
                batch: list[tuple[socket.socket, PendingRows]] = []
                for key, _ in self._selector.select():
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        batch.extend(self._read(key.fileobj))
                if batch:
                    self._write(batch)
        except Exception:
            log.exception("the decision log writer stopped; the workers write their rows themselves")
        finally:
            self._stopped = True
            with self.busy:
                with contextlib.suppress(Exception):
                    self.database.close()
            # Every waiting worker thread gets an error (its row's fate unknown: a 503), and the next write finds
            # no writer (the worker then writes its rows itself).
            self._close()

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                client, _ = self._listener.accept()
                client.setblocking(False)
                self._buffers[client] = bytearray()
                self._selector.register(client, selectors.EVENT_READ)

    def _drop(self, client: socket.socket) -> None:
        self._buffers.pop(client, None)
        with contextlib.suppress(Exception):
            self._selector.unregister(client)
        with contextlib.suppress(OSError):
            client.close()

    def _read(self, client: socket.socket) -> list[tuple[socket.socket, PendingRows]]:
        buffer = self._buffers[client]
        try:
            while True:
                chunk = client.recv(1 << 16)
                if not chunk:
                    self._drop(client)
                    return []
                buffer += chunk
                if len(chunk) < 1 << 16:
                    break
        except BlockingIOError:
            pass
        except OSError:
            self._drop(client)
            return []
        messages = []
        while len(buffer) >= 4:
            (size,) = _LENGTH.unpack_from(buffer)
            if size > MAX_MESSAGE:
                self._drop(client)
                return []
            if len(buffer) < 4 + size:
                break
            try:
                rows = msgspec.msgpack.decode(bytes(buffer[4:4 + size]), type=list[list])
            except (msgspec.DecodeError, msgspec.ValidationError):
                rows = []
            if not rows:
                self._drop(client)
                return []
            del buffer[:4 + size]
            messages.append((client, PendingRows(rows)))
        return messages

    def _write(self, batch: list[tuple[socket.socket, PendingRows]]) -> None:
        for start in range(0, len(batch), self.MAX_BATCH):
            part = batch[start:start + self.MAX_BATCH]
            with self.busy:
                self._commit(self.database, self.sql, [row for _, row in part])
            for client, row in part:
                self._answer(client, row.error)

    def _answer(self, client: socket.socket, error: BaseException | None) -> None:
        if error is None:
            reply = bytes((OK,))
        else:
            kind = FAULT if isinstance(error, (peewee.OperationalError, peewee.InterfaceError)) else \
                INTEGRITY if isinstance(error, peewee.IntegrityError) else OTHER
            text = f"{type(error).__name__}: {error}".encode(errors="replace")[:4000]
            reply = bytes((kind,)) + _LENGTH.pack(len(text)) + text
        try:
            # A few bytes into a socket whose client waits for them: never short of buffer room.
            sent = client.send(reply)
        except OSError:
            sent = -1
        if sent != len(reply):
            self._drop(client)


class PendingRows:
    """Rows waiting for their commit, all or none (one decision's row, or a batch's), and how that ended (`done`,
    with `error` set if it failed): the writer's batches and a process's own group commit (store.decision_log)
    hold the same."""

    __slots__ = ("done", "error", "rows")

    def __init__(self, rows: list[list[Any]]) -> None:
        self.rows = rows
        self.done = False
        self.error: BaseException | None = None


class Client:
    """A worker's way to the host writer: one connection per thread, opened on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[socket.socket] = []

    def write(self, rows: list[list[Any]]) -> None:
        """Commit rows (each its statement's parameters) through the writer, all or none; raises WriterUnavailable
        when the writer cannot be reached (nothing sent), peewee.OperationalError when the rows' fate is unknown or
        their commit failed for the storage, peewee.IntegrityError for a row the database refused."""
        sock = getattr(self._local, "sock", None)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except OSError as error:
                sock.close()
                raise WriterUnavailable(str(error)) from error
            self._local.sock = sock
            self._opened.append(sock)
        message = msgspec.msgpack.encode([[sendable(p) for p in params] for params in rows])
        try:
            sock.sendall(_LENGTH.pack(len(message)) + message)
            kind = self._exactly(sock, 1)[0]
            if kind == OK:
                return
            (size,) = _LENGTH.unpack(self._exactly(sock, 4))
            text = self._exactly(sock, size).decode(errors="replace")
        except OSError as error:
            self.reset()
            raise peewee.OperationalError(f"the decision log writer did not answer: {error}") from error
        raise (peewee.IntegrityError if kind == INTEGRITY else
               peewee.OperationalError if kind == FAULT else RuntimeError)(text)

    @staticmethod
    def _exactly(sock: socket.socket, size: int) -> bytes:
        parts = bytearray()
        while len(parts) < size:
            chunk = sock.recv(size - len(parts))
            if not chunk:
                raise ConnectionResetError("the decision log writer closed the connection")
            parts += chunk
        return bytes(parts)

    def reset(self) -> None:
        """Forget this thread's connection (the next write connects again)."""
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """Close every thread's connection (tests; a worker's end closes them)."""
        for sock in self._opened:
            sock.close()
        self._opened.clear()


class HostSyncer:
    """Forces the write-ahead log of a SQLite file (`path`) to disk at most `seconds` after a commit, in a thread of
    the process that starts it (gunicorn's master); the processes it forks report their commits with `committed()`:
    a counter in memory shared with them (no system call, no wake-up), which the thread reads every `seconds` and
    follows with one fdatasync when it moved. Raises ValueError for seconds ≤ 0."""

    def __init__(self, path: str, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be more than 0")
        self.path = path
        self.seconds = seconds
        # Anonymous and shared (mmap's default on Unix): a child forked later writes the same 8 bytes.
        self._commits = mmap.mmap(-1, 8)
        # An unlinked file whose descriptor the forked processes share, for their POSIX record lock (`turn`).
        self._turns = tempfile.TemporaryFile(prefix="policy-log-turn-")
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-log-sync", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold this host's turn to commit log rows (one process at a time; a process's committer serializes its own
        threads). Why: two workers committing at once meet at SQLite's write lock, and the loser sleeps in SQLite's
        busy handler (1, 2, 5… ms, however soon the lock is free: strace counted ~0.7 sleeps of ~2.5 ms per
        decision at wrk -c4, 2026-12-07); waiting here on a lock the kernel hands over at once costs two fcntl
        calls. The kernel releases it when its process dies, kill -9 included."""
        descriptor = self._turns.fileno()
        fcntl.lockf(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(descriptor, fcntl.LOCK_UN)

    def committed(self) -> None:
        """Say that this process committed log rows (call after the commit): they reach the disk within
        `seconds`. Increments without a lock: two increments that race still move the counter, which is all the
        thread reads.

        A commit whose units all failed is counted too (decision_log calls this after every commit, whatever its
        units' outcome), deliberately: a storage fault fails every unit, and a commit that reported one may still
        have appended its frames to the write-ahead log (an error raised after they were written), so forcing the
        log then is the safe side. A unit's own error (a duplicate decision_id) leaves nothing to force and costs
        one needless fdatasync (a device flush even with nothing new: ~2.6 ms on this project's ext4 test host), in
        the syncer's thread, off every request's path, at most once an interval and only when no other commit of
        the interval kept rows. Counting only commits that kept rows would need each unit's outcome here and would
        drop the sync after a storage fault."""
        value = _COUNT.unpack_from(self._commits)[0]
        _COUNT.pack_into(self._commits, 0, (value + 1) & 0xFFFFFFFFFFFFFFFF)

    def sync(self) -> None:
        """Force the rows committed so far to disk: fdatasync of the database's write-ahead log (`<file>-wal`),
        which holds every commit not yet checkpointed (a checkpoint forced the others to disk). A log that no
        longer exists (checkpointed and removed) has nothing to force."""
        try:
            descriptor = os.open(self.path + "-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fdatasync(descriptor)
        finally:
            os.close(descriptor)

    def stop(self) -> None:
        """Stop the thread, forcing what was committed to disk first (a clean stop loses nothing)."""
        self._stopped.set()
        self._thread.join(5)
        self._turns.close()

    def _run(self) -> None:
        seen = _COUNT.unpack_from(self._commits)[0]
        while True:
            stopping = self._stopped.wait(self.seconds)
            now = _COUNT.unpack_from(self._commits)[0]
            if now != seen:
                # Read before the sync: every commit counted so far happened before it, so it is covered.
                seen = now
                try:
                    self.sync()
                except OSError:
                    log.exception("the decision log's write-ahead log could not be synced; retrying")
                    seen = None
            if stopping:
                return


_COUNT = struct.Struct("=Q")

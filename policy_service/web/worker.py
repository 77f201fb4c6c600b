"""gunicorn's gthread worker, accepting new connections least-connections first across the host's workers.

Why: every worker waits on the same listening socket, and the first to wake takes what is pending. A gthread
worker's main thread only accepts and hands over (the requests run in its thread pool), so it is back in its
poller at once and often takes every connection of a burst: with 2 workers and 4 keep-alive clients, one worker
held all 4 connections in 14 to 22 of 40 trials (35–55 %; chance alone gives 12.5 %) while the other core idled, which
halved the throughput of those clients for as long as they stayed connected (bench/http_load.py saw whole runs
served by one worker). With few long-lived connections — a BSP's backend with a small keep-alive pool, a proxy's
upstream pool — that is how the service is used.

How: each worker publishes how many connections it holds in a small table shared by the host's workers (shared
memory made by the master before it forks them: `SLOTS` slots, one per live worker). A worker about to accept
while another live worker holds fewer connections steps aside for at most `DEFER` seconds (it stops polling the
listening socket), so the less loaded worker takes the connection; if nobody has taken it by then (that worker
is busy), it accepts after all. A connection therefore waits at most `DEFER` longer, and only when this worker
is the more loaded one. Beyond `SLOTS` workers, the extra ones accept as gthread does.

Slow clients. gthread waited for a new connection's first bytes in a pool thread (at most 5 s, then it parked the
connection in its poller), so threads + 1 clients that connect and send nothing delayed every request by up to 5 s;
here a new connection waits in the poller from the start, and is closed after FIRST_BYTES_WAIT seconds of silence.
Once the first bytes came, gthread read the request with the client socket blocking and no timeout (it calls
setblocking(True) before every request): a client that stopped sending mid-head or mid-body held a thread for good,
and `threads` of them stopped the worker (threads + 1 clients sending 10 of 100 declared body bytes, or one header
byte a second: /healthz had no answer in 60 s). Here each request's head (request line and headers) must arrive
within `header_timeout` seconds of the worker starting to read it (a deadline over all its reads: a client trickling
a byte a second is stopped too), and once the head is read the socket times out after `body_timeout` seconds without
progress (each read of the body, each write of the answer). A late head is answered 408 in the service's JSON error
shape (web/server_errors.py); a stalled body raises in the app's read, which answers the 408
(server_errors.body_cut_short); a client that does not take its answer is dropped. Either way the connection is
closed and the thread is free. What a request pays for it: one settimeout, and a poll before each read or write
after the head (how a socket with a timeout waits); the head, which has usually arrived when a thread takes the
connection, is read without waiting (MSG_DONTWAIT): only a head slow to arrive sets a timeout for each of its reads.
"""

from __future__ import annotations

import ctypes
import errno
import multiprocessing
import os
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from ..config import HOUR as HOUR_SECONDS

SLOTS = 64
# Long enough for an idle sibling to wake and take a pending connection (its main thread may wait for its
# GIL: gunicorn's poller shares the process with request threads), short beside a request's own latency.
DEFER = 0.02
# Seconds a new connection may stay silent before it is closed: what gthread waited for a first byte in a thread.
FIRST_BYTES_WAIT = 5.0

# Made at import, in the master (gunicorn imports the worker class before forking any worker): one pid and one
# connection count per slot, 0 for a free slot. Written without locks: each slot has one writer (its worker; the
# master only when it hands a free slot out), and a stale count costs at most one deferral of DEFER.
_pids = multiprocessing.RawArray(ctypes.c_long, SLOTS)
_connections = multiprocessing.RawArray(ctypes.c_long, SLOTS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# In the master: slot -> the worker object it was handed to (gunicorn sets its pid, an int, after the fork).
_handed: dict[int, Any] = {}


def _free_slot(worker: Any) -> int | None:
    """A slot for `worker` (in the master, as the worker is made), one whose holder has exited, or None when all
    SLOTS are held."""
    for slot in range(SLOTS):
        holder = _handed.get(slot)
        if holder is None or (isinstance(holder.pid, int) and not _alive(holder.pid)):
            _handed[slot] = worker
            _pids[slot] = 0  # the forked worker writes its pid here
            _connections[slot] = 0
            return slot
    return None


class RequestHeadTimeout(Exception):
    """A request's head did not arrive within the header timeout (answered 408 by BalancedThreadWorker)."""


class _ClientReader(SocketUnreader):
    """gunicorn's reader of one connection's socket, with a deadline for the head of each request: while
    `head_deadline` (time.monotonic()) is set, every read waits at most until then and raises
    RequestHeadTimeout after it. Without it (the body), the socket's own timeout bounds each read."""

    head_deadline: float | None = None
    # The request whose body is read (gunicorn's message): a read that times out makes its answer close the
    # connection ("Connection: close"), as the connection is closed after it.
    request: Any = None
    # Set once a read timed out: the connection is closed without lingering for the client (worker.handle).
    timed_out = False

    def chunk(self, size_hint: int | None = None) -> bytes:
        deadline = self.head_deadline
        if deadline is None:
            try:
                return super().chunk(size_hint)
            except TimeoutError:
                self.timed_out = True
                if self.request is not None:
                    self.request.force_close()
                raise
        if self.sock.gettimeout() is None and type(self.sock) is socket.socket:
            # The head has usually arrived (gthread hands a connection over once it is readable): take what is
            # there without waiting, and without the poll a socket timeout adds to every read.
            try:
                return self.sock.recv(self.mxchunk, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            raise RequestHeadTimeout()
        self.sock.settimeout(remaining)
        try:
            return super().chunk(size_hint)
        except TimeoutError:
            self.timed_out = True
            raise RequestHeadTimeout() from None


class _Connection(TConn):
    """gthread's connection, reading through _ClientReader and timing each request's head from its start."""

    header_timeout = 5.0
    # Set when the worker thread already half-closed the connection and drained it (see BalancedThreadWorker.handle).
    lingered = False

    def init(self) -> None:
        # gthread calls init() before reading every request (it makes the parser the first time only), right after
        # setting the socket blocking: the head's deadline starts here.
        super().init()
        if self.is_http2:
            return
        reader = self.parser.unreader
        if type(reader) is SocketUnreader:
            # Once per connection; bytes already read ahead (an HTTP/2 preface check) stay buffered.
            fresh = _ClientReader(self.sock)
            fresh.buf = reader.buf
            self.parser.unreader = reader = fresh
        reader.head_deadline = time.monotonic() + self.header_timeout

    def close(self, graceful: bool = False) -> None:
        if graceful and self.lingered:
            util.close(self.sock)
            return
        super().close(graceful)


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's ThreadWorker that lets a less loaded sibling take a new connection first, and times out clients
    that stop sending a request or stop taking its answer (module docstring). gunicorn.conf.py: worker_class, and
    `client_timeouts` from POLICY_HEADER_TIMEOUT and POLICY_BODY_TIMEOUT."""

    # Seconds: a request's head must arrive within header_timeout of the worker starting to read it; after it, the
    # socket times out after body_timeout seconds without progress.
    header_timeout = 5.0
    body_timeout = 10.0

    @classmethod
    def client_timeouts(cls, *, header: float, body: float) -> None:
        """Set the client timeouts (seconds, > 0 and at most an hour, as config.Settings bounds them) of every worker
        forked after (gunicorn.conf.py, in the master); raises ValueError for anything else (inf, nan)."""
        if not (0 < header <= HOUR_SECONDS and 0 < body <= HOUR_SECONDS):  # inf: socket.settimeout's OverflowError
            raise ValueError(f"client timeouts must be seconds above 0 and at most {HOUR_SECONDS}, "
                             f"got header={header!r}, body={body!r}")
        cls.header_timeout, cls.body_timeout = float(header), float(body)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot = _free_slot(self)  # in the master, before the fork
        self._defer_until = 0.0
        self._accept_now = False

    def init_process(self) -> None:
        if self._slot is not None:
            _pids[self._slot] = os.getpid()
            _connections[self._slot] = 0
        try:
            super().init_process()
        finally:
            if self._slot is not None and _pids[self._slot] == os.getpid():
                _pids[self._slot] = 0

    def _publish(self) -> None:
        if self._slot is not None:
            _connections[self._slot] = self.nr_conns

    def _others_hold_fewer(self) -> bool:
        mine, me = self.nr_conns, self._slot
        return any(_pids[slot] > 0 and slot != me and _connections[slot] < mine for slot in range(SLOTS))

    def accept(self, listener: Any) -> None:
        if self._slot is not None and not self._accept_now and self._others_hold_fewer():
            # Step aside: stop polling the listener until the deferral ends (set_accept_enabled keeps it off).
            self._defer_until = time.monotonic() + DEFER
            super().set_accept_enabled(False)
            return
        self._accept_now = False
        # gthread's accept, making a _Connection that waits for its first bytes in the poller: gthread waited up to
        # 5 s in a pool thread, so threads + 1 clients that connect and send nothing delayed every other request by
        # up to 5 s, again each time they reconnected. A connection silent that long is closed (as gthread closed
        # one it had parked after its wait, `keepalive` seconds later).
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
        else:
            self.nr_conns += 1
            connection = _Connection(self.cfg, client, address, listener.getsockname())  # made non-blocking
            connection.header_timeout = self.header_timeout
            connection.timeout = time.monotonic() + max(self.cfg.keepalive, FIRST_BYTES_WAIT)
            self.pending_conns.append(connection)
            self.poller.register(client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, connection))
        self._publish()

    def handle(self, conn: Any) -> Any:
        """gthread's handle (read one request and answer it, in a pool thread; True: keep the connection), then,
        when the connection is to be closed, its graceful close's linger here: gthread lingers in the poller's
        thread (up to 2 s until the client closes too), so every timed-out client that stays connected would
        stop the worker's accepting and dispatching for 2 s (17 of them: 34 s)."""
        keep = super().handle(conn)
        if keep is False and isinstance(conn, _Connection) and not conn.is_http2:
            conn.lingered = True
            # A client that let a read or write time out is not waited for: what it sent is dropped, and closing
            # now frees the thread.
            reader = getattr(conn.parser, "unreader", None)
            _linger(conn.sock, 0.0 if getattr(reader, "timed_out", False) else 2.0)
        return keep

    def handle_request(self, req: Any, conn: Any) -> bool:
        """gthread's handle_request once the head is read: the body's and the answer's reads and writes now time
        out after body_timeout seconds without progress. An answer the client does not take closes the
        connection (logged, no traceback)."""
        reader = conn.parser.unreader
        if type(reader) is _ClientReader:
            reader.head_deadline, reader.request = None, req
        conn.sock.settimeout(self.body_timeout)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            if type(reader) is _ClientReader:
                reader.timed_out = True
            self.log.warning("client %s took nothing of its answer for %g s: connection closed",
                             _peer(conn.client), self.body_timeout)
            return False

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's answer to a request it could not read, and the 408 (JSON error shape) for a head that did not
        arrive within header_timeout."""
        if not isinstance(exc, RequestHeadTimeout):
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("request head from %s not received within %g s: 408", _peer(addr), self.header_timeout)
        try:
            util.write_error(client, 408, "Request Timeout",
                             f"the request's head (request line and headers) did not arrive within "
                             f"POLICY_HEADER_TIMEOUT ({self.header_timeout:g} s)")
        except OSError:
            pass

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and self._defer_until:
            if time.monotonic() < self._defer_until:
                return
            # The deferral is over: a connection still pending now was left for us, take it whatever the counts.
            self._defer_until = 0.0
            self._accept_now = True
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        self._publish()
        if self._defer_until:
            timeout = max(0.0, min(timeout, self._defer_until - time.monotonic()))
        pending = self._accept_now
        super().wait_for_and_dispatch_events(timeout)
        # The callbacks just run may have closed connections (a client's close, a kept-alive one expiring): say so
        # now, not after the next poll, or a sibling would step aside for counts that are no longer true.
        self._publish()
        if pending:
            # One poll with the listener back on has passed (accept() used the flag if a connection was left):
            # balance again from now on.
            self._accept_now = False


def _peer(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else str(address or "?")


def _linger(sock: socket.socket, seconds: float, most: int = 65536) -> None:
    """gunicorn.util.close_graceful without the close: send FIN, then read (and drop) what the client still sends
    until it closes, `seconds` pass or `most` bytes came, so its last answer is not cut by a reset (0 seconds: only
    what has arrived already)."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return
    deadline = time.monotonic() + seconds
    drained = 0
    while drained < most:
        remaining = deadline - time.monotonic()
        try:
            if remaining > 0:
                sock.settimeout(remaining)
            else:
                sock.setblocking(False)
            data = sock.recv(4096)
        except OSError:
            return
        if not data:
            return
        drained += len(data)

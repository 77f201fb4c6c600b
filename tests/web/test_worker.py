"""web.worker's client timeouts, against a real gunicorn (gunicorn.conf.py, one worker of THREADS threads, 1.5 s
timeouts): a client that stops sending its request's head or body, or trickles its head a byte at a time, gets
the 408 in the JSON error shape and loses its connection, so THREADS + 1 of them no longer stall the worker
(gthread read every request with no timeout: they held every thread for good, /healthz had no answer in 60 s), and
clients that connect and send nothing wait in the poller, not in a thread.
A body that keeps arriving, however slowly, and a keep-alive connection idle between requests are not cut; an
answer the client does not take is dropped after the body timeout (in-process: loopback buffers took a whole page)."""

import json
import os
import socket
import threading
import time

import pytest
import requests
from gunicorn.config import Config

from policy_service.web import worker

from ..conftest import start_gunicorn, stop_gunicorn

THREADS = 2
TIMEOUT = 1.5
DECISION = json.dumps({"send": {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "text"}}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn with one worker of THREADS threads and POLICY_HEADER_TIMEOUT = POLICY_BODY_TIMEOUT = 1.5 s."""
    running = start_gunicorn(tmp_path_factory.mktemp("worker"), workers=1, env={
        "POLICY_THREADS": str(THREADS), "POLICY_HEADER_TIMEOUT": str(TIMEOUT), "POLICY_BODY_TIMEOUT": str(TIMEOUT)})
    yield running
    stop_gunicorn(running)


def _connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=20)


def _answer(connection: socket.socket) -> tuple[bytes, dict]:
    """Everything the server sends until it closes the connection: the head, and the body as JSON."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, json.loads(body)


def _healthz_seconds(server) -> float:
    """How long GET /healthz takes on a new connection (at most 10 s: more is a stall)."""
    started = time.monotonic()
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    return time.monotonic() - started


def _assert_408(head: bytes, error: dict, setting: str) -> None:
    assert head.startswith(b"HTTP/1.1 408 ") and b"Content-Type: application/json" in head, head
    assert b"Connection: close" in head, head
    assert set(error) == {"code", "status", "message", "errors"} and error["code"] == 408, error
    assert setting in error["message"] and error["errors"]["_request"], error


def test_threads_plus_one_stalled_bodies_no_longer_stall_the_worker(server):
    """THREADS + 1 clients declare a 100-byte body, send 10 bytes and wait: /healthz is answered once the timeout
    freed the threads (within 1.5 s plus a margin, not never), and each stalled client gets the 408 naming
    POLICY_BODY_TIMEOUT, then the closed connection."""
    stalled = []
    for _ in range(THREADS + 1):
        connection = _connect(server)
        connection.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100\r\n\r\n" + DECISION[:10])
        stalled.append(connection)
    try:
        time.sleep(0.3)  # every stalled request is in a thread before the probe comes
        assert _healthz_seconds(server) < TIMEOUT + 2.5
        for connection in stalled:
            _assert_408(*_answer(connection), "POLICY_BODY_TIMEOUT")
    finally:
        for connection in stalled:
            connection.close()


def test_threads_plus_one_trickled_heads_no_longer_stall_the_worker(server):
    """THREADS + 1 clients send their request's head a byte every 0.2 s (each read arrives well within any
    per-read timeout) and one more sends half a head and waits: the head's deadline stops each of them with the 408
    naming POLICY_HEADER_TIMEOUT, and /healthz is answered within the timeout plus a margin."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    tricklers = [_connect(server) for _ in range(THREADS + 1)]
    silent = _connect(server)
    silent.sendall(head[:20])
    stop = threading.Event()

    def trickle() -> None:
        for byte in range(len(head)):
            for connection in tricklers:
                try:
                    connection.send(head[byte:byte + 1])
                except OSError:
                    pass  # closed by the server: the 408 came
            if stop.wait(0.2):
                return

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        time.sleep(0.3)
        assert _healthz_seconds(server) < TIMEOUT + 2.5
        for connection in [*tricklers, silent]:
            _assert_408(*_answer(connection), "POLICY_HEADER_TIMEOUT")
    finally:
        stop.set()
        sender.join()
        for connection in [*tricklers, silent]:
            connection.close()


def test_silent_new_connections_wait_in_the_poller_not_in_threads(server):
    """THREADS + 1 clients connect and send nothing: /healthz answers at once (gthread waited up to 5 s for each
    one's first bytes in a thread, so they delayed every request by up to 5 s, again at each reconnection), and
    the server closes them after 5 s of silence."""
    silent = [_connect(server) for _ in range(THREADS + 1)]
    try:
        time.sleep(0.3)
        assert _healthz_seconds(server) < 1.0
        opened = time.monotonic()
        for connection in silent:
            connection.settimeout(10)
            assert connection.recv(1) == b""
        assert 3.5 < time.monotonic() - opened + 0.3 < 8
    finally:
        for connection in silent:
            connection.close()


def test_a_body_that_keeps_arriving_and_an_idle_keep_alive_connection_are_not_cut(server):
    """The body timeout bounds a pause, not the whole body: a decision sent in five pieces 0.5 s apart (2 s in
    all, over the timeout) is decided; and the head's deadline starts with the head, so a keep-alive connection
    idle 2 s between two requests (within POLICY_KEEPALIVE, 5 s) answers both."""
    connection = _connect(server)
    try:
        connection.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(DECISION))
        step = len(DECISION) // 5 + 1
        for start in range(0, len(DECISION), step):
            time.sleep(0.5)
            connection.sendall(DECISION[start:start + step])
        first = _response(connection)
        assert first.startswith(b"HTTP/1.1 200 ") and b"Connection: close" not in first, first[:200]
        time.sleep(2)
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _answer(connection)[0].startswith(b"HTTP/1.1 200 ")
    finally:
        connection.close()


def _response(connection: socket.socket) -> bytes:
    """One whole response (head and its Content-Length of body) from a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


class _Log:
    """gunicorn's logger as far as a worker's request handling uses it, keeping the warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str, *args) -> None:
        self.warnings.append(message % args)

    def access(self, *args) -> None:
        pass

    debug = info = error = exception = access


def test_an_answer_the_client_does_not_take_is_dropped_and_frees_the_thread():
    """In-process, gthread's handle on one end of a socket pair: the client sends its request and then reads none
    of an 8 MiB answer. The write times out after body_timeout (0.5 s here), the warning names the client, the
    connection is closed, and the thread is back within a second (gthread's sendall would have waited for good)."""
    log = _Log()
    slow_reader = worker.BalancedThreadWorker(0, os.getppid(), [], None, 30, Config(), log)
    slow_reader.body_timeout = 0.5
    size = 8 * 1024 * 1024

    def big(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
        return [b"x" * size]

    slow_reader.wsgi = big
    served, client = socket.socketpair()
    try:
        client.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        connection = worker._Connection(slow_reader.cfg, served, ("10.0.0.7", 50000), ("127.0.0.1", 8000))
        kept = []
        handling = threading.Thread(target=lambda: kept.append(slow_reader.handle(connection)), daemon=True)
        handling.start()
        handling.join(1.5)  # (were the write not timed out, closing the client below ends it: no hung test)
        assert kept == [False], "the thread is still writing the answer"
        assert log.warnings == ["client 10.0.0.7 took nothing of its answer for 0.5 s: connection closed"]
        connection.close(graceful=True)
        client.settimeout(5)
        received = b""
        while chunk := client.recv(1 << 20):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK") and len(received) < size  # cut, then closed
    finally:
        served.close()
        client.close()


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 0, -1, 3601])
def test_client_timeouts_refuse_what_settimeout_cannot_take(seconds):
    """client_timeouts took inf (only `> 0` was checked), and then every request failed in socket.settimeout
    (OverflowError): a timeout that is not seconds above 0 and at most an hour (config.Settings' bound) is a
    ValueError naming both, and the timeouts already set stay."""
    before = (worker.BalancedThreadWorker.header_timeout, worker.BalancedThreadWorker.body_timeout)
    for given in ({"header": seconds, "body": 10.0}, {"header": 5.0, "body": seconds}):
        with pytest.raises(ValueError, match="client timeouts must be seconds above 0 and at most 3600"):
            worker.BalancedThreadWorker.client_timeouts(**given)
    assert (worker.BalancedThreadWorker.header_timeout, worker.BalancedThreadWorker.body_timeout) == before

"""How long GET /healthz waits while slow clients hold one gunicorn worker's threads (web/worker.py's client timeouts).

Starts gunicorn as http_load.py does (gunicorn.conf.py, the environment's POLICY_* settings: POLICY_THREADS,
POLICY_HEADER_TIMEOUT, POLICY_BODY_TIMEOUT), with one worker, then opens threads + 1 clients (--clients) that
  head: send a request's head one byte a second (each read arrives, the head never ends);
  body: send a head declaring a 100-byte body, then 10 bytes, then nothing;
  silent: connect and send nothing;
and asks /healthz on a new connection (--probes times, a few seconds apart; at most 60 s each). With --sustained,
each slow client reconnects and starts again as soon as the server drops it (an attacker that keeps trying).
Prints each probe's seconds and what the slow clients were answered. Light: no load beyond the clients.
Usage: python bench/slow_clients.py [--mode head|body|silent] [--clients N] [--probes N] [--sustained]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from http_load import free_port, start_gunicorn, stop

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000 + b"\r\n\r\n"
BODY = (b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"send": {')


def slow_client(port: int, mode: str, sustained: bool, answers: Counter, stop_event: threading.Event) -> None:
    """One slow client (see the module docstring), counting the status lines it is answered."""
    while not stop_event.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
            received = b""
            try:
                if mode == "body":
                    connection.sendall(BODY)
                    received = connection.recv(65536)
                elif mode == "silent":
                    received = connection.recv(65536)
                else:
                    connection.settimeout(1.0)
                    for byte in range(len(HEAD)):
                        if stop_event.is_set():
                            return
                        connection.send(HEAD[byte:byte + 1])
                        try:
                            received = connection.recv(65536)
                        except TimeoutError:
                            continue
                        break
            except OSError:
                pass
            answers[received.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"] += 1
        if not sustained:
            return


def healthz_seconds(port: int) -> str:
    """GET /healthz on a new connection: its seconds, or what stopped it after 60 s."""
    started = time.monotonic()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=60).read()
    except OSError as error:
        return f"no answer ({type(error).__name__}) after {time.monotonic() - started:.1f} s"
    return f"{time.monotonic() - started:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("head", "body", "silent"), default="head")
    parser.add_argument("--clients", type=int, default=int(os.environ.get("POLICY_THREADS") or 16) + 1)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--sustained", action="store_true")
    args = parser.parse_args()
    port = free_port()
    server = start_gunicorn(port, 1, Path(tempfile.mkdtemp(prefix="slow-clients-")) / "log.sqlite3")
    answers: Counter = Counter()
    stop_event = threading.Event()
    clients = [threading.Thread(target=slow_client, args=(port, args.mode, args.sustained, answers, stop_event),
                                daemon=True) for _ in range(args.clients)]
    try:
        for client in clients:
            client.start()
        time.sleep(1.0)
        print(f"{args.clients} slow clients ({args.mode}{', sustained' if args.sustained else ''}) against one "
              f"worker of {os.environ.get('POLICY_THREADS') or 16} threads:")
        for probe in range(args.probes):
            print(f"  /healthz #{probe + 1}: {healthz_seconds(port)}")
            time.sleep(2.0)
    finally:
        stop_event.set()
        stop(server)
        for client in clients:
            client.join(timeout=5)
    print("  slow clients were answered:", dict(answers))


if __name__ == "__main__":
    main()

"""A signed 28,000-message webhook payload (~3.2 MB) against gunicorn started as the Procfile starts it.

Measures, per round (a fresh payload each round, new wamids): the time until the POST is answered 200 (goal
< 2 s), the time until all its messages are stored (goal < 1 minute; polled through GET
/v1/admin/webhooks/{id} and counted in the database), and that a replay of the same body adds no row
(`duplicate: true`, row counts unchanged). gunicorn runs `gunicorn -c gunicorn.conf.py "policy_service:create_app()"`
(the Procfile's command) on 127.0.0.1 with a fresh SQLite file (or --database-url), the default workers and threads.
Usage: python bench/webhooks.py [--messages N] [--rounds N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, banner, median, table

SECRET = "bench-app-secret"
T0 = 1754989200
PHONE_NUMBER_ID = "106540352242922"


def payload(messages: int, prefix: str) -> bytes:
    """One `messages` change with `messages` inbound texts from 1,000 users, as Meta wraps them."""
    users = [f"55119{index:08d}" for index in range(1000)]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "User"}, "wa_id": user} for user in users],
        "messages": [{"from": users[index % len(users)], "id": f"wamid.{prefix}.{index:06d}",
                      "timestamp": str(T0 + index), "type": "text", "text": {"body": "Hi"}}
                     for index in range(messages)],
    }
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(body).encode()


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 120) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read()[:300].decode(errors="replace")}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(directory: Path, database_url: str) -> tuple[subprocess.Popen, str]:
    """gunicorn as the Procfile starts it, on a free loopback port; waits until /readyz answers."""
    port = free_port()
    scripts = Path(sys.executable).parent  # the virtualenv's gunicorn and policy-service
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "POLICY_DATABASE_URL": database_url,
           "POLICY_WHATSAPP_APP_SECRET": SECRET, "PROMETHEUS_MULTIPROC_DIR": str(directory / "prometheus"),
           "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([str(scripts / "policy-service"), "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    procfile = (ROOT / "Procfile").read_text().split(":", 1)[1].strip()
    log = (directory / "gunicorn.log").open("wb")
    process = subprocess.Popen(procfile, shell=True, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if request(url + "/readyz", timeout=2)[0] == 200:
                return process, url
        except OSError:
            pass
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit(f"gunicorn did not start:\n{(directory / 'gunicorn.log').read_text()[-2000:]}")


def rows(database_url: str) -> tuple[int, int]:
    """(stored messages, stored payloads) as the database counts them."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            return (connection.execute("SELECT COUNT(*) FROM stored_message").fetchone()[0],
                    connection.execute("SELECT COUNT(*) FROM raw_webhook").fetchone()[0])
    from playhouse.db_url import connect

    database = connect(database_url)
    try:
        return (database.execute_sql("SELECT COUNT(*) FROM stored_message").fetchone()[0],
                database.execute_sql("SELECT COUNT(*) FROM raw_webhook").fetchone()[0])
    finally:
        database.close()


def one_round(url: str, database_url: str, messages: int, prefix: str) -> dict[str, object]:
    body = payload(messages, prefix)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature(body)}
    before, _ = rows(database_url)
    started = time.perf_counter()
    status, answer = request(url + "/v1/webhooks/whatsapp", body, headers)
    answered = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"POST answered {status}: {answer}")
    while True:
        _, receipt = request(f"{url}/v1/admin/webhooks/{answer['id']}")
        if receipt.get("status") != "pending":
            break
        if time.perf_counter() - started > 600:
            raise SystemExit(f"not processed after 10 minutes: {receipt}")
        time.sleep(0.1)
    stored_after = time.perf_counter() - started
    after, payloads = rows(database_url)
    replay_status, replay = request(url + "/v1/webhooks/whatsapp", body, headers)
    again, payloads_again = rows(database_url)
    return {"bytes": len(body), "answered": answered, "stored": stored_after, "status": receipt["status"],
            "new": receipt["new"], "rows added": after - before,
            "replay": f"{replay_status}, duplicate={replay.get('duplicate')}, rows +{again - after}, "
                      f"payloads +{payloads_again - payloads}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=28_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        database_url = args.database_url or f"sqlite:///{directory / 'bench.sqlite3'}"
        process, url = start(directory, database_url)
        try:
            results = [one_round(url, database_url, args.messages, f"r{index}") for index in range(args.rounds)]
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(banner() + f", commit {commit}\n")
    print(table(["round", "body (MB)", "answered 200 (s)", "all stored (s)", "status", "new", "rows added", "replay"],
                [[index + 1, r["bytes"] / 1e6, r["answered"], r["stored"], r["status"], r["new"], r["rows added"],
                  r["replay"]] for index, r in enumerate(results)]))
    print(f"\nmedian: answered in {median([r['answered'] for r in results]):.3f} s (goal < 2 s), all "
          f"{args.messages:,} stored in {median([r['stored'] for r in results]):.1f} s (goal < 60 s)")


if __name__ == "__main__":
    main()

"""Resident memory of gunicorn's processes over 200 rules reloads: flat, or ~1 MiB more per reload?

Starts gunicorn with the project's gunicorn.conf.py (the Procfile's command: preloaded app, 2 workers,
a fresh SQLite decision log), then POSTs /v1/admin/reload-rules --count times, each followed by a few
decisions. Every --every reloads it waits until every worker serves the latest generation (each checks
every POLICY_RULES_CHECK_SECONDS) and samples the RSS of the master and of each live worker from /proc.
durable_rules keeps every ruleset a process compiles, so a worker that compiled one per reload grew
~1 MiB per reload (issue 22: 51 -> 254 MiB over 200); here reloads recycle workers instead.
Usage: python bench/reloads.py [--count 200] [--every 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, banner, table

from policy_service.contract.schemas import DECISION_REQUEST_EXAMPLE

EXAMPLE = DECISION_REQUEST_EXAMPLE


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(url: str, body: dict | None = None) -> dict:
    """GET (or POST JSON) and return the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def rss_mib(pid: int) -> float:
    """A process's resident set size in MiB (Linux), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except FileNotFoundError:
        return 0.0


def workers_of(master: int) -> list[int]:
    """The master's live child processes (its workers)."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except FileNotFoundError:
        return []
    return sorted(int(pid) for pid in children)


def settle(url: str, generation: int, workers: int, deadline_s: float = 60) -> float:
    """Seconds until /readyz, asked repeatedly (each answer from whichever worker takes it), has shown every
    worker pid serving `generation` — the fleet followed."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        seen = {}
        for _ in range(workers * 6):
            ready = call(f"{url}/readyz")
            seen[ready["worker_pid"]] = ready["rules_generation"]
        if len(seen) >= workers and all(g == generation for g in seen.values()):
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit(f"workers did not all reach generation {generation} within {deadline_s:.0f} s: {seen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "POLICY_WORKERS": str(args.workers),
               "POLICY_DATABASE_URL": f"sqlite:///{scratch}/log.sqlite3", "POLICY_DATABASE_AUTO_UPGRADE": "true",
               "PROMETHEUS_MULTIPROC_DIR": f"{scratch}/prometheus"}
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                                   "policy_service:create_app()"], cwd=ROOT, env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=open(f"{scratch}/gunicorn.log", "wb"))
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    call(f"{url}/readyz")
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(Path(f"{scratch}/gunicorn.log").read_text()[-3000:]) from None
                    time.sleep(0.2)
            for _ in range(20):
                call(f"{url}/v1/decisions", EXAMPLE)
            rows = [sample(server.pid, 0, None)]
            started = time.monotonic()
            settles = []
            for done in range(1, args.count + 1):
                generation = call(f"{url}/v1/admin/reload-rules", {})["generation"]
                for _ in range(3):
                    assert call(f"{url}/v1/decisions", EXAMPLE)["decision"] == "allow"
                if done % args.every == 0:
                    settles.append(settle(url, generation, args.workers))
                    rows.append(sample(server.pid, done, settles[-1]))
            elapsed = time.monotonic() - started
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(banner())
    print(f"gunicorn.conf.py, {args.workers} workers, {args.count} reloads (each + 3 decisions) in {elapsed:,.0f} s; "
          f"RSS every {args.every} reloads once every worker serves the latest generation\n")
    print(table(["reloads", "master MiB", "workers MiB (each)", "largest worker MiB", "fleet followed in s"],
                [(r[0], r[1], r[2], r[3], r[4]) for r in rows]))
    first, last = rows[0], rows[-1]
    print(f"\nlargest worker: {first[3]:.1f} MiB before the first reload, {last[3]:.1f} MiB after {last[0]} "
          f"({last[3] - first[3]:+.1f} MiB); master {last[1] - first[1]:+.1f} MiB")


def sample(master: int, reloads: int, settled: float | None) -> tuple:
    workers = [rss_mib(pid) for pid in workers_of(master)]
    return (reloads, rss_mib(master), " / ".join(f"{mib:.1f}" for mib in workers), max(workers, default=0.0),
            "-" if settled is None else f"{settled:.1f}")


if __name__ == "__main__":
    main()

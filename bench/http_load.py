"""HTTP throughput and latency under gunicorn with wrk: decisions versus a trivial JSON endpoint.

Starts gunicorn with the service's own settings (gunicorn.conf.py: gthread workers, JSON access and decision
logs; one worker per core, 127.0.0.1 only, a fresh SQLite decision log) on bench/wsgi.py, its log lines sent
to a file (gunicorn.log in the scratch directory; its tail is printed if gunicorn fails to start), then runs
wrk against three routes in interleaved rounds: POST /bench/trivial, POST /v1/decisions and
POST /bench/decisions-unlogged (the same minus the log write), each with the fixture requests in turn as
bodies. Needs wrk (apt-get install -y wrk).
Usage: python bench/http_load.py [--quick] [--duration S] [--connections N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, banner, fixture_requests, median, table

ROUTES = {"trivial JSON (ceiling)": "/bench/trivial", "POST /v1/decisions": "/v1/decisions",
          "POST /v1/decisions, no decision log": "/bench/decisions-unlogged"}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def lua_script(bodies: list[str]) -> str:
    """A wrk script that POSTs the bodies in turn as JSON."""
    quoted = ",\n".join("[==[" + body + "]==]" for body in bodies)
    return f"""
local bodies = {{
{quoted}
}}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int, workers: int, database: Path) -> subprocess.Popen:
    """gunicorn on bench/wsgi.py with the service's gunicorn.conf.py, waiting until it answers; its output
    (JSON access, decision and server log lines) goes to gunicorn.log beside `database`, not to the terminal."""
    env = {**os.environ, "POLICY_DATABASE_URL": f"sqlite:///{database}"}
    log = Path(database.parent, "gunicorn.log")
    with log.open("ab") as output:
        server = subprocess.Popen(
            [str(Path(ROOT, ".venv/bin/gunicorn")), "-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
             "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "bench.wsgi:app"],
            env=env, start_new_session=True, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/bench/trivial", data=b"{}",
                                                          headers={"Content-Type": "application/json"}), timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    if server.poll() is None:
        stop(server)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise SystemExit(f"gunicorn did not start within 30 s; the end of its log ({log}):\n{tail}")


def stop(server: subprocess.Popen) -> None:
    """Stop gunicorn and its workers."""
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def wrk(url: str, script: Path, duration: int, connections: int) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 latency in ms, non-2xx/socket errors and the requests made."""
    output = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                            capture_output=True, text=True, check=True).stdout
    latency = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)}
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout):? (\d+)", output))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), "p50": latency["50"],
            "p99": latency["99"], "errors": errors,
            "requests": int(re.search(r"(\d+) requests in", output).group(1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per run, one round")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    duration, rounds = (3, 1) if args.quick else (args.duration, args.rounds)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    bodies = [json.dumps(raw) for _, raw, _ in fixture_requests()]
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch, "post.lua")
        script.write_text(lua_script(bodies))
        port = free_port()
        server = start_gunicorn(port, args.workers, Path(scratch, "log.sqlite3"))
        try:
            for path in ROUTES.values():  # warm every worker's imports and caches
                wrk(f"http://127.0.0.1:{port}{path}", script, 1, args.connections)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in ROUTES}
            for _ in range(rounds):
                for name, path in ROUTES.items():
                    runs[name].append(wrk(f"http://127.0.0.1:{port}{path}", script, duration, args.connections))
        finally:
            stop(server)
    ceiling = median([r["rps"] for r in runs["trivial JSON (ceiling)"]])
    rows = []
    for name, results in runs.items():
        rps = median([r["rps"] for r in results])
        rows.append((name, rps, median([r["p50"] for r in results]), median([r["p99"] for r in results]),
                     f"{rps / ceiling:.0%}", int(sum(r["errors"] for r in results))))
    logged, unlogged = (median([r["rps"] for r in runs[n]]) for n in list(ROUTES)[1:])
    print(banner())
    print(f"gunicorn {args.workers} workers (gunicorn.conf.py), wrk -t1 -c{args.connections} -d{duration}s, "
          f"{len(bodies)} fixture bodies in turn, median of {rounds} interleaved rounds; goal: decisions at 40% of "
          "the ceiling or more (60% the moonshot)\n")
    print(table(["route", "requests/s", "p50 ms", "p99 ms", "of ceiling", "errors"], rows))
    print(f"\ndecision log (SQLite insert per decision): {1 / logged - 1 / unlogged:.2e} s per request, "
          f"{1 - logged / unlogged:.0%} of a logged decision's time")


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


if __name__ == "__main__":
    main()

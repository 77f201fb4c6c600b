"""The decision log's SQLite settings: what one logged decision costs under each journal mode and synchronous
level, and whether every decision a client has seen survives kill -9 of the writing process.

Cost: store.decision_log.record of the fixture decisions (masking on) on a fresh file per setting, process CPU
and wall time per decision, median of interleaved rounds.
Crash: a child process logs decisions and prints each decision_id after `record` returns (what a client would
see); the parent kills it with SIGKILL after a while, opens the file, and counts printed ids that are missing.
Power loss cannot be simulated here; what each setting promises then is SQLite's own statement
(https://www.sqlite.org/pragma.html#pragma_synchronous): transactions survive an application crash under every
setting; in WAL mode with synchronous=NORMAL a committed transaction may roll back after a power loss or an
operating-system crash; FULL syncs the WAL at every commit and keeps it. The shipped setting (DECISION_LOG_SYNC_SECONDS
0.1) commits with NORMAL and the master's syncer forces the WAL to disk within 0.1 s of a commit: a power loss may
roll back the decisions of that last 0.1 s.
Usage: python bench/durability.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import banner, fixture_requests, median, policy, table

from policy_service.core.records import replace  # a Decision is a msgspec Struct: dataclasses.replace cannot copy it

# name: (journal mode, synchronous, the host's log keeper: "syncer" (the default under gunicorn: each process commits
# its log rows with synchronous=NORMAL and the master's HostSyncer forces the WAL to disk within 0.1 s), "writer"
# (DECISION_LOG_SYNC_SECONDS 0: the master's HostWriter commits every worker's rows, each commit forced to disk) or
# None (a process committing its own rows with the pragmas given). The syncer and the writer run here in a thread of
# the measuring process, the writer reached through its socket as a worker reaches it (store/log_writer.py).
SHIPPED = "syncer: WAL + NORMAL, forced to disk within 0.1 s (shipped)"
SETTINGS = {SHIPPED: ("wal", "full", "syncer"), "host writer: WAL + FULL (sync 0)": ("wal", "full", "writer"),
            "WAL + FULL": ("wal", "full", None), "WAL + NORMAL": ("wal", "normal", None),
            "DELETE + FULL": ("delete", "full", None), "DELETE + NORMAL": ("delete", "normal", None),
            "WAL + OFF": ("wal", "off", None)}


def _keeper(kind: str | None):
    """Start the host's syncer or writer for the app's database (this process's rows then take its path); returns
    a function that stops it, or None for a process committing its own rows."""
    from policy_service.store import database, decision_log, log_writer

    if kind is None:
        return None
    if kind == "syncer":
        assert decision_log.start_host_syncer(0.1)
        return decision_log.stop_host_syncer
    writer = log_writer.HostWriter(database.database_proxy.obj, decision_log._statement(database.database_proxy.obj)[0],
                                   decision_log.commit_rows)
    client = log_writer.Client(writer.path)
    decision_log._HOST_CLIENT[0] = (writer.database, client)

    def stop() -> None:
        decision_log._HOST_CLIENT[0] = None
        client.close()
        writer.stop()
    return stop


def _app(path: Path, journal: str, synchronous: str):
    from policy_service import create_app
    from policy_service.store import database

    # The pragmas the app opens SQLite with, for this run only.
    database.SQLITE_PRAGMAS.update(journal_mode=journal, synchronous=synchronous)
    return create_app({"DATABASE_URL": f"sqlite:///{path}", "DATABASE_AUTO_UPGRADE": True})


def _decisions():
    """The rulebook and the fixture decisions [(decision, request JSON)] (logged as the service logs them: with
    the rulebook, whose dictionary compresses the row)."""
    from policy_service.core.evaluate import evaluate

    rulebook, engine = policy()
    return rulebook, [(evaluate(request, rulebook=rulebook, engine=engine), raw)
                      for _, raw, request in fixture_requests()]


def cost(quick: bool) -> list[tuple]:
    """µs per logged decision (CPU, wall) for each setting."""
    from policy_service import store
    from policy_service.contract.schemas import RESPONSE
    from policy_service.store import database, decision_log

    shipped = dict(database.SQLITE_PRAGMAS)
    rulebook, decisions = _decisions()
    decided = [(decision, raw, RESPONSE.dump(decision)) for decision, raw in decisions]
    per = {name: ([], []) for name in SETTINGS}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(3 if quick else 7):
            for index, (name, (journal, synchronous, keeper)) in enumerate(SETTINGS.items()):
                app = _app(Path(scratch, f"{index}-{journal}-{synchronous}.sqlite3"), journal, synchronous)
                with app.app_context():
                    stop = _keeper(keeper)
                    started, clock = time.process_time(), time.perf_counter()
                    for decision, raw, body in decided:
                        decision_log.record(replace(decision, decision_id=uuid.uuid4().hex), raw, body, mask=True,
                                            rulebook=rulebook)
                    per[name][0].append((time.process_time() - started) / len(decided) * 1e6)
                    per[name][1].append((time.perf_counter() - clock) / len(decided) * 1e6)
                    if stop is not None:
                        stop()
                store.close_all()
    database.SQLITE_PRAGMAS.clear()
    database.SQLITE_PRAGMAS.update(shipped)
    base = median(per[SHIPPED][1])
    return [(name, median(cpu), median(wall), f"{median(wall) / base:.2f}") for name, (cpu, wall) in per.items()]


def _child(path: str, journal: str, synchronous: str, keeper: str) -> None:
    """Log decisions until killed (under the host's syncer or writer, in a thread here, unless keeper is "-"),
    printing each decision_id once `record` has returned."""
    from policy_service.contract.schemas import RESPONSE
    from policy_service.store import decision_log

    app = _app(Path(path), journal, synchronous)
    rulebook, decisions = _decisions()
    decided = [(decision, raw, RESPONSE.dump(decision)) for decision, raw in decisions]
    with app.app_context():
        _keeper(None if keeper == "-" else keeper)
        print("ready", flush=True)
        while True:
            for decision, raw, body in decided:
                decision_id = uuid.uuid4().hex
                decision_log.record(replace(decision, decision_id=decision_id), raw, body, mask=True,
                                    rulebook=rulebook)
                print(decision_id, flush=True)


def crash(quick: bool) -> list[tuple]:
    """For each setting: kill -9 the writer mid-stream, then count decisions it had printed that are not stored."""
    import sqlite3

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, (journal, synchronous, keeper)) in enumerate(SETTINGS.items()):
            seen: list[str] = []
            lost = 0
            for attempt in range(2 if quick else 5):
                path = Path(scratch, f"crash-{index}-{journal}-{synchronous}-{attempt}.sqlite3")
                child = subprocess.Popen([sys.executable, __file__, "--child", str(path), journal, synchronous,
                                          keeper or "-"],
                                         stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
                assert child.stdout.readline().strip() == "ready"
                deadline = time.monotonic() + 0.5 + attempt * 0.37
                printed = []
                while time.monotonic() < deadline:
                    printed.append(child.stdout.readline().strip())
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
                printed += [line.strip() for line in child.stdout.read().splitlines()]
                printed = [line for line in printed if line]
                with sqlite3.connect(path) as connection:
                    stored = {row[0] for row in connection.execute("SELECT decision_id FROM decision_log")}
                lost += sum(decision_id not in stored for decision_id in printed)
                seen += printed
            rows.append((name, len(seen), lost))
    return rows


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _child(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import logging
    logging.disable(logging.CRITICAL)
    costs, crashes = cost(args.quick), {name: (seen, lost) for name, seen, lost in crash(args.quick)}
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{banner()}; load average {load}\n")
    promise = {SHIPPED: "no: the decisions of the last 0.1 s may roll back", "host writer: WAL + FULL (sync 0)": "yes",
               "WAL + FULL": "yes", "WAL + NORMAL": "no: the commits since the last checkpoint may roll back",
               "DELETE + FULL": "yes",
               "DELETE + NORMAL": "no: may lose the last commits (corrupt, on older file systems)",
               "WAL + OFF": "no: may lose commits and corrupt the file"}
    print(table(["setting", "CPU µs/decision", "wall µs/decision", "wall ÷ shipped", "kill -9: decisions seen",
                 "seen but lost", "power loss / OS crash (SQLite's statement)"],
                [(name, cpu, wall, ratio, crashes[name][0], crashes[name][1], promise[name])
                 for name, cpu, wall, ratio in costs]))


if __name__ == "__main__":
    main()

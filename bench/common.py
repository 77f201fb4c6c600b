"""Shared by the benchmarks: the real rulebook and engine, fixture requests, timing and tables."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policy_service.contract.schemas import DecisionRequestSchema  # noqa: E402
from policy_service.core.engine import RulesEngine  # noqa: E402
from policy_service.core.messages import DecisionRequest  # noqa: E402
from policy_service.core.rulebook import Rulebook, load_rulebook  # noqa: E402
from policy_service.review.fixtures import discover  # noqa: E402

if TYPE_CHECKING:
    from flask import Flask


def policy() -> tuple[Rulebook, RulesEngine]:
    """The project's rulebook and an engine compiled from it."""
    rulebook = load_rulebook(ROOT / "rules")
    return rulebook, RulesEngine(rulebook)


def fixture_requests() -> list[tuple[str, dict, DecisionRequest]]:
    """Every fixture as (name, request JSON, validated request)."""
    schema = DecisionRequestSchema()
    return [(f.name, f.request, schema.load(f.request)) for f in discover([ROOT / "fixtures"])]


@contextlib.contextmanager
def served(settings: Mapping[str, Any]) -> Iterator[Flask]:
    """The product app (create_app) on these settings, for a benchmark in this process. On leaving, the
    app's background webhook processor is stopped (its thread would otherwise wake every few seconds and
    reopen the SQLite file, recreating -wal/-shm files while the scratch directory is being removed:
    "Directory not empty") and the app's database connections of this thread (a pool's idle ones too) are
    closed."""
    from playhouse.pool import PooledDatabase

    from policy_service import create_app, store
    from policy_service.web import webhooks

    app = create_app(dict(settings))
    database = store.database_proxy.obj  # this app's: another app created later re-points the proxy
    # As a gunicorn worker runs the app (gunicorn.conf.py: pre_fork and post_worker_init freeze what was loaded):
    # the app's ~85,000 long-lived objects are out of the collector's reach, so a full collection a request
    # triggers does not walk them (~40 ms every second 10,000-event request otherwise). Unfrozen on leaving.
    gc.collect()
    gc.freeze()
    try:
        yield app
    finally:
        gc.unfreeze()
        if webhooks.PROCESSOR in app.extensions:
            app.extensions[webhooks.PROCESSOR].stop()
        if isinstance(database, PooledDatabase):
            database.close_all()
        else:
            database.close()


def rounds(candidates: dict[str, Callable[[], int]], repeats: int) -> dict[str, list[float]]:
    """Run each candidate once per round, interleaved, `repeats` times; each returns how many it decided.

    Timed in process CPU time: the machine is shared, and wall time would count other processes' turns.
    """
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            started = time.process_time()
            count = run()
            rates[name].append(count / (time.process_time() - started))
    return rates


def median(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    cells = [[_cell(v) for v in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def banner() -> str:
    """What ran (as typed), when and where, to paste above a results table."""
    command = " ".join(["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"`{command}` — {now}, {os.cpu_count()} cores, Python {platform.python_version()}"


def rss_mib() -> float:
    """This process's resident set size in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return str(value)

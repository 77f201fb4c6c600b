"""Where one HTTP decision's time goes, phase by phase, on the fixture set (in-process).

Times each phase of POST /v1/decisions separately: request schema load, replay of the history,
fact derivation, the engine (durable_rules, and the memoized match evaluate() uses), combining with
the trace, response schema dump, and the decision log write (SQLite, one connection per request,
as the app does). Wall time, since the log's fsync is waiting, not computing.
With --profile, also prints cProfile's top functions (by own time) for evaluate() on the fixtures.
Usage: python bench/phases.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
import uuid

from common import banner, fixture_requests, median, policy, served, table

from policy_service import store
from policy_service.contract.schemas import REQUEST, RESPONSE
from policy_service.core.decision import combine
from policy_service.core.evaluate import evaluate, replay
from policy_service.core.facts import derive_facts
from policy_service.core.records import replace  # a Decision is a msgspec Struct: dataclasses.replace cannot copy it
from policy_service.store import decision_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer passes")
    parser.add_argument("--profile", action="store_true", help="also profile evaluate() with cProfile")
    args = parser.parse_args()
    passes = 3 if args.quick else 30
    rulebook, engine = policy()
    requests = fixture_requests()
    phases: dict[str, list[float]] = {name: [] for name in (
        "schema load", "replay history", "derive facts", "engine: durable_rules match", "engine: memoized match",
        "combine + trace", "response dump", "decision log write (SQLite)")}
    what_if = {name: [] for name in (WHAT_IF_OPEN, WHAT_IF_NORMAL)}
    with tempfile.TemporaryDirectory() as scratch, served({"DATABASE_URL": f"sqlite:///{scratch}/log.sqlite3"}) as app:
        logged = []
        for _ in range(passes):
            for _, raw, _ in requests:
                clock = _Clock(phases)
                request = clock("schema load", REQUEST.load, raw)
                state = clock("replay history", replay, request, rulebook, engine)
                facts = clock("derive facts", derive_facts, request.send, state, request.context, rulebook)
                clock("engine: durable_rules match", engine.match, facts.engine)
                fired = clock("engine: memoized match", engine.match_memoized, facts.engine)
                decision = clock("combine + trace", combine, fired, facts, rulebook)
                decision = replace(decision, decision_id=uuid.uuid4().hex)
                body = clock("response dump", RESPONSE.dump, decision)
                with app.app_context():
                    clock("decision log write (SQLite)", decision_log.record, decision, raw, body, mask=True)
                logged.append((decision, raw, body))
        _what_if(app, logged, what_if)
    shipped = [name for name in phases if name != "engine: durable_rules match"]
    total = sum(median(phases[name]) for name in shipped)
    rows = [(name, median(values) * 1e6, f"{median(values) / total:.0%}" if name in shipped else "(not used)")
            for name, values in phases.items()]
    rows.append(("total (memoized engine)", total * 1e6, "100%"))
    rows += [(name, median(values) * 1e6, "(what-if)") for name, values in what_if.items()]
    print(banner())
    print(f"{len(requests)} fixture requests x {passes} passes; median per phase (wall time)\n")
    print(table(["phase", "µs (median)", "share"], rows))
    if args.profile:
        _profile(requests, rulebook, engine, passes)


def _profile(requests, rulebook, engine, passes) -> None:
    """cProfile's top 15 functions by own time over evaluate() of every fixture, `passes` times."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(passes):
        for _, _, request in requests:
            evaluate(request, rulebook=rulebook, engine=engine)
    profiler.disable()
    print("\ncProfile, evaluate() only, by own time:\n")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(15)


WHAT_IF_OPEN = "what-if: log write on a connection kept open"
WHAT_IF_NORMAL = "what-if: kept open and synchronous=NORMAL (WAL)"


def _what_if(app, logged, what_if) -> None:
    """The same log writes with one connection for all (the app opens and closes one per request)."""
    for name, pragma in ((WHAT_IF_OPEN, None), (WHAT_IF_NORMAL, "PRAGMA synchronous=NORMAL")):
        clock = _Clock(what_if)
        with app.app_context():
            if pragma:
                store.database_proxy.execute_sql(pragma)
            for decision, raw, body in logged:
                clock(name, decision_log.record, replace(decision, decision_id=uuid.uuid4().hex), raw, body, mask=True)


class _Clock:
    """Calls a function and adds its wall time to the named phase."""

    def __init__(self, phases: dict[str, list[float]]) -> None:
        self.phases = phases

    def __call__(self, phase, function, *args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        self.phases[phase].append(time.perf_counter() - started)
        return result


if __name__ == "__main__":
    main()

"""Cost of one decision as the history grows from 10 to 10,000 events (in-process evaluate()).

Two shapes of history, both ending just before the proposed send:
- sessions: the user writes, the business answers once to three times, then a pause of an hour to
  ten days (one pause in five is three days or more, past the longest period lifetime, 72 h);
- dense: a utility template every 23 hours and a user message every day, never a 72 h pause:
  the worst case, where no quiet point exists and every past send must be classified.
The last column is what loading the same request from JSON costs (contract REQUEST), for scale.
A second table times the whole request, POST /v1/decisions through the Flask app (body parse, schema load,
evaluate, response, masked decision log row in SQLite), 10 against 10,000 events (issue 25: <= 15x); a third its
load step by step (the body parsed and bounded, the request built), beside marshmallow alone.
`--stages` prints only where the 10,000-event request's CPU goes, stage by stage (each stage's function wrapped).
Usage: python bench/history.py [--quick] [--stages]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

from common import banner, median, policy, served, table
from marshmallow import Schema

from policy_service.contract.parsing import decision_limits, forget, parse_json
from policy_service.contract.schemas import REQUEST, DecisionRequestSchema
from policy_service.core.evaluate import evaluate
from policy_service.core.messages import DecisionRequest, Message, Send, Template

SIZES = (10, 100, 1_000, 10_000)
END = datetime(2026, 6, 15, 12, tzinfo=UTC)
TO = "+5511987654321"
UTILITY = Template("order_update", "en", "utility")
MARKETING = Template("spring_sale", "en", "marketing")


def sessions(size: int, seed: int = 7) -> tuple[Message, ...]:
    """A conversation in sessions with pauses, `size` events, oldest first, ending an hour before END."""
    rng = random.Random(seed)
    events: list[tuple[float, Message]] = []
    at = timedelta(0)
    while len(events) < size:
        events.append((at, "inbound"))
        for _ in range(rng.randint(1, 3)):
            at += timedelta(minutes=rng.randint(1, 30))
            events.append((at, "outbound"))
        pause = rng.choice([timedelta(hours=rng.randint(1, 48))] * 4 + [timedelta(hours=rng.randint(72, 240))])
        at += pause
    events = events[:size]
    shift = END - timedelta(hours=1) - events[-1][0]
    kinds = [("text", None), ("template", UTILITY), ("template", MARKETING)]
    history = []
    for offset, direction in events:
        kind, template = rng.choice(kinds) if direction == "outbound" else ("text", None)
        history.append(Message(direction, shift + offset, kind, template))
    return tuple(history)


def dense(size: int) -> tuple[Message, ...]:
    """Utility templates 23 h apart and a user message every 24 h: no quiet point anywhere."""
    history = []
    send_at, user_at = END - timedelta(hours=1), END - timedelta(hours=2)
    while len(history) < size:
        history.append(Message("outbound", send_at, "template", UTILITY))
        send_at -= timedelta(hours=23)
        if len(history) < size:
            history.append(Message("inbound", user_at, "text"))
            user_at -= timedelta(hours=24)
    return tuple(sorted(history, key=lambda m: m.at))


def as_json(request: DecisionRequest) -> dict:
    """The request as a client would POST it."""
    send = request.send
    body = {"send": {"at": send.at.isoformat(), "to": send.to, "type": send.type,
                     **_template(send.template)},
            "history": [{"direction": m.direction, "at": m.at.isoformat(), "type": m.type, **_template(m.template)}
                        for m in request.history]}
    return body


def _template(template: Template | None) -> dict:
    if template is None:
        return {}
    return {"template": {"name": template.name, "language": template.language, "category": template.category,
                         "status": template.status}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--stages", action="store_true",
                        help="only where the whole 10,000-event request's CPU goes, stage by stage")
    args = parser.parse_args()
    if args.stages:
        print(banner())
        rounds = 7 if args.quick else 21
        print(f"\nThe 10,000-event request (POST /v1/decisions, sessions history, SQLite log, masking on), stage by "
              f"stage: thread CPU ms over {rounds} requests (a stage inside another is counted in both)\n")
        print(table(["stage", "min", "median"], [(name, min(times), median(times))
                                                 for name, times in request_stages(rounds).items()]))
        return
    rulebook, engine = policy()
    repeats = 5 if args.quick else 21
    send = Send(END, TO, "template", MARKETING)
    rows = []
    for shape, build in (("sessions", sessions), ("dense (no quiet point)", dense)):
        requests = {size: DecisionRequest(send, build(size)) for size in SIZES}
        timings: dict[int, list[float]] = {size: [] for size in SIZES}
        for _ in range(repeats):
            for size, request in requests.items():
                started = time.process_time()
                evaluate(request, rulebook=rulebook, engine=engine)
                timings[size].append(time.process_time() - started)
        base = median(timings[SIZES[0]])
        for size in SIZES:
            parse = _parse_time(as_json(requests[size]), 3 if args.quick else 5)
            rows.append((shape, size, median(timings[size]) * 1e6, median(timings[size]) / base, parse * 1e6))
    print(banner())
    print(f"median of {repeats} interleaved runs per size; goal: 10,000 events under 3x the cost of 10\n")
    print(table(["history", "events", "µs/decision (median)", "× the 10-event cost",
                 "µs to load the request JSON (schema, median)"], rows))
    whole = whole_requests(3 if args.quick else 9)
    base_cpu, base_wall = whole[10]
    print("\nThe whole request: POST /v1/decisions (Flask test client, SQLite decision log, masking on), sessions "
          "history; goal: 10,000 events <= 15x the 10-event cost\n")
    print(table(["events", "CPU ms (median)", "× (CPU)", "wall ms (median)", "× (wall)"],
                [(size, c, f"{c / base_cpu:.1f}", w, f"{w / base_wall:.1f}") for size, (c, w) in whole.items()]))
    print("\nIts load, step by step (CPU ms, median): parse = contract.parsing (orjson, the history typed by msgspec, "
          "the rest of the body bounded); build = the schema's load of the parsed body (contract.fastload: the "
          "Messages); marshmallow alone, for scale\n")
    print(table(["events", "parse", "build", "parse + build", "marshmallow alone (build)"],
                [(size, *steps) for size, steps in load_steps(5 if args.quick else 11).items()]))


def load_steps(rounds: int, sizes: tuple[int, ...] = (10, 10_000)) -> dict[int, tuple[float, float, float, float]]:
    """The load of POST /v1/decisions' body, sessions history: {size: (parse, build, both, marshmallow's build)}
    in median CPU ms over interleaved rounds (marshmallow alone: Schema.load on the parsed body)."""
    limits = decision_limits()
    send = Send(END, TO, "template", MARKETING)
    bodies = {size: json.dumps(as_json(DecisionRequest(send, sessions(size)))).encode() for size in sizes}
    times: dict[int, list[list[float]]] = {size: [[], [], []] for size in sizes}
    for _ in range(rounds):
        for size, body in bodies.items():
            started = time.process_time()
            parsed = parse_json(body, limits)
            parsed_at = time.process_time()
            loaded = REQUEST.load(parsed)
            times[size][0].append((parsed_at - started) * 1e3)
            times[size][1].append((time.process_time() - parsed_at) * 1e3)
            started = time.process_time()
            assert Schema.load(REQUEST, parsed) == loaded
            times[size][2].append((time.process_time() - started) * 1e3)
            del parsed, loaded  # freed here, not in the next size's timed steps
            forget()  # with what the parser kept of the body for the decision log
    return {size: (median(parse), median(build), median(parse) + median(build), median(alone))
            for size, (parse, build, alone) in times.items()}


def whole_requests(rounds: int = 7, sizes: tuple[int, ...] = (10, 10_000)) -> dict[int, tuple[float, float]]:
    """POST /v1/decisions with an inline sessions history of each size, through the app with its SQLite log:
    {size: (median process CPU ms, median wall ms)}, interleaved rounds."""
    send = Send(END, TO, "template", MARKETING)
    bodies = {size: json.dumps(as_json(DecisionRequest(send, sessions(size)))).encode() for size in sizes}
    cpu: dict[int, list[float]] = {size: [] for size in sizes}
    wall: dict[int, list[float]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory() as scratch, served({"DATABASE_URL": f"sqlite:///{scratch}/log.sqlite3"}) as app:
        client = app.test_client()
        for body in bodies.values():  # warm: first request per size compiles and caches
            assert client.post("/v1/decisions", data=body, content_type="application/json").status_code == 200
        for _ in range(rounds):
            for size, body in bodies.items():
                started, clock = time.process_time(), time.perf_counter()
                response = client.post("/v1/decisions", data=body, content_type="application/json")
                cpu[size].append((time.process_time() - started) * 1e3)
                wall[size].append((time.perf_counter() - clock) * 1e3)
                assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return {size: (median(cpu[size]), median(wall[size])) for size in sizes}


# (module, attribute, stage name): the functions request_stages times, in the order a request calls them.
_STAGES = (
    ("policy_service.web.api", "parse_json", "parse the body (contract.parsing.parse_json)"),
    ("policy_service.contract.parsing", "typed_history", "  type the history (fastload.typed_history, msgspec)"),
    ("policy_service.contract.parsing", "_no_repeated_key", "  count the colons (no repeated key)"),
    ("policy_service.contract.fastload", "history", "build the Messages (fastload.history)"),
    ("policy_service.service.decisions:Decisions", "evaluate", "evaluate (Decisions.evaluate)"),
    ("policy_service.store.decision_log", "record", "log the row (decision_log.record)"),
    ("policy_service.store.decision_log", "_masked_request_text", "  the masked request's text"),
    ("policy_service.store.log_compression", "compress", "  zstd"),
    ("policy_service.store.decision_log", "_insert", "  the INSERT and its commit"),
)


def request_stages(rounds: int) -> dict[str, list[float]]:
    """POST /v1/decisions with 10,000 inline sessions events, `rounds` times after a warm one, each stage of
    _STAGES timed by wrapping its function (thread CPU): {stage: [ms per request]}, "the whole request" last."""
    import functools
    import importlib

    spent: dict[str, float] = {}
    wrapped = []

    def timed(function, name):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.thread_time() - started
        return wrapper

    for where, attribute, name in _STAGES:
        module_name, _, class_name = where.partition(":")
        owner = importlib.import_module(module_name)
        owner = getattr(owner, class_name) if class_name else owner
        original = getattr(owner, attribute)
        wrapped.append((owner, attribute, original))
        setattr(owner, attribute, timed(original, name))
    body = json.dumps(as_json(DecisionRequest(Send(END, TO, "template", MARKETING), sessions(10_000)))).encode()
    times: dict[str, list[float]] = {name: [] for _, _, name in _STAGES}
    times["the whole request"] = []
    try:
        with tempfile.TemporaryDirectory() as scratch, \
                served({"DATABASE_URL": f"sqlite:///{scratch}/log.sqlite3"}) as app:
            client = app.test_client()
            for round_ in range(rounds + 1):
                spent.clear()
                started = time.thread_time()
                response = client.post("/v1/decisions", data=body, content_type="application/json")
                whole = time.thread_time() - started
                assert response.status_code == 200, response.get_data(as_text=True)[:300]
                if round_:  # the first is the warm one
                    for name in times:
                        times[name].append(1e3 * (whole if name == "the whole request" else spent.get(name, 0.0)))
    finally:
        for owner, attribute, original in wrapped:
            setattr(owner, attribute, original)
    return times


def _parse_time(body: dict, repeats: int) -> float:
    schema = DecisionRequestSchema()
    times = []
    for _ in range(repeats):
        started = time.process_time()
        schema.load(body)
        times.append(time.process_time() - started)
    return median(times)


if __name__ == "__main__":
    main()

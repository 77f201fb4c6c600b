"""The Python API beside the HTTP API in-process, and what the request copy in business-state fill-in cost.

1. Per decision, on every fixture request, logged to SQLite as the service logs: PolicyService.decide (no Flask)
   beside POST /v1/decisions through Flask's test client (the whole HTTP stack but the socket).
2. The business-state step (service.business.enrich) on a template send from a known number, with an inline
   history of 10, 1,000 and 10,000 messages: the step as it is (paths it changes rebuilt, nothing copied)
   beside the step plus the copy.deepcopy of the request it made before (issue 21).
Wall time, medians of interleaved rounds.
Usage: python bench/python_api.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from datetime import UTC, datetime, timedelta

from common import banner, fixture_requests, median, served, table

from policy_service import PolicyService
from policy_service.contract.schemas import REQUEST
from policy_service.service import business

SEND_AT = datetime(2025, 9, 1, 12, tzinfo=UTC)
CONTACT = "5511987654321"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    requests = [raw for _, raw, _ in fixture_requests()]
    print(banner())
    print()
    with tempfile.TemporaryDirectory() as scratch, served({"DATABASE_URL": f"sqlite:///{scratch}/log.sqlite3"}) as app:
        url = f"sqlite:///{scratch}/log.sqlite3"
        client = app.test_client()
        service = PolicyService(database_url=url)
        python, http = "PolicyService.decide (Python API)", "POST /v1/decisions (Flask test client)"
        per_decision: dict[str, list[float]] = {python: [], http: []}
        for _ in range(rounds):
            per_decision[python].append(_time(lambda: [service.decide(r) for r in requests]))
            per_decision[http].append(_time(lambda: [client.post("/v1/decisions", json=r) for r in requests]))
        over_http = median(per_decision[http])
        print(f"{len(requests)} fixture requests per round, {rounds} rounds, each decision logged (SQLite)\n")
        print(table(["path", "µs per decision (median)", "÷ HTTP"], [
            (name, median(times) / len(requests) * 1e6, f"{median(times) / over_http:.2f}")
            for name, times in per_decision.items()]))
        print()
        rows = []
        rulebook = service.policy.rulebook
        for size in (10, 1_000, 10_000):
            raw = _template_send(size)
            request = REQUEST.load(raw)
            def fill_in(raw=raw, request=request):
                return business.enrich(request, raw, None, CONTACT, rulebook)

            def fill_in_copied(raw=raw, request=request):
                return business.enrich(request, copy.deepcopy(raw), None, CONTACT, rulebook)

            now = _time(lambda: [fill_in() for _ in range(20)], rounds)
            before = _time(lambda: [fill_in_copied() for _ in range(20)], rounds)
            rows.append((f"{size:,}", now / 20 * 1e6, before / 20 * 1e6, f"{before / now:.0f}×"))
        print(table(["inline history", "fill-in now µs", "with the former deep copy µs", "former ÷ now"], rows))


def _time(run, repeats: int = 1) -> float:
    """Median wall seconds of `repeats` calls of run()."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return median(times)


def _template_send(size: int) -> dict:
    history = [{"direction": "inbound" if i % 2 else "outbound", "type": "text",
                "at": (SEND_AT - timedelta(minutes=size - i)).isoformat(), **({} if i % 2 else {"status": "read"})}
               for i in range(size)]
    return {"send": {"at": SEND_AT.isoformat(), "to": "+" + CONTACT, "type": "template",
                     "template": {"name": "order_update", "language": "en", "category": "utility",
                                  "status": "APPROVED"}},
            "history": history}


if __name__ == "__main__":
    main()

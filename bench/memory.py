"""Resident memory over one million evaluations: flat or growing?

Cycles through the fixture requests with the memo off, so every decision (and every replayed
past send) asserts a fact into durable_rules and deletes its state, the pattern durable-rules.md
says plateaus. RSS is sampled every --every evaluations. Usage: python bench/memory.py [--quick]
[--count N] [--every N]
"""

from __future__ import annotations

import argparse
import time

from common import banner, fixture_requests, median, policy, rss_mib, table

from policy_service.core.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 evaluations")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=10_000)
    args = parser.parse_args()
    count = 20_000 if args.quick else args.count
    every = min(args.every, max(count // 10, 1))
    rulebook, engine = policy()
    engine.match_memoized = engine.match  # memo off: durable_rules on every call
    requests = [request for _, _, request in fixture_requests()]
    samples: list[tuple[int, float]] = [(0, rss_mib())]
    rates = []
    started = window = time.perf_counter()
    for done in range(1, count + 1):
        evaluate(requests[done % len(requests)], rulebook=rulebook, engine=engine)
        if done % every == 0:
            now = time.perf_counter()
            rates.append(every / (now - window))
            window = now
            samples.append((done, rss_mib()))
    elapsed = time.perf_counter() - started
    after_warmup = samples[min(2, len(samples) - 1)]
    last = samples[-1]
    peak = max(samples, key=lambda s: s[1])
    print(banner())
    print(f"{count:,} evaluations in {elapsed:,.0f} s ({median(rates):,.0f}/s median per {every:,}), "
          f"RSS sampled every {every:,}\n")
    rows = [("before the first", samples[0][0], samples[0][1]), (f"after {after_warmup[0]:,} (warm)",
            after_warmup[0], after_warmup[1]), ("max", peak[0], peak[1]), ("last", last[0], last[1])]
    print(table(["sample", "evaluations", "RSS MiB"], rows))
    print(f"\ngrowth from warm to last: {last[1] - after_warmup[1]:+.1f} MiB "
          f"({(last[1] - after_warmup[1]) * 2**20 / max(last[0] - after_warmup[0], 1):.2f} bytes/evaluation)")


if __name__ == "__main__":
    main()

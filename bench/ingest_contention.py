"""Two signed webhook payloads of 3,000 statuses each, posted back to back to gunicorn (2 workers, as the Procfile
starts it, SQLite), while one client asks for decisions one after another.

Measures: when each payload is done (seconds after its POST), its attempts, the log's "database is locked" and
ERROR lines, and the decisions' latency (median, p99, max) before the payloads and while they are processed.
This is the newcomer trial of 2026-12-08 (payload 22 failed with "database is locked", retried after the 60 s
lease) as a repeatable run.
Usage: python bench/ingest_contention.py [--statuses N] [--payloads N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, banner, median, table
from webhooks import PHONE_NUMBER_ID, request, signature, start

DECISION = json.dumps({
    "send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "template",
             "template": {"name": "order_update", "language": "en", "category": "utility", "status": "APPROVED"}},
    "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}],
}).encode()


def payload(statuses: int, prefix: str) -> bytes:
    """One `messages` change with `statuses` delivered statuses (PMP pricing) to 1,000 users."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": [{"id": f"wamid.{prefix}.{index:06d}", "status": "delivered",
                      "timestamp": str(1754989200 + index), "recipient_id": f"55119{index % 1000:08d}",
                      "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility",
                                  "type": "regular"}}
                     for index in range(statuses)],
    }
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(body).encode()


class Decisions(threading.Thread):
    """Asks for decisions one after another; each latency is kept with the time it was asked."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, float, int]] = []  # (started, seconds, HTTP status)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            status, _ = request(self.url + "/v1/decisions", DECISION, {"Content-Type": "application/json"})
            self.samples.append((started, time.perf_counter() - started, status))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def one_round(directory: Path, statuses: int, payloads: int, tag: str, logs: Path | None) -> dict[str, object]:
    database_url = f"sqlite:///{directory / f'{tag}.sqlite3'}"
    os.environ["WEB_CONCURRENCY"] = "2"
    process, url = start(directory, database_url)
    try:
        decisions = Decisions(url)
        decisions.start()
        time.sleep(3)  # decisions alone first
        bodies = [payload(statuses, f"{tag}.{index}") for index in range(payloads)]
        posted = time.perf_counter()
        ids = []
        for body in bodies:
            status, answer = request(url + "/v1/webhooks/whatsapp", body,
                                     {"Content-Type": "application/json", "X-Hub-Signature-256": signature(body)})
            if status != 200:
                raise SystemExit(f"POST answered {status}: {answer}")
            ids.append(answer["id"])
        done: dict[int, tuple[float, dict]] = {}
        while len(done) < len(ids):
            for raw_id in ids:
                if raw_id not in done:
                    _, receipt = request(f"{url}/v1/admin/webhooks/{raw_id}")
                    if receipt.get("status") != "pending":
                        done[raw_id] = (time.perf_counter() - posted, receipt)
            if time.perf_counter() - posted > 400:
                raise SystemExit(f"not processed after 400 s: {[request(f'{url}/v1/admin/webhooks/{i}') for i in ids]}")
            time.sleep(0.05)
        finished = time.perf_counter()
        decisions.stop.set()
        decisions.join(30)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    text = (directory / "gunicorn.log").read_text(errors="replace")
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"gunicorn-{tag}.log").write_text(text)
    before = [s for started, s, _ in decisions.samples if started < posted]
    during = [s for started, s, _ in decisions.samples if posted <= started < finished]
    return {
        "done": [f"{done[i][0]:.1f} s ({done[i][1]['status']}, attempts {done[i][1]['attempts']})" for i in ids],
        "locked": text.count("database is locked"), "tracebacks": text.count("Traceback ("),
        "before": before, "during": during,
        "failed decisions": sum(1 for _, _, status in decisions.samples if status != 200),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statuses", type=int, default=3_000)
    parser.add_argument("--payloads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--logs", type=Path, help="a folder to keep each round's gunicorn log in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        results = [one_round(directory, args.statuses, args.payloads, f"r{index}", args.logs)
                   for index in range(args.rounds)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(banner() + f", commit {commit}\n")
    ms = 1000
    print(table(["round", "payloads done after POST", "'database is locked' in log", "tracebacks in log",
                 "decisions before: median / p99 ms", "during: median / p99 / max ms", "decisions not 200"],
                [[index + 1, "; ".join(r["done"]), r["locked"], r["tracebacks"],
                  f"{median(r['before']) * ms:.1f} / {quantile(r['before'], 0.99) * ms:.1f}",
                  f"{median(r['during']) * ms:.1f} / {quantile(r['during'], 0.99) * ms:.1f} / "
                  f"{max(r['during'], default=float('nan')) * ms:.0f}", r["failed decisions"]]
                 for index, r in enumerate(results)]))


if __name__ == "__main__":
    main()

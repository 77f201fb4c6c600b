"""Reconciliation's cost as the delivered messages to one contact grow (GET /v1/reconciliation's work).

Each scenario stores, through the store's own webhook functions (store_inbound, store_status), one contact's
messages to one business number in a fresh SQLite file, then times (process CPU time, the machine is shared):
- `reconcile`: review.reconciliation.reconcile over the contact, every comparison built;
- `page 999`: service.reports.reconcile(page=999, page_size=50), a page past the end, as the HTTP route answers;
- `GET page 999`: GET /v1/reconciliation?...&page=999&page_size=50 through the app (Flask test client), wall time.
Scenarios (no pause of 72 h anywhere, so no quiet point: every send since the first one is in the replay):
- `sent+delivered`: the user writes every 20 hours; the business sends a utility template every 5 minutes, each
  reported `sent`, then `delivered` 0-90 minutes later (deliveries out of send order); statuses counted;
- `delivered`: a utility template every 5 minutes, reported `delivered` only, 0-90 minutes late; the statuses
  arrive in shuffled order (webhooks are not ordered).
Usage: python bench/reconciliation.py [--sizes 600,4000] [--skip-page]
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import banner, table

from policy_service import create_app
from policy_service.contract.meta_webhooks import Inbound, Status
from policy_service.service import reports
from policy_service.store import histories

PHONE_NUMBER_ID = "106540352242922"
CONTACT = "5511987654321"
START = datetime(2025, 9, 1, 9, tzinfo=UTC)
UTILITY = {"billable": True, "category": "utility", "pricing_model": "PMP", "type": "regular"}
FREE_UTILITY = {"billable": False, "category": "utility", "pricing_model": "PMP", "type": "free_customer_service"}


def statuses(shape: str, count: int, seed: int = 11) -> tuple[list[Inbound], list[Status]]:
    """The user's messages and `count` statuses of one contact's utility templates, in arrival order."""
    rng = random.Random(seed)
    messages = count // 2 if shape == "sent+delivered" else count
    span = timedelta(minutes=5) * messages
    inbound = [Inbound(f"wamid.in.{n}", PHONE_NUMBER_ID, CONTACT, START + timedelta(hours=20) * n, "text")
               for n in range(int(span / timedelta(hours=20)) + 1)] if shape == "sent+delivered" else []
    found = []
    for n in range(messages):
        sent = START + timedelta(minutes=5) * n + timedelta(seconds=30)
        delivered = sent + timedelta(minutes=rng.randint(0, 90))
        pricing = FREE_UTILITY if shape == "sent+delivered" else UTILITY
        if shape == "sent+delivered":
            found.append(Status(f"wamid.out.{n}", PHONE_NUMBER_ID, CONTACT, sent, "sent"))
        found.append(Status(f"wamid.out.{n}", PHONE_NUMBER_ID, CONTACT, delivered, "delivered", pricing=pricing))
    if shape == "delivered":
        rng.shuffle(found)
    return inbound, found


def cpu(work) -> tuple[float, object]:
    """Process CPU seconds of one call, and what it returned."""
    started = time.process_time()
    result = work()
    return time.process_time() - started, result


def measure(shape: str, size: int, page: bool) -> list[str]:
    """One scenario in a fresh SQLite store: its row of the table."""
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app({"DATABASE_URL": f"sqlite:///{Path(scratch) / 'bench.db'}", "DATABASE_AUTO_UPGRADE": True})
        with app.app_context():
            inbound, found = statuses(shape, size)
            for message in inbound:
                histories.store_inbound(message)
            for status in found:
                histories.store_status(status)
            policy = app.extensions["policy_service"]
            seconds, compared = cpu(lambda: reports.comparisons(policy, phone_number_id=PHONE_NUMBER_ID,
                                                                contact=CONTACT))
            paged = http = "-"
            if page:
                page_seconds, body = cpu(lambda: reports.reconcile(policy, phone_number_id=PHONE_NUMBER_ID,
                                                                   contact=CONTACT, page=999, page_size=50))
                assert body["comparisons"] == [] and body["pagination"]["total"] == len(compared)
                paged = f"{page_seconds:.2f}"
                # The HTTP route itself (Flask test client): wall time, the JSON answer included.
                started = time.perf_counter()
                answer = app.test_client().get(f"/v1/reconciliation?phone_number_id={PHONE_NUMBER_ID}"
                                               f"&contact={CONTACT}&page=999&page_size=50")
                assert answer.status_code == 200 and answer.json["pagination"]["total"] == len(compared)
                http = f"{time.perf_counter() - started:.2f}"
            matching = sum(c.matches for c in compared)
            return [shape, f"{size:,}", f"{len(compared):,}", f"{matching:,}", f"{seconds:.2f}", paged, http]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="600,4000", help="statuses per scenario, comma-separated")
    parser.add_argument("--skip-page", action="store_true",
                        help="time only reconcile(), not the page past the end (service and HTTP)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(banner())
    rows = []
    for size in map(int, args.sizes.split(",")):
        for shape in ("sent+delivered", "delivered"):
            rows.append(measure(shape, size, not args.skip_page))
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(table(["scenario", "statuses", "compared", "matching", "reconcile() CPU s", "page 999 CPU s",
                 "GET page 999 wall s"], rows))


if __name__ == "__main__":
    main()

"""Prometheus metrics: request latency, decisions by outcome and by determining rule, errors, reloads.

Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (an empty directory) before start: every worker
then writes its samples there and /metrics adds them up across workers.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from ..core.decision import Decision
from ..service import ingest

log = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "policy_http_request_duration_seconds", "Time to answer an HTTP request", ["endpoint", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_ERRORS = Counter("policy_http_errors_total", "HTTP responses with a 4xx or 5xx status", ["endpoint", "code"])
DECISIONS = Counter("policy_decisions_total", "Decisions returned", ["decision", "status"])
DETERMINING_RULES = Counter("policy_decision_rules_total", "Decisions each rule determined", ["rule"])
RELOADS = Counter("policy_rules_reloads_total", "Rule reloads", ["result"])
# One series per worker (a pid label under gunicorn): 1 for the rulebook and published generation it serves.
RULEBOOK = Gauge("policy_rulebook_served", "1 for the rulebook version and published reload this worker serves",
                 ["rulebook_version", "generation"], multiprocess_mode="liveall")
_served: list[tuple[str, str]] = []


def init_app(app: Flask) -> None:
    """Time every request and count its errors."""
    app.before_request(_start_timer)
    app.after_request(_observe_request)


# The counters' children by label values: labels() validates and looks them up under a lock on every call (~5 µs
# each, four a decision); the children never change (nothing removes a label set), and their values follow a fork
# (prometheus_client's multiprocess values notice the new pid), so they are kept here once made.
_DECISION_CHILDREN: dict[tuple[str, str], Any] = {}
_RULE_CHILDREN: dict[str, Any] = {}


def count_decision(decision: Decision) -> None:
    """Count a decision by outcome and status, and once for each rule that determined it."""
    key = (decision.decision, decision.status)
    child = _DECISION_CHILDREN.get(key)
    if child is None:
        child = _DECISION_CHILDREN[key] = DECISIONS.labels(*key)
    child.inc()
    for rule in decision.determining_rules:
        child = _RULE_CHILDREN.get(rule)
        if child is None:
            child = _RULE_CHILDREN[rule] = DETERMINING_RULES.labels(rule)
        child.inc()


def serving(rulebook_version: str, generation: int) -> None:
    """Record the rulebook this worker serves now (the one it served before drops to 0)."""
    labels = (rulebook_version, str(generation))
    for previous in _served:
        if previous != labels:
            RULEBOOK.labels(*previous).set(0)
    RULEBOOK.labels(*labels).set(1)
    _served[:] = [labels]


def exposition() -> Response:
    """The metrics in Prometheus text format, summed over every worker in multiprocess mode, and the webhook
    backlog as the database counts it now (one figure for all workers and instances)."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    # content_type, not mimetype: CONTENT_TYPE_LATEST has its charset, and mimetype= would add a second.
    return Response(generate_latest(registry) + generate_latest(_BACKLOG), content_type=CONTENT_TYPE_LATEST)


class _BacklogCollector:
    """policy_webhook_backlog_payloads{status=pending|failed} and the oldest pending payload's age, read from
    the database at each scrape; absent (and logged) while the database is unreachable."""

    def collect(self):
        try:
            backlog = ingest.backlog()
        except Exception as error:  # noqa: BLE001 - a scrape must not fail because the database does
            log.warning("webhook backlog not measured: %s: %s", type(error).__name__, error)
            return
        payloads = GaugeMetricFamily("policy_webhook_backlog_payloads",
                                     "Stored webhook payloads whose events are not stored yet", labels=["status"])
        payloads.add_metric(["pending"], backlog["pending"])
        payloads.add_metric(["failed"], backlog["failed"])
        yield payloads
        yield GaugeMetricFamily("policy_webhook_backlog_oldest_seconds",
                                "Age of the oldest pending webhook payload (0 when none)",
                                value=backlog["oldest_pending_seconds"] or 0)


_BACKLOG = CollectorRegistry(auto_describe=False)
_BACKLOG.register(_BacklogCollector())


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def _observe_request(response: Response) -> Response:
    endpoint = request.endpoint or "unmatched"
    started = g.get("request_started")
    if started is not None:
        REQUEST_SECONDS.labels(endpoint, request.method).observe(time.perf_counter() - started)
    if response.status_code >= 400:
        HTTP_ERRORS.labels(endpoint, str(response.status_code)).inc()
    return response

"""Prometheus metrics: request latency, decisions by outcome and by determining rule, errors, reloads.

Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (an empty directory) before start: every worker
then writes its samples there and /metrics adds them up across workers.
"""

from __future__ import annotations

import os
import time

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

from ..core.decision import Decision

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


def count_decision(decision: Decision) -> None:
    """Count a decision by outcome and status, and once for each rule that determined it."""
    DECISIONS.labels(decision.decision, decision.status).inc()
    for rule in decision.determining_rules:
        DETERMINING_RULES.labels(rule).inc()


def serving(rulebook_version: str, generation: int) -> None:
    """Record the rulebook this worker serves now (the one it served before drops to 0)."""
    labels = (rulebook_version, str(generation))
    for previous in _served:
        if previous != labels:
            RULEBOOK.labels(*previous).set(0)
    RULEBOOK.labels(*labels).set(1)
    _served[:] = [labels]


def exposition() -> Response:
    """The metrics in Prometheus text format, summed over every worker in multiprocess mode."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


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

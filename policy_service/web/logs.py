"""Structured logs: one JSON object per line on stderr, one line per decision carrying its decision_id."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

from ..core.decision import Decision

decisions = logging.getLogger("policy_service.decisions")
FORMAT = "{asctime}{levelname}{name}{message}"


class _JsonHandler(logging.StreamHandler):
    """The stderr handler this module installs (a class of its own, so it is installed once)."""


def init_app(app: Flask) -> None:
    """Log the package (which is also the app's logger) in JSON at LOG_LEVEL; installed once per process."""
    logger = logging.getLogger("policy_service")
    logger.setLevel(app.config["LOG_LEVEL"])
    # Flask's plain-text handler would print every record a second time.
    logger.removeHandler(default_handler)
    if not any(isinstance(handler, _JsonHandler) for handler in logger.handlers):
        handler = _JsonHandler()
        handler.setFormatter(JsonFormatter(FORMAT, style="{", rename_fields={"levelname": "level"}))
        logger.addHandler(handler)


def log_decision(decision: Decision, seconds: float) -> None:
    """Write the one log line of a decision: id, outcome, status, determining rules and latency."""
    fields: dict[str, Any] = {
        "decision_id": decision.decision_id,
        "decision": decision.decision,
        "status": decision.status,
        "determining_rules": list(decision.determining_rules),
        "rulebook_version": decision.rulebook_version,
        "latency_ms": round(seconds * 1000, 3),
    }
    if decision.error:
        fields["error"] = decision.error
    decisions.info("decision", extra=fields)

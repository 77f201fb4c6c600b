"""Operations endpoints: liveness, readiness, Prometheus metrics, and the rules hot-reload."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from flask_smorest import Blueprint, abort

from ..contract.schemas import ErrorSchema, HealthSchema, ReadinessSchema, ReloadSchema
from ..service import readiness
from . import metrics
from .api import Policy, load_configured, policy

log = logging.getLogger(__name__)
blp = Blueprint("operations", __name__, description="Health, readiness, metrics and rule reloads")
RELOAD_ERROR = "policy_service.reload_error"


class ReloadFailed(Exception):
    """The rules in RULES_DIR did not load; the previous rule set stays active."""


def reload_rules(app: Flask) -> Policy:
    """Build a new rulebook and engine from RULES_DIR and swap them in; on failure keep the current ones."""
    try:
        fresh = load_configured(app.config)
    except Exception as error:  # noqa: BLE001 - whatever breaks the new rules, the last good set must stay
        message = f"{type(error).__name__}: {error}"
        app.extensions[RELOAD_ERROR] = message
        metrics.RELOADS.labels("failed").inc()
        log.error("rules reload failed, keeping %s: %s",
                  app.extensions["policy_service"].rulebook.version, message)
        raise ReloadFailed(message) from error
    # durable_rules cannot replace a ruleset in place, so a new engine is swapped in with one
    # reference assignment; a request in flight keeps the Policy it already read.
    app.extensions["policy_service"] = fresh
    app.extensions[RELOAD_ERROR] = None
    metrics.RELOADS.labels("loaded").inc()
    log.info("rules reloaded: %s", fresh.rulebook.version)
    return fresh


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
def healthz() -> dict[str, str]:
    """The process is alive and answering."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ErrorSchema, description="Rules not loaded, or the database takes no writes")
def readyz() -> dict[str, Any]:
    """Ready to decide: a rule set is loaded and the decision log database answers."""
    loaded: Policy | None = current_app.extensions.get("policy_service")
    problems: dict[str, list[str]] = {}
    if loaded is None:
        problems["rules"] = ["no rule set is loaded"]
    database = readiness.database_problem()
    if database is not None:
        problems["database"] = [database]
    if problems:
        abort(503, message="not ready: " + ", ".join(problems), errors=problems)
    return {
        "status": "ready",
        "rulebook_version": loaded.rulebook.version,
        "rules": len(loaded.rulebook.rules),
        "database": "ok",
        "last_reload_error": current_app.extensions.get(RELOAD_ERROR),
    }


@blp.route("/metrics", methods=["GET"])
@blp.doc(responses={"200": {"description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}})
def prometheus_metrics():
    """Request latency, decisions by outcome and by determining rule, errors and reloads."""
    return metrics.exposition()


@blp.route("/v1/admin/reload-rules", methods=["POST"])
@blp.response(200, ReloadSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The new rules did not load; the previous ones stay active")
def reload_rules_endpoint() -> dict[str, Any]:
    """Load RULES_DIR again into a new engine and swap it in (this process only: under gunicorn send SIGHUP)."""
    previous = policy().rulebook.version
    try:
        fresh = reload_rules(current_app._get_current_object())
    except ReloadFailed as error:
        abort(409, message=f"rules not reloaded, still serving {previous}: {error}")
    return {"rulebook_version": fresh.rulebook.version, "previous_rulebook_version": previous,
            "rules": len(fresh.rulebook.rules)}

"""Operations endpoints: liveness, readiness, Prometheus metrics, and the rules hot-reload."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, current_app, request
from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from ..contract.queries import NO_QUERY
from ..contract.schemas import ErrorSchema, HealthSchema, ReadinessSchema, ReloadSchema
from ..core.engine import RulesEngine
from ..core.rulebook import Rulebook, load_rulebook
from ..service import readiness
from ..service.decisions import Policy
from ..service.fleet import RulesFollower, RulesNotLoaded, published_now
from . import metrics, security
from .api import policy, refuse_body

log = logging.getLogger(__name__)
blp = Blueprint("operations", __name__, description="Health, readiness, metrics and rule reloads")
FOLLOWER = "policy_service.rules_follower"


class ReloadFailed(Exception):
    """The rules in RULES_DIR did not load; the previous rule set stays active."""


def init_app(app: Flask) -> None:
    """Serve the fleet's published rulebook (service/fleet.py): the rules loaded at start-up stand for the
    generation published then, and before each request (at most every RULES_CHECK_SECONDS) the process
    checks for a newer one."""
    config = app.config

    def serve(loaded: Policy) -> None:
        app.extensions["policy_service"] = loaded

    def served() -> str:
        loaded = app.extensions.get("policy_service")
        return loaded.rulebook.version if loaded is not None else ""

    follower: RulesFollower[Policy] = RulesFollower(
        read_rules=lambda: read_configured(config), compile=compiled, serve=serve, served=served,
        interval=float(config["RULES_CHECK_SECONDS"]), on_change=metrics.serving)
    app.extensions[FOLLOWER] = follower
    follower.start(published_now())
    app.before_request(follower.check)


def read_configured(config: Any) -> Rulebook:
    """The rulebook a Flask config names (RULES_DIR, RATE_CARDS, RATE_CARD_TIERS), validated, not compiled."""
    return load_rulebook(config["RULES_DIR"], rate_cards=config.get("RATE_CARDS") or None,
                         rate_card_tiers=config.get("RATE_CARD_TIERS") or None)


def compiled(rulebook: Rulebook) -> Policy:
    """The rulebook and its durable_rules engine (one more ruleset kept by this process for good)."""
    return Policy(rulebook, RulesEngine(rulebook))


def follower_of(app: Flask) -> RulesFollower[Policy]:
    """The app's rules follower."""
    return app.extensions[FOLLOWER]


def reload_rules(app: Flask, *, by: str = "sighup") -> str:
    """Read RULES_DIR again and publish its rulebook to the fleet (the gunicorn master on SIGHUP): nothing is
    compiled here; the workers forked next, and every worker of every instance on this database, follow.
    Returns the version published; raises ReloadFailed (the previous rules stay active) on broken rules."""
    follower = follower_of(app)
    try:
        rulebook = follower.parse()
    except RulesNotLoaded as error:
        metrics.RELOADS.labels("failed").inc()
        log.error("rules reload failed, keeping %s: %s", follower.following().rulebook_version, error)
        raise ReloadFailed(str(error)) from error
    published = follower.publish(rulebook.version, by=by)
    metrics.RELOADS.labels("published").inc()
    log.info("rules reload published: %s (generation %s)", rulebook.version, published.generation)
    return rulebook.version


@blp.route("/healthz", methods=["GET"])
# Like every route: a parameter it does not take (?x=1) is a 422 naming it (query.x), not ignored.
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.response(200, HealthSchema)
def healthz(_query: dict[str, Any]) -> dict[str, str]:
    """The process is alive and answering."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ErrorSchema, description="Rules not loaded, this worker's rulebook is not the one the "
                  "fleet published (`errors.rules` names both), or the database takes no writes")
def readyz(_query: dict[str, Any]) -> dict[str, Any]:
    """Ready to decide: a rule set is loaded, it is the rulebook the fleet last published (else 503 naming both
    versions: service.readiness.rules_problem), and the decision log database takes a write; which rulebook (and
    generation) this worker serves beside the one the fleet last published."""
    follower = follower_of(current_app)
    follower.check(force=True)  # first: what it serves after following is what this answer names
    serving = follower.following()
    loaded: Policy | None = current_app.extensions.get("policy_service")
    problems: dict[str, list[str]] = {}
    if loaded is None:
        problems["rules"] = ["no rule set is loaded"]
    elif (stale := readiness.rules_problem(serving)) is not None:
        problems["rules"] = [stale]
    database = readiness.database_problem()
    if database is not None:
        problems["database"] = [database]
    if problems:
        abort(503, message="not ready: " + "; ".join(f"{name}: {reasons[0]}" for name, reasons in problems.items()),
              errors=problems)
    return {
        "status": "ready",
        "rulebook_version": serving.rulebook_version,
        "rules": len(loaded.rulebook.rules),
        "database": "ok",
        "last_reload_error": serving.last_error,
        "rules_generation": serving.generation,
        "fleet_rules_generation": serving.fleet.generation,
        "fleet_rulebook_version": serving.fleet.rulebook_version or None,
        "follows_fleet": serving.follows_fleet,
        "recycling": serving.recycling,
        "worker_pid": os.getpid(),
    }


@blp.route("/metrics", methods=["GET"])
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.doc(responses={"200": {"description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}})
def prometheus_metrics(_query: dict[str, Any]):
    """Request latency, decisions by outcome and by determining rule, errors, reloads, the rulebook each
    worker serves."""
    return metrics.exposition()


@blp.route("/v1/admin/reload-rules", methods=["POST"])
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.response(200, ReloadSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The new rules did not load; the previous ones stay active")
@blp.alt_response(400, schema=ErrorSchema, description="A body that is not valid JSON (the route takes none)")
@blp.alt_response(415, schema=ErrorSchema, description="A body not sent as application/json (the route takes none)")
def reload_rules_endpoint(_query: dict[str, Any]) -> dict[str, Any]:
    """Load RULES_DIR again and publish it to the fleet: this worker serves it at once, every other worker of
    every instance on this database within `fleet_follows_within_seconds` (each checks the published
    rulebook that often, then is recycled into a fresh process, so no process keeps compiling rulesets). It takes
    no body: a JSON member ({"x": 1}) is a 422 naming it, and nothing is reloaded."""
    refuse_body(request)
    follower = follower_of(current_app)
    previous = policy().rulebook.version
    try:
        rulebook, fresh = follower.load()
    except RulesNotLoaded as error:
        follower.last_error = str(error)
        metrics.RELOADS.labels("failed").inc()
        log.error("rules reload failed, keeping %s: %s", previous, error)
        abort(409, message=f"rules not reloaded, still serving {previous}: {error}", errors={"rules": [str(error)]})
    published = follower.publish(rulebook.version, by=security.key_name() or "")
    follower.adopt(fresh, rulebook, published.generation)
    metrics.RELOADS.labels("loaded").inc()
    log.info("rules reloaded and published: %s (generation %s)", rulebook.version, published.generation)
    return {"rulebook_version": rulebook.version, "previous_rulebook_version": previous,
            "rules": len(rulebook.rules), "generation": published.generation,
            "fleet_follows_within_seconds": follower.interval}

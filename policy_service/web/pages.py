"""Reviewer pages: the rule catalogue, a logged decision on a timeline, and a form to try a history."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from marshmallow import ValidationError

from ..contract.parsing import BodyRefused, bounded_errors, decision_limits, flatten_errors, parse_json
from ..contract.schemas import REQUEST
from ..core import timeline
from ..core.errors import EngineError
from ..core.rulebook import CONFIDENCE
from ..review import coverage
from ..review.fixtures import discover, run_fixture
from ..store import decision_log
from .api import Policy, decide, policy

bp = Blueprint("ui", __name__, url_prefix="/ui")
# Keyed by rulebook version: the rules directory cannot change under a loaded rulebook.
_CACHE: dict[tuple[str, ...], Any] = {}


@bp.route("/")
def index():
    """The reviewer pages start at the rule catalogue."""
    return redirect(url_for("ui.rules"))


@bp.route("/rules")
def rules():
    """Every rule, filtered by policy version, area and confidence, with the fixtures that cover it."""
    loaded = policy()
    book = loaded.rulebook
    areas = {rule.file: rule.area for rule in book.rules}
    chosen = {key: request.args.get(key, "") for key in ("version", "area", "confidence")}
    version = next((v for v in book.versions if v.id == chosen["version"]), None)
    shown = [
        rule for rule in book.rules
        if (version is None or rule.overlaps(version))
        and (not chosen["area"] or areas[rule.file] == chosen["area"])
        and (not chosen["confidence"] or rule.confidence == chosen["confidence"])
    ]
    return render_template(
        "ui/rules.html", rulebook=book, rules=shown, chosen=chosen, areas=areas,
        area_names=sorted(set(areas.values())), confidence=CONFIDENCE,
        versions_of={rule.id: [v.id for v in book.versions if rule.overlaps(v)] for rule in shown},
        coverage=fixture_coverage(loaded, _fixtures_dir()),
    )


@bp.route("/decisions/<string:decision_id>")
def decision(decision_id: str):
    """A logged decision: the outcome, its trace and its timeline."""
    logged = decision_log.get(decision_id)
    if logged is None:
        return render_template("ui/not_found.html", decision_id=decision_id), 404
    view = decision_view(logged["request"], logged["response"])
    return render_template("ui/decision.html", logged=logged, **view)


@bp.route("/try", methods=["GET", "POST"])
def try_request():
    """Pick a fixture or paste a request, submit it, and see the decision it gets."""
    fixtures = {f.name: f for f in discover([_fixtures_dir()])}
    picked = request.values.get("fixture", "")
    errors: dict[str, list[str]] = {}
    result = None
    if request.method == "POST":
        text = request.form.get("request", "")
        errors, raw, proposal = _parse(text)
        if proposal is not None:
            body = decide(proposal, raw)
            result = {"response": body, **decision_view(raw, body)}
    elif picked in fixtures:
        text = json.dumps(fixtures[picked].request, indent=2)
    else:
        text = ""
    return render_template("ui/try.html", fixtures=fixtures, picked=picked, text=text, errors=errors,
                           result=result), 422 if errors else 200


@bp.app_template_filter("http_url")
def http_url(url: str) -> str:
    """The URL if it is http(s), else "#": a citation in a rule file must never become a script link."""
    return url if re.match(r"^https?://", url or "", re.IGNORECASE) else "#"


def decision_view(raw_request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """What the decision template needs: the response and its timeline (None if it cannot be replayed)."""
    loaded = policy()
    try:
        region = response.get("facts", {}).get("seen_by_rules", {}).get("recipient_region", "ZZ")
        proposal = REQUEST.load(decision_log.with_example_recipient(raw_request, region))
        shown = timeline.from_request(proposal, loaded.rulebook, loaded.engine,
                                      delivered=response.get("decision") == "allow")
    except (ValidationError, EngineError):
        # The decision itself is already made and logged; a page without a picture beats an error page.
        shown = None
    return {"response": response, "timeline": shown, "confidence": CONFIDENCE}


def fixture_coverage(loaded: Policy, directory: str) -> dict[str, tuple[str, ...]]:
    """Rule id -> names of the fixtures whose decision trace names it (computed once per rulebook)."""
    key = ("coverage", loaded.rulebook.version, directory)
    if key not in _CACHE:
        results = (run_fixture(f, rulebook=loaded.rulebook, engine=loaded.engine) for f in discover([directory]))
        _CACHE[key] = coverage.measure(loaded.rulebook, results).covering
    return _CACHE[key]


def _parse(text: str) -> tuple[dict[str, list[str]], Any, Any]:
    # The form's text goes through the same parser and limits as an API body.
    try:
        raw = parse_json(text, decision_limits())
    except BodyRefused as refused:
        return refused.errors, None, None
    try:
        return {}, raw, REQUEST.load(raw)
    except ValidationError as error:
        return bounded_errors(flatten_errors(error.messages)), raw, None


def _fixtures_dir() -> str:
    return str(current_app.config["FIXTURES_DIR"])

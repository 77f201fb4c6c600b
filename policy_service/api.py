"""HTTP views: each one glues request schema -> evaluation -> decision log -> response schema."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import current_app, request
from flask_smorest import Api, Blueprint, abort
from werkzeug.exceptions import HTTPException

from . import decision_log, histories
from .engine import RulesEngine
from .evaluate import evaluate
from .messages import DecisionRequest
from .rulebook import Rulebook
from .schemas import DecisionRequestSchema, DecisionResponseSchema, ErrorSchema, ExplainSchema

blp = Blueprint("decisions", __name__, url_prefix="/v1", description="Decide whether a WhatsApp send is allowed")


@dataclass(frozen=True)
class Policy:
    """The loaded rulebook and the engine compiled from it."""

    rulebook: Rulebook
    engine: RulesEngine


class PolicyApi(Api):
    """flask-smorest's Api with one error shape: {code, status, message, errors: {field: [messages]}}."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        """Render any HTTP error in the single JSON shape, never with a stack trace."""
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages") or {}
        flat = flatten_errors(errors.get("json", errors) if isinstance(errors, dict) else {"_request": errors})
        message = data.get("message") or _summary(error, flat)
        payload = {"code": error.code, "status": error.name, "message": message, "errors": flat}
        return payload, error.code, data.get("headers", {})


def policy() -> Policy:
    """The policy (rulebook and engine) of the running app."""
    return current_app.extensions["policy_service"]


@blp.route("/decisions", methods=["POST"])
@blp.arguments(DecisionRequestSchema, error_status_code=422)
@blp.arguments(ExplainSchema, location="query", error_status_code=422)
@blp.alt_response(200, schema=DecisionResponseSchema, success=True, description="The decision")
@blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
def create_decision(proposal: DecisionRequest, query: dict[str, Any]):
    """Decide a proposed send: allow or deny, the required message type, the charge, and why."""
    return decide(proposal, request.get_json(), explain_why_not=query.get("explain") == "full")


def decide(proposal: DecisionRequest, raw: dict[str, Any], *, explain_why_not: bool = False) -> dict[str, Any]:
    """Evaluate one validated request, log it, and return the response body."""
    loaded = policy()
    source = None
    if "history_ref" in raw:
        proposal, raw, source = _resolve_history(proposal, raw)
    decision = evaluate(proposal, rulebook=loaded.rulebook, engine=loaded.engine, explain_why_not=explain_why_not)
    body = DecisionResponseSchema().dump(decision)
    if source is not None:
        body["history_source"] = source
    # Logged before returning, so every decision_id a client sees is already in the log.
    decision_log.record(decision, raw, body, mask=current_app.config["MASK_PHONE_NUMBERS"])
    return body


def _resolve_history(proposal: DecisionRequest,
                     raw: dict[str, Any]) -> tuple[DecisionRequest, dict[str, Any], dict[str, Any]]:
    # The logged request carries the resolved history inline, so it replays after the store changes.
    ref = {**raw["history_ref"], "contact": raw["history_ref"]["contact"].lstrip("+")}
    history = histories.stored_history(ref["phone_number_id"], ref["contact"], proposal.send.at)
    logged = {key: value for key, value in raw.items() if key != "history_ref"}
    logged["history"] = histories.history_json(history)
    source = {"ref": ref, "events": [message.id for message in history]}
    return replace(proposal, history=history), logged, source


@blp.route("/decisions/<string:decision_id>", methods=["GET"])
@blp.response(200)
@blp.alt_response(404, schema=ErrorSchema, description="No decision with this id")
def get_decision(decision_id: str):
    """A logged decision, as it was returned, with the (masked) request."""
    logged = decision_log.get(decision_id)
    if logged is None:
        abort(404, message=f"no decision with id {decision_id!r}")
    return logged


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as {\"send.at\": [messages]} paths."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        flat[prefix or "_request"] = list(errors)
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "_request"] = [str(errors)]
    return flat


def _summary(error: HTTPException, flat: dict[str, list[str]]) -> str:
    if flat:
        first = next(iter(flat))
        more = f" (and {len(flat) - 1} more)" if len(flat) > 1 else ""
        return f"invalid request: {first}: {flat[first][0]}{more}"
    return error.description or error.name

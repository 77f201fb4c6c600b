"""HTTP views: each one glues request schema -> evaluation -> decision log -> response schema."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import flask
from flask import current_app
from flask_smorest import Api, Blueprint, abort
from marshmallow import Schema
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from ..contract.parsing import (
    BodyRefused,
    Limits,
    batch_limits,
    bounded_errors,
    decision_limits,
    error_message,
    flatten_errors,
    parse_json,
)
from ..contract.schemas import (
    BATCH_REQUEST,
    DECISION_REQUEST_EXAMPLE,
    DECISION_RESPONSE_EXAMPLE,
    ERROR_EXAMPLE,
    EXPLAIN,
    LOGGED_DECISION,
    REQUEST,
    RESPONSE,
    BatchResponseSchema,
    DecisionResponseSchema,
    ErrorSchema,
)
from ..core.engine import RulesEngine
from ..core.evaluate import evaluate
from ..core.messages import DecisionRequest
from ..core.rulebook import Rulebook, load_rulebook
from ..store import decision_log, histories
from . import logs, metrics


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser reading bodies through contract.parsing (the one place every body is parsed,
    within its endpoint's limits), keeping the body it parsed for the view (see request_json), and
    building a schema given as a class once (webargs builds one per request; flask-smorest's
    pagination passes a class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._instances: dict[type[Schema], Schema] = {}

    def _get_schema(self, argmap: Any, req: flask.Request) -> Schema:
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            schema = self._instances.get(argmap)
            if schema is None:
                schema = self._instances[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: flask.Request) -> Any:
        # `missing` unless the request says it is JSON, as webargs does.
        body = parse_body(req.get_data(cache=True), _limits(req.endpoint)) if is_json_request(req) else missing

        flask.g.request_json = body
        return body


def parse_body(body: bytes | str, limits: Limits) -> Any:
    """parse_json, its refusal turned into the HTTP error (400 or 422) in the one error shape."""
    try:
        return parse_json(body, limits)
    except BodyRefused as refused:
        abort(refused.status, message=refused.message, errors=refused.errors)


def _limits(endpoint: str | None) -> Limits:
    if endpoint == "decisions.create_decisions":
        return batch_limits(current_app.config["MAX_BATCH_SIZE"])
    return decision_limits()


def request_json() -> Any:
    """The request body as the arguments parser parsed it (the views log it; parsing it again is wasted work)."""
    return flask.g.request_json


blp = Blueprint("decisions", __name__, url_prefix="/v1", description="Decide whether a WhatsApp send is allowed")
blp.ARGUMENTS_PARSER = JsonBodyParser()


@dataclass(frozen=True)
class Policy:
    """The loaded rulebook and the engine compiled from it."""

    rulebook: Rulebook
    engine: RulesEngine

    @classmethod
    def load(cls, rules_dir: str, *, rate_cards: str | None = None, rate_card_tiers: str | None = None) -> Policy:
        """Load and validate the rule files in a directory (and the rate cards) and compile a new engine."""
        rulebook = load_rulebook(rules_dir, rate_cards=rate_cards, rate_card_tiers=rate_card_tiers)
        return cls(rulebook, RulesEngine(rulebook))


class PolicyApi(Api):
    """flask-smorest's Api with one error shape: {code, status, message, errors: {field: [messages]}}."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        """Render any HTTP error in the single JSON shape, never with a stack trace."""
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages") or {}
        flat = flatten_errors(errors.get("json", errors) if isinstance(errors, dict) else {"_request": errors})
        message = data.get("message") or (error_message(flat) if flat else error.description or error.name)
        # Bounded: a body with 10,000 wrong items gets the first fields and a count, not 10,000 entries.
        payload = {"code": error.code, "status": error.name, "message": message, "errors": bounded_errors(flat)}
        # Keep the error's own headers (Allow on a 405, WWW-Authenticate on a 401), not its HTML type.
        headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        return payload, error.code, {**headers, **(data.get("headers") or {})}


def load_configured(config: Any) -> Policy:
    """The policy a Flask config names: RULES_DIR, and RATE_CARDS / RATE_CARD_TIERS when set."""
    return Policy.load(config["RULES_DIR"], rate_cards=config.get("RATE_CARDS") or None,
                       rate_card_tiers=config.get("RATE_CARD_TIERS") or None)


def policy() -> Policy:
    """The policy (rulebook and engine) of the running app."""
    return current_app.extensions["policy_service"]


@blp.route("/decisions", methods=["POST"])
@blp.arguments(REQUEST, error_status_code=422, example=DECISION_REQUEST_EXAMPLE)
@blp.arguments(EXPLAIN, location="query", error_status_code=422)
@blp.alt_response(200, schema=DecisionResponseSchema, success=True, description="The decision",
                  example=DECISION_RESPONSE_EXAMPLE)
@blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
@blp.alt_response(422, schema=ErrorSchema, description="Invalid request, by field path", example=ERROR_EXAMPLE)
def create_decision(proposal: DecisionRequest, query: dict[str, Any]):
    """Decide a proposed send: allow or deny, the required message type, the charge, and why."""
    _, text = decided(proposal, request_json(), explain_why_not=query.get("explain") == "full")
    return _json_response(text)


@blp.route("/decisions/batch", methods=["POST"])
@blp.arguments(BATCH_REQUEST, error_status_code=422,
               example={"requests": [DECISION_REQUEST_EXAMPLE, DECISION_REQUEST_EXAMPLE]})
@blp.alt_response(200, schema=BatchResponseSchema, success=True, description="The decisions, in request order")
@blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
@blp.alt_response(422, schema=ErrorSchema, description="Invalid request; paths start requests.<index>")
def create_decisions(batch: dict[str, list[DecisionRequest]]):
    """Decide several proposed sends; each is evaluated and logged exactly as POST /v1/decisions would."""
    # The body parser has refused more than MAX_BATCH_SIZE requests before they were deserialized.
    proposals = batch["requests"]
    raw = request_json()["requests"]
    texts = [decided(proposal, raw[index])[1] for index, proposal in enumerate(proposals)]
    return _json_response(b'{"decisions":[' + b",".join(texts) + b"]}")


def decide(proposal: DecisionRequest, raw: dict[str, Any], *, explain_why_not: bool = False) -> dict[str, Any]:
    """Evaluate one validated request, log it, and return the response body."""
    return decided(proposal, raw, explain_why_not=explain_why_not)[0]


def decided(proposal: DecisionRequest, raw: dict[str, Any], *,
            explain_why_not: bool = False) -> tuple[dict[str, Any], bytes]:
    """Evaluate one validated request, log it, and return the response body and its JSON (serialized once:
    the log row stores the same bytes the client receives)."""
    started = time.perf_counter()
    loaded = policy()
    source = None
    if "history_ref" in raw:
        proposal, raw, source = _resolve_history(proposal, raw)
    decision = evaluate(proposal, rulebook=loaded.rulebook, engine=loaded.engine, explain_why_not=explain_why_not)
    body = RESPONSE.dump(decision)
    if source is not None:
        body["history_source"] = source
    text = decision_log.dumps(body)
    # Logged before returning, so every decision_id a client sees is already in the log.
    decision_log.record(decision, raw, body, mask=current_app.config["MASK_PHONE_NUMBERS"], response_json=text)
    metrics.count_decision(decision)
    logs.log_decision(decision, time.perf_counter() - started)
    return body, text


def _json_response(text: bytes) -> flask.Response:
    return current_app.response_class(text, mimetype="application/json")


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
@blp.response(200, LOGGED_DECISION)
@blp.alt_response(404, schema=ErrorSchema, description="No decision with this id")
def get_decision(decision_id: str):
    """A logged decision, as it was returned, with the (masked) request."""
    logged = decision_log.get(decision_id)
    if logged is None:
        abort(404, message=f"no decision with id {decision_id!r}")
    return logged

"""HTTP views: each one glues request schema -> evaluation -> decision log -> response schema."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import flask
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import resolve_schema_instance
from flask import current_app
from flask_smorest import Api, Blueprint, abort
from marshmallow import RAISE, Schema, ValidationError, missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import IntegerConverter, UnicodeConverter

from ..contract.parsing import (
    ROOT,
    BodyRefused,
    Limits,
    batch_limits,
    bounded_errors,
    decision_limits,
    error_message,
    flatten_errors,
    forget,
    parse_json,
)
from ..contract.queries import NO_QUERY
from ..contract.schemas import (
    BATCH_REQUEST,
    DECISION_REQUEST_EXAMPLE,
    DECISION_RESPONSE_EXAMPLE,
    ERROR_EXAMPLE,
    EXPLAIN,
    LOGGED_DECISION,
    REQUEST,
    BatchResponseSchema,
    DecisionResponseSchema,
    ErrorSchema,
    ResponseSchema,
)
from ..core.messages import DecisionRequest
from ..service import decisions, idempotency, logged
from ..service.decisions import Policy, load_policy
from ..service.errors import ServiceError, quoted
from . import logs, metrics, security


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser reading bodies through contract.parsing (the one place every body is parsed,
    within its endpoint's limits), keeping the body it parsed for the view (see request_json), and
    building a schema given as a class once (webargs builds one per request; flask-smorest's
    pagination passes a class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._instances: dict[type[Schema], Schema] = {}
        # (argmap, unknown) -> what the schema loads from an empty query string where that is a constant
        # (_constant_when_empty), else None: most requests send no query parameter, and webargs' parse of it
        # through marshmallow cost ~14 µs a request on POST /v1/decisions.
        self._empty_queries: dict[tuple[Any, Any], dict[str, Any] | None] = {}

    def _get_schema(self, argmap: Any, req: flask.Request) -> Schema:
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            schema = self._instances.get(argmap)
            if schema is None:
                schema = self._instances[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def parse(self, argmap: Any, req: flask.Request | None = None, *, location: str | None = None,
              **kwargs: Any) -> Any:
        """webargs' parse; an empty query string of a schema for which it loads a constant is answered from
        that constant (a copy), without marshmallow."""
        request = req if req is not None else flask.request
        if location not in ("query", "querystring") or kwargs.get("validate") is not None or request.args \
                or not isinstance(argmap, Schema | type):
            return super().parse(argmap, req, location=location, **kwargs)
        key = (argmap, kwargs.get("unknown", _UNSEEN))
        loaded = self._empty_queries.get(key, _UNSEEN)
        if loaded is _UNSEEN:
            loaded = super().parse(argmap, req, location=location, **kwargs)
            if not _constant_when_empty(self._get_schema(argmap, request)):
                self._empty_queries[key] = None
                return loaded
            self._empty_queries[key] = loaded
        elif loaded is None:
            return super().parse(argmap, req, location=location, **kwargs)
        return dict(loaded)

    def pre_load(self, location_data: Any, *, schema: Schema, req: flask.Request, location: str) -> Any:
        """A query parameter given more than once where one value is read (?explain=full&explain=none) is a
        422 naming it: webargs would read the first and drop the rest unseen."""
        if location in ("query", "querystring"):
            fields = {field.data_key or name: field for name, field in schema.fields.items()}
            if repeated := repeated_parameters(
                    req.args, lambda key: key in fields and not self._takes_several(fields[key])):
                raise ValidationError(repeated)
        return super().pre_load(location_data, schema=schema, req=req, location=location)

    def _takes_several(self, field: Any) -> bool:
        # webargs' own test (MultiDictProxy): a field's is_multiple, else a List or Tuple; a DelimitedList
        # (?categories=a,b) takes one value.
        several = getattr(field, "is_multiple", None)
        return several if several is not None else isinstance(field, tuple(self.KNOWN_MULTI_FIELDS))

    def _raw_load_json(self, req: flask.Request) -> Any:
        # A body not sent as JSON is a 415: webargs would read it as absent and blame the first required field.
        require_json(req)
        body = parse_body(req.get_data(cache=True), _limits(req.endpoint))
        flask.g.request_json = body
        return body


_UNSEEN = object()


def _forget_parsed_body(_: BaseException | None) -> None:
    forget()


def _constant_when_empty(schema: Schema) -> bool:
    """Whether loading an empty mapping always gives the same dict of immutable values: no hooks, no required
    field, and every load_default absent or a string, number, boolean or None (a list would be shared)."""
    if any(schema._hooks.values()):
        return False
    return all(not field.required and (field.load_default is missing
                                       or type(field.load_default) in (str, int, float, bool, type(None)))
               for field in schema.load_fields.values())


def repeated_parameters(args: Any, reads_one: Callable[[str], bool] = lambda key: True) -> dict[str, list[str]]:
    """The query parameters given more than once among those `reads_one` says take one value (default: every one),
    as field errors ("given 2 times; give it once"): which value was meant cannot be known. `args` is a request's
    MultiDict. The API's arguments parser and the pages refuse them alike."""
    return {key: [f"given {len(values)} times; give it once"] for key, values in args.lists()
            if len(values) > 1 and reads_one(key)}


def require_json(req: flask.Request) -> None:
    """Abort with 415, naming the header, unless the body is sent as JSON — application/json, or a type with the
    +json suffix (RFC 6839: application/vnd.api+json is JSON too) — in UTF-8 (no charset, or utf-8: RFC 8259 JSON
    is UTF-8, so `charset=latin-1` is refused, not read as UTF-8 anyway), uncompressed (no Content-Encoding but
    identity)."""
    if not is_json_request(req):
        abort(415, message="send the body as JSON, with Content-Type: application/json",
              errors={"headers.Content-Type": [f"must be application/json, got {req.mimetype or 'none'}"]})
    charset = req.mimetype_params.get("charset")
    if charset is not None and charset.strip().lower() not in ("utf-8", "utf8"):
        abort(415, message="send the body as UTF-8 JSON: Content-Type's charset must be utf-8 or absent",
              errors={"headers.Content-Type": [f"charset must be utf-8 (JSON is UTF-8), got {charset[:32]}"]})
    encoding = req.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # A compressed body would be read as text and refused as "not UTF-8", hiding what to change.
        abort(415, message="send the body uncompressed: no Content-Encoding is accepted",
              errors={"headers.Content-Encoding": [f"must be absent (identity), got {encoding[:32]}"]})


def refuse_body(req: flask.Request) -> None:
    """For a route that takes no body (POST /v1/admin/reload-rules): an empty body, or an empty JSON object, passes;
    a JSON object's members are a 422 naming each ("x": unknown field), any other JSON value a 422 naming the
    request, a body not sent as JSON a 415, malformed JSON a 400 — so a request meant for something else does
    nothing."""
    body = req.get_data(cache=True)
    if not body:
        return
    require_json(req)
    value = parse_body(body, decision_limits())
    if value == {}:
        return
    errors = {str(key): ["Unknown field: this route takes no body"] for key in value} if isinstance(value, dict) \
        else {ROOT: ["this route takes no body (an empty JSON object at most)"]}
    abort(422, message=error_message(errors), errors=bounded_errors(errors))


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


class ContractConverter(OpenAPIConverter):
    """Response schemas as typed clients need them: every field `required` but the schema's OPTIONAL ones
    (a field that may be null says so: `allow_none`), and no `additionalProperties: false`, so a client
    generated today keeps working when a response gains a field."""

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        instance = resolve_schema_instance(schema)
        if isinstance(instance, ResponseSchema):
            jsonschema.pop("additionalProperties", None)
            optional = {instance.fields[name].data_key or name for name in instance.OPTIONAL}
            jsonschema["required"] = sorted(set(jsonschema["properties"]) - optional)
        for name, prop in jsonschema["properties"].items():
            jsonschema["properties"][name] = _nullable_enum(prop)
        if isinstance(instance, ErrorSchema):
            jsonschema["description"] = ERRORS_NAMED
        return jsonschema


ERRORS_NAMED = (
    "The one error shape. `errors` maps what was wrong to its messages: a body field by its path (send.at, "
    "requests.0.send.to), a parameter by its location (query.from, path.decision_id, headers.Idempotency-Key), "
    "`path` for a URL no route serves, `method` for a method the route does not take (a 405, naming the methods "
    "it takes, which the Allow header lists too), `_request` for the request as a whole. A 4xx always names "
    "something; a 5xx may name nothing.")


def _nullable_enum(prop: dict[str, Any]) -> dict[str, Any]:
    """{type: [string, null], enum: [a, b, null]} as anyOf [{type: string, enum: [a, b]}, {type: null}]: the
    same values, in the form client generators turn into `Enum | None` (one enum, not three copies)."""
    types = prop.get("type")
    if not (isinstance(types, list) and "null" in types and "enum" in prop):
        return prop
    rest = {key: value for key, value in prop.items() if key not in ("type", "enum")}
    (kind,) = [t for t in types if t != "null"]
    values = [value for value in prop["enum"] if value is not None]
    return {**rest, "anyOf": [{"type": kind, "enum": values}, {"type": "null"}]}


# The 408 of gunicorn's worker (web/worker.py, server_errors.body_cut_short); the local server sets no timeouts.
LATE_HEAD = ("Under gunicorn: the request's head (request line and headers) did not arrive within "
             "POLICY_HEADER_TIMEOUT seconds")
LATE_BODY = ", or its body stopped arriving (POLICY_BODY_TIMEOUT seconds without a byte)"


def _error(description: str) -> dict[str, Any]:
    error = {"schema": {"$ref": "#/components/schemas/Error"}}
    return {"description": description, "content": {"application/json": error}}


class ContractPlugin(MarshmallowPlugin):
    """The marshmallow plugin with ContractConverter, naming every operation (operationId: the view's name,
    camelCased) and documenting the errors every route can answer besides its own."""

    Converter = ContractConverter

    def operation_helper(self, path=None, operations=None, **kwargs):
        super().operation_helper(path=path, operations=operations, **kwargs)
        endpoint = kwargs["rule"].endpoint
        for operation in (operations or {}).values():
            view = endpoint.rpartition(".")[2]
            first, *rest = view.split("_")
            operation.setdefault("operationId", first + "".join(word.capitalize() for word in rest))
            responses = operation.setdefault("responses", {})
            if security.needs_key(endpoint):
                responses.setdefault("401", _error("No API key, or not a valid one (when keys are configured)"))
            else:
                # Probes, the spec and Meta's webhooks (signed by Meta instead) never take an API key.
                operation.setdefault("security", [])
            if kwargs["rule"].arguments:
                # Every path parameter can name nothing: the 404 names it (handle_service_error, unnamed).
                named = ", ".join(f"path.{argument}" for argument in sorted(kwargs["rule"].arguments))
                # A route's own 404 (alt_response) is keyed by the number here, the ones added here by text.
                found = responses.get(404) or responses.setdefault("404", _error("The path names nothing"))
                found["description"] = f"{found.get('description') or 'Not found'}; `errors` names the path " \
                                       f"parameter that names nothing ({named}), or `path`"
            if "requestBody" in operation:
                responses.setdefault("400", _error("The body is not valid JSON"))
                responses.setdefault("413", _error("The body is larger than POLICY_MAX_CONTENT_LENGTH"))
                responses.setdefault("415", _error("The body is not sent as Content-Type: application/json"))
            # gunicorn's worker answers a late head on every path, before any route (web/worker.py); a stalled body
            # only where one is read: a route taking a body, or checking that none came (its 415).
            reads_body = "requestBody" in operation or 415 in responses or "415" in responses
            responses.setdefault("408", _error(LATE_HEAD + (LATE_BODY if reads_body else "")
                                                + "; the connection is closed after the answer"))


class AsciiIntegerConverter(IntegerConverter):
    """`<int:...>` in a route: ASCII digits only. Werkzeug's `\\d+` also matched other scripts' digits, which int()
    reads: /v1/admin/webhooks/１ (fullwidth) answered payload 1, where "abc" names no path. Documented as an integer
    (flask-smorest maps converters by their classes' MRO)."""

    regex = r"[0-9]+"


class DecisionIdConverter(UnicodeConverter):
    """`<decision_id:...>`: a decision's id, any path segment but `batch`. GET /v1/decisions/batch was taken for the
    id 'batch' (a 404 "no decision with id 'batch'") and a PUT there named GET among the path's methods: now only
    the batch route matches that path, so any other method is its 405 (allowed: OPTIONS, POST). Documented as a
    string (flask-smorest maps converters by their classes' MRO)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        # UnicodeConverter sets its regex per instance (flask-smorest reads its {1,} bound for the document).
        self.regex = r"(?!batch\Z)[^/]{1,}"


class PolicyApi(Api):
    """flask-smorest's Api with one error shape: {code, status, message, errors: {field: [messages]}}, and the
    OpenAPI document written for typed clients (ContractPlugin)."""

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, app: flask.Flask) -> None:
        # Before any blueprint is registered: a rule takes its converter when it is added.
        app.url_map.converters["int"] = AsciiIntegerConverter
        app.url_map.converters["decision_id"] = DecisionIdConverter
        # /v1//decisions was a Werkzeug 308 redirect with an HTML body to /v1/decisions: a path no route serves is a
        # 404 in the error shape (an HTML page under /ui/), as //v1/decisions already was. The rules added before
        # (Flask's static files) are recompiled alike.
        app.url_map.merge_slashes = False
        for rule in app.url_map.iter_rules():
            rule.merge_slashes = False
            rule.compile()
        super().__init__(app, spec_kwargs={"marshmallow_plugin": ContractPlugin()})
        app.register_error_handler(ServiceError, self.handle_service_error)
        # The spec takes no query parameter: ?x=1 is a 422 naming query.x, as on every route. Registered for the
        # spec's blueprint only, so no other request pays for the check.
        app.before_request_funcs.setdefault(SPEC_BLUEPRINT, []).append(_no_query)
        # What parse_json kept of this request's body (a long history's typed messages and its text, up to ~6 MB for
        # 10,000 events) is let go when the request ends, also when it was refused after parsing or not logged:
        # otherwise each thread held its last body until it parsed the next.
        app.teardown_request(_forget_parsed_body)

    def handle_service_error(self, error: ServiceError):
        """A request the service layer refused, answered as the HTTP error it names (same body, and its
        Retry-After when it has one). The service names an argument as Python does (decision_id); one the
        route took from the path is named as the API names its locations: path.decision_id (as query.from)."""
        headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
        in_path = flask.request.view_args or {}
        errors = {f"path.{key}" if key in in_path else key: messages for key, messages in error.errors.items()}
        try:
            abort(error.code, message=error.message, errors=errors, headers=headers)
        except HTTPException as http:
            return self.handle_http_exception(http)

    def handle_http_exception(self, error: HTTPException):
        """Render any HTTP error in the single JSON shape, never with a stack trace. A 4xx always names what
        was wrong in `errors`: Werkzeug's own say nothing, so a path no route serves is named `path`, a method
        the route does not take `method` (with the ones it takes, also in the Allow header), and any other the
        request as a whole (`_request`)."""
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages") or {}
        flat = flatten_errors(errors.get("json", errors) if isinstance(errors, dict) else {"_request": errors})
        message = data.get("message")
        if error.code == 413 and not flat:
            message, flat = too_large(current_app.config.get("MAX_CONTENT_LENGTH"), flask.request.content_length)
        elif not flat and error.code is not None and 400 <= error.code < 500:
            message, flat = unnamed(error, message)
        message = message or (error_message(flat) if flat else error.description or error.name)
        # Bounded: a body with 10,000 wrong items gets the first fields and a count, not 10,000 entries.
        payload = {"code": error.code, "status": error.name, "message": message, "errors": bounded_errors(flat)}
        # Keep the error's own headers (Allow on a 405, WWW-Authenticate on a 401), not its HTML type.
        headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        return payload, error.code, {**headers, **(data.get("headers") or {})}


SPEC_BLUEPRINT = "api-docs"  # flask-smorest's blueprint serving /openapi.json


def _no_query() -> None:
    if flask.request.args:
        errors = {f"query.{key}": ["Unknown field."] for key in flask.request.args}
        abort(422, message=error_message(errors), errors=bounded_errors(errors))


def too_large(limit: int | None, length: int | None) -> tuple[str, dict[str, list[str]]]:
    """The message and errors of the one error shape for a body over the size limit (Werkzeug's 413 names
    neither the setting nor its value): "the body is larger than POLICY_MAX_CONTENT_LENGTH (N bytes)",
    {"_request": ["at most N bytes, got M"]} (M when the request said its length)."""
    bound = f"{limit:,} bytes" if limit is not None else "its limit"
    got = f", got {length:,}" if length is not None else ""
    return f"the body is larger than POLICY_MAX_CONTENT_LENGTH ({bound})", {"_request": [f"at most {bound}{got}"]}


def unnamed(error: HTTPException, message: str | None) -> tuple[str, dict[str, list[str]]]:
    """The message and errors of the one error shape for a 4xx that names nothing (Werkzeug's 404 and 405,
    an abort without errors): a 404 (no route matched the path, or a static file is not there) names `path`
    ("/v1/nope is not a path of this service"), a 405 `method` ("DELETE is not allowed here; allowed: GET,
    HEAD, OPTIONS"), any other `_request` (its message)."""
    request = flask.request
    if isinstance(error, MethodNotAllowed):
        allowed, method = ", ".join(sorted(error.valid_methods or ())), request.method[:32]
        return (message or f"the method {method} is not allowed on {quoted(request.path, 200)}; "
                           f"it takes {allowed}",
                {"method": [f"{method} is not allowed here; allowed: {allowed}"]})
    if error.code == 404:  # no route matched, or one found nothing (a static file)
        return (message or f"no such path: {quoted(request.path, 200)}",
                {"path": [f"{quoted(request.path, 200)} is not a path of this service"]})
    message = message or error.description or error.name
    return message, {ROOT: [message]}


def load_configured(config: Any) -> Policy:
    """The policy a Flask config names (service.decisions.load_policy)."""
    return load_policy(config)


def policy() -> Policy:
    """The policy (rulebook and engine) of the running app."""
    return current_app.extensions["policy_service"]


IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "pattern": r"^[\x21-\x2b\x2d-\x7e]{1,255}$"},
    "description": "Send the same key with a retry: the same request gets the first answer again (same "
                   "decision_id, nothing logged twice; header Idempotent-Replayed: true); the same key with "
                   "another request is a 422.",
}


@blp.route("/decisions", methods=["POST"])
@blp.arguments(REQUEST, error_status_code=422, example=DECISION_REQUEST_EXAMPLE)
# unknown=RAISE: a misspelled parameter (?explian=full) is a 422 naming it, not silently a decision without it.
@blp.arguments(EXPLAIN, location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema=DecisionResponseSchema, success=True, description="The decision",
                  example=DECISION_RESPONSE_EXAMPLE)
@blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
@blp.alt_response(422, schema=ErrorSchema, description="Invalid request, by field path", example=ERROR_EXAMPLE)
# doc(parameters=...) replaces the list @blp.arguments documents: the query schema is listed again (explain).
@blp.doc(parameters=[{"in": "query", "schema": EXPLAIN}, IDEMPOTENCY_KEY])
def create_decision(proposal: DecisionRequest, query: dict[str, Any]):
    """Decide a proposed send: allow or deny, the required message type, the charge, and why.

    With an Idempotency-Key, a repeat of the same request gets the first answer (same decision_id,
    nothing logged again); the same key with another request is a 422."""
    explain = query.get("explain") == "full"
    raw = request_json()
    answer = idempotency.once(_scope("decisions"), flask.request.headers.get(idempotency.HEADER),
                              {"request": raw, "explain": explain},
                              lambda: decided(proposal, raw, explain_why_not=explain)[1])
    return _answered(answer)


@blp.route("/decisions/batch", methods=["POST"])
@blp.arguments(BATCH_REQUEST, error_status_code=422,
               example={"requests": [DECISION_REQUEST_EXAMPLE, DECISION_REQUEST_EXAMPLE]})
# The batch takes no query parameter (?explain=full is not offered here): any is a 422 naming it.
@blp.arguments(Schema.from_dict({}, name="BatchQuery")(), location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema=BatchResponseSchema, success=True, description="The decisions, in request order")
@blp.alt_response(400, schema=ErrorSchema, description="Malformed JSON")
@blp.alt_response(422, schema=ErrorSchema, description="Invalid request; paths start requests.<index>")
@blp.doc(parameters=[IDEMPOTENCY_KEY])
def create_decisions(batch: dict[str, list[DecisionRequest]], _query: dict[str, Any]):
    """Decide several proposed sends; each is evaluated exactly as POST /v1/decisions would, and all are logged
    or none: a request refused is a 422 naming requests.<index>.<field>, and nothing of the batch is logged."""
    # The body parser has refused more than MAX_BATCH_SIZE requests before they were deserialized.
    proposals = batch["requests"]
    raw = request_json()["requests"]

    def decide_all() -> bytes:
        started = time.perf_counter()
        pipeline = decisions.Decisions(policy(), mask=current_app.config["MASK_PHONE_NUMBERS"])
        done = pipeline.decide_all([decisions.proposal(proposal, raw[index], api_key=security.key_name())
                                    for index, proposal in enumerate(proposals)])
        # Decided together and logged in one transaction: each decision's latency is its share of the batch.
        seconds = (time.perf_counter() - started) / len(done)
        for each in done:
            metrics.count_decision(each.decision)
            logs.log_decision(each.decision, seconds, alone=False)
        return b'{"decisions":[' + b",".join(each.text for each in done) + b"]}"

    answer = idempotency.once(_scope("decisions/batch"), flask.request.headers.get(idempotency.HEADER),
                              {"requests": raw}, decide_all)
    return _answered(answer)


def decide(proposal: DecisionRequest, raw: dict[str, Any], *, explain_why_not: bool = False) -> dict[str, Any]:
    """Evaluate one validated request, log it, and return the response body."""
    return decided(proposal, raw, explain_why_not=explain_why_not)[0]


def decided(proposal: DecisionRequest, raw: dict[str, Any], *,
            explain_why_not: bool = False) -> tuple[dict[str, Any], bytes]:
    """Run one validated request through the decision pipeline (service.decisions): evaluated, logged, and
    returned as the response body and its JSON (serialized once: the log row stores the bytes returned)."""
    started = time.perf_counter()
    pipeline = decisions.Decisions(policy(), mask=current_app.config["MASK_PHONE_NUMBERS"])
    done = pipeline.decide(decisions.proposal(proposal, raw, explain_why_not=explain_why_not,
                                              api_key=security.key_name()))
    metrics.count_decision(done.decision)
    logs.log_decision(done.decision, time.perf_counter() - started)
    return done.body, done.text


def _scope(endpoint: str) -> str:
    """An Idempotency-Key's scope: the endpoint and, with API keys on (API_KEYS or the older API_KEY_HASHES: both
    are in the configured keys), the client's key (by digest), so two clients' keys never meet."""
    key = security.presented_key()
    return f"{endpoint}:{security.hash_key(key)[:32]}" if key and current_app.config["API_KEYS"] else endpoint


def _answered(answer: idempotency.Answer) -> flask.Response:
    response = _json_response(answer.text)
    if answer.replayed:
        # As Stripe and the IETF draft's implementations say it: this is the first request's answer.
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _json_response(text: bytes) -> flask.Response:
    return current_app.response_class(text, mimetype="application/json")


@blp.route("/decisions/<decision_id:decision_id>", methods=["GET"])
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.response(200, LOGGED_DECISION)
@blp.alt_response(404, schema=ErrorSchema, description="No decision with this id")
def get_decision(_query: dict[str, Any], decision_id: str):
    """A logged decision, as it was returned, with the (masked) request."""
    found = logged.decision(decision_id)
    if found is None:
        raise logged.missing(decision_id)
    return found

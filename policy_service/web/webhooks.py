"""Meta's WhatsApp webhooks over HTTP: the subscription challenge, and signed payloads stored and answered at once.

HTTP only: the signature check, storing and processing are service.ingest's; the payload reader is
contract.meta_webhooks. A body not sent as application/json is a 415. Settings (environment variables POLICY_<name>):
WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN, MAX_CONTENT_LENGTH (413 above it), and WEBHOOK_PROCESSING —
`background` (a thread in each worker processes payloads after the answer; the default; a body of at most
WEBHOOK_INLINE_MAX_BYTES is processed before it), `inline` (processed before the answer: the default when
TESTING), or `off` (only `policy-service webhooks process` processes them) — with WEBHOOK_BATCH_SIZE,
WEBHOOK_LEASE_SECONDS, WEBHOOK_MAX_ATTEMPTS and WEBHOOK_POLL_SECONDS (service.ingest.Settings).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, current_app, request
from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from ..contract.meta_webhooks import signature_valid  # noqa: F401 - part of this module's interface
from ..contract.parsing import error_message
from ..contract.queries import NO_QUERY
from ..contract.schemas import ErrorSchema, WebhookBacklogSchema, WebhookReceiptSchema
from ..service import ingest
from ..service.errors import ServiceError
from .api import JsonBodyParser, repeated_parameters, require_json

blp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks", description="Meta's WhatsApp webhooks")
# Reading the backlog is an operator's request, not Meta's: it stays behind the API keys.
admin_blp = Blueprint("webhook_payloads", __name__, url_prefix="/v1/admin/webhooks",
                      description="Stored webhook payloads and the processing backlog")
admin_blp.ARGUMENTS_PARSER = JsonBodyParser()
PROCESSOR = "policy_service.webhook_processor"


def settings(app: Flask) -> ingest.Settings:
    """The processing settings of an app (WEBHOOK_* settings, else service.ingest's defaults)."""
    return ingest.configured(app.config)


def processing(app: Flask) -> str:
    """WEBHOOK_PROCESSING, or its default: inline under TESTING (deterministic tests), else background."""
    mode = app.config.get("WEBHOOK_PROCESSING") or (ingest.INLINE if app.config.get("TESTING") else ingest.BACKGROUND)
    if mode not in ingest.MODES:
        raise ValueError(f"WEBHOOK_PROCESSING must be one of {', '.join(ingest.MODES)}, not {mode!r}")
    return mode


def processor(app: Flask) -> ingest.Processor:
    """The app's background processor (its thread starts in the process that first needs it)."""
    if PROCESSOR not in app.extensions:
        app.extensions[PROCESSOR] = ingest.Processor(settings(app))
    return app.extensions[PROCESSOR]


@blp.record_once
def _setup(state: Any) -> None:
    app = state.app
    if processing(app) != ingest.BACKGROUND:
        return
    processor(app)

    @app.before_request
    def _keep_processing() -> None:
        # Any request starts the thread in a worker that has none yet (gunicorn forks workers after the app is
        # built, and threads do not survive a fork), so payloads a dead worker left are finished without
        # waiting for the next webhook.
        app.extensions[PROCESSOR].ensure_running()


# What Meta's subscription check sends, each once (https://developers.facebook.com/docs/graph-api/webhooks/getting-started).
VERIFY_PARAMETERS = ("hub.mode", "hub.verify_token", "hub.challenge")


@blp.route("/whatsapp", methods=["GET"])
@blp.alt_response(200, description="The challenge, echoed as text", success=True,
                  content_type="text/plain", schema={"type": "string"})
@blp.alt_response(400, schema=ErrorSchema, description="No hub.challenge to echo")
@blp.alt_response(403, schema=ErrorSchema, description="Not a subscription, or the verify token does not match")
@blp.alt_response(422, schema=ErrorSchema, description="hub.mode, hub.verify_token or hub.challenge given twice")
# The view reads its parameters itself (request.args: names with dots), so the document lists them here.
@blp.doc(parameters=[
    {"in": "query", "name": "hub.mode", "required": True, "schema": {"type": "string", "enum": ["subscribe"]},
     "description": "subscribe (else 403)"},
    {"in": "query", "name": "hub.verify_token", "required": True, "schema": {"type": "string"},
     "description": "POLICY_WHATSAPP_VERIFY_TOKEN (else 403)"},
    {"in": "query", "name": "hub.challenge", "required": True, "schema": {"type": "string"},
     "description": "echoed back as the answer's text (missing: 400)"}])
def verify_subscription():
    """Answer Meta's subscription check: echo hub.challenge when hub.verify_token matches. Errors name the
    parameters as the API names its locations (query.hub.verify_token): 403 a mode or token that does not match,
    400 no challenge, 422 one of them given more than once."""
    # Which of two values was meant cannot be known (request.args.get reads the first): a 422 naming it, as the
    # API's parser refuses a repeated parameter.
    if repeated := repeated_parameters(request.args, lambda key: key in VERIFY_PARAMETERS):
        errors = {f"query.{key}": messages for key, messages in repeated.items()}
        abort(422, message=error_message(errors), errors=errors)
    # from_prefixed_env JSON-decodes values, so an all-digit token arrives as a number.
    expected = str(current_app.config.get("WHATSAPP_VERIFY_TOKEN") or "")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    matches = bool(expected) and hmac.compare_digest(token.encode(), expected.encode())
    refused = ({} if request.args.get("hub.mode") == "subscribe" else {"query.hub.mode": ["must be subscribe"]}) | \
        ({} if matches else {"query.hub.verify_token": ["does not match POLICY_WHATSAPP_VERIFY_TOKEN"]})
    if refused:
        abort(403, message="verification refused: hub.mode must be subscribe and hub.verify_token must match",
              errors=refused)
    if not challenge:  # Meta always sends one; an empty 200 would look like a passed check to whoever tests by hand
        abort(400, message="invalid request: query.hub.challenge: required (Meta sends it; it is echoed back)",
              errors={"query.hub.challenge": ["required: the value this check echoes"]})
    return current_app.response_class(challenge, mimetype="text/plain")


@blp.route("/whatsapp", methods=["POST"])
@blp.alt_response(200, schema=WebhookReceiptSchema, success=True,
                  description="Stored: the payload's id and status (pending until processed, or done when "
                              "processed inline, with how many events were new or known, new wa_id-BSUID links "
                              "and the parts skipped); duplicate when the same body was stored before")
@blp.alt_response(400, schema=ErrorSchema, description="The body is not UTF-8 JSON, or is nested deeper than 256 "
                                                       "levels (a change nested deeper than 32 is only skipped)")
@blp.alt_response(401, schema=ErrorSchema, description="Missing or wrong X-Hub-Signature-256")
@blp.alt_response(413, schema=ErrorSchema, description="The body is larger than POLICY_MAX_CONTENT_LENGTH")
@blp.alt_response(415, schema=ErrorSchema, description="The body is not sent as Content-Type: application/json")
@blp.alt_response(422, schema=ErrorSchema, description="Not a WhatsApp Business Account webhook (object, entry)")
@blp.alt_response(503, schema=ErrorSchema, description="POLICY_WHATSAPP_APP_SECRET is not configured, or the "
                                                       "database is unavailable (nothing stored: Meta retries)")
def receive_notification():
    """Store a signed webhook payload as received, then answer; its events are stored right after.

    Each entry, change and event is read on its own: one that cannot be read is skipped and listed (path and
    reason) in the payload's receipt and in the log, and every other one is stored. The same body again adds
    nothing (`duplicate`); the same wamid is stored once.
    """
    # Meta posts notifications as JSON (Content-Type: application/json); README promises a 415 for anything else.
    require_json(request)
    app = current_app._get_current_object()
    mode = processing(app)
    body = request.get_data(cache=False)
    # A small body (nearly every one Meta sends) is processed before the answer, in milliseconds, so the
    # caller reads its own writes; a big one is answered as soon as it is stored.
    inline = mode == ingest.INLINE or (mode == ingest.BACKGROUND
                                       and len(body) <= int(app.config.get("WEBHOOK_INLINE_MAX_BYTES") or 0))
    try:
        answer = ingest.receive(body, request.headers.get(ingest.SIGNATURE_HEADER),
                                app_secret=str(app.config.get("WHATSAPP_APP_SECRET") or ""),
                                process=inline, settings=settings(app))
    except ingest.WebhookRefused as refused:
        abort(refused.status, message=refused.message, errors=refused.errors)
    if mode == ingest.BACKGROUND and answer["status"] == "pending":
        processor(app).notify()
    return answer


@admin_blp.route("/backlog", methods=["GET"])
# The backlog takes no query parameter: any is a 422 naming it, as every other listing refuses one it does not take.
@admin_blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@admin_blp.response(200, WebhookBacklogSchema)
@admin_blp.alt_response(422, schema=ErrorSchema, description="A query parameter (the backlog takes none)")
def webhook_backlog(_query: dict[str, Any]) -> dict[str, Any]:
    """Stored payloads not yet processed: pending, failed, and the age of the oldest pending one."""
    return ingest.backlog()


@admin_blp.route("/<int:payload_id>", methods=["GET"])
@admin_blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@admin_blp.response(200, WebhookReceiptSchema)
@admin_blp.alt_response(404, schema=ErrorSchema, description="No stored payload has this id")
def webhook_payload(_query: dict[str, Any], payload_id: int) -> dict[str, Any]:
    """One stored payload's receipt: status, attempts, progress, error, and once processed its counts and
    skipped parts."""
    found = ingest.payload(payload_id)
    if found is None:
        raise ServiceError.not_found("payload_id", f"no stored webhook payload {payload_id}",
                                     "no stored payload has this id")
    return found

"""HTTP views over the business's stored WhatsApp state: the template registry (import, list, one template's
history) and the counts over stored statuses that decisions use (service.state)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_smorest import Blueprint, abort
from marshmallow import RAISE, ValidationError

from ..contract.queries import AT_QUERY, COUNT_QUERY, NO_QUERY, TEMPLATES_IMPORT
from ..contract.schemas import ErrorSchema
from ..service import state
from .api import JsonBodyParser, request_json

blp = Blueprint("business", __name__, url_prefix="/v1", description="The business's own WhatsApp state")
blp.ARGUMENTS_PARSER = JsonBodyParser()


def waba_or_404(waba_id: str) -> str:
    """The WABA id of a /v1/wabas/<waba_id>/… path, or the one 404 for an id that cannot be a WABA's (not digits)."""
    return state.waba(waba_id)


@blp.route("/wabas/<string:waba_id>/message_templates", methods=["POST"])
@blp.arguments(TEMPLATES_IMPORT, error_status_code=422)
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="How many templates were imported")
@blp.alt_response(422, schema=ErrorSchema, description="Not a message_templates response, by field path")
def import_templates(_: dict[str, Any], _query: dict[str, Any], waba_id: str):
    """Import Meta's GET /<WABA_ID>/message_templates response into the registry (templates older than the webhooks)."""
    try:
        return state.import_templates_response(waba_or_404(waba_id), request_json())
    except ValidationError as error:
        abort(422, errors=error.messages)


@blp.route("/wabas/<string:waba_id>/templates", methods=["GET"])
@blp.arguments(AT_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="Each known template's category and status in force, with their sources")
def list_templates(query: dict[str, Any], waba_id: str):
    """The WABA's template registry: each template's category and status at a time, and where each came from."""
    return state.templates_in_force(waba_or_404(waba_id), query.get("at") or datetime.now(UTC))


@blp.route("/wabas/<string:waba_id>/templates/<string:name>/<string:language>", methods=["GET"])
@blp.arguments(AT_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="The template's state and every stored event, oldest first")
@blp.alt_response(404, schema=ErrorSchema, description="The registry has never heard of this template")
def template_history(query: dict[str, Any], waba_id: str, name: str, language: str):
    """One template: its category and status in force at a time, and its history (webhooks and imports)."""
    found = state.template(waba_or_404(waba_id), name, language, query.get("at") or datetime.now(UTC))
    if found is None:
        raise state.missing_template(waba_id, name, language)
    return found


@blp.route("/counts", methods=["GET"])
@blp.arguments(COUNT_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="The count and what was counted")
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter")
def count(query: dict[str, Any]):
    """Outbound messages Meta priced in the categories, sent by a phone number in [from, to) (as decisions count)."""
    return state.counted(query)

"""HTTP views over the business's stored WhatsApp state: the template registry (import, list, one template's
history) and the counts over stored statuses that decisions use (service.state)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask_smorest import Blueprint, abort
from marshmallow import Schema, ValidationError, fields, validate
from webargs.fields import DelimitedList

from ..contract.meta_webhooks import parse_message_templates
from ..contract.schemas import ErrorSchema, FromBeforeTo, RefusesNul, timestamp_field
from ..service import state
from .api import JsonBodyParser, request_json

blp = Blueprint("business", __name__, url_prefix="/v1", description="The business's own WhatsApp state")
blp.ARGUMENTS_PARSER = JsonBodyParser()

WABA_ID = re.compile(r"^[0-9]{1,64}$")


class ImportBodySchema(RefusesNul, Schema):
    """Meta's GET /<WABA_ID>/message_templates response, as returned (unknown fields such as paging ignored)."""

    class Meta:
        unknown = "exclude"

    data = fields.List(fields.Dict(), required=True, validate=validate.Length(max=10_000))


class AtSchema(RefusesNul, Schema):
    """When to read the registry (default: now)."""

    at = timestamp_field(metadata={"description": "RFC 3339; the state in force at this time (default now)"})


class CountQuerySchema(RefusesNul, FromBeforeTo, Schema):
    """GET /v1/counts: outbound messages Meta priced, by scope, category and period."""

    phone_number_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    categories = DelimitedList(fields.String(validate=validate.Length(min=1, max=32)), required=True,
                               validate=validate.Length(min=1, max=16),
                                      metadata={"description": "Meta's pricing categories, comma-separated"})
    since = timestamp_field(required=True, data_key="from")
    until = timestamp_field(required=True, data_key="to")
    contact = fields.String(validate=validate.Regexp(r"^\+?[0-9]{6,20}$"))
    market = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$"),
                           metadata={"description": "the recipients' region (ISO 3166), as Meta's markets"})
    distinct_contacts = fields.Boolean(load_default=False)


def waba_or_404(waba_id: str) -> str:
    """The WABA id of a /v1/wabas/<waba_id>/… path, or the one 404 for an id that cannot be a WABA's (not digits)."""
    if not WABA_ID.match(waba_id):
        abort(404, message=f"no WhatsApp Business Account {waba_id!r}: WABA ids are digits")
    return waba_id


@blp.route("/wabas/<string:waba_id>/message_templates", methods=["POST"])
@blp.arguments(ImportBodySchema, error_status_code=422)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="How many templates were imported")
@blp.alt_response(422, schema=ErrorSchema, description="Not a message_templates response, by field path")
def import_templates(_: dict[str, Any], waba_id: str):
    """Import Meta's GET /<WABA_ID>/message_templates response into the registry (templates older than the webhooks)."""
    try:
        changes = parse_message_templates(waba_or_404(waba_id), request_json())
    except ValidationError as error:
        abort(422, errors=error.messages)
    return {"imported": state.import_templates(changes)}


@blp.route("/wabas/<string:waba_id>/templates", methods=["GET"])
@blp.arguments(AtSchema, location="query", error_status_code=422)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="Each known template's category and status in force, with their sources")
def list_templates(query: dict[str, Any], waba_id: str):
    """The WABA's template registry: each template's category and status at a time, and where each came from."""
    return {"waba_id": waba_id,
            "templates": state.templates(waba_or_404(waba_id), query.get("at") or datetime.now(UTC))}


@blp.route("/wabas/<string:waba_id>/templates/<string:name>/<string:language>", methods=["GET"])
@blp.arguments(AtSchema, location="query", error_status_code=422)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="The template's state and every stored event, oldest first")
@blp.alt_response(404, schema=ErrorSchema, description="The registry has never heard of this template")
def template_history(query: dict[str, Any], waba_id: str, name: str, language: str):
    """One template: its category and status in force at a time, and its history (webhooks and imports)."""
    history = state.template_history(waba_or_404(waba_id), name, language)
    if not history:
        abort(404, message=f"the registry of WABA {waba_id} has no template {name!r} in {language!r}")
    known = state.template_state(waba_id, name, language, query.get("at") or datetime.now(UTC))
    return {"waba_id": waba_id, "name": name, "language": language,
            "category": None if known.category is None else {"value": known.category.value,
                                                             "source": known.category.source},
            "status": None if known.status is None else {"value": known.status.value, "source": known.status.source},
            "history": history}


@blp.route("/counts", methods=["GET"])
@blp.arguments(CountQuerySchema, location="query", error_status_code=422)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="The count and what was counted")
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter")
def count(query: dict[str, Any]):
    """Outbound messages Meta priced in the categories, sent by a phone number in [from, to) (as decisions count)."""
    contact = query["contact"].lstrip("+") if query.get("contact") else None
    total = state.count_messages(
        since=query["since"], until=query["until"], categories=tuple(query["categories"]),
        phone_number_id=query["phone_number_id"], contact=contact, market=query.get("market"),
        distinct_contacts=query["distinct_contacts"])
    return {"count": total, "phone_number_id": query["phone_number_id"], "categories": query["categories"],
            "from": query["since"].isoformat(), "to": query["until"].isoformat(), "contact": contact,
            "market": query.get("market"),
            "distinct_contacts": query["distinct_contacts"], "source": "counted from stored statuses"}

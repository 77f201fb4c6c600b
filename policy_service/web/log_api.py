"""HTTP views over stored data: the decision log listing and reconciliation with Meta's pricing."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, post_load, validate

from ..contract.schemas import ErrorSchema, RefusesNul
from ..review import reconciliation
from ..store import decision_log
from .api import JsonBodyParser, policy

blp = Blueprint("stored", __name__, url_prefix="/v1", description="The decision log and reconciliation")
blp.ARGUMENTS_PARSER = blp.PAGINATION_ARGUMENTS_PARSER = JsonBodyParser()


class DecisionQuerySchema(RefusesNul, Schema):
    """Filters of GET /v1/decisions."""

    since = fields.AwareDateTime(data_key="from", metadata={"description": "logged at or after (RFC 3339)"})
    until = fields.AwareDateTime(data_key="to", metadata={"description": "logged before (RFC 3339)"})
    decision = fields.String(validate=validate.OneOf(("allow", "deny")))
    rule = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9.\-]{1,64}$"),
                         metadata={"description": "a determining rule id"})
    policy_version = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9.\-]{1,16}$"),
                                   metadata={"description": "the policy version in force at the send (V3a...)"})
    contact = fields.String(validate=validate.Regexp(r"^\+?[0-9]{6,20}$"),
                            metadata={"description": "the recipient (E.164); with masking on, every logged "
                                                     "number with the same calling and area code matches"})
    phone_number_id = fields.String(validate=validate.Length(min=1, max=64),
                                    metadata={"description": "the business number of a history_ref"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> decision_log.DecisionQuery:
        return decision_log.DecisionQuery(**data)


class ReconciliationQuerySchema(RefusesNul, Schema):
    """Filters of GET /v1/reconciliation."""

    phone_number_id = fields.String(validate=validate.Length(min=1, max=64))
    contact = fields.String(validate=validate.Regexp(r"^\+?[0-9]{6,20}$"))


DECISION_QUERY, RECONCILIATION_QUERY = DecisionQuerySchema(), ReconciliationQuerySchema()
# Databases hold 64-bit offsets; a larger page number would overflow rather than come back empty.
MAX_PAGE = 1_000_000


@blp.route("/decisions", methods=["GET"])
@blp.arguments(DECISION_QUERY, location="query", error_status_code=422)
@blp.response(200)
@blp.paginate()
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter or page")
def list_decisions(query: decision_log.DecisionQuery, pagination_parameters):
    """Logged decisions, newest first, filtered by time, decision, determining rule, policy version, recipient
    and business number; paginated."""
    if pagination_parameters.page > MAX_PAGE:
        abort(422, message=f"invalid request: page: at most {MAX_PAGE}",
              errors={"page": [f"must be at most {MAX_PAGE}"]})
    rows = decision_log.select(query)
    pagination_parameters.item_count = rows.count()
    page = rows.paginate(pagination_parameters.page, pagination_parameters.page_size)
    return [decision_log.entry(row) for row in page]


@blp.route("/reconciliation", methods=["GET"])
@blp.arguments(RECONCILIATION_QUERY, location="query", error_status_code=422)
@blp.response(200)
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter")
def reconcile(filters: dict[str, Any]):
    """Meta's pricing of each delivered message beside the charge our rules predict, field by field."""
    if "contact" in filters:
        filters["contact"] = filters["contact"].lstrip("+")
    loaded = policy()
    return reconciliation.report(reconciliation.reconcile(loaded.rulebook, loaded.engine, **filters))

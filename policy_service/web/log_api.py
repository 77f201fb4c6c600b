"""HTTP views over stored data: the decision log listing and reconciliation with Meta's pricing."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, post_load, validate

from ..contract.queries import RECONCILIATION_QUERY
from ..contract.schemas import (
    ErrorSchema,
    FromBeforeTo,
    LoggedDecisionSchema,
    ReconciliationSchema,
    RefusesNul,
    timestamp_field,
)
from ..service import logged, reports
from .api import JsonBodyParser, policy

blp = Blueprint("stored", __name__, url_prefix="/v1", description="The decision log and reconciliation")
blp.ARGUMENTS_PARSER = blp.PAGINATION_ARGUMENTS_PARSER = JsonBodyParser()


class DecisionQuerySchema(RefusesNul, FromBeforeTo, Schema):
    """Filters of GET /v1/decisions."""

    since = timestamp_field(data_key="from", metadata={"description": "logged at or after (RFC 3339)"})
    until = timestamp_field(data_key="to", metadata={"description": "logged before (RFC 3339)"})
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
    def make(self, data: dict[str, Any], **_: Any) -> logged.DecisionQuery:
        return logged.DecisionQuery(**data)


DECISION_QUERY = DecisionQuerySchema()
# Databases hold 64-bit offsets; a larger page number would overflow rather than come back empty.
MAX_PAGE = 1_000_000


@blp.route("/decisions", methods=["GET"])
@blp.arguments(DECISION_QUERY, location="query", error_status_code=422)
@blp.response(200, LoggedDecisionSchema(many=True),
              description="One page of logged decisions, newest first; the totals in X-Pagination")
@blp.paginate()
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter or page")
def list_decisions(query: logged.DecisionQuery, pagination_parameters):
    """Logged decisions, newest first, filtered by time, decision, determining rule, policy version, recipient
    and business number; paginated."""
    # A parameter the listing does not take is refused (as the pages refuse one), not silently ignored.
    known = {f.data_key or name for name, f in DECISION_QUERY.fields.items()} | {"page", "page_size"}
    if unknown := sorted(set(request.args) - known):
        abort(422, message=f"invalid request: query.{unknown[0]}: Unknown field.",
              errors={"query": {name: ["Unknown field."] for name in unknown}})
    if pagination_parameters.page > MAX_PAGE:
        # Named as the query's other fields are (query.page_size, query.page).
        abort(422, message=f"invalid request: query.page: at most {MAX_PAGE}",
              errors={"query": {"page": [f"must be at most {MAX_PAGE}"]}})
    pagination_parameters.item_count = logged.count(query)
    return logged.page(query, pagination_parameters.page, pagination_parameters.page_size)


@blp.route("/reconciliation", methods=["GET"])
@blp.arguments(RECONCILIATION_QUERY, location="query", error_status_code=422)
# Documented, not re-serialized: the report goes out as review.reconciliation builds it.
@blp.alt_response(200, schema=ReconciliationSchema, success=True, description="Every delivered message compared")
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter")
def reconcile(filters: dict[str, Any]):
    """Meta's pricing of each delivered message beside the charge predicted for it, field by field; paginated.

    A message sent with its decision's decision_id as biz_opaque_callback_data is compared with the charge
    logged at decision time (basis logged_prediction, with a likely cause for a mismatch); the others with a
    replay of the stored history (basis replay). `summary` counts every comparison by month, category and cause.
    """
    return reports.reconcile(policy(), **filters)

"""HTTP views over stored data: the decision log listing and reconciliation with Meta's pricing."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from ..contract.queries import DECISION_QUERY, PAGE_QUERY, RECONCILIATION_QUERY
from ..contract.schemas import ErrorSchema, LoggedDecisionSchema, ReconciliationSchema
from ..service import logged, reports
from .api import JsonBodyParser, policy

blp = Blueprint("stored", __name__, url_prefix="/v1", description="The decision log and reconciliation")
blp.ARGUMENTS_PARSER = JsonBodyParser()



@blp.route("/decisions", methods=["GET"])
@blp.arguments(DECISION_QUERY, location="query", error_status_code=422)
# Not flask-smorest's paginate: its page schema read "１" or "+1" as page 1 (int()) and documented no maximum.
@blp.arguments(PAGE_QUERY, location="query", error_status_code=422)
@blp.response(200, LoggedDecisionSchema(many=True), headers={"X-Pagination": "PAGINATION"},
              description="One page of logged decisions, newest first; the totals in X-Pagination")
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter or page")
def list_decisions(filters: dict[str, Any], paging: dict[str, int]):
    """Logged decisions, newest first, filtered by time, decision, determining rule, policy version, recipient
    and business number; paginated."""
    # A parameter the listing does not take is refused (as the pages refuse one), not silently ignored.
    known = {f.data_key or name for schema in (DECISION_QUERY, PAGE_QUERY) for name, f in schema.fields.items()}
    if unknown := sorted(set(request.args) - known):
        abort(422, message=f"invalid request: query.{unknown[0]}: Unknown field.",
              errors={"query": {name: ["Unknown field."] for name in unknown}})
    query = logged.DecisionQuery(**filters)
    # X-Pagination as the Python API's listing words it (one definition of a page's metadata).
    metadata = logged.pagination(paging["page"], paging["page_size"], logged.count(query))
    return logged.page(query, paging["page"], paging["page_size"]), {"X-Pagination": json.dumps(metadata)}


@blp.route("/reconciliation", methods=["GET"])
@blp.arguments(RECONCILIATION_QUERY, location="query", error_status_code=422, unknown=RAISE)
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

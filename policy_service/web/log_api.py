"""HTTP views over stored data: the decision log listing and reconciliation with Meta's pricing."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from ..contract.queries import DECISION_QUERY, MAX_PAGE, MAX_PAGE_SIZE, PAGE_SIZE, RECONCILIATION_QUERY
from ..contract.schemas import ErrorSchema, LoggedDecisionSchema, ReconciliationSchema
from ..service import logged, reports
from .api import JsonBodyParser, policy

blp = Blueprint("stored", __name__, url_prefix="/v1", description="The decision log and reconciliation")
blp.ARGUMENTS_PARSER = blp.PAGINATION_ARGUMENTS_PARSER = JsonBodyParser()
# X-Pagination as the Python API's listing words it (one definition of a page's metadata).
blp._make_pagination_metadata = logged.pagination



@blp.route("/decisions", methods=["GET"])
@blp.arguments(DECISION_QUERY, location="query", error_status_code=422)
@blp.response(200, LoggedDecisionSchema(many=True),
              description="One page of logged decisions, newest first; the totals in X-Pagination")
@blp.paginate(page_size=PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter or page")
def list_decisions(filters: dict[str, Any], pagination_parameters):
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
    query = logged.DecisionQuery(**filters)
    pagination_parameters.item_count = logged.count(query)
    return logged.page(query, pagination_parameters.page, pagination_parameters.page_size)


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

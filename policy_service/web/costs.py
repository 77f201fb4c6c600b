"""The cost report over HTTP: GET /v1/costs (JSON) and the reviewer page /ui/costs (a server-rendered chart)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import render_template, request
from flask_smorest import Blueprint, abort
from marshmallow import RAISE, ValidationError

from ..contract.queries import COST_QUERY
from ..contract.schemas import ErrorSchema
from ..service import reports
from ..service.errors import ServiceError
from .api import JsonBodyParser, flatten_errors, policy
from .pages import bp as pages
from .pages import refused_page, unknown_filters

blp = Blueprint("costs", __name__, url_prefix="/v1", description="What Meta billed and what the decisions predicted")
# The API's parser: a query parameter given twice is a 422 naming it, as on every other route (webargs' own parser
# would read the first value and drop the rest unseen).
blp.ARGUMENTS_PARSER = JsonBodyParser()


def report(query: dict[str, Any]) -> dict[str, Any]:
    """The cost report for a validated query, priced with the running rulebook's rate cards."""
    return reports.cost_report(policy(), query["start"], query["end"], group_by=query["group_by"],
                               currency=query["currency"])


@blp.route("/costs", methods=["GET"])
@blp.arguments(COST_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="The cost report: billed beside predicted, grouped; amounts as decimal strings")
@blp.alt_response(422, schema=ErrorSchema, description="Bad dates or grouping; a currency that is not ISO 4217's, "
                                                       "or one no rate card is in and no WABA is billed in")
def get_costs(query: dict[str, Any]):
    """Billed (stored statuses priced by the cards) beside predicted (logged decisions), grouped; decimal strings."""
    try:
        return report(query)
    except ServiceError as error:  # named as the query's other fields are (query.currency)
        abort(error.code, message=error.message.replace("invalid request: ", "invalid request: query.", 1),
              errors={"query": error.errors})


@pages.route("/costs")
def costs_page():
    """Monthly cost by category, predicted beside billed, as an SVG chart and a table."""
    today = date.today()
    args = {"from": request.args.get("from") or f"{today.year}-01-01", "to": request.args.get("to") or
            today.isoformat(), "currency": request.args.get("currency") or "USD", "group_by": "month,category"}
    try:
        query = COST_QUERY.load(args)
    except ValidationError as error:
        errors = flatten_errors(error.messages)
        return refused_page(errors, page=lambda named: render_template("ui/costs.html", args=args, errors=named,
                                                                 report=None))
    errors = unknown_filters(("from", "to", "currency"))
    try:  # a currency no rate card is in (and no WABA is billed in) is refused as GET /v1/costs refuses it
        data = report(query) if not errors else {}
    except ServiceError as error:
        errors = error.errors
    if errors:
        return refused_page(errors, page=lambda named: render_template("ui/costs.html", args=args, errors=named,
                                                                 report=None))
    detail = report({**query, "group_by": ("month", "category", "country")})
    return render_template("ui/costs.html", args=args, errors={}, report=data, chart=reports.chart(data),
                           detail=detail)

"""The cost report over HTTP: GET /v1/costs (JSON) and the reviewer page /ui/costs (a server-rendered chart)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import render_template, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..contract.schemas import ErrorSchema, RefusesNul
from ..review import costs
from .api import flatten_errors, policy
from .pages import bp as pages

blp = Blueprint("costs", __name__, url_prefix="/v1", description="What Meta billed and what the decisions predicted")


class CostQuerySchema(RefusesNul, Schema):
    """Query of GET /v1/costs."""

    start = fields.Date(data_key="from", required=True, metadata={"description": "first day (YYYY-MM-DD, UTC)"})
    end = fields.Date(data_key="to", required=True, metadata={"description": "last day, included"})
    group_by = fields.String(load_default="month,category", validate=validate.Regexp(
        r"^(month|category|market)(,(month|category|market))*$", error="a comma list of month, category, market"))
    currency = fields.String(load_default="USD", validate=validate.Regexp(r"^[A-Z]{3}$", error="an ISO 4217 code"))

    @validates_schema
    def ordered(self, data: dict[str, Any], **_: Any) -> None:
        if "start" in data and "end" in data and data["end"] < data["start"]:
            raise ValidationError("must not be before from", "to")
        if "start" in data and "end" in data and (data["end"] - data["start"]).days > 3660:
            raise ValidationError("at most ten years", "to")


# Instances, never classes, on routes: a schema built per request costs hundreds of µs (issue 14).
COST_QUERY = CostQuerySchema()


def report(query: dict[str, Any]) -> dict[str, Any]:
    """The cost report for a validated query, priced with the running rulebook's rate cards."""
    group_by = tuple(dict.fromkeys(query["group_by"].split(",")))
    return costs.cost_report(policy().rulebook.rates, query["start"], query["end"], group_by=group_by,
                             currency=query["currency"])


@blp.route("/costs", methods=["GET"])
@blp.arguments(COST_QUERY, location="query", error_status_code=422)
@blp.response(200)
@blp.alt_response(422, schema=ErrorSchema, description="Bad dates, grouping or currency")
def get_costs(query: dict[str, Any]):
    """Billed (stored statuses priced by the cards) beside predicted (logged decisions), grouped; decimal strings."""
    return report(query)


@pages.route("/costs")
def costs_page():
    """Monthly cost by category, predicted beside billed, as an SVG chart and a table."""
    today = date.today()
    args = {"from": request.args.get("from") or f"{today.year}-01-01", "to": request.args.get("to") or
            today.isoformat(), "currency": request.args.get("currency") or "USD", "group_by": "month,category"}
    try:
        query = COST_QUERY.load(args)
    except ValidationError as error:
        return render_template("ui/costs.html", args=args, errors=flatten_errors(error.messages), report=None), 422
    data = report(query)
    return render_template("ui/costs.html", args=args, errors={}, report=data, chart=costs.chart(data))

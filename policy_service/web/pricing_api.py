"""HTTP views over what a business is billed: its WABA's billing currency (set once), Meta's pricing
analytics imported as the bill, and cost forecasts (service.pricing, service.forecast)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import render_template, request
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError, fields

from ..contract.pricing import FORECAST, CurrencyBodySchema, ForecastSchema
from ..contract.queries import NO_QUERY
from ..contract.schemas import WABA_ID_DIGITS, ErrorSchema, RefusesNul, ResponseSchema, whole_number
from ..service import analytics, forecast, pricing
from ..service.errors import ServiceError
from .api import JsonBodyParser, flatten_errors, policy, require_json
from .business_api import waba_or_404
from .pages import bp as pages
from .pages import refused_page, unknown_filters

blp = Blueprint("pricing", __name__, url_prefix="/v1", description="What the business is billed, in its currency")
blp.ARGUMENTS_PARSER = JsonBodyParser()



class CurrencySchema(ResponseSchema):
    """A WABA's billing currency, when and how it was set."""

    waba_id = fields.String()
    currency = fields.String()
    set_at = fields.String(metadata={"description": "RFC 3339"})
    source = fields.String(metadata={"description": "API or CLI"})
    created = fields.Boolean(metadata={"description": "true when this call set it"})
    notes = fields.List(fields.String(), metadata={"description": (
        "What the currency means for pricing, one sentence each; empty when a rate card is in it. A valid ISO 4217 "
        "code no rate card is in (rules/rates/) is set, and says that sends priced in it have no card price until "
        "a card in it is imported; a stored code that is no currency says that setting the real one replaces it")})


@blp.route("/wabas/<string:waba_id>/billing-currency", methods=["PUT"])
@blp.arguments(CurrencyBodySchema, error_status_code=422)
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.response(200, CurrencySchema)
@blp.alt_response(409, schema=ErrorSchema, description="Another currency is already set (Meta never changes it)")
@blp.alt_response(422, schema=ErrorSchema, description="Not an ISO 4217 code")
def put_currency(body: dict[str, Any], _query: dict[str, Any], waba_id: str):
    """Set the WABA's billing currency once; its sends are then priced in it unless context.currency says otherwise.
    `notes` says when they cannot be priced from a rate card (none is in the currency yet)."""
    return pricing.set_currency(waba_or_404(waba_id), body["currency"], "API", policy().rulebook.rates)


@blp.route("/wabas/<string:waba_id>/billing-currency", methods=["GET"])
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.response(200, CurrencySchema)
@blp.alt_response(404, schema=ErrorSchema, description="No currency set for this WABA")
def get_currency(_query: dict[str, Any], waba_id: str):
    """The WABA's billing currency, when and how it was set."""
    return pricing.currency(waba_or_404(waba_id), policy().rulebook.rates)


@blp.route("/costs/forecast", methods=["POST"])
@blp.arguments(ForecastSchema, error_status_code=422)
@blp.arguments(NO_QUERY, location="query", error_status_code=422, unknown=RAISE)
@blp.alt_response(200, schema={"type": "object"}, success=True, description=(
    "{total, currency, at, lines: [{line, country, market, category, count, free_entry_point, "
    "customer_service_window, amount, rate, tiers, free, denied, rate_card}], unpriced: [{line, country, category, "
    "count, free_entry_point, customer_service_window, reason, free, denied}], volume_sources, volume_note, "
    "service_messages_this_month, notes}; decimal strings. `rate` (null when no one rate applies to the line: "
    "nothing of it is charged, every message free or denied, as a free send's charge.price is null; or its tiers "
    "charge several rates, each in `tiers`): the rate per message, in `currency`, of every charged message of "
    "the line. `free` (null when no window of the line is listed: a "
    "template line charged in full outside both windows, a line the rules are not asked about): {count, rule, "
    "because, charged_rule, by_window: [{window, messages, count, rule, because, charged_rule}]}, the messages the "
    "rules leave free (from October 2026 the first 1,000 "
    "service messages of a phone number a month, PMP26-1.free-allowance; inside a free entry point window, "
    "FEP-3; a utility template inside an open customer service window until 2026-09-30, PMP-3), counted on from "
    "service_messages_this_month across the service lines; `denied` (null when none): {count, rule, because, "
    "by_window: [{window, count, rule, because}]}, the messages the rules deny (MKT-4: marketing to US numbers), "
    "neither priced nor in the total (a line denied in full is unpriced); `notes`: what the forecast assumes"))
@blp.alt_response(422, schema=ErrorSchema, description="A bad line, date or currency, by field path")
def post_forecast(body: dict[str, Any], _query: dict[str, Any]):
    """What lines of messages will cost on a day: each line at its market's card rate, volume tiers continuing
    from this month's stored volume of waba_id (else from 0); unpriced lines listed with their reason."""
    return forecast.forecast_costs(policy(), body)


@pages.route("/forecast", methods=["GET"])
def forecast_page():
    """A campaign's cost: lines of `country category count` (and, optionally, `free_entry_point=N` and
    `customer_service_window=N`) priced as POST /v1/costs/forecast prices them; its refusals name the same fields
    (query.lines.3.customer_service_window: the form's line 3)."""
    if errors := unknown_filters({"at", "currency", "waba_id", "waba_timezone", "lines",
                                  "service_messages_this_month"}):
        return refused_page(errors)
    submitted = "lines" in request.values
    # The sample lines and today's noon fill the form first shown; a submitted form is read as submitted: an empty
    # Lines or Delivered at is a 422 naming it (it forecast the sample lines, or today, without a word).
    form = {"at": request.values.get("at", f"{date.today().isoformat()}T12:00:00+00:00"),
            "currency": request.values.get("currency") or "", "waba_id": request.values.get("waba_id") or "",
            "waba_timezone": request.values.get("waba_timezone") or "",
            "service_messages_this_month": request.values.get("service_messages_this_month") or "",
            "lines": request.values["lines"] if submitted else SAMPLE_LINES}
    if not submitted:
        return render_template("ui/forecast.html", form=form, errors={}, result=None, line_fields=LINE_FIELDS,
                               sample=SAMPLE_LINES)
    body: dict[str, Any] = {"at": form["at"], "lines": []}
    body.update({key: form[key] for key in ("currency", "waba_id", "waba_timezone") if form[key]})
    errors: dict[str, list[str]] = {}
    if not form["lines"].strip():
        errors["lines"] = ["required: one line per market and category, like " + SAMPLE_LINES.splitlines()[0]]
    if not form["at"].strip():
        errors["at"] = ["required: when the messages are delivered (RFC 3339), like 2026-11-10T12:00:00Z"]
    if form["service_messages_this_month"]:  # a whole count, as the API's integer (the schema checks its range)
        if (count := _whole(form["service_messages_this_month"])) is not None:
            body["service_messages_this_month"] = count
        else:
            errors["service_messages_this_month"] = ["a whole number of messages, like 900"]
    numbers = []  # the text's line number (from 1, blank lines counted) of each line of the body
    for number, text in enumerate(form["lines"].splitlines(), start=1):
        parts = text.split()
        if not parts:
            continue
        counts = _line_counts(parts[3:])
        count = _whole(parts[2]) if len(parts) >= 3 else None
        if count is None or counts is None:
            errors[f"lines.{number}"] = [
                "write one line as: COUNTRY CATEGORY COUNT, then optionally " + " ".join(
                    f"{name}=N" for name in LINE_FIELDS) + " (for example BR marketing 10000 free_entry_point=4000)"]
            continue
        place = {"to": parts[0]} if parts[0].startswith("+") else {"country": parts[0]}
        body["lines"].append({**place, "category": parts[1], "count": count, **counts})
        numbers.append(number)
    if not errors:
        try:
            result = forecast.forecast_costs(policy(), FORECAST.load(body))
        except ValidationError as error:
            errors = _text_lines(flatten_errors(error.messages), numbers)
        except ServiceError as error:
            errors = _text_lines(error.errors, numbers)
    if errors:
        return refused_page(errors, page=lambda named: render_template("ui/forecast.html", form=form, errors=named,
                                                                 result=None, line_fields=LINE_FIELDS,
                                                                 sample=SAMPLE_LINES))
    return render_template("ui/forecast.html", form=form, errors={}, result=result, line_fields=LINE_FIELDS,
                           sample=SAMPLE_LINES)


# The lines the form first shows (and the Lines box's placeholder once it is emptied).
SAMPLE_LINES = "BR marketing 10000\nBR utility 5000"
# A form line's optional counts after COUNTRY CATEGORY COUNT, as `name=N`: the API's line fields of that name.
LINE_FIELDS = ("free_entry_point", "customer_service_window")


def _line_counts(words: list[str]) -> dict[str, Any] | None:
    """A form line's `name=N` words as the API line's fields (None: a word no such field, or a field given twice).
    N is given to the API's schema as a whole number when it is one (-1 too, which its range refuses), else as the
    text typed, which the schema refuses as it refuses a JSON string there: the page's errors are the API's."""
    counts: dict[str, Any] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or name not in LINE_FIELDS or name in counts:
            return None
        whole = _whole(value.removeprefix("-"))
        counts[name] = value if whole is None else -whole if value.startswith("-") else whole
    return counts


def _whole(text: str) -> int | None:
    """A form's whole number written in ASCII digits (0-9), else None. str.isdigit() alone also accepts
    superscripts (²), which int() refuses (a 500), and other scripts' digits, which the API's JSON never has; and
    int() refuses more than 4,300 digits (a 500 too): contract.schemas.whole_number reads at most 16."""
    return whole_number(text)


def _text_lines(errors: dict[str, list[str]], numbers: list[int]) -> dict[str, list[str]]:
    """The forecast's errors with a body line's index (lines.0.category) replaced by the line number the reviewer
    reads in the form's text (lines.3.category: from 1, blank lines counted), as the page's own errors name lines."""
    def name(key: str) -> str:
        root, _, rest = key.partition(".")
        index, dot, field = rest.partition(".")
        line = whole_number(index)
        if root != "lines" or line is None or line >= len(numbers):
            return key
        return f"lines.{numbers[line]}{dot}{field}"
    return {name(key): messages for key, messages in errors.items()}


class AnalyticsQuerySchema(RefusesNul, Schema):
    """Which WABA the response is for (it must equal the response's `id`)."""

    waba_id = fields.String(required=True, validate=WABA_ID_DIGITS)


@blp.route("/pricing-analytics", methods=["POST"])
@blp.arguments(AnalyticsQuerySchema, location="query", error_status_code=422, unknown=RAISE)
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "Meta's response to GET /<WABA_ID>?fields=pricing_analytics...: "
    '{"pricing_analytics": {"data": [{"data_points": [{start, end, country, phone_number, pricing_category, '
    'pricing_type, tier, volume, cost}]}]}, "id": "<WABA_ID>"}, as Meta returns it'}}}})
@blp.alt_response(200, schema={"type": "object"}, success=True,
                  description="{waba_id, new, updated, unchanged, points}: importing it again changes nothing")
@blp.alt_response(400, schema=ErrorSchema, description="Not JSON")
@blp.alt_response(415, schema=ErrorSchema, description="Not sent as application/json, or compressed")
@blp.alt_response(422, schema=ErrorSchema, description="Not Meta's pricing_analytics shape, by field path")
def post_pricing_analytics(query: dict[str, Any]):
    """Import Meta's pricing analytics for a WABA (cost in the WABA's currency): the bill the cost report shows."""
    require_json(request)  # as every JSON body: a compressed one is a 415 too, not read as broken JSON
    return analytics.import_analytics(request.get_data(cache=True), query["waba_id"])

"""Request bodies of the billing endpoints, read the same way by the HTTP API, the CLI and Python callers:
a cost forecast (POST /v1/costs/forecast) and Meta's pricing analytics response (POST /v1/pricing-analytics).
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from ..core.identities import E164
from ..core.vocabulary import MODELLED_CATEGORIES
from .parsing import Limits
from .schemas import (
    COUNTRY,
    CURRENCY,
    EARLIEST,
    LATEST,
    WABA_ID_DIGITS,
    ContactField,
    RefusesNul,
    count_range,
    iana_zone,
    timestamp_field,
)
from .strict import Pattern, RequestSchema

MAX_FORECAST_LINES = 1_000
MAX_DATA_POINTS = 100_000
# Bodies read outside the decision endpoints' limits: a forecast's lines, an analytics response's points.
FORECAST_LIMITS = Limits(max_items=MAX_FORECAST_LINES)
ANALYTICS_LIMITS = Limits(max_items=MAX_DATA_POINTS, max_values=2_000_000)


def pricing_category(value: str) -> None:
    """Refuse a pricing category Meta does not use (as its webhooks' `pricing.category` spells them), listing them:
    a misspelled one (utilty, promo) matched nothing and was counted 0 or left unpriced without a word."""
    if value not in MODELLED_CATEGORIES:
        raise ValidationError(f"{value!r} is not one of Meta's pricing categories: "
                              + ", ".join(sorted(MODELLED_CATEGORIES)))


class CurrencyBodySchema(RefusesNul, RequestSchema):
    """PUT /v1/wabas/<WABA_ID>/billing-currency: the WABA's billing currency (Meta's WABA field), set once."""

    currency = fields.String(required=True, validate=CURRENCY)


class ForecastLineSchema(RefusesNul, RequestSchema):
    """Messages of one pricing category to one country (or to the country of one number)."""

    country = fields.String(validate=COUNTRY)
    to = ContactField(E164, metadata={"description": "a number whose country is meant (instead of country)"})
    category = fields.String(required=True, validate=pricing_category, metadata={
        "description": "Meta's pricing category: marketing, utility, authentication, authentication-international, "
                       "service, marketing_lite, ..."})
    count = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**12))
    free_entry_point = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12), metadata={
        "description": "of count, the messages sent inside a free entry point window (72 hours from the business's "
                       "reply to a user who wrote from a click-to-WhatsApp ad or a Facebook Page call-to-action), "
                       "decided there by the rules. Service, marketing, utility and authentication lines (default 0)"})
    customer_service_window = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12), metadata={
        "description": "of count, the messages sent inside an open customer service window (24 hours from the "
                       "user's last message), decided there by the rules; with free_entry_point at most count, the "
                       "rest outside both windows. Service lines (default: all not in a free entry point window, a "
                       "free-form message being sent inside a window), marketing, utility and authentication lines "
                       "(default 0)"})

    @validates_schema
    def one_place(self, data: dict[str, Any], **_: Any) -> None:
        if ("country" in data) == ("to" in data):
            raise ValidationError("give country or to (one of them)", "country")

    @validates_schema
    def within_count(self, data: dict[str, Any], **_: Any) -> None:
        # More messages in the windows than in the line would price a negative number of the others.
        count = data.get("count", 0)
        if count < 1:
            return
        if data.get("free_entry_point", 0) > count:
            raise ValidationError(f"at most count ({count}): these are some of the line's messages",
                                  "free_entry_point")
        if "customer_service_window" in data and data.get("free_entry_point", 0) + data["customer_service_window"] \
                > count:
            raise ValidationError(f"with free_entry_point ({data.get('free_entry_point', 0)}) at most count ({count}): "
                                  "these are some of the line's other messages", "customer_service_window")


class ForecastSchema(RefusesNul, RequestSchema):
    """POST /v1/costs/forecast: what lines of messages delivered at `at` will cost."""

    currency = fields.String(validate=CURRENCY, metadata={
        "description": "the billing currency (default: the WABA's, when waba_id names one with a currency set)"})
    at = timestamp_field(required=True, metadata={"description": "RFC 3339: when they will be delivered"})
    waba_id = fields.String(validate=WABA_ID_DIGITS, metadata={
        "description": "count this month's stored volume of this WABA as the tiers' starting point (default 0)"})
    lines = fields.List(fields.Nested(ForecastLineSchema), required=True,
                        validate=validate.Length(min=1, max=MAX_FORECAST_LINES))
    service_messages_this_month = fields.Integer(strict=True, validate=count_range(), metadata={
        "description": "service messages the sending phone number has already sent this month: where the service "
                       "lines' free monthly allowance (rules PMP26-1) starts (default 0)"})
    waba_timezone = fields.String(validate=iana_zone, metadata={
        "description": "IANA zone of the WABA (default UTC): the day whose rate card applies and the month whose "
                       "volume and allowance count, as Meta counts them (from 12 am in the WABA's time zone)"})


# A data point's bucket falls between the years every time of the service does (a later one overflows datetime).
UNIX_SECONDS = validate.Range(min=int(EARLIEST.timestamp()), max=int(LATEST.timestamp()),
                              error="must be Unix seconds between 2000-01-01 and 2999-12-31")
# A cost is stored as its decimal text (store/billing.py: 40 characters); these bounds keep any cost within it.
MAX_COST, MAX_COST_PLACES = 10**15, 18
COST_RANGE = validate.Range(min=0, max=MAX_COST, error="must be between 0 and 10^15")


# Meta's pricing categories as pricing_analytics spells them (upper case, underscores: AUTHENTICATION_INTERNATIONAL).
ANALYTICS_CATEGORIES = tuple(sorted({c.upper().replace("-", "_") for c in MODELLED_CATEGORIES}))


def _analytics_category(value: str) -> None:
    # A category Meta does not use (NOPE) was stored and then matched no card, no decision and no report row.
    if value.upper().replace("-", "_") not in ANALYTICS_CATEGORIES:
        raise ValidationError(f"{value!r} is not one of Meta's pricing categories: {', '.join(ANALYTICS_CATEGORIES)}")


def _cost_places(value: Any) -> None:
    if -value.as_tuple().exponent > MAX_COST_PLACES:
        raise ValidationError(f"at most {MAX_COST_PLACES} decimal places")


class DataPointSchema(RequestSchema):
    """One pricing_analytics data point, as Meta returns it (dimensions not requested are absent)."""

    class Meta:
        unknown = "raise"

    start = fields.Integer(required=True, strict=True, validate=UNIX_SECONDS, metadata={"description": "Unix seconds"})
    end = fields.Integer(required=True, strict=True, validate=UNIX_SECONDS, metadata={"description": "Unix seconds"})
    country = fields.String(validate=Pattern(r"^[A-Z]{2}$", error="an ISO 3166 alpha-2 code"))
    phone_number = fields.String(validate=validate.Length(max=32))
    pricing_category = fields.String(validate=_analytics_category)
    pricing_type = fields.String(validate=validate.Length(max=48))
    tier = fields.String(validate=validate.Length(max=48))
    volume = fields.Integer(required=True, strict=True, validate=count_range())
    cost = fields.Decimal(required=True, allow_nan=False, validate=[COST_RANGE, _cost_places],
                          metadata={"description": "in the WABA's currency (a JSON number or a decimal string; read "
                                                   "exactly, never as a float): below 10^15, at most 18 decimals"})

    @validates_schema
    def ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data["end"] <= data["start"]:
            raise ValidationError("must be after start", "end")


class AnalyticsDataSchema(RequestSchema):
    """pricing_analytics.data[]: a list of data_points (paging ignored)."""

    class Meta:
        unknown = "exclude"

    data_points = fields.List(fields.Nested(DataPointSchema), required=True,
                              validate=validate.Length(max=MAX_DATA_POINTS))


class PricingAnalyticsBlockSchema(RequestSchema):
    """The pricing_analytics field."""

    class Meta:
        unknown = "exclude"

    data = fields.List(fields.Nested(AnalyticsDataSchema), required=True)


class PricingAnalyticsSchema(RequestSchema):
    """Meta's response to GET /<WABA_ID>?fields=pricing_analytics.start(S).end(E).granularity(DAILY)
    .dimensions([...]): {"pricing_analytics": {"data": [{"data_points": [...]}]}, "id": "<WABA_ID>"}."""

    class Meta:
        unknown = "exclude"

    pricing_analytics = fields.Nested(PricingAnalyticsBlockSchema, required=True)
    id = fields.String(required=True, validate=WABA_ID_DIGITS)


CURRENCY_BODY = CurrencyBodySchema()
FORECAST = ForecastSchema()
PRICING_ANALYTICS = PricingAnalyticsSchema()

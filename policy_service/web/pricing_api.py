"""HTTP views over what a business is billed: its WABA's billing currency (set once), Meta's pricing
analytics imported as the bill, and cost forecasts (service.pricing, service.forecast)."""

from __future__ import annotations

import re
from typing import Any

from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from ..contract.schemas import ErrorSchema, RefusesNul, ResponseSchema
from ..service import pricing
from .api import JsonBodyParser

blp = Blueprint("pricing", __name__, url_prefix="/v1", description="What the business is billed, in its currency")
blp.ARGUMENTS_PARSER = JsonBodyParser()

WABA_ID = re.compile(r"^[0-9]{1,64}$")
CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="must be an ISO 4217 code like USD")


class CurrencyBodySchema(RefusesNul, Schema):
    """The WABA's billing currency (Meta's WABA field `currency`), set once."""

    currency = fields.String(required=True, validate=CURRENCY)


class CurrencySchema(ResponseSchema):
    """A WABA's billing currency, when and how it was set."""

    waba_id = fields.String()
    currency = fields.String()
    set_at = fields.String(metadata={"description": "RFC 3339"})
    source = fields.String(metadata={"description": "API or CLI"})
    created = fields.Boolean(metadata={"description": "true when this call set it"})


def _waba(waba_id: str) -> str:
    if not WABA_ID.match(waba_id):
        abort(404, message=f"no WhatsApp Business Account {waba_id!r}: WABA ids are digits")
    return waba_id


@blp.route("/wabas/<string:waba_id>/billing-currency", methods=["PUT"])
@blp.arguments(CurrencyBodySchema, error_status_code=422)
@blp.response(200, CurrencySchema)
@blp.alt_response(409, schema=ErrorSchema, description="Another currency is already set (Meta never changes it)")
@blp.alt_response(422, schema=ErrorSchema, description="Not an ISO 4217 code")
def put_currency(body: dict[str, Any], waba_id: str):
    """Set the WABA's billing currency once; its sends are then priced in it unless context.currency says otherwise."""
    return pricing.set_currency(_waba(waba_id), body["currency"], "API")


@blp.route("/wabas/<string:waba_id>/billing-currency", methods=["GET"])
@blp.response(200, CurrencySchema)
@blp.alt_response(404, schema=ErrorSchema, description="No currency set for this WABA")
def get_currency(waba_id: str):
    """The WABA's billing currency, when and how it was set."""
    return pricing.currency(_waba(waba_id))

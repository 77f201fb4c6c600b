"""Query parameters of the report endpoints, read the same way by the HTTP API and the Python API
(service.api.PolicyService): GET /v1/reconciliation and GET /v1/costs."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..core.identities import WA_ID
from .schemas import GROUP_ID, ContactField, FromBeforeTo, RefusesNul, day_field


class PartyField(ContactField):
    """Whom stored messages were exchanged with: a user (wa_id, a leading + ignored, or BSUID), or a group
    (Groups API group id, as history_ref.group_id takes it: group messages are stored under the group)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError:
            if isinstance(value, str) and re.fullmatch(GROUP_ID, value):
                return value
            raise ValidationError("must be a wa_id (digits, a leading + allowed), a BSUID or a group id") from None


class ReconciliationQuerySchema(RefusesNul, Schema):
    """Filters of GET /v1/reconciliation."""

    phone_number_id = fields.String(validate=validate.Length(min=1, max=64))
    contact = PartyField(WA_ID, metadata={"description": "wa_id, BSUID, or a group id (its group messages)"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1_000))


class CostQuerySchema(RefusesNul, FromBeforeTo, Schema):
    """Query of GET /v1/costs."""

    start = day_field(data_key="from", required=True, metadata={"description": "first day (YYYY-MM-DD, UTC)"})
    end = day_field(data_key="to", required=True, metadata={"description": "last day, included"})
    group_by = fields.String(load_default="month,category", validate=validate.Regexp(
        r"^(month|category|market|country)(,(month|category|market|country))*$",
        error="a comma list of month, category, market, country"))
    currency = fields.String(load_default="USD", validate=validate.Regexp(r"^[A-Z]{3}$", error="an ISO 4217 code"))

    RANGE = ("start", "end")

    @validates_schema
    def within_ten_years(self, data: dict[str, Any], **_: Any) -> None:
        if "start" in data and "end" in data and (data["end"] - data["start"]).days > 3660:
            raise ValidationError("at most ten years", "to")


# Instances, never classes, on routes: a schema built per request costs hundreds of µs (issue 14).
RECONCILIATION_QUERY = ReconciliationQuerySchema()
COST_QUERY = CostQuerySchema()

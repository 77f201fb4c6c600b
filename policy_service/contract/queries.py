"""Query parameters (and the template import body) of the endpoints over stored data, read the same way by the
HTTP API and the Python API (service.python_api.PolicyService): GET /v1/decisions, /v1/reconciliation, /v1/costs,
/v1/counts, /v1/wabas/<waba_id>/templates[/<name>/<language>] and POST /v1/wabas/<waba_id>/message_templates."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs.fields import DelimitedList

from ..core.identities import WA_ID
from ..core.vocabulary import MODELLED_CATEGORIES
from .pricing import pricing_category
from .schemas import (
    COUNTRY_CODES,
    COUNTRY_ERROR,
    CURRENCY,
    DECISIONS,
    GROUP_ID,
    META_ID,
    ContactField,
    FromBeforeTo,
    RefusesNul,
    WholeNumber,
    day_field,
    phone_number_id_field,
    timestamp_field,
)
from .strict import Pattern

# The decision log's filters (the API's and the pages'), each error saying what is expected.
RULE_ID = Pattern(r"^[A-Za-z0-9.\-]{1,64}$",
                  error="must be a rule id like MKT-4 (letters, digits, . and -; at most 64)")
POLICY_VERSION = Pattern(r"^[A-Za-z0-9.\-]{1,16}$",
                         error="must be a policy version id like V3a (letters, digits, . and -; at most 16)")

# A WABA id as a path names it: Meta's ids are digits (contract.schemas.META_ID, the one pattern of Meta's ids).
WABA_ID = re.compile(META_ID)


# What reads as a user, not a group: digits (a leading + allowed) or a country prefix and a period. Such a value is
# judged as a wa_id or a BSUID, with that error ("5511", "+99912345678" and "ZZ.123" were taken as group ids: an empty
# reconciliation where GET /v1/decisions?contact= refused them).
_USER_SHAPED = re.compile(r"\+?[0-9]+|[A-Z]{2}\..*")


class PartyField(ContactField):
    """Whom stored messages were exchanged with: a user (wa_id, a leading + ignored, or BSUID), or a group
    (Groups API group id, as history_ref.group_id takes it: group messages are stored under the group). What reads
    as a user (digits, or a country prefix) is a user's, refused with the wa_id's or the BSUID's error."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError:
            if not isinstance(value, str) or _USER_SHAPED.fullmatch(value):
                raise
            if re.fullmatch(GROUP_ID, value):
                return value
            raise ValidationError("must be a wa_id (digits, a leading + allowed), a BSUID or a group id") from None


class ReconciliationQuerySchema(RefusesNul, Schema):
    """Filters of GET /v1/reconciliation."""

    phone_number_id = phone_number_id_field()
    contact = PartyField(WA_ID, metadata={"description": "wa_id, BSUID, or a group id (its group messages)"})
    page = WholeNumber(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = WholeNumber(load_default=100, validate=validate.Range(min=1, max=1_000))


class CostQuerySchema(RefusesNul, FromBeforeTo, Schema):
    """Query of GET /v1/costs."""

    start = day_field(data_key="from", required=True, metadata={"description": "first day (YYYY-MM-DD, UTC)"})
    end = day_field(data_key="to", required=True, metadata={"description": "last day, included"})
    group_by = fields.String(load_default="month,category", validate=Pattern(
        r"^(month|category|market|country)(,(month|category|market|country))*$",
        error="a comma list of month, category, market, country"))
    currency = fields.String(load_default="USD", validate=CURRENCY)

    RANGE = ("start", "end")

    @validates_schema
    def within_ten_years(self, data: dict[str, Any], **_: Any) -> None:
        if "start" in data and "end" in data and (data["end"] - data["start"]).days > 3660:
            raise ValidationError("at most ten years", "to")


class DecisionQuerySchema(RefusesNul, FromBeforeTo, Schema):
    """Filters of GET /v1/decisions (loaded as store.decision_log.DecisionQuery's fields)."""

    since = timestamp_field(data_key="from", metadata={"description": "logged at or after (RFC 3339)"})
    until = timestamp_field(data_key="to", metadata={"description": "logged before (RFC 3339)"})
    decision = fields.String(validate=validate.OneOf(DECISIONS))
    rule = fields.String(validate=RULE_ID,
                         metadata={"description": "a determining rule id"})
    policy_version = fields.String(validate=POLICY_VERSION, metadata={
        "description": "the policy version in force at the send: V3 matches V3 and its sub-versions (V3a, V3b), V3b "
                       "only V3b"})
    contact = ContactField(WA_ID, metadata={
        "description": "the recipient: a phone number (E.164, the + optional) or a BSUID; with masking on, every "
                       "logged number with the same calling and area code matches (every BSUID of the same "
                       "country and length)"})
    phone_number_id = phone_number_id_field(metadata={"description": "the business number of a history_ref"})


# Databases hold 64-bit offsets; a larger page number would overflow rather than come back empty.
MAX_PAGE = 1_000_000
# GET /v1/decisions' page size: flask-smorest's default and largest.
PAGE_SIZE, MAX_PAGE_SIZE = 10, 100


class PageSchema(Schema):
    """A page of a listing, as the Python API takes it (GET /v1/decisions reads ?page= and ?page_size= through
    flask-smorest, with the same bounds)."""

    page = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    page_size = fields.Integer(strict=True, load_default=PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class PageQuerySchema(Schema):
    """GET /v1/decisions' ?page= and ?page_size= (ASCII digits), with PageSchema's bounds; a page past MAX_PAGE is
    refused as "must be at most 1000000", and the document gives both maxima."""

    page = WholeNumber(load_default=1, validate=[validate.Range(min=1), validate.Range(
        max=MAX_PAGE, error="must be at most {max}")])
    page_size = WholeNumber(load_default=PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class AtSchema(RefusesNul, Schema):
    """When to read the template registry (default: now)."""

    at = timestamp_field(metadata={"description": "RFC 3339; the state in force at this time (default now)"})


class CountQuerySchema(RefusesNul, FromBeforeTo, Schema):
    """GET /v1/counts: outbound messages Meta priced, by scope, category and period."""

    phone_number_id = phone_number_id_field(required=True)
    # A misspelled category (utilty) counted nothing and answered 0 as if none were sent: each must be one Meta uses.
    # (A validator, not OneOf: an enum holding both authentication-international spellings breaks generated clients.)
    categories = DelimitedList(fields.String(validate=pricing_category), required=True,
                               validate=validate.Length(min=1, max=16),
        metadata={"description": "Meta's pricing categories, comma-separated: "
                                 + ", ".join(sorted(MODELLED_CATEGORIES))})
    since = timestamp_field(required=True, data_key="from")
    until = timestamp_field(required=True, data_key="to")
    contact = ContactField(WA_ID, metadata={"description": "the recipient: a wa_id (a leading + ignored) or a BSUID"})
    # Counts are kept per recipient country (store.business_state: the region of the recipient's number or BSUID),
    # not per rate-card market: "Rest of Africa" or "UK" counted nothing and answered 0.
    market = fields.String(validate=Pattern(COUNTRY_CODES, error=COUNTRY_ERROR + ": the recipients' country, as "
                                            "counts are kept (not a rate card's market name like Rest of Africa)"),
                           metadata={"description": "the recipients' country (ISO 3166 alpha-2, one a phone number "
                                                    "can be in), as counts are kept per market"})
    distinct_contacts = fields.Boolean(load_default=False)


class NoQuerySchema(Schema):
    """The query of a listing that takes no parameter (GET /v1/admin/webhooks/backlog): any is a 422 naming it, as
    every other listing refuses one it does not take (loaded with unknown=RAISE)."""


class TemplatesImportSchema(RefusesNul, Schema):
    """Meta's GET /<WABA_ID>/message_templates response, as returned (unknown fields such as paging ignored)."""

    class Meta:
        unknown = "exclude"

    data = fields.List(fields.Dict(), required=True, validate=validate.Length(max=10_000))


# Instances, never classes, on routes: a schema built per request costs hundreds of µs (issue 14).
RECONCILIATION_QUERY = ReconciliationQuerySchema()
COST_QUERY = CostQuerySchema()
DECISION_QUERY = DecisionQuerySchema()
AT_QUERY = AtSchema()
PAGE = PageSchema()
PAGE_QUERY = PageQuerySchema()
COUNT_QUERY = CountQuerySchema()
TEMPLATES_IMPORT = TemplatesImportSchema()
NO_QUERY = NoQuerySchema()

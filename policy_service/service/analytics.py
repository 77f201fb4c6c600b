"""Meta's pricing analytics as the bill: the response of `GET /<WABA_ID>?fields=pricing_analytics.start(S)
.end(E).granularity(DAILY).dimensions(["COUNTRY","PRICING_CATEGORY","PRICING_TYPE","TIER","PHONE"])`
imported exactly as Meta returns it (POST /v1/pricing-analytics?waba_id=..., `policy-service analytics
import FILE`), idempotently per WABA, bucket and dimensions. Meta's average billed rate (cost ÷ volume) for a
WABA, country, category and month (`average_rate`, defined in review.costs, which prices billed messages with it
too) prices a send no card prices.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError

from ..contract.parsing import BodyRefused, flatten_errors, parse_json
from ..contract.pricing import ANALYTICS_LIMITS, PRICING_ANALYTICS
from ..store import billing
from .errors import ServiceError

ANALYTICS_CITATION = "https://developers.facebook.com/docs/whatsapp/business-management-api/analytics#pricing-analytics"


def load(body: bytes | str) -> dict[str, Any]:
    """The analytics response read exactly (costs as Decimal, never float) and validated; ServiceError 400/422
    naming the field otherwise."""
    try:
        parse_json(body, ANALYTICS_LIMITS)  # the bounds and error shape every body gets
        raw = json.loads(body, parse_float=Decimal)
    except BodyRefused as refused:
        raise ServiceError.refused(refused) from None
    try:
        return PRICING_ANALYTICS.load(raw)
    except ValidationError as error:
        flat = flatten_errors(error.messages)
        raise ServiceError(422, f"invalid pricing_analytics response: {next(iter(flat))}: "
                                f"{next(iter(flat.values()))[0]}", flat) from None


def import_analytics(body: bytes | str, waba_id: str | None = None) -> dict[str, Any]:
    """Store the data points of one response: {waba_id, new, updated, unchanged, points}. `waba_id`, when
    given (the query), must be the response's `id`. Importing the same response again changes nothing."""
    loaded = load(body)
    if waba_id is not None and waba_id != loaded["id"]:
        raise ServiceError(422, f"invalid request: id: the response is WABA {loaded['id']}'s, not {waba_id}'s",
                           {"id": [f"must be the waba_id of the query ({waba_id})"]})
    points = [billing.Point(
        start=datetime.fromtimestamp(p["start"], UTC), end=datetime.fromtimestamp(p["end"], UTC),
        country=p.get("country", ""), phone_number=p.get("phone_number", ""),
        pricing_category=p.get("pricing_category", ""), pricing_type=p.get("pricing_type", ""),
        tier=p.get("tier", ""), volume=p["volume"], cost=p["cost"])
        for block in loaded["pricing_analytics"]["data"] for p in block["data_points"]]
    new, updated, unchanged = billing.import_points(loaded["id"], points)
    return {"waba_id": loaded["id"], "new": new, "updated": updated, "unchanged": unchanged, "points": len(points)}

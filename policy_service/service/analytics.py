"""Meta's pricing analytics as the bill: the response of `GET /<WABA_ID>?fields=pricing_analytics.start(S)
.end(E).granularity(DAILY).dimensions(["COUNTRY","PRICING_CATEGORY","PRICING_TYPE","TIER","PHONE"])`
imported exactly as Meta returns it (POST /v1/pricing-analytics?waba_id=..., `policy-service analytics
import FILE`), idempotently per WABA, bucket and dimensions; and Meta's average billed rate (cost ÷
volume) for a WABA, country, category and month, which prices a send where no card covers the day.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from marshmallow import ValidationError

from ..contract.parsing import BodyRefused, flatten_errors, parse_json
from ..contract.pricing import ANALYTICS_LIMITS, PRICING_ANALYTICS
from ..review.costs import meta_category
from ..store import billing
from .errors import ServiceError

ANALYTICS_CITATION = "https://developers.facebook.com/docs/whatsapp/business-management-api/analytics#pricing-analytics"
# An average of exact costs is rounded here (6 decimals: finer than any card's 4), and says so.
AVERAGE_PLACES = Decimal("0.000001")


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


def average_rate(waba_id: str, country: str, category: str, day: date) -> tuple[Decimal, str] | None:
    """Meta's average billed rate for the WABA's charged (REGULAR) messages of a category to a country in the
    month of `day` — cost ÷ volume over the imported points — and the sentence naming it; None without them."""
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    until = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    cost, volume = Decimal("0"), 0
    for _, point in billing.points(since=start, until=until, waba_id=waba_id):
        if point.country == country and point.pricing_type.upper() == "REGULAR" \
                and meta_category(point.pricing_category) == category:
            cost, volume = cost + point.cost, volume + point.volume
    if not volume:
        return None
    rate = (cost / volume).quantize(AVERAGE_PLACES, rounding=ROUND_HALF_EVEN)
    return rate, (f"Meta's average billed rate for WABA {waba_id}, {category} to {country} in {start:%Y-%m}: "
                  f"cost {cost} ÷ volume {volume:,} = {rate} (pricing_analytics, rounded to 6 decimals)")
